"""The pure PE spec: everything the software side knows about a PE, without Amaranth.

A spec is derived once from a PE's parameters (a kind of :mod:`.kinds` plus options, or an
:class:`~.config.ArrayConfig`) and is what simulators, schedules, the golden check, the cost
model and the PE components themselves read: operand and accumulator widths, fraction bits,
lanes, latency, cycles per MAC, decode tables and the keyword arguments of the golden model.
Building one elaborates nothing and constructs no component (Gemmini's
``GemminiArrayConfig`` derives its parameters once in the same way).

=====================  ==================================  ==================================
spec                   PE (:mod:`.pe`, :mod:`.block_pe`)   golden model
=====================  ==================================  ==================================
:class:`DotProductSpec`  ``MacPE``, ``DotProductPE``        :func:`nybble.sw.gemm_codes`
:class:`BitSerialSpec`   ``BitSerialPE``                    ``gemm_codes``, one format per k
:class:`BlockScaledSpec` ``BlockScaledPE``                  :func:`nybble.sw.gemm_block_codes`
:class:`IeeeFpSpec`      ``IeeeDotProductPE`` (FP32 acc)    :func:`nybble.sw.ieee_fp.ieee_dot`
=====================  ==================================  ==================================

Every spec has ``family`` (``"mac"``, ``"dp"``, ``"bitserial"``, ``"block"``), ``fmt_a`` /
``fmt_b`` (Format records), ``a_bits`` / ``b_bits`` (operand port widths in bits),
``acc_bits``, ``min_acc_bits``, ``frac_bits`` (``acc`` is an integer on the grid
``2**-frac_bits``), ``overflow_mode``, ``lanes``, ``latency`` (clock edges from a ``valid``
cycle to ``acc`` holding its result), ``cycles_per_mac``, ``macs_per_cycle``, ``formats`` and
:meth:`golden_kwargs` / :meth:`model`.  Construction errors name the parameter.
"""

from dataclasses import dataclass

import numpy as np

from nybble.sw.formats import Format, check_integral, get_format
from nybble.sw.golden import (element_ints, gemm_block_acc, gemm_block_codes, gemm_codes,
                              min_acc_bits, product_format)
from nybble.sw.ieee_fp import check_float_format, ieee_dot, ieee_steps
from nybble.sw.quantize import BITMOD_TYPES, QuantizedTensor
from .accumulator import check_overflow
from .lut import LutUnit, lut_options, table_init
from .product import check_format, signed_width
from .units import PRODUCTS, product_grid, unit_class
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["PESpec", "DotProductSpec", "BitSerialSpec", "BlockScaledSpec", "IeeeFpSpec",
           "BITSERIAL_DTYPES", "TypedWeights",
           "SCALE_FORMATS", "BLOCK_SIZES", "LUT_TABLES", "BLOCK_SCALERS", "default_acc_frac_bits", "scale_codes"]

#: Data types of the bit-serial PE, in selector order (``sel`` = index into this tuple).
BITSERIAL_DTYPES = ("int4", "fp4_e2m1", "e3m0") + tuple(BITMOD_TYPES)

#: Scale format names accepted by the block-scaled PEs -> the :mod:`nybble.sw.formats` format.
SCALE_FORMATS = {"e8m0": "float8_e8m0fnu", "e4m3": "float8_e4m3fn", "fp16": "float16"}

#: Where a LUT PE's codebook table is held: in every PE, or once per array (broadcast).
LUT_TABLES = ("pe", "array")

#: Block scalers of a block-scaled PE: one block per cycle, or time-shared over a block.
BLOCK_SCALERS = ("parallel", "serial")

#: Block sizes an :class:`~nybble.hw.config.ArrayConfig` accepts.
BLOCK_SIZES = (16, 32)

# quantizer scale kinds (nybble.sw.quantize.Scheme.scale_kind) -> PE scale format
_SCHEME_SCALE = {"e8m0": "e8m0", "e4m3": "e4m3"}


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise ParameterTypeError(f"{name} must be a bool, not {value!r}")
    return value


