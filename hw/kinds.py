"""The registry of PE kinds: every PE of the library by name, as data.

A :class:`PEKind` names a PE family (``"mac"``, ``"dp"``, ``"bitserial"``, ``"block"``), its
formats and its options.  :meth:`PEKind.spec` gives the pure spec (:mod:`.spec`: widths,
lanes, latency, golden keyword arguments -- no Amaranth), :meth:`PEKind.build` the component.
``<mac kind>_dp<k>`` names ``k`` lanes of any MAC kind (:func:`pe_kind`).
"""

from dataclasses import dataclass, field
import re

from nybble.sw.formats import check_integral
from .block_pe import BlockScaledPE
from .ieee_fp import IeeeDotProductPE
from .bitserial import LockstepBitSerialPE
from .pe import BitSerialPE, DotProductPE, MacPE
from .spec import BITSERIAL_DTYPES, BitSerialSpec, BlockScaledSpec, DotProductSpec, IeeeFpSpec
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["PEKind", "PE_KINDS", "FAMILIES", "pe_kind", "dot_product_kind", "make_pe",
           "pe_spec"]

#: family -> (spec class, component class)
FAMILIES = {
    "mac": (DotProductSpec, MacPE),
    "dp": (DotProductSpec, DotProductPE),
    "bitserial": (BitSerialSpec, BitSerialPE),
    "block": (BlockScaledSpec, BlockScaledPE),
    "ieee": (IeeeFpSpec, IeeeDotProductPE),
}


@dataclass(frozen=True)
class PEKind:
    """One entry of :data:`PE_KINDS`: which PE family, which formats, which options."""
    name: str
    pe: str                      # "mac", "dp", "bitserial", "block" (block-scaled) or
                                 # "ieee" (IEEE-style FP, FP32 accumulator; any lanes)
    formats: tuple               # (fmt_a, fmt_b); bitserial: (fmt_a, dtypes...)
    options: dict = field(default_factory=dict)
    lanes: int = 1
    description: str = ""

    def _args(self):
        if self.pe == "bitserial":
            return (self.formats[0], self.formats[1:])
        if self.pe == "mac":
            return self.formats
        return (*self.formats, self.lanes)

    def spec(self, **overrides):
        """The pure spec of this kind with ``options`` updated by ``overrides``."""
        spec_cls, _ = FAMILIES[self.pe]
        if self.pe == "mac":
            return spec_cls.make(*self._args(), 1, **{**self.options, **overrides})
        return spec_cls.make(*self._args(), **{**self.options, **overrides})

    def build(self, *, src_loc_at=0, **overrides):
        """The PE component of this kind with ``options`` updated by ``overrides``
        (``src_loc_at``: as Amaranth's, whose caller is blamed for an unused component)."""
        _, pe_cls = FAMILIES[self.pe]
        if self.pe == "bitserial" and {**self.options, **overrides}.get("lockstep"):
            # an array's bit-serial PE takes weights decoded once per column
            return LockstepBitSerialPE(self.spec(**overrides), src_loc_at=1 + src_loc_at)
        return pe_cls(*self._args(), src_loc_at=1 + src_loc_at,
                      **{**self.options, **overrides})


