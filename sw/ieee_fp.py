"""IEEE-style floating-point MAC / dot-product arithmetic: the golden model of the FP32-accumulating
PEs (``nybble.hw.ieee_fp``), bit for bit.

Operands are codes of the float formats of :mod:`.formats` (fp8 e4m3, fp8 e5m2, fp16, bf16; any
``"float"`` format works); the accumulator is an IEEE binary32 (FP32) register, handled here as
its 32-bit pattern.  One *step* of a PE with ``k`` lanes (``k = 1``: a MAC) takes ``k`` operand
pairs and does::

    g   = fp32_rne( a_0*b_0 + a_1*b_1 + ... + a_{k-1}*b_{k-1} )   # exact sum, one rounding
    acc = g                    if first
    acc = fp32_rne(acc + g)    otherwise                          # an IEEE FP32 add

Rounding points: products are exact and the ``k`` products of a step are summed exactly, then
rounded once into FP32 (round to nearest, ties to even); that FP32 value is added to the
accumulator in one IEEE FP32 addition (RNE).  This is the structure of tensor-core style dot
products (exact products of a k-lane group, one normalisation and rounding, FP32 accumulation;
Fasi et al., "Numerical behavior of NVIDIA tensor cores", PeerJ CS 2021, found no intermediate
rounding of the products and one alignment of the group) except that every rounding here is
RNE (NVIDIA's units truncate).  For ``k = 1`` and fp8 / fp16 operands the product is exact in
FP32, so a MAC step is the fused ``acc = fp32_rne(acc + a*b)``; for bf16 the product's range
exceeds FP32's, so ``fp32_rne(a*b)`` can overflow to Inf or round in FP32's subnormal range.
The accumulation order is the step order; within a step the sum is exact, so lane order does
not matter.

Subnormals are kept everywhere (no flush to zero): subnormal operands are decoded exactly,
the group rounding and the FP32 addition produce FP32 subnormals (gradual underflow).

Zeros: a step whose exact sum is 0 gives ``g = +0`` (the exact adder has no negative zero); a
nonzero sum that rounds to zero keeps its sign (only bf16 products get that small).  The FP32
addition follows IEEE 754 RNE: ``x + (-x) = +0``, ``(-0) + (-0) = -0``.

Special values: a product is NaN if an operand is NaN (e4m3's S.1111.111, the IEEE NaNs of
e5m2 / fp16 / bf16) or it is ``0 x Inf``; ``Inf x finite nonzero`` is a signed Inf.  A step with
a NaN product, or with both a +Inf and a -Inf product, gives NaN; otherwise a step with an
Inf product gives that Inf.  Overflow of the rounding (a magnitude at or above ``2**128`` after
RNE) gives a signed Inf; ``Inf + (-Inf)`` is NaN.  Every NaN result is the canonical quiet NaN
``0x7FC00000`` (sign 0, no payload propagation).  Once the accumulator is Inf or NaN it stays
non-finite until the next ``first``, which is what the PEs' ``overflow`` output reports.

The golden model cross-checks itself: FP32 additions are numpy float32 additions (IEEE, RNE,
subnormals kept); :func:`round_fp32` is exact integer arithmetic (tests hold it to numpy's
float64 -> float32 casts where those are exact).
"""

import numpy as np

from .formats import get_format
from .golden import element_ints
from .errors import ParameterError, ParameterTypeError

__all__ = ["FP32_NAN", "FP32_INF", "round_fp32", "fp32_add", "step_sums", "ieee_steps",
           "ieee_dot", "fp32_bits_to_float", "check_float_format"]

#: The canonical NaN every NaN result is (quiet, sign 0).
FP32_NAN = 0x7FC00000
#: +Inf (``| 1 << 31`` for -Inf).
FP32_INF = 0x7F800000

_EMIN_SUB = -149   # weight of FP32's least significant subnormal bit


def check_float_format(name, fmt):
    """``fmt`` as a Format record of kind ``"float"``; otherwise a ParameterError naming
    ``name``."""
    f = get_format(fmt)
    if f.kind != "float":
        raise ParameterError(f"{name} of an IEEE-style FP PE must be a float format "
                             f"(fp8_e4m3, fp8_e5m2, fp16, bf16, ...), not {f.name} "
                             f"(kind {f.kind!r})")
    return f


def round_fp32(neg, mag, exp):
    """The FP32 bit pattern of ``(-1)**neg * mag * 2**exp`` rounded to nearest, ties to even.

    ``mag``, ``exp``: Python integers (``mag >= 0``); subnormal results are kept; a result
    whose magnitude rounds to ``2**128`` or more is a signed Inf; ``mag == 0`` gives +0, a
    nonzero value that rounds to zero keeps its sign.
    """
    mag, exp = int(mag), int(exp)
    if mag < 0:
        raise ParameterError(f"mag must be >= 0, not {mag}")
    if mag == 0:
        return 0
    sign = (1 << 31) if neg else 0
    msb = mag.bit_length() - 1 + exp           # exponent of the leading bit
    lsb = max(msb - 23, _EMIN_SUB)             # weight of the result's last kept bit
    cut = lsb - exp                            # bits of mag below the kept ones
    if cut <= 0:
        q = mag << -cut
    else:
        q = mag >> cut
        rest = mag & ((1 << cut) - 1)
        half = 1 << (cut - 1)
        if rest > half or (rest == half and q & 1):
            q += 1
    # q * 2**lsb, q <= 2**24: normal when q has bit 23 (or carried to 2**24)
    if q >= 1 << 23:
        field = ((lsb + 150) << 23) + (q - (1 << 23))   # a carry to 2**24 bumps the exponent
    else:
        field = q                                        # subnormal (lsb == -149) or zero
    if field >= FP32_INF:
        return sign | FP32_INF
    return sign | field


