"""The number-format registry: every format Nybble knows, as data.

Each format is one :class:`Format` record (bits, encoding, exponent/mantissa split, bias, the
value of every code, the fixed-point grid its values lie on).  The quantizers, the golden GEMM
and the HDL generators all read these records; nothing else restates a value table.

Codes are bit patterns (unsigned integers ``0 .. 2**bits - 1``): the int4 value -1 is code 0xF,
the fp4 e2m1 value -0.5 is code 0x9.

Names follow ml_dtypes where it has the format (``float4_e2m1fn``), with short aliases
(``fp4_e2m1``).  Parameterised formats take their parameter in the name: ``e3m0`` has bias 3,
``e3m0_b4`` bias 4; ``fp4_r4`` (radix 4) has bias 3, ``fp4_r4_b2`` bias 2.  Any 16-entry
codebook is a format too: :func:`codebook`.
"""

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
import numbers
import re

import numpy as np

from .errors import ParameterError, ParameterTypeError

__all__ = [
    "Format", "get_format", "format_names", "codebook", "FormatError",
    "NF4_VALUES", "BITMOD_SPECIAL", "CODEBOOK_FRAC_BITS",
]


# Codebooks whose values need more fraction bits than this (NF4's float32 quantiles) are held
# in hardware tables on this fixed-point grid, rounded to nearest.
CODEBOOK_FRAC_BITS = 14


class FormatError(ParameterError):
    """An unknown or malformed format name or parameter."""


@dataclass(frozen=True, eq=False)
class Format:
    """One number format.

    Attributes
    ----------
    name : canonical name (ml_dtypes spelling where one exists).
    bits : width of a code in bits.
    kind : ``"int"`` (two's complement or unsigned integers, possibly with an implicit binary
        point), ``"float"`` (sign / exponent / mantissa, IEEE-like), ``"pow2"`` (sign and
        exponent only: every nonzero value is +-radix**k), ``"codebook"`` (arbitrary table)
        or ``"scale"`` (unsigned exponent-only scale format such as E8M0).
    signed : whether negative values exist.
    exp_bits, man_bits, bias : the float/pow2 split (0 for ints and codebooks).
    radix : 2 for floats and ``e3m0``; 4 for ``fp4_r4``.
    values : float64 array, ``values[code]`` is the code's value (NaN for NaN codes, +-inf for
        infinity codes). Present for every format (16-bit tables have 65536 entries).
    frac_bits : every finite value is an integer multiple of ``2**-frac_bits`` (None for
        codebooks whose values are not dyadic, e.g. NF4: hardware stores them rounded).
    description : one line for ``nybble formats``.
    """

    name: str
    bits: int
    kind: str
    signed: bool
    values: np.ndarray = field(repr=False)
    exp_bits: int = 0
    man_bits: int = 0
    bias: int = 0
    radix: int = 2
    frac_bits: int | None = 0
    aliases: tuple = ()
    description: str = ""

    # -- derived properties -------------------------------------------------------------------
    @property
    def n_codes(self):
        return 1 << self.bits

    @property
    def finite(self):
        """Boolean mask over codes: True where the code is a finite number."""
        return np.isfinite(self.values)

    @property
    def nan_codes(self):
        return tuple(int(c) for c in np.flatnonzero(np.isnan(self.values)))

    @property
    def inf_codes(self):
        return tuple(int(c) for c in np.flatnonzero(np.isinf(self.values)))

    @property
    def max_value(self):
        """Largest finite value (saturation bound for positive inputs)."""
        return float(np.max(self.values[self.finite]))

    @property
    def min_value(self):
        """Most negative finite value (saturation bound for negative inputs)."""
        return float(np.min(self.values[self.finite]))

    @property
    def max_abs(self):
        return max(abs(self.max_value), abs(self.min_value))

    @property
    def min_positive(self):
        """Smallest positive value."""
        v = self.values[self.finite]
        return float(np.min(v[v > 0]))

    @property
    def negative_zero_code(self):
        """The code of -0 for sign-magnitude formats, else None."""
        if self.kind in ("float", "pow2") and self.signed:
            return 1 << (self.bits - 1)
        return None

    def fixed_values(self, frac_bits=None):
        """Integer value of every finite code on the grid ``2**-frac_bits``.

        Returns ``(ints, frac_bits)``: ``ints`` is an int64 array (0 for non-finite codes;
        Python-int object array if a value does not fit in 62 bits).  For dyadic formats the
        default ``frac_bits`` is the format's own and the conversion is exact; codebooks that
        are not dyadic need ``frac_bits`` and are rounded to nearest, ties away from zero.
        """
        if frac_bits is None:
            if self.frac_bits is None:
                raise FormatError(
                    f"format {self.name!r} has non-dyadic values: pass frac_bits to choose "
                    "the fixed-point grid its table is stored on")
            frac_bits = self.frac_bits
        return _fixed_values(self, int(frac_bits)), int(frac_bits)

    def spec(self):
        """A JSON-ready description: every property and, for <= 256 codes, every value."""
        d = {
            "name": self.name, "aliases": list(self.aliases), "bits": self.bits,
            "kind": self.kind, "signed": self.signed, "exp_bits": self.exp_bits,
            "man_bits": self.man_bits, "bias": self.bias, "radix": self.radix,
            "frac_bits": self.frac_bits, "max": self.max_value, "min": self.min_value,
            "min_positive": self.min_positive, "nan_codes": list(self.nan_codes),
            "inf_codes": list(self.inf_codes), "saturating": True,
            "description": self.description,
        }
        if self.n_codes <= 256:
            d["values"] = [None if np.isnan(v) else (str(v) if np.isinf(v) else float(v))
                           for v in self.values]
        return d

    def __repr__(self):
        return f"Format({self.name!r}, bits={self.bits}, kind={self.kind!r})"


