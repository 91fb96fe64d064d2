"""Accumulator policies: how wide each PE kind's accumulator is when kinds are compared.

The accumulator is the largest single lever on 4-bit vs 8/16-bit area ratios (at 4 bits most
of a MAC is accumulator), so a comparison names its policy and reports under both:

``"exact-k"`` (the default)
    every kind's accumulator is the narrowest two's-complement register that cannot overflow
    summing ``k`` products (default :data:`DEFAULT_K` = 4096), from
    :func:`nybble.sw.min_acc_bits` on the kind's own product grid (or its window: bf16 floors
    products to ``2**-32``); a dot-product PE sums ``k`` products in ``k / lanes`` steps.
    The bit-serial PE takes the widest of its weight types.  Kinds whose accumulator is not a
    two's-complement integer register of the ``mac`` / ``dp`` / ``bitserial`` families
    (block-scaled windows, floating-point accumulators of any other family registered in
    :mod:`nybble.hw.kinds`) keep their own accumulator.
``"equal"``
    the old convention, :func:`nybble.synth.area.convention_acc_bits`: ``acc_bits`` (32)
    wherever one accumulation step fits, else the kind's own.
"""

import numbers

from nybble.hw.kinds import pe_kind
from nybble.sw import min_acc_bits
from nybble.sw.errors import ParameterError, ParameterTypeError
from .area import ACC_CONVENTION, EQUAL_ACC_BITS, convention_acc_bits

__all__ = ["ACC_POLICIES", "DEFAULT_ACC_POLICY", "DEFAULT_K", "INTEGER_ACC_FAMILIES",
           "check_policy", "policy_acc_bits", "policy_text"]

#: The policies :func:`policy_acc_bits` knows.
ACC_POLICIES = ("exact-k", "equal")

DEFAULT_ACC_POLICY = "exact-k"

#: Dot-product length the ``exact-k`` accumulators are sized for (products, not steps).
DEFAULT_K = 4096

#: PE families whose accumulator is a two's-complement register sized by ``min_acc_bits``.
INTEGER_ACC_FAMILIES = ("mac", "dp", "bitserial")


def check_policy(policy, k=DEFAULT_K):
    """``(policy, k)`` checked: ``policy`` one of :data:`ACC_POLICIES`, ``k`` a whole number
    of products, 1 .. 2**24."""
    if not isinstance(policy, str) or policy not in ACC_POLICIES:
        raise ParameterError(f"Accumulator policy must be one of "
                             f"{', '.join(map(repr, ACC_POLICIES))}, not {policy!r}")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise ParameterTypeError(f"k must be an integer number of products, not {k!r}")
    if not 1 <= int(k) <= 1 << 24:
        raise ParameterError(f"k must be between 1 and {1 << 24} products, not {k}")
    return policy, int(k)


def policy_acc_bits(kind, policy=DEFAULT_ACC_POLICY, *, k=DEFAULT_K,
                    acc_bits=EQUAL_ACC_BITS):
    """Accumulator width (bits) of ``kind`` (name or :class:`~nybble.hw.kinds.PEKind`) under
    ``policy`` (module docstring); ``k``: products summed without overflow (``exact-k``);
    ``acc_bits``: the common width of ``equal``."""
    policy, k = check_policy(policy, k)
    kind = pe_kind(kind)
    if policy == "equal":
        return convention_acc_bits(kind, acc_bits)
    spec = kind.spec()
    if kind.pe not in INTEGER_ACC_FAMILIES or getattr(spec, "product", "exact") not in (
            "exact", "lmul"):
        # not a two's-complement sum of exact (or L-Mul) products: as the kind defines it
        return spec.acc_bits
    if kind.pe == "bitserial":
        need = max(min_acc_bits(spec.fmt_a, d, k, acc_frac_bits=spec.frac_bits)
                   for d in spec.dtype_formats)
    else:
        need = min_acc_bits(spec.fmt_a, spec.fmt_b, k, product=spec.product,
                            acc_frac_bits=spec.golden_frac)
    # never below what one step needs (k < lanes)
    return max(need, spec.min_acc_bits)


def policy_text(policy, *, k=DEFAULT_K, acc_bits=EQUAL_ACC_BITS):
    """The policy in words, for reports."""
    policy, k = check_policy(policy, k)
    if policy == "equal":
        return "equal: " + ACC_CONVENTION.replace(f"{EQUAL_ACC_BITS} bits",
                                                  f"{acc_bits} bits", 2)
    return (f"exact-k: every accumulator the narrowest that cannot overflow a K = {k} product "
            "dot product (nybble.sw.min_acc_bits on the kind's product grid; bf16 on its "
            "2^-32 window); block-scaled and floating-point accumulators as the kind defines "
            "them")