def _fmt_call(fa, fb, k, product="exact", acc_frac_bits=None):
    opts = ""
    if product != "exact":
        opts += f", product={product!r}"
    if acc_frac_bits is not None:
        opts += f", acc_frac_bits={acc_frac_bits}"
    return f"nybble.sw.min_acc_bits({fa.name!r}, {fb.name!r}, {k}{opts})"


@dataclass(frozen=True)
class PESpec:
    """What every PE spec has (module docstring)."""

    family: str
    fmt_a: Format
    fmt_b: Format
    a_bits: int
    b_bits: int
    acc_bits: int
    min_acc_bits: int
    frac_bits: int
    overflow_mode: str
    lanes: int
    latency: int

    @property
    def formats(self):
        return (self.fmt_a.name, self.fmt_b.name)

    @property
    def cycles_per_mac(self):
        """Cycles per multiply-accumulate: ``1 / lanes`` (one k-step per cycle)."""
        return 1 / self.lanes

    @property
    def macs_per_cycle(self):
        return self.lanes


@dataclass(frozen=True)
class DotProductSpec(PESpec):
    """``lanes`` product units -> exact adder tree -> one accumulator (:class:`.pe.DotProductPE`).

    Extra fields: ``product`` (``"exact"`` / ``"lmul"``), ``pipeline`` (0 / 1), ``has_psum``
    (the weight-stationary partial-sum input), ``golden_frac`` (the golden model's
    ``acc_frac_bits``: None on the exact product grid), ``unit_frac`` / ``p_min`` / ``p_max``
    (one product unit's grid and range), ``lut_bits`` / ``lut_frac_bits`` / ``table_init``
    (codebook weights; None otherwise), ``lut_table`` (codebook weights: where the table is
    held -- ``"pe"``, registers in every PE, or ``"array"``, one table per array broadcast to
    every PE's ``lut_entries`` input, the PE keeping only its read multiplexer; None otherwise).
    """

    product: str = "exact"
    pipeline: int = 0
    has_psum: bool = False
    golden_frac: int | None = None
    unit_frac: int = 0
    p_min: int = 0
    p_max: int = 0
    lut_bits: int | None = None
    lut_frac_bits: int | None = None
    table_init: tuple | None = None
    lut_table: str | None = None

    @classmethod
    def make(cls, fmt_a, fmt_b, lanes=4, *, acc_bits=None, overflow="wrap", acc_frac_bits=None,
             product="exact", pipeline=0, lut_bits=16, lut_frac_bits=None, psum=False,
             lut_table="pe"):
        """Parameters of :class:`.pe.DotProductPE` (its docstring) -> spec; ``lanes=1`` is a
        MAC PE (family ``"mac"``)."""
        fa = check_format("fmt_a", fmt_a)
        fb = check_format("fmt_b", fmt_b)
        lanes = check_integral("Lane count", lanes, 1, 256)
        overflow = check_overflow(overflow)
        pipeline = check_integral("Pipeline depth", pipeline, 0, 1)
        if product not in PRODUCTS:
            raise ParameterError(f"Product must be one of 'exact', 'lmul', not {product!r}")
        psum = _check_bool("psum", psum)
        unit_frac, p_min, p_max = product_grid(fa, fb, product=product, lut_bits=lut_bits,
                                               lut_frac_bits=lut_frac_bits)
        is_lut = unit_class(fa, fb, product) is LutUnit
        exact_grid = product_format(fa, fb, product=product)[0]
        if acc_frac_bits is not None:
            acc_frac_bits = check_integral("acc_frac_bits", acc_frac_bits, -4096, 4096)
        # the golden model's window: given, or the unit's own grid when it differs (a LUT
        # table on 2**-14 for a dyadic user codebook)
        golden_frac = acc_frac_bits if acc_frac_bits is not None else (
            unit_frac if unit_frac != exact_grid else None)
        frac_bits = golden_frac if golden_frac is not None else exact_grid
        coarse = frac_bits < unit_frac
        need = min_acc_bits(fa, fb, lanes, product=product, acc_frac_bits=golden_frac)
        call = _fmt_call(fa, fb, lanes, product, golden_frac)
        what = (f"one {fa.name} x {fb.name} product" if lanes == 1 else
                f"one step of {lanes} {fa.name} x {fb.name} products")
        if coarse:
            need = min(need, frac_bits + 2)
            call += f" or acc_frac_bits + 2 = {frac_bits + 2}"
        if acc_bits is None:
            acc_bits = 64 if coarse else min_acc_bits(
                fa, fb, 256 * lanes, product=product, acc_frac_bits=golden_frac)
        acc_bits = check_integral("Accumulator width", acc_bits, 2, 4096)
        if acc_bits < need:
            raise ParameterError(f"Accumulator width must be at least {need} bits ({call}) to "
                             f"hold {what}, not {acc_bits}")
        if lut_table not in LUT_TABLES:
            raise ParameterError(f"lut_table must be one of {', '.join(map(repr, LUT_TABLES))}, "
                                 f"not {lut_table!r}")
        lut = {}
        if is_lut:
            lb, lf = lut_options(lut_bits, lut_frac_bits)
            lut = dict(lut_bits=lb, lut_frac_bits=lf, table_init=tuple(table_init(fb, lb, lf)),
                       lut_table=lut_table)
        elif lut_table != "pe":
            raise ParameterError(f"lut_table={lut_table!r} applies to codebook (LUT) weights "
                                 f"only, not {fa.name} x {fb.name}")
        return cls(family="mac" if lanes == 1 else "dp", fmt_a=fa, fmt_b=fb,
                   a_bits=fa.bits * lanes, b_bits=fb.bits * lanes, acc_bits=acc_bits,
                   min_acc_bits=need, frac_bits=frac_bits, overflow_mode=overflow,
                   lanes=lanes, latency=1 + pipeline, product=product, pipeline=pipeline,
                   has_psum=psum, golden_frac=golden_frac, unit_frac=unit_frac, p_min=p_min,
                   p_max=p_max, **lut)

    @property
    def is_lut(self):
        return self.lut_bits is not None

    @property
    def unit_options(self):
        """Keyword arguments of :func:`nybble.hw.units.make_product_unit` for one lane."""
        return dict(product=self.product, lut_bits=self.lut_bits or 16,
                    lut_frac_bits=self.lut_frac_bits, table_port=self.is_lut)

    def golden_kwargs(self):
        """Keyword arguments of :func:`nybble.sw.gemm_codes` that make it compute ``acc``."""
        return dict(fmt_a=self.fmt_a, fmt_b=self.fmt_b, acc_bits=self.acc_bits,
                    overflow=self.overflow_mode, acc_frac_bits=self.golden_frac,
                    product=self.product, lanes=self.lanes)

    def model(self, a_codes, b_codes, **override):
        """Bit-exact model: what ``acc`` holds after the dot products ``a_codes @ b_codes``
        (``(M, K)`` and ``(K, N)`` codes, one ``first`` at k = 0) -- :func:`nybble.sw.gemm_codes`
        with :meth:`golden_kwargs` (``override`` replaces some, e.g. a wider accumulator)."""
        kw = {**self.golden_kwargs(), **override}
        return gemm_codes(a_codes, b_codes, kw.pop("fmt_a"), kw.pop("fmt_b"), **kw)