@lru_cache(maxsize=None)
def _fixed_values_cached(fmt, frac_bits):
    out = []
    big = False
    for v in fmt.values:
        if not np.isfinite(v):
            out.append(0)
            continue
        q = Fraction(float(v)) * (1 << frac_bits) if frac_bits >= 0 else Fraction(float(v)) / (1 << -frac_bits)
        if q.denominator != 1:
            # round half away from zero (only reached for non-dyadic codebooks)
            n = abs(q.numerator) * 2 + q.denominator
            i = n // (2 * q.denominator)
            q = i if q >= 0 else -i
        q = int(q)
        big |= abs(q) >= (1 << 62)
        out.append(q)
    return np.array(out, dtype=object if big else np.int64)


def _fixed_values(fmt, frac_bits):
    return _fixed_values_cached(fmt, frac_bits)


# -- value tables ------------------------------------------------------------------------------

def _int_values(bits, signed, frac_bits=0):
    codes = np.arange(1 << bits, dtype=np.int64)
    if signed:
        codes = np.where(codes >= (1 << (bits - 1)), codes - (1 << bits), codes)
    return codes.astype(np.float64) / (1 << frac_bits)


def _float_values(exp_bits, man_bits, bias, *, inf_nan="fn"):
    """IEEE-like sign/exponent/mantissa table.

    inf_nan: ``"ieee"`` (max exponent = Inf/NaN), ``"fn"`` (finite; only the all-ones code is
    NaN, as float8_e4m3fn), ``"none"`` (no special values at all, as float4_e2m1fn).
    """
    bits = 1 + exp_bits + man_bits
    codes = np.arange(1 << bits)
    s = codes >> (bits - 1)
    e = (codes >> man_bits) & ((1 << exp_bits) - 1)
    m = codes & ((1 << man_bits) - 1)
    sub = e == 0
    mag = np.where(sub, m / (1 << man_bits) * 2.0 ** (1 - bias),
                   (1 + m / (1 << man_bits)) * 2.0 ** (e.astype(np.float64) - bias))
    v = np.where(s == 1, -mag, mag)
    emax = (1 << exp_bits) - 1
    if inf_nan == "ieee":
        special = e == emax
        v = np.where(special & (m == 0), np.where(s == 1, -np.inf, np.inf), v)
        v = np.where(special & (m != 0), np.nan, v)
    elif inf_nan == "fn":
        v = np.where((e == emax) & (m == (1 << man_bits) - 1), np.nan, v)
    return v.astype(np.float64)


def _pow2_values(exp_bits, bias, radix=2):
    """Sign + exponent, no mantissa: exponent code 0 is zero, code e is radix**(e - bias)."""
    bits = 1 + exp_bits
    codes = np.arange(1 << bits)
    s = codes >> exp_bits
    e = codes & ((1 << exp_bits) - 1)
    mag = np.where(e == 0, 0.0, float(radix) ** (e.astype(np.float64) - bias))
    return np.where(s == 1, -mag, mag)