def fp32_bits_to_float(bits):
    """FP32 bit patterns (any integer array, signed or unsigned views) -> float64 values."""
    b = np.asarray(bits, dtype=np.int64) & 0xFFFFFFFF
    return b.astype(np.uint32).view(np.float32).astype(np.float64)


def fp32_add(x_bits, y_bits):
    """IEEE FP32 ``x + y`` (RNE, subnormals kept) on bit patterns (uint32 arrays, broadcast);
    NaN results are :data:`FP32_NAN`."""
    x = np.asarray(x_bits, dtype=np.uint32).view(np.float32)
    y = np.asarray(y_bits, dtype=np.uint32).view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.asarray(x + y, dtype=np.float32)
    out = s.view(np.uint32).copy()
    out[np.isnan(s)] = FP32_NAN
    return out


def _codes(name, codes, fmt):
    c = np.asarray(codes)
    if not np.issubdtype(c.dtype, np.integer):
        raise ParameterTypeError(f"{name} must be an integer array of {fmt.name} codes, "
                                 f"not dtype {c.dtype}")
    if c.size and (int(c.min()) < 0 or int(c.max()) >= fmt.n_codes):
        raise ParameterError(f"{name} codes of {fmt.name} must be in 0..{fmt.n_codes - 1}")
    return c.astype(np.int64)


def step_sums(a_codes, b_codes, fmt_a, fmt_b):
    """``g`` of every step (module docstring): ``a_codes``, ``b_codes`` are ``(n, k)`` codes;
    returns ``n`` FP32 bit patterns (uint32)."""
    fa = check_float_format("fmt_a", fmt_a)
    fb = check_float_format("fmt_b", fmt_b)
    a = _codes("a_codes", a_codes, fa)
    b = _codes("b_codes", b_codes, fb)
    if a.ndim != 2 or a.shape != b.shape:
        raise ParameterError(f"a_codes and b_codes must both be (steps, lanes), not "
                             f"{a.shape} and {b.shape}")
    ia, f_a = element_ints(fa)
    ib, f_b = element_ints(fb)
    va, vb = fa.values[a], fb.values[b]
    with np.errstate(invalid="ignore"):
        pv = va * vb                      # only its NaN / Inf / sign pattern is used
    nan = np.isnan(pv).any(axis=1) | (np.isposinf(pv).any(axis=1) & np.isneginf(pv).any(axis=1))
    inf = np.isinf(pv).any(axis=1)
    ia_py = np.asarray(ia, dtype=object)
    ib_py = np.asarray(ib, dtype=object)
    exp = -(f_a + f_b)
    out = np.zeros(len(a), dtype=np.uint32)
    for i in range(len(a)):
        if nan[i]:
            out[i] = FP32_NAN
        elif inf[i]:
            out[i] = FP32_INF | ((1 << 31) if np.isneginf(pv[i]).any() else 0)
        else:
            s = int(sum(ia_py[a[i]] * ib_py[b[i]]))
            out[i] = round_fp32(s < 0, abs(s), exp)
    return out


def ieee_steps(a_codes, b_codes, first, fmt_a, fmt_b):
    """The accumulator after each step: ``a_codes``, ``b_codes`` ``(n, k)`` codes, ``first``
    ``(n,)`` flags (``first[0]`` must be set).  Returns ``(acc, non_finite)``: FP32 bit patterns
    (uint32) and whether ``acc`` is Inf or NaN (the PE's ``overflow``)."""
    first = np.asarray(first, dtype=bool)
    g = step_sums(a_codes, b_codes, fmt_a, fmt_b)
    if len(first) != len(g):
        raise ParameterError(f"first must have one flag per step ({len(g)}), not {len(first)}")
    if len(g) and not first[0]:
        raise ParameterError("the first step must have first=1 (a PE's power-on accumulator is "
                             "not part of the contract)")
    acc = np.zeros(len(g), dtype=np.uint32)
    cur = np.uint32(0)
    for i in range(len(g)):
        cur = g[i] if first[i] else fp32_add(cur, g[i])[()]
        acc[i] = cur
    return acc, (acc & FP32_INF) == FP32_INF


def ieee_dot(a_codes, b_codes, fmt_a, fmt_b, lanes=1):
    """The accumulator after the dot products ``a_codes @ b_codes`` (``(M, K)`` and ``(K, N)``
    codes) on a PE with ``lanes`` lanes: K is taken ``lanes`` at a time, in order; returns
    ``(M, N)`` FP32 bit patterns (uint32).  ``K`` must be a positive multiple of ``lanes``."""
    a = np.asarray(a_codes)
    b = np.asarray(b_codes)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ParameterError(f"a_codes (M, K) and b_codes (K, N) must agree on K, not "
                             f"{a.shape} and {b.shape}")
    m, k = a.shape
    n = b.shape[1]
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or lanes < 1:
        raise ParameterError(f"lanes must be a positive integer, not {lanes!r}")
    if k == 0 or k % lanes:
        raise ParameterError(f"K must be a positive multiple of lanes={lanes}, not {k}")
    steps = k // lanes
    # every (row, column) job as `steps` steps of `lanes` pairs, jobs back to back
    aa = np.repeat(a.reshape(m, 1, steps, lanes), n, axis=1).reshape(-1, lanes)
    bb = np.repeat(b.T.reshape(1, n, steps, lanes), m, axis=0).reshape(-1, lanes)
    first = np.tile(np.arange(steps) == 0, m * n)
    acc, _ = ieee_steps(aa, bb, first, fmt_a, fmt_b)
    return acc.reshape(m, n, steps)[:, :, -1]