def serial_decode(dtypes, grid):
    """Per data type: ``(rows, cycles)``; ``rows[code] = (neg, odd_mag, shift)`` with
    ``value * 2**grid == (-1)**neg * odd_mag << shift``; cycles = widest ``odd_mag``."""
    out = []
    for d in dtypes:
        ints, f = element_ints(d)
        rows = []
        for v in ints:
            v = int(v) << (grid - f)
            mag, sh = abs(v), 0
            while mag and not mag & 1:
                mag >>= 1
                sh += 1
            rows.append((int(v < 0), mag, sh))
        out.append((tuple(rows), max(1, max(r[1].bit_length() for r in rows))))
    return tuple(out)


@dataclass(frozen=True)
class BitSerialSpec(PESpec):
    """Bit-serial mixed-data-type PE (:class:`.pe.BitSerialPE`).

    Extra fields: ``dtypes`` (the weight data types as named, selector order),
    ``dtype_formats`` (their Format records), ``weight_grid`` (fraction bits of the widest
    weight grid), ``decode`` (:func:`serial_decode`), ``sel_bits``.  ``latency`` is the
    slowest data type's; :attr:`cycles_per_mac` gives each.
    """

    dtypes: tuple = ()
    dtype_formats: tuple = ()
    weight_grid: int = 0
    decode: tuple = ()
    sel_bits: int = 1
    lockstep: bool = False

    @classmethod
    def make(cls, fmt_a="int8", dtypes=BITSERIAL_DTYPES, *, acc_bits=None, overflow="wrap",
             lockstep=False):
        fa = check_format("fmt_a", fmt_a)
        lockstep = _check_bool("lockstep", lockstep)
        if fa.kind != "int":
            raise ParameterError(f"BitSerialPE takes an integer activation, not {fa.name} "
                             f"(kind {fa.kind!r})")
        if isinstance(dtypes, (str, Format)) or not hasattr(dtypes, "__iter__"):
            raise ParameterTypeError(f"dtypes must be a sequence of format names, not {dtypes!r}")
        dtypes = tuple(dtypes)
        dts = tuple(check_format("dtype", d) for d in dtypes)
        names = tuple(d if isinstance(d, str) else d.name for d in dtypes)
        if not dts:
            raise ParameterError("dtypes must name at least one format")
        for d in dts:
            if d.bits != dts[0].bits or d.frac_bits is None or d.kind == "scale":
                raise ParameterError(f"BitSerialPE data types must be dyadic formats of one code "
                                 f"width; {d.name} does not fit")
        overflow = check_overflow(overflow)
        wgrid = max(element_ints(d)[1] for d in dts)
        frac_bits = element_ints(fa)[1] + wgrid
        decode = serial_decode(dts, wgrid)
        need, worst = 0, dts[0]
        for d in dts:
            n = min_acc_bits(fa, d, 1, acc_frac_bits=frac_bits)
            if n > need:
                need, worst = n, d
        if acc_bits is None:
            acc_bits = max(min_acc_bits(fa, d, 256, acc_frac_bits=frac_bits) for d in dts)
        acc_bits = check_integral("Accumulator width", acc_bits, 2, 4096)
        if acc_bits < need:
            raise ParameterError(
                f"Accumulator width must be at least {need} bits "
                f"({_fmt_call(fa, worst, 1, acc_frac_bits=frac_bits)}) to hold one "
                f"{fa.name} x {worst.name} product, not {acc_bits}")
        return cls(family="bitserial", fmt_a=fa, fmt_b=dts[0], a_bits=fa.bits,
                   b_bits=dts[0].bits, acc_bits=acc_bits, min_acc_bits=need,
                   frac_bits=frac_bits, overflow_mode=overflow, lanes=1,
                   latency=max(c for _, c in decode), dtypes=names, dtype_formats=dts,
                   weight_grid=wgrid, decode=decode,
                   sel_bits=max(1, (len(dts) - 1).bit_length()), lockstep=lockstep)

    @property
    def formats(self):
        return (self.fmt_a.name, "|".join(self.dtypes))

    @property
    def cycles_per_mac(self):
        """``{data type: cycles per MAC}``."""
        return {d: c for d, (_, c) in zip(self.dtypes, self.decode)}

    @property
    def macs_per_cycle(self):
        """MACs per cycle with the first data type's weights."""
        return 1 / self.decode[0][1]

    @property
    def sel_cycles(self):
        """int64 array: cycles of a MAC for every selector value ``0 .. 2**sel_bits - 1``
        (a selector past the data types: a zero product in one cycle)."""
        out = np.ones(1 << self.sel_bits, np.int64)
        out[:len(self.decode)] = [c for _, c in self.decode]
        return out

    @property
    def pad_sel(self):
        """The selector that padding weights (ragged array edges) carry: one past the data
        types (a zero product in one cycle) when ``sel_bits`` has room, else the fastest
        data type (its weight code 0 must then be zero)."""
        if len(self.dtypes) < 1 << self.sel_bits:
            return len(self.dtypes)
        return int(np.argmin(self.sel_cycles[:len(self.dtypes)]))

    def golden_kwargs(self):
        return dict(fmt_a=self.fmt_a, acc_bits=self.acc_bits, overflow=self.overflow_mode,
                    acc_frac_bits=self.frac_bits)

    def check_weights(self, name, w):
        """Raise ``ValueError`` / ``TypeError`` naming ``name`` unless ``w`` is
        :class:`TypedWeights` of this PE: 2-D integer codes below ``2**b_bits`` and selectors
        of its data types, of one shape."""
        if not isinstance(w, TypedWeights):
            raise ParameterTypeError(f"{name} of a bit-serial array must be TypedWeights (codes "
                                     f"and a data type per weight), not {type(w).__name__}")
        c, s = np.asarray(w.codes), np.asarray(w.sel)
        for what, x, hi in ((f"{name}.codes", c, 1 << self.b_bits),
                            (f"{name}.sel", s, len(self.dtypes))):
            if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
                raise ParameterError(f"{what} must be a 2-D integer array, not {x.ndim}-D "
                                     f"{x.dtype}")
            if x.size and (x.min() < 0 or x.max() >= hi):
                raise ParameterError(f"{what} must hold values 0..{hi - 1}"
                                     + (f" ({', '.join(self.dtypes)})" if hi < 16 else ""))
        if c.shape != s.shape:
            raise ParameterError(f"{name}.sel must have the shape of {name}.codes {c.shape}, "
                                 f"not {s.shape}")

    def model(self, a_codes, b_codes, sel, **override):
        """Bit-exact model: ``acc`` after the dot products ``a_codes @ b_codes`` where weight
        row ``k`` has data type ``dtypes[sel[k]]`` (``sel`` of shape ``(K,)``), or weight
        ``(k, n)`` has ``dtypes[sel[k, n]]`` (shape ``(K, N)``: BitMoD's per-group, per-column
        types) -- :func:`nybble.sw.gemm_codes` with one format per k (per column when the
        types differ between columns) and ``acc_frac_bits`` = this PE's grid."""
        kw = {**self.golden_kwargs(), **override}
        fa = kw.pop("fmt_a")
        sel = np.asarray(sel)
        if sel.ndim == 1:
            fmts = [self.dtype_formats[int(s)] for s in sel]
            return gemm_codes(a_codes, b_codes, fa, fmts, **kw)
        a, b = np.asarray(a_codes), np.asarray(b_codes)
        if sel.shape != b.shape:
            raise ParameterError(f"sel must have the weights' shape {b.shape} (or ({b.shape[0]},)), "
                                 f"not {sel.shape}")
        # columns that share one type per k run as one golden GEMM
        cols, groups = np.unique(sel.T, axis=0, return_inverse=True)
        out = None
        for g, col_sel in enumerate(cols):
            idx = np.flatnonzero(np.ravel(groups) == g)
            fmts = [self.dtype_formats[int(s)] for s in col_sel]
            part = gemm_codes(a, b[:, idx], fa, fmts, **kw)
            if out is None:
                out = np.empty((a.shape[0], b.shape[1]), dtype=np.asarray(part).dtype)
            out[:, idx] = part
        return out