# NF4 (QLoRA, Dettmers et al. 2023): the 16 normal-quantile levels, exactly as bitsandbytes
# stores them (float32 literals of functional.py's get_4bit_type("nf4")).
NF4_VALUES = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
], dtype=np.float64)

# BitMoD (Chen et al., HPCA 2025): the fp4 e2m1 grid times 2 = {0, +-1, +-2, +-3, +-4, +-6,
# +-8, +-12}; the redundant -0 code (0x8) carries one special value per data type:
# extra resolution (ER, between 8 and 12) or extra asymmetric range (EA, beyond 12).
BITMOD_SPECIAL = {"bitmod_er_pos": 10.0, "bitmod_er_neg": -10.0,
                  "bitmod_ea_pos": 16.0, "bitmod_ea_neg": -16.0}


def _bitmod_values(special):
    v = _float_values(2, 1, 1, inf_nan="none") * 2.0
    v[8] = special
    return v


def _dyadic_frac_bits(values):
    """Smallest f >= 0 with every finite value an integer multiple of 2**-f, or None.

    float64 values are always dyadic: f is the largest -exponent of a lowest set bit."""
    v = values[np.isfinite(values) & (values != 0)]
    if v.size == 0:
        return 0
    mant, ex = np.frexp(v)
    mi = np.abs(np.ldexp(mant, 53).astype(np.int64))
    tz = np.frexp((mi & -mi).astype(np.float64))[1] - 1  # trailing zero bits of the mantissa
    f = max(0, int(np.max(53 - ex - tz)))
    return f if f <= 400 else None


def _make(name, bits, kind, signed, values, *, aliases=(), exp_bits=0, man_bits=0, bias=0,
          radix=2, description=""):
    values = np.asarray(values, dtype=np.float64)
    values.setflags(write=False)
    frac_bits = _dyadic_frac_bits(values)
    if kind == "codebook" and frac_bits is not None and frac_bits > CODEBOOK_FRAC_BITS:
        frac_bits = None
    return Format(name=name, bits=bits, kind=kind, signed=signed, values=values,
                  exp_bits=exp_bits, man_bits=man_bits, bias=bias, radix=radix,
                  frac_bits=frac_bits, aliases=tuple(aliases),
                  description=description)


def _float(name, e, m, bias, inf_nan, aliases, description):
    return _make(name, 1 + e + m, "float", True, _float_values(e, m, bias, inf_nan=inf_nan),
                 aliases=aliases, exp_bits=e, man_bits=m, bias=bias, description=description)


@lru_cache(maxsize=None)
def _e3m0(bias):
    return _make("e3m0" if bias == 3 else f"e3m0_b{bias}", 4, "pow2", True,
                 _pow2_values(3, bias), aliases=("float4_e3m0",) if bias == 3 else (),
                 exp_bits=3, bias=bias,
                 description=f"power of two, s|eee, exponent code 0 = zero, bias {bias}: "
                             f"magnitudes 0, 2^{1 - bias} .. 2^{7 - bias}")


@lru_cache(maxsize=None)
def _fp4_r4(bias):
    return _make("fp4_r4" if bias == 3 else f"fp4_r4_b{bias}", 4, "pow2", True,
                 _pow2_values(3, bias, radix=4), aliases=(), exp_bits=3, bias=bias, radix=4,
                 description=f"radix-4 fp4 [1,3,0]: s|eee, magnitudes 0 and 4^(e-{bias})")