def _kinds():
    k = {}

    def add(name, fa, fb, description, **options):
        k[name] = PEKind(name, "mac", (fa, fb), options, 1, description)

    add("int4", "int4", "int4", "int4 x int4 MAC (signed multiplier)")
    add("uint4", "uint4", "uint4", "uint4 x uint4 MAC (unsigned multiplier)")
    add("fp4_e2m1", "fp4_e2m1", "fp4_e2m1",
        "fp4 e2m1 x e2m1: 2x2 significand multiply, exact in quarter units")
    add("e3m0", "e3m0", "e3m0", "e3m0 x e3m0: sign XOR, exponent add, one-hot shift")
    add("int4_e3m0", "int4", "e3m0", "int4 activation x e3m0 weight: barrel shift")
    add("int8_e3m0", "int8", "e3m0", "int8 activation x e3m0 weight: barrel shift")
    # the bit-parallel rivals of the bit-serial PE (int8 activations, one 4-bit weight type)
    add("int8_int4", "int8", "int4", "int8 activation x int4 weight: 8x4 multiplier")
    add("int8_fp4_e2m1", "int8", "fp4_e2m1",
        "int8 activation x fp4 e2m1 weight: 8x2 significand multiply, shift")
    add("lut_nf4", "int8", "nf4", "int8 activation x NF4 codebook (16 x 16-bit table, 2^-14)")
    add("lut_nf4_shared", "int8", "nf4",
        "lut_nf4 with the table held once per array, broadcast to every PE's read mux",
        lut_table="array")
    k["bitserial"] = PEKind("bitserial", "bitserial", ("int8",) + BITSERIAL_DTYPES, {}, 1,
                            "bit-serial int8 x {int4, fp4, e3m0, BitMoD} weights")
    add("int8", "int8", "int8", "int8 x int8 baseline")
    add("int16", "int16", "int16", "int16 x int16 baseline")
    add("fp8_e4m3", "fp8_e4m3", "fp8_e4m3", "fp8 e4m3 baseline, exact (Kulisch) accumulator")
    add("bf16", "bf16", "bf16",
        "bf16 baseline, 64-bit window with 32 fraction bits (products floored)",
        acc_frac_bits=32, acc_bits=64)
    add("fp16", "fp16", "fp16", "fp16 baseline, exact (Kulisch) accumulator")
    add("lmul_fp8_e4m3", "fp8_e4m3", "fp8_e4m3", "fp8 e4m3 L-Mul (adders only)",
        product="lmul")
    add("lmul_fp4_e2m1", "fp4_e2m1", "fp4_e2m1", "fp4 e2m1 L-Mul (adders only)",
        product="lmul")
    # IEEE-style FP baselines (.ieee_fp): normalise, round (RNE), FP32 accumulator
    for fmt, short in (("fp8_e4m3", "fp8 e4m3"), ("fp8_e5m2", "fp8 e5m2"), ("fp16", "fp16"),
                       ("bf16", "bf16")):
        k[f"{fmt}_ieee"] = PEKind(f"{fmt}_ieee", "ieee", (fmt, fmt), {}, 1,
                                  f"{short} IEEE-style MAC: product rounded to FP32 (RNE), "
                                  "FP32 accumulator")
    for fmt in ("fp8_e4m3", "fp8_e5m2", "fp16", "bf16"):
        kk = dot_product_kind(f"{fmt}_ieee", 4, _table=k)
        k[kk.name] = kk
    for base, lanes in (("int4", 2), ("int4", 4), ("int4", 8), ("int4", 16),
                        ("fp4_e2m1", 4), ("e3m0", 4), ("int8_e3m0", 4), ("lut_nf4", 4),
                        ("lut_nf4_shared", 4), ("int8", 4)):
        kk = dot_product_kind(base, lanes, _table=k)
        k[kk.name] = kk
    # block-scaled kinds (.block_pe): 8 lanes each; the scale format and the block size are
    # options (an ArrayConfig may change the block size)
    for name, fmt, scale, block, what in (
            ("mxfp4", "fp4_e2m1", "e8m0", 32, "OCP MXFP4: fp4 e2m1, E8M0 scale per 32"),
            ("mxint8", "int8_mx", "e8m0", 32, "OCP MXINT8: int8 (2^-6), E8M0 scale per 32"),
            ("nvfp4", "fp4_e2m1", "e4m3", 16, "NVFP4: fp4 e2m1, E4M3 scale per 16"),
            ("q4_0", "int4", "fp16", 32, "ggml Q4_0: int4, fp16 scale per 32")):
        k[name] = PEKind(name, "block", (fmt, fmt), dict(scale=scale, block_size=block), 8,
                         f"{what}; 8 lanes, windowed cross-block accumulator")
    # the same with the block scaler time-shared over a block's cycles (scales with a
    # significand: an E8M0 scaler is a shift alone)
    for name in ("nvfp4", "q4_0"):
        base = k[name]
        k[f"{name}_serial"] = PEKind(f"{name}_serial", "block", base.formats,
                                     {**base.options, "scaler": "serial"}, base.lanes,
                                     base.description + "; scaler time-shared over a block")
    return k


def dot_product_kind(base, lanes, *, _table=None):
    """The :class:`PEKind` of ``lanes`` lanes of the MAC kind ``base`` (``"int4_dp4"``)."""
    table = PE_KINDS if _table is None else _table
    lanes = check_integral("Lane count", lanes, 2, 256)
    def is_mac(v):
        return v.pe == "mac" or v.pe == "ieee" and v.lanes == 1

    if base not in table or not is_mac(table[base]):
        raise ParameterError(f"Dot-product base kind must be a MAC kind ("
                         f"{', '.join(n for n, v in table.items() if is_mac(v))}), "
                         f"not {base!r}")
    b = table[base]
    if b.pe == "ieee":
        return PEKind(f"{base}_dp{lanes}", "ieee", b.formats, dict(b.options), lanes,
                      f"{lanes} lanes of {base}: exact sum, one FP32 rounding, FP32 accumulator")
    return PEKind(f"{base}_dp{lanes}", "dp", b.formats, dict(b.options), lanes,
                  f"{lanes} lanes of {base} into an adder tree")


#: ``name -> PEKind``: every PE of the library.  ``<mac kind>_dp<k>`` works for any k too.
PE_KINDS = _kinds()

_DP_RE = re.compile(r"^(.+)_dp(\d+)$")


def pe_kind(name):
    """The :class:`PEKind` called ``name`` (``PE_KINDS`` or ``<mac kind>_dp<k>``)."""
    if isinstance(name, PEKind):
        return name
    if not isinstance(name, str):
        raise ParameterTypeError(f"PE kind must be a string, not {name!r}")
    if name in PE_KINDS:
        return PE_KINDS[name]
    mt = _DP_RE.match(name)
    if mt and mt.group(1) in PE_KINDS:
        return dot_product_kind(mt.group(1), int(mt.group(2)))
    raise ParameterError(f"PE kind must be one of {', '.join(PE_KINDS)} (or <kind>_dp<k>), "
                     f"not {name!r}")


def make_pe(kind, **overrides):
    """Build the PE of ``kind`` (a name from :data:`PE_KINDS`), options overridden."""
    return pe_kind(kind).build(src_loc_at=1, **overrides)


def pe_spec(kind, **overrides):
    """The pure spec of ``kind`` (a name or :class:`PEKind`), options overridden."""
    return pe_kind(kind).spec(**overrides)