@dataclass(frozen=True, eq=False)
class TypedWeights:
    """Weights of a bit-serial array: element ``codes`` (K x N) and, for every weight, its
    data type ``sel`` (K x N, an index into the PE's ``dtypes``; BitMoD gives one per group
    of K per column).  The selector travels with its code through the B buffer and the
    array (:meth:`BitSerialSpec.check_weights`)."""

    codes: np.ndarray
    sel: np.ndarray

    @property
    def shape(self):
        return np.shape(self.codes)


def _check_scale(scale):
    if not isinstance(scale, str):
        raise ParameterTypeError(f"Scale format must be a string, not {scale!r}")
    if scale not in SCALE_FORMATS:
        raise ParameterError(f"Scale format must be one of {', '.join(map(repr, SCALE_FORMATS))}, "
                         f"not {scale!r}")
    return scale


def default_acc_frac_bits(scale, acc_bits, grid):
    """The default fraction bits of the cross-block accumulator.

    ``acc_bits // 2`` for scales that carry the data's magnitude (E8M0, fp16).  NVFP4's E4M3
    block scales are relative to the per-tensor scale (the largest block scale is ~448), so
    the values before the tensor scale reach ``(448 * 6)**2`` per product: 36 integer bits are
    kept, and no more fraction bits than the exact grid ``2**-(grid + 18)`` needs."""
    if scale == "e4m3":
        return max(0, min(grid + 18, acc_bits - 36))
    return acc_bits // 2