def _build_static():
    f = {}

    def add(fmt):
        f[fmt.name] = fmt

    add(_make("int4", 4, "int", True, _int_values(4, True), description="two's complement -8..7"))
    add(_make("uint4", 4, "int", False, _int_values(4, False), description="unsigned 0..15"))
    add(_make("int8", 8, "int", True, _int_values(8, True), description="two's complement -128..127"))
    add(_make("int16", 16, "int", True, _int_values(16, True), description="two's complement"))
    add(_make("int8_mx", 8, "int", True, _int_values(8, True, 6), aliases=("mxint8_element",),
              description="MXINT8 element: two's complement with 6 fraction bits, -2 .. 1.984375"))
    add(_float("float4_e2m1fn", 2, 1, 1, "none", ("fp4_e2m1", "e2m1"),
               "OCP fp4: s|ee|m, bias 1, no Inf/NaN, max 6"))
    add(_float("float6_e2m3fn", 2, 3, 1, "none", ("fp6_e2m3", "e2m3"),
               "OCP fp6: s|ee|mmm, bias 1, no Inf/NaN, max 7.5"))
    add(_float("float6_e3m2fn", 3, 2, 3, "none", ("fp6_e3m2", "e3m2"),
               "OCP fp6: s|eee|mm, bias 3, no Inf/NaN, max 28"))
    add(_float("float8_e4m3fn", 4, 3, 7, "fn", ("fp8_e4m3", "e4m3"),
               "OCP fp8: bias 7, no Inf, NaN = S.1111.111, max 448"))
    add(_float("float8_e5m2", 5, 2, 15, "ieee", ("fp8_e5m2", "e5m2"),
               "OCP fp8: bias 15, IEEE Inf/NaN, max 57344"))
    add(_float("float16", 5, 10, 15, "ieee", ("fp16", "half"), "IEEE binary16"))
    add(_float("bfloat16", 8, 7, 127, "ieee", ("bf16",), "bfloat16: float32 with 7 mantissa bits"))
    e8m0 = 2.0 ** (np.arange(256, dtype=np.float64) - 127)
    e8m0[255] = np.nan
    add(_make("float8_e8m0fnu", 8, "scale", False, e8m0, aliases=("e8m0",), exp_bits=8,
              bias=127, description="OCP MX scale: 2^(code-127), 0xFF = NaN, no zero"))
    add(_make("nf4", 4, "codebook", True, NF4_VALUES,
              description="QLoRA NormalFloat4: normal quantiles scaled to [-1, 1]"))
    for n, special in BITMOD_SPECIAL.items():
        add(_make(n, 4, "codebook", True, _bitmod_values(special),
                  description=f"BitMoD: 2 x fp4 e2m1 grid, code 0x8 = {special:+g}"))
    add(_e3m0(3))
    add(_fp4_r4(3))
    return f


_STATIC = _build_static()
_ALIASES = {a: fmt.name for fmt in _STATIC.values() for a in fmt.aliases}
_PARAM_RE = re.compile(r"^(e3m0|fp4_r4)_b(-?\d+)$")


def format_names():
    """Canonical names of the built-in formats (parameterised ones at their default)."""
    return sorted(_STATIC)


def get_format(fmt):
    """Look up a format by name or alias; a :class:`Format` is returned as is.

    Raises :class:`FormatError` (a ``ValueError``) naming the valid formats.
    """
    if isinstance(fmt, Format):
        return fmt
    if not isinstance(fmt, str):
        raise ParameterTypeError(f"fmt must be a format name or a Format, not {fmt!r}")
    name = _ALIASES.get(fmt, fmt)
    if name in _STATIC:
        return _STATIC[name]
    m = _PARAM_RE.match(name)
    if m:
        bias = int(m.group(2))
        if not -16 <= bias <= 16:
            raise FormatError(f"bias of {m.group(1)} must be in -16..16, not {bias}")
        return _e3m0(bias) if m.group(1) == "e3m0" else _fp4_r4(bias)
    valid = sorted(set(_STATIC) | set(_ALIASES))
    raise FormatError(
        f"unknown format {fmt!r}; valid formats: {', '.join(valid)} "
        "(and e3m0_b<bias>, fp4_r4_b<bias>, or a user codebook from nybble.sw.codebook)")


def codebook(values, name="codebook"):
    """A user format: a 16-entry (4-bit) table of finite values, code i -> values[i].

    Values are stored as float64; hardware stores them on a fixed-point grid
    (:meth:`Format.fixed_values`).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size not in (2, 4, 8, 16, 256):
        raise FormatError(
            f"codebook values must be a 1-D table of 16 values (or 2, 4, 8, 256), "
            f"not shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise FormatError("codebook values must be finite")
    if not isinstance(name, str) or not name:
        raise ParameterTypeError(f"codebook name must be a non-empty string, not {name!r}")
    bits = int(v.size).bit_length() - 1
    return _make(name, bits, "codebook", bool(np.any(v < 0)), v,
                 description=f"user codebook of {v.size} values")


def check_integral(name, value, lo=None, hi=None):
    """Validate an integer parameter (numpy integers accepted); return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if lo is not None and value < lo or hi is not None and value > hi:
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ParameterError(f"{name} must be {rng}, not {value}")
    return value