def _qt_scale(qt):
    """The PE scale format of a QuantizedTensor's scales, or None when no PE takes them."""
    kind = qt.scheme.scale_kind
    if kind in _SCHEME_SCALE:
        return _SCHEME_SCALE[kind]
    if qt.scheme.name == "q4_0":
        return "fp16"
    return None


def scale_codes(qt):
    """The block scale codes of a QuantizedTensor as the PEs take them (E8M0 / E4M3 bytes,
    fp16 bit patterns for ggml Q4_0), shaped like ``qt.scales``."""
    sc = _qt_scale(qt)
    if sc is None:
        raise ParameterError(f"{qt.scheme.name} has {qt.scheme.scale_kind} scales; the "
                         "block-scaled PEs take E8M0 (MX), E4M3 (NVFP4) and fp16 (q4_0) scales")
    if sc == "fp16":
        return np.asarray(qt.scales, dtype=np.float16).view(np.uint16).astype(np.int64)
    return np.asarray(qt.scales).astype(np.int64)


@dataclass(frozen=True)
class BlockScaledSpec(PESpec):
    """Block-scaled PE (:class:`.block_pe.BlockScaledPE`).

    Extra fields: ``scale`` (``"e8m0"``, ``"e4m3"``, ``"fp16"``), ``block_size``,
    ``scale_bits``, ``grid`` (product grid ``2**-grid`` of the block sums), ``p_min`` /
    ``p_max`` (one product's range), ``sum_bits`` (width of the exact block adder),
    ``scaler`` (``"parallel"``: one block scaled per cycle, ``latency`` 2; ``"serial"``:
    time-shared over a block's ``steps_per_block`` cycles, ``latency`` 2 +
    ``steps_per_block``).  The operand ports are ``lanes`` element codes then one scale code.
    """

    scale: str = "e8m0"
    block_size: int = 32
    scale_bits: int = 8
    grid: int = 0
    p_min: int = 0
    p_max: int = 0
    sum_bits: int = 2
    scaler: str = "parallel"

    @classmethod
    def make(cls, fmt_a, fmt_b, lanes=8, *, scale="e8m0", block_size=32, acc_bits=32,
             acc_frac_bits=None, overflow="wrap", scaler="parallel"):
        fa = check_format("fmt_a", fmt_a)
        fb = check_format("fmt_b", fmt_b)
        for name, f in (("fmt_a", fa), ("fmt_b", fb)):
            if f.kind not in ("int", "float", "pow2"):
                raise ParameterError(f"BlockScaledPE takes int, float or pow2 elements; {name} is "
                                 f"{f.name} (kind {f.kind!r})")
        lanes = check_integral("Lane count", lanes, 1, 256)
        scale = _check_scale(scale)
        block = check_integral("Block size", block_size, 1, 256)
        if block % lanes:
            raise ParameterError(f"Block size must be a multiple of the lane count {lanes} "
                             f"(a k-step may not straddle two blocks), not {block}")
        overflow = check_overflow(overflow)
        acc_bits = check_integral("Accumulator width", acc_bits, 2, 4096)
        grid, p_min, p_max = product_grid(fa, fb)
        if acc_frac_bits is None:
            acc_frac_bits = default_acc_frac_bits(scale, acc_bits, grid)
        frac = check_integral("acc_frac_bits", acc_frac_bits, 0, acc_bits - 1)
        scale_bits = get_format(SCALE_FORMATS[scale]).bits
        if scaler not in BLOCK_SCALERS:
            raise ParameterError(f"scaler must be one of {', '.join(map(repr, BLOCK_SCALERS))}, "
                                 f"not {scaler!r}")
        latency = 2
        if scaler == "serial":
            if scale == "e8m0":
                raise ParameterError("scaler='serial' needs scales with a significand (e4m3, "
                                     "fp16), not e8m0 (a shift alone, nothing to time-share)")
            if block // lanes < 2:
                raise ParameterError(f"scaler='serial' needs at least 2 steps per block (the "
                                     f"cycles it may take), not block_size {block} / lanes "
                                     f"{lanes}")
            latency = 2 + block // lanes
        return cls(family="block", fmt_a=fa, fmt_b=fb, a_bits=fa.bits * lanes + scale_bits,
                   b_bits=fb.bits * lanes + scale_bits, acc_bits=acc_bits,
                   min_acc_bits=max(2, frac + 1), frac_bits=frac, overflow_mode=overflow,
                   lanes=lanes, latency=latency, scaler=scaler, scale=scale, block_size=block,
                   scale_bits=scale_bits, grid=grid, p_min=p_min, p_max=p_max,
                   sum_bits=signed_width(block * min(p_min, 0), block * max(p_max, 0)))

    @property
    def scale_format(self):
        return SCALE_FORMATS[self.scale]

    @property
    def steps_per_block(self):
        return self.block_size // self.lanes

    def golden_kwargs(self):
        """Keyword arguments of :func:`nybble.sw.gemm_block_codes` that make it compute
        ``acc``."""
        return dict(fmt_a=self.fmt_a, fmt_b=self.fmt_b, scale_fmt=self.scale_format,
                    block=self.block_size, acc_bits=self.acc_bits,
                    acc_frac_bits=self.frac_bits, overflow=self.overflow_mode)

    def model_codes(self, a_codes, a_scales, b_codes, b_scales, *, return_overflow=False):
        """Bit-exact model: ``acc`` after the dot products of ``a_codes`` (M, K) and
        ``b_codes`` (K, N) with scale codes ``a_scales`` (M, blocks), ``b_scales`` (blocks,
        N) -- :func:`nybble.sw.gemm_block_codes` with :meth:`golden_kwargs`."""
        kw = self.golden_kwargs()
        return gemm_block_codes(a_codes, a_scales, b_codes, b_scales, kw.pop("fmt_a"),
                                kw.pop("fmt_b"), return_overflow=return_overflow, **kw)

    def model(self, a, b):
        """Bit-exact model for quantized tensors ``a`` (M x K, ``axis=-1``) and ``b`` (K x N,
        ``axis=0``) of this PE's formats -- :func:`nybble.sw.gemm_block_acc`."""
        self.check_operand("a", a)
        self.check_operand("b", b)
        return gemm_block_acc(a, b, acc_bits=self.acc_bits, acc_frac_bits=self.frac_bits,
                              overflow=self.overflow_mode)

    def check_operand(self, name, qt):
        """Raise ``ValueError`` unless ``qt`` (a QuantizedTensor) fits this PE: element format,
        scale format and block size."""
        if not isinstance(qt, QuantizedTensor):
            raise ParameterTypeError(f"{name} must be a QuantizedTensor, not {type(qt).__name__}")
        want = self.fmt_a if name == "a" else self.fmt_b
        if get_format(qt.scheme.element) is not want:
            raise ParameterError(f"{name} has {get_format(qt.scheme.element).name} elements "
                             f"({qt.scheme.name}) but the PE takes {want.name}")
        sc = _qt_scale(qt)
        if sc != self.scale:
            raise ParameterError(f"{name} has {sc or qt.scheme.scale_kind} block scales "
                             f"({qt.scheme.name}) but the PE takes {self.scale}")
        if qt.block != self.block_size:
            raise ParameterError(f"{name} is quantized in blocks of {qt.block} but the PE's "
                             f"block_size is {self.block_size}")


#: The ``overflow`` option of the IEEE-style PEs: IEEE 754 (overflow rounds to Inf).
IEEE_OVERFLOW = "ieee"


@dataclass(frozen=True)
class IeeeFpSpec(PESpec):
    """IEEE-style floating-point MAC (``lanes = 1``) or dot-product PE with an FP32
    accumulator (:class:`.ieee_fp.IeeeDotProductPE`); arithmetic: :mod:`nybble.sw.ieee_fp`.

    ``acc`` is the accumulator's FP32 bit pattern, read as ``signed(32)`` like every PE's
    ``acc`` (:meth:`model` returns that view); it is not on a fixed-point grid, so
    ``frac_bits`` is None and ``overflow_mode`` is ``"ieee"``; ``overflow`` is high while the
    accumulator is Inf or NaN.  Extra fields: ``unit_frac`` / ``p_min`` / ``p_max`` (the exact
    product grid and range of one lane: the dot-product PEs sum lanes exactly on it).
    """

    unit_frac: int = 0
    p_min: int = 0
    p_max: int = 0

    @classmethod
    def make(cls, fmt_a, fmt_b, lanes=1, *, acc_bits=32, overflow=IEEE_OVERFLOW):
        fa = check_float_format("fmt_a", check_format("fmt_a", fmt_a))
        fb = check_float_format("fmt_b", check_format("fmt_b", fmt_b))
        lanes = check_integral("Lane count", lanes, 1, 256)
        acc_bits = check_integral("Accumulator width", acc_bits, 2, 4096)
        if acc_bits != 32:
            raise ParameterError(f"Accumulator width of an IEEE-style FP PE must be 32 (an FP32 "
                                 f"register), not {acc_bits}")
        if overflow != IEEE_OVERFLOW:
            raise ParameterError(f"overflow of an IEEE-style FP PE must be {IEEE_OVERFLOW!r} "
                                 f"(IEEE 754: overflow rounds to Inf), not {overflow!r}")
        unit_frac, p_min, p_max = product_grid(fa, fb)
        return cls(family="ieee", fmt_a=fa, fmt_b=fb, a_bits=fa.bits * lanes,
                   b_bits=fb.bits * lanes, acc_bits=32, min_acc_bits=32, frac_bits=None,
                   overflow_mode=IEEE_OVERFLOW, lanes=lanes, latency=1, unit_frac=unit_frac,
                   p_min=p_min, p_max=p_max)

    def golden_kwargs(self):
        """Keyword arguments of :func:`nybble.sw.ieee_fp.ieee_dot` that make it compute
        ``acc``."""
        return dict(fmt_a=self.fmt_a, fmt_b=self.fmt_b, lanes=self.lanes)

    def model(self, a_codes, b_codes):
        """Bit-exact model: ``acc`` (the FP32 pattern as signed 32-bit integers) after the dot
        products ``a_codes @ b_codes`` (``(M, K)``, ``(K, N)`` codes, K a multiple of
        ``lanes``)."""
        kw = self.golden_kwargs()
        bits = ieee_dot(a_codes, b_codes, kw.pop("fmt_a"), kw.pop("fmt_b"), **kw)
        return bits.view(np.int32).astype(np.int64)

    def model_steps(self, a_codes, b_codes, first):
        """``(acc, overflow)`` after each step (``(n, lanes)`` codes, ``first`` flags):
        ``acc`` as signed 32-bit integers, ``overflow`` whether it is Inf or NaN."""
        bits, non_finite = ieee_steps(a_codes, b_codes, first, self.fmt_a, self.fmt_b)
        return bits.view(np.int32).astype(np.int64), non_finite
