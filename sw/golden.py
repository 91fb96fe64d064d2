"""The golden GEMM: the exact result a Nybble MAC array computes.  This is the contract.

Products
    Every element value of a dyadic format is an integer on the grid ``2**-f`` (``f`` =
    :attr:`Format.frac_bits`: 0 for int4, 1 for fp4 e2m1, 2 for e3m0 with bias 3, 9 for fp8
    e4m3, 24 for fp16, ...).  Codebooks that are not dyadic (NF4) are stored on the grid
    ``2**-CODEBOOK_FRAC_BITS`` (14), rounded to nearest, ties away from zero, as the LUT PE
    holds them.  The product of two elements is the exact integer ``pa * pb`` on the grid
    ``2**-(fa + fb)`` (:func:`product_format`): e.g. fp4 e2m1 x e2m1 is a signed integer of
    quarter units, ``|p| <= 144`` (value <= 36); e3m0 x e3m0 (bias 3) is +-2^k quarter-units...
    nothing is rounded.

Block accumulator
    Within a block (the whole K for per-tensor / per-channel schemes and for raw codes),
    products are added in ascending k into a two's-complement accumulator of ``acc_bits``
    bits on the same grid.  ``overflow``: ``"wrap"`` (modulo 2**acc_bits, as an adder that
    drops the carry), ``"saturate"`` (clamped to [-2**(acc_bits-1), 2**(acc_bits-1)-1] after
    every addition, so the order matters) or ``"error"`` (ValueError at the first overflow).

Across blocks (block-scaled schemes)
    Block sum ``S_j`` (an integer), block scales ``sa_j`` (row of A), ``sb_j`` (column of B).
    * Exact scales -- MX (E8M0, powers of two) and NVFP4 (E4M3): the sum
      ``X = sum_j S_j * sa_j * sb_j * 2**-(fa+fb)`` is formed exactly (a Kulisch / wide
      fixed-point accumulator) and rounded once to float64, to nearest even.
    * Float scales (int4_g<N>, e3m0_g<N>, nf4_g<N>, bitmod_g<N>, q4_0): in ascending block
      order, ``X = fl(X + fl(S_j * 2**-(fa+fb) * fl(sa_j * sb_j)))`` in float64 (the scale
      product of two float32 / fp16 numbers is exact in float64).
    * A per-tensor scale (NVFP4's ``ta``, ``tb``) is applied last: ``C = fl(X * (ta * tb))``.
    Schemes with zero points (q4_1, q4_k) are refused: dequantize them first.

The results are those of these definitions bit for bit; :func:`gemm` computes them with
exact float32 / float64 BLAS sums wherever the formats' ranges and the scales allow no
rounding, and falls back to int64 / Python-int arithmetic where they do not.

Windowed cross-block accumulator (``gemm(..., block_acc=(W, F))``, :func:`gemm_block_acc`,
:func:`gemm_block_codes`) -- what the block-scaled PEs (:mod:`nybble.hw.block_pe`) hold
    1. Block sum: ``S_j = sum_{k in block j} pa_k * pb_k``, exact, on the product grid
       ``2**-g`` (``g = fa + fb``); the hardware sizes its block adder so it cannot overflow
       (``acc_bits`` / ``overflow`` of the within-block accumulator are not used).
    2. Scaling: the block's contribution on the window grid ``2**-F`` is
       ``c_j = floor(S_j * sa_j * sb_j * 2**(F - g))`` -- the exact product of the block sum
       and the two block scales (any exactly-representable scales: E8M0 powers of two, E4M3,
       fp16 (ggml Q4_0 ``d``), float32; signed), truncated toward -inf (an arithmetic right
       shift).  A block whose contribution is below the LSB vanishes (``0``, or ``-1`` LSB
       when negative); an all-zero block contributes exactly 0 whatever its scales.
    3. Accumulation: ``acc`` is a two's-complement register of ``W`` bits on the grid
       ``2**-F``; ``acc = c_0``, then ``acc = acc + c_j`` for j = 1, 2, ... (ascending block
       order), each addition exact and then ``"wrap"``-ped modulo ``2**W`` or
       ``"saturate"``-d to ``[-2**(W-1), 2**(W-1)-1]`` (``"error"``: ValueError at the first
       overflow).  Overflow: the exact ``acc + c_j`` leaves that range (also when ``c_j``
       alone is far outside it: the hardware clamps its shifter and flags it).
    4. ``gemm`` returns ``fl(acc * 2**-F)`` (rounded once to float64), times ``(ta * tb)``
       when the operands carry per-tensor scales (NVFP4): the tensor scales are applied by
       the host after the array, never inside it.
    Partial last blocks (K not a multiple of the block) are padded with zero elements; the
    hardware pads the same way.  NaN scale codes (E8M0 0xFF, E4M3 0x7F / 0xFF, fp16 Inf/NaN)
    are refused.

:func:`gemm_codes` exposes the block accumulator directly (one block = all of K): it is what a
plain int4 / fp4 / e3m0 array's accumulators hold, bit for bit.  Its keyword-only options
(defaults: the behaviour above) describe the other PEs of the library:

* ``acc_frac_bits`` -- a fixed-point *window*: the accumulator holds integers on the grid
  ``2**-acc_frac_bits`` instead of the exact product grid.  Each product is first truncated
  toward -inf to that grid (``floor(p * 2**(acc_frac_bits - grid))``; exact when the window
  grid is at least as fine as the product grid), then added as above.  Used by the bf16
  baseline, whose exact products would need a ~530-bit Kulisch accumulator, and to put mixed
  or codebook formats on the grid a PE holds.
* ``product="lmul"`` -- the L-Mul approximate product (:mod:`nybble.sw.lmul`) of two float
  elements of the same format, on the same grid as the exact product.
* ``lanes`` -- a dot-product PE adds ``lanes`` consecutive products exactly (an adder tree)
  and applies wrap / saturate only to the accumulator add: with ``lanes > 1`` saturation is
  checked after each group of ``lanes`` products (k = 0..lanes-1, lanes..2*lanes-1, ...).
* ``fmt_a`` / ``fmt_b`` may be a sequence of K formats (one per k, e.g. BitMoD's per-group
  data types): every element is then placed on the finest grid of the formats given.
"""

from functools import lru_cache
import os
import threading
import weakref

import numpy as np

from .formats import get_format, check_integral, CODEBOOK_FRAC_BITS
from .quantize import QuantizedTensor, BITMOD_TYPES, get_scheme
from .errors import ParameterError, ParameterTypeError
from .lmul import lmul_table

__all__ = ["gemm", "gemm_codes", "gemm_block_acc", "gemm_block_codes", "min_acc_bits",
           "scheme_acc_bits",
           "product_format", "element_ints", "acc_to_float", "CODEBOOK_FRAC_BITS",
           "OVERFLOW_MODES", "PRODUCT_KINDS"]


def _kernels():
    """:mod:`nybble.sw.golden_kernels`, imported on first use: importing numba takes ~0.25 s,
    which every command would otherwise pay whether it runs a golden GEMM or not."""
    from . import golden_kernels
    return golden_kernels


OVERFLOW_MODES = ("wrap", "saturate", "error")
PRODUCT_KINDS = ("exact", "lmul")


def _frac_bits(fmt):
    return fmt.frac_bits if fmt.frac_bits is not None else CODEBOOK_FRAC_BITS


def element_ints(fmt):
    """``(ints, frac_bits)``: every code's value as an integer on the grid 2**-frac_bits.

    Non-finite codes map to 0 (they are never produced by the encoders)."""
    fmt = get_format(fmt)
    return fmt.fixed_values(_frac_bits(fmt))


@lru_cache(maxsize=None)
def _table_cached(fmt):
    ints, f = element_ints(fmt)
    fin = np.asarray(ints)[fmt.finite]
    amax = int(max(int(np.max(fin)), -int(np.min(fin)))) if fin.size else 0
    if amax < 2 ** 24:
        ints = ints.astype(np.float32)  # exact, and BLAS takes gathered operands as they are
    return ints, f, amax


def _table(fmt):
    """``(ints, frac_bits, max |int|)`` of ``fmt`` (cached per format); the integers are a
    float32 array when every one of them is exact in float32."""
    return _table_cached(get_format(fmt))


def _check_product(product, fmt_a, fmt_b):
    if product not in PRODUCT_KINDS:
        raise ParameterError(f"product must be one of {', '.join(PRODUCT_KINDS)}, not {product!r}")
    if product == "lmul":
        if get_format(fmt_a) is not get_format(fmt_b):
            raise ParameterError(f"product='lmul' needs both operands in one float format, not "
                             f"{get_format(fmt_a).name} and {get_format(fmt_b).name}")
    return product


def product_format(fmt_a, fmt_b, *, product="exact"):
    """``(frac_bits, min_product, max_product)`` of the exact product of two elements,
    as integers on the grid 2**-frac_bits.

    ``product="lmul"``: the range of the L-Mul approximate product instead (same grid)."""
    _check_product(product, fmt_a, fmt_b)
    if product == "lmul":
        fmt = get_format(fmt_a)
        ok = np.flatnonzero(fmt.finite)
        t = lmul_table(fmt)[np.ix_(ok, ok)]
        return 2 * element_ints(fmt)[1], int(t.min()), int(t.max())
    ia, fa = element_ints(fmt_a)
    ib, fb = element_ints(fmt_b)
    # extremes by numpy, products as Python ints: a 16-bit format has 65,536 values and
    # every PE of an array asks (a Python list per call made a 16x16 int16 array's
    # elaboration spend a minute here)
    va = np.asarray(ia)[get_format(fmt_a).finite]
    vb = np.asarray(ib)[get_format(fmt_b).finite]
    lo_a, hi_a, lo_b, hi_b = (int(x) for x in (va.min(), va.max(), vb.min(), vb.max()))
    cands = [lo_a * lo_b, lo_a * hi_b, hi_a * lo_b, hi_a * hi_b]
    return fa + fb, min(cands), max(cands)


def _check_frac(acc_frac_bits):
    if acc_frac_bits is None:
        return None
    return check_integral("acc_frac_bits", acc_frac_bits, -4096, 4096)


def _to_window(p, grid, acc_frac_bits):
    """Integer(s) ``p`` on the grid 2**-grid moved to the grid 2**-acc_frac_bits: exact when
    finer, truncated toward -inf (an arithmetic right shift) when coarser."""
    if acc_frac_bits is None or acc_frac_bits == grid:
        return p
    if acc_frac_bits > grid:
        return p * (1 << (acc_frac_bits - grid))
    return p >> (grid - acc_frac_bits)


def min_acc_bits(fmt_a, fmt_b, k, *, product="exact", acc_frac_bits=None):
    """Narrowest two's-complement accumulator (bits) that cannot overflow summing ``k``
    products of ``fmt_a`` x ``fmt_b`` (on the product grid of :func:`product_format`, or on
    the window ``2**-acc_frac_bits``, products truncated toward -inf, when that is given)."""
    k = check_integral("k", k, 1)
    acc_frac_bits = _check_frac(acc_frac_bits)
    grid, pmin, pmax = product_format(fmt_a, fmt_b, product=product)
    pmin, pmax = _to_window(pmin, grid, acc_frac_bits), _to_window(pmax, grid, acc_frac_bits)
    lo, hi = k * min(pmin, 0), k * max(pmax, 0)
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def scheme_acc_bits(scheme, k):
    """The narrowest ``acc_bits`` with which :func:`gemm` of two operands quantized with
    ``scheme`` (a name or :class:`Scheme`) along ``K = k`` never wraps: :func:`min_acc_bits`
    over the block :func:`gemm`'s ``acc_bits`` bounds -- each block of a block-scaled
    scheme, all of K for per-tensor / per-channel ones -- and, for BitMoD, over every pair
    of its per-group data types (all on one grid)."""
    sch = get_scheme(scheme) if isinstance(scheme, str) else scheme
    k = check_integral("k", k, 1)
    block = min(sch.block, k) if sch.block else k
    if sch.element.startswith("bitmod"):
        return max(min_acc_bits(ta, tb, block) for ta in BITMOD_TYPES for tb in BITMOD_TYPES)
    return min_acc_bits(sch.elem_fmt, sch.elem_fmt, block)


def _check_acc(acc_bits, overflow):
    acc_bits = check_integral("acc_bits", acc_bits, 2, 4096)
    if overflow not in OVERFLOW_MODES:
        raise ParameterError(f"overflow must be one of {', '.join(OVERFLOW_MODES)}, not {overflow!r}")
    return acc_bits


def _int_matmul(pa, pb, bound):
    """Exact integer ``pa @ pb``; ``bound`` >= every |partial sum|.

    Returns a float array (holding exact integers) when BLAS can do it exactly, else int64 or
    Python ints."""
    if bound < 2 ** 24:  # every partial sum is an integer float32 holds exactly
        return pa.astype(np.float32, copy=False) @ pb.astype(np.float32, copy=False)
    if bound < 2 ** 53:
        return pa.astype(np.float64, copy=False) @ pb.astype(np.float64, copy=False)
    if bound < 2 ** 62:
        pa, pb = pa.astype(np.int64), pb.astype(np.int64)
        return pa.astype(np.int64) @ pb.astype(np.int64)
    return pa.astype(object) @ pb.astype(object)


def _max_abs(a):
    return int(max(np.max(a), -np.min(a))) if a.size else 0


_WALK = 1 << 21  # products gathered at a time for the ordered walk of saturate / error


def _accumulate(pa, pb, acc_bits, overflow, amax=None, bmax=None):
    """Block accumulator over all of K: integer array (M, N) with the overflow semantics.

    ``amax`` / ``bmax`` bound |pa| / |pb| (computed when not given)."""
    k = pa.shape[1]
    lim = 1 << (acc_bits - 1)
    amax = _max_abs(pa) if amax is None else amax
    bmax = _max_abs(pb) if bmax is None else bmax
    bound = amax * bmax * k
    if bound < lim:
        return _int_matmul(pa, pb, bound)
    # a tighter bound on every prefix sum: sum_k |a| |b|
    tight = np.abs(pa).astype(np.float64) @ np.abs(pb).astype(np.float64)
    if tight.size == 0 or float(tight.max()) * (1 + 1e-9) < lim:
        return _int_matmul(pa, pb, bound)
    if overflow == "wrap":  # wrapping is addition modulo 2**acc_bits: order does not matter
        s = _int_matmul(pa, pb, bound)
        s = s.astype(np.int64) if s.dtype.kind == "f" else s
        mod = 1 << acc_bits
        return ((s + lim) % mod) - lim
    # saturate / error: the order of additions matters, but only where a prefix sum can leave
    # the range (sum_k |a| |b| >= lim): walk k in ascending order for those outputs alone
    dt = object if bound >= 2 ** 62 else np.int64
    s = _int_matmul(pa, pb, bound).astype(dt)
    idx = np.argwhere(tight * (1 + 1e-9) >= lim)  # row-major order
    chunk = max(1, _WALK // max(k, 1))
    first = None  # (k, position in idx) of the first overflow, for "error"
    for c0 in range(0, len(idx), chunk):
        ii = idx[c0:c0 + chunk]
        ra = np.ascontiguousarray(pa[ii[:, 0], :].T).astype(dt)  # (K, outputs)
        rb = np.ascontiguousarray(pb[:, ii[:, 1]]).astype(dt)
        acc = np.zeros(len(ii), dtype=dt)
        for kk in range(k):
            acc = acc + ra[kk] * rb[kk]
            over = (acc >= lim) | (acc < -lim)
            if np.any(over):
                if overflow == "error":
                    if first is None or kk < first[0]:
                        first = (kk, c0 + int(np.flatnonzero(over)[0]))
                    break
                acc = np.clip(acc, -lim, lim - 1)
        s[ii[:, 0], ii[:, 1]] = acc
    if first is not None:
        m, n = (int(i) for i in idx[first[1]])
        raise ParameterError(
            f"accumulator overflow: acc_bits={acc_bits} is too narrow; output "
            f"[{m}, {n}] leaves the range at k={first[0]} (nybble.sw.min_acc_bits gives "
            "the width that cannot overflow)")
    return s


def _codes_to_ints(codes, fmt, name):
    fmt = get_format(fmt)
    c = np.asarray(codes)
    if not np.issubdtype(c.dtype, np.integer):
        raise ParameterTypeError(f"{name} must be an integer array of {fmt.name} codes, not dtype {c.dtype}")
    if c.ndim != 2:
        raise ParameterError(f"{name} must be 2-D, not {c.ndim}-D with shape {c.shape}")
    if c.size and (c.min() < 0 or c.max() >= fmt.n_codes):
        raise ParameterError(f"{name} codes of {fmt.name} must be in 0..{fmt.n_codes - 1}")
    if not np.all(fmt.finite[c]):
        bad = tuple(int(i) for i in np.argwhere(~fmt.finite[c])[0])
        raise ParameterError(f"{name} holds a NaN/Inf code of {fmt.name} at {bad}")
    ints, f, amax = _table(fmt)
    return ints[c], f, amax


def _per_k_ints(codes, fmts, name):
    """Element integers of ``codes`` (2-D) whose k axis (``axis``) has one format per index,
    all on the finest grid among ``fmts``."""
    c = np.asarray(codes)
    axis = 1 if name == "a_codes" else 0
    fmts = [get_format(f) for f in fmts]
    if c.ndim == 2 and len(fmts) != c.shape[axis]:
        raise ParameterError(f"{name} has K = {c.shape[axis]} but {len(fmts)} formats were given "
                         "(one per k)")
    grids = {f.name: element_ints(f)[1] for f in fmts}
    g = max(grids.values())
    out = None
    c = c.astype(np.int64) if np.issubdtype(c.dtype, np.integer) else c
    for f in {f.name: f for f in fmts}.values():
        ks = np.array([x.name == f.name for x in fmts])
        sub = c[:, ks] if axis == 1 else c[ks, :]
        v, fg, _ = _codes_to_ints(sub, f, name)
        v = v.astype(object) if v.dtype == object else v.astype(np.int64)
        v = v * (1 << (g - fg))
        if out is None:
            out = np.zeros(c.shape, dtype=v.dtype)
        if v.dtype == object and out.dtype != object:
            out = out.astype(object)
        if axis == 1:
            out[:, ks] = v
        else:
            out[ks, :] = v
    return out, g, _max_abs(out)


def _operand(codes, fmt, name):
    if isinstance(fmt, (list, tuple)):
        if not fmt:
            raise ParameterError(f"the format list of {name} is empty")
        return _per_k_ints(codes, fmt, name)
    return _codes_to_ints(codes, fmt, name)


def _accumulate_products(prods, acc_bits, overflow, lanes):
    """Block accumulator over explicit products ``prods`` (M, K, N): groups of ``lanes``
    consecutive k are summed exactly, then added with the overflow semantics."""
    m, k, n = prods.shape
    lim = 1 << (acc_bits - 1)
    if acc_bits >= 62 and prods.dtype != object:
        prods = prods.astype(object)
    groups = [prods[:, g:g + lanes, :].sum(axis=1) for g in range(0, k, lanes)]
    if overflow == "wrap":
        s = sum(groups) if groups else np.zeros((m, n), dtype=prods.dtype)
        return ((s + lim) % (2 * lim)) - lim
    acc = np.zeros((m, n), dtype=prods.dtype)
    for gi, g in enumerate(groups):
        acc = acc + g
        over = (acc >= lim) | (acc < -lim)
        if np.any(over):
            if overflow == "error":
                mm, nn = (int(i) for i in np.argwhere(over)[0])
                kk = min(k - 1, gi * lanes + lanes - 1)
                raise ParameterError(
                    f"accumulator overflow: acc_bits={acc_bits} is too narrow; output "
                    f"[{mm}, {nn}] leaves the range at k={kk} (nybble.sw.min_acc_bits gives "
                    "the width that cannot overflow)")
            acc = np.clip(acc, -lim, lim - 1)
    return acc


def gemm_codes(a_codes, b_codes, fmt_a, fmt_b, *, acc_bits=32, overflow="wrap",
               acc_frac_bits=None, product="exact", lanes=1):
    """The block accumulator of a MAC array for raw codes: ``A (M x K) @ B (K x N)``.

    Returns an int64 array (object array of Python ints past 62 bits) on the product grid
    ``2**-product_format(fmt_a, fmt_b)[0]`` (or ``2**-acc_frac_bits`` when that is given),
    with ``acc_bits`` / ``overflow`` as in the module docstring.  Divide by ``2**frac_bits``
    for values.

    Keyword-only options (module docstring): ``acc_frac_bits`` (fixed-point window, products
    truncated toward -inf), ``product`` (``"exact"`` or ``"lmul"``), ``lanes`` (products summed
    exactly in groups of ``lanes`` before each accumulator add).  ``fmt_a`` / ``fmt_b`` may be
    sequences of K formats (one per k).
    """
    acc_bits = _check_acc(acc_bits, overflow)
    acc_frac_bits = _check_frac(acc_frac_bits)
    lanes = check_integral("lanes", lanes, 1)
    if product not in PRODUCT_KINDS:
        raise ParameterError(f"product must be one of {', '.join(PRODUCT_KINDS)}, not {product!r}")
    if product == "lmul":
        if isinstance(fmt_a, (list, tuple)) or isinstance(fmt_b, (list, tuple)):
            raise ParameterError("product='lmul' takes one format per operand, not a list")
        _check_product(product, fmt_a, fmt_b)
    pa, fa, amax = _operand(a_codes, fmt_a, "a_codes")
    pb, fb, bmax = _operand(b_codes, fmt_b, "b_codes")
    if pa.shape[1] != pb.shape[0]:
        raise ParameterError(f"K mismatch: a_codes is {pa.shape[0]} x {pa.shape[1]} and b_codes is "
                         f"{pb.shape[0]} x {pb.shape[1]}; a's columns must equal b's rows")
    grid = fa + fb
    if product == "lmul":
        table = lmul_table(fmt_a)
        ca = np.asarray(a_codes).astype(np.int64)
        cb = np.asarray(b_codes).astype(np.int64)
        prods = _to_window(table[ca[:, :, None], cb[None, :, :]], grid, acc_frac_bits)
        return _accumulate_products(prods, acc_bits, overflow, lanes)
    if acc_frac_bits is not None and acc_frac_bits > grid:
        # a finer grid: exact, scale one operand (every partial sum scales with it)
        pa = pa.astype(object) * (1 << (acc_frac_bits - grid)) \
            if _max_abs(pa).bit_length() + acc_frac_bits - grid >= 62 \
            else pa.astype(np.int64) * (1 << (acc_frac_bits - grid))
    elif acc_frac_bits is not None and acc_frac_bits < grid:
        big = pa.dtype == object or pb.dtype == object or \
            _max_abs(pa).bit_length() + _max_abs(pb).bit_length() >= 62
        dt = object if big else np.int64
        prods = pa.astype(dt)[:, :, None] * pb.astype(dt)[None, :, :]
        return _accumulate_products(_to_window(prods, grid, acc_frac_bits), acc_bits,
                                    overflow, lanes)
    if lanes > 1 and overflow != "wrap":
        lim = 1 << (acc_bits - 1)
        tight = np.abs(pa).astype(np.float64) @ np.abs(pb).astype(np.float64)
        if tight.size and float(tight.max()) * (1 + 1e-9) >= lim:
            big = pa.dtype == object or pb.dtype == object or \
                _max_abs(pa).bit_length() + _max_abs(pb).bit_length() >= 62
            dt = object if big else np.int64
            prods = pa.astype(dt)[:, :, None] * pb.astype(dt)[None, :, :]
            return _accumulate_products(prods, acc_bits, overflow, lanes)
    if acc_frac_bits is not None and acc_frac_bits > grid:
        acc = _accumulate(pa, pb, acc_bits, overflow)
    else:
        acc = _accumulate(pa, pb, acc_bits, overflow, amax, bmax)
    # the fast paths sum in float32/float64 where that is exact; the contract is integers
    return acc.astype(np.int64) if acc.dtype.kind == "f" else acc


def _decode_operand(qt):
    """Element integers of a QuantizedTensor (C-contiguous; float32 when exact, as
    :func:`_table` gives them), their grid's fraction bits and max |integer|."""
    codes = np.ascontiguousarray(qt.codes)
    if qt.scheme.element.startswith("bitmod"):
        tabs = [_table(t) for t in BITMOD_TYPES]
        f = tabs[0][1]
        table = np.stack([t[0] for t in tabs])
        types = np.repeat(qt.extra["types"], qt.block, axis=qt.axis)
        idx = [slice(None)] * 2
        idx[qt.axis] = slice(0, qt.shape[qt.axis])
        types = np.ascontiguousarray(types[tuple(idx)])
        return table[types, codes], f, max(t[2] for t in tabs)
    ints, f, amax = _table(qt.elem_fmt)
    return ints[codes], f, amax


_OPERANDS = {}  # id(tensor) -> (weak reference, copy of its codes, of its BitMoD types, ints)
_OPERANDS_LOCK = threading.Lock()
_OPERANDS_KEPT = 4  # the operands of the last couple of gemm calls


def _operand_ints(qt):
    """Element integers (tensor shape, C-contiguous, read-only) and their grid's fraction
    bits.  Kept for the last few tensors, each checked against a copy of the codes (and
    BitMoD types) it was decoded from, so an array changed in place is decoded anew."""
    types = qt.extra.get("types") if qt.scheme.element.startswith("bitmod") else None
    key = id(qt)
    with _OPERANDS_LOCK:
        hit = _OPERANDS.get(key)
    if hit is not None:
        ref, codes, tcopy, val = hit
        if ref() is qt and codes.dtype == qt.codes.dtype and np.array_equal(codes, qt.codes) \
                and (types is None or np.array_equal(tcopy, types)):
            with _OPERANDS_LOCK:  # most recently used last
                if _OPERANDS.get(key) is hit:
                    _OPERANDS[key] = _OPERANDS.pop(key)
            return val
    val = _decode_operand(qt)
    val[0].flags.writeable = False

    def drop(_ref, key=key):
        with _OPERANDS_LOCK:
            if key in _OPERANDS and _OPERANDS[key][0] is _ref:
                del _OPERANDS[key]

    entry = (weakref.ref(qt, drop), np.array(qt.codes, copy=True),
             None if types is None else np.array(types, copy=True), val)
    with _OPERANDS_LOCK:
        _OPERANDS.pop(key, None)
        _OPERANDS[key] = entry
        while len(_OPERANDS) > _OPERANDS_KEPT:
            del _OPERANDS[next(iter(_OPERANDS))]
    return val


def _check_operands(a, b):
    for name, qt, axis in (("a", a, 1), ("b", b, 0)):
        if not isinstance(qt, QuantizedTensor):
            raise ParameterTypeError(f"{name} must be a QuantizedTensor (nybble.sw.quantize), not "
                            f"{type(qt).__name__}; for raw codes use nybble.sw.gemm_codes")
        if len(qt.shape) != 2:
            raise ParameterError(f"{name} must be 2-D, not shape {qt.shape}")
        if qt.axis != axis and qt.scheme.block != 0:
            want = "axis=-1 (rows of A along K)" if name == "a" else "axis=0 (columns of B along K)"
            raise ParameterError(f"{name} must be blocked along K: quantize it with {want}")
        if not qt.scheme.symmetric:
            raise ParameterError(f"{name} uses {qt.scheme.name}, which has zero points; gemm takes "
                             "symmetric schemes only (dequantize it first)")
    if a.shape[1] != b.shape[0]:
        raise ParameterError(f"K mismatch: a is {a.shape[0]} x {a.shape[1]} and b is "
                         f"{b.shape[0]} x {b.shape[1]}; a's columns must equal b's rows")


def _block_size(a, b):
    k = a.shape[1]
    ba = a.block if a.scheme.block != 0 else k
    bb = b.block if b.scheme.block != 0 else k
    if ba == k:
        return bb
    if bb == k or ba == bb:
        return ba
    raise ParameterError(f"block sizes differ along K: a ({a.scheme.name}) has {ba}, "
                     f"b ({b.scheme.name}) has {bb}; use schemes with equal block sizes")


def _scales_per_block(qt, nb, block):
    """Block scale values as (M, nb) for A or (nb, N) for B, on the common block grid."""
    s = qt.block_scale_values()
    bad = ~np.isfinite(s)
    if bad.any():
        # E8M0 0xFF, E4M3 0x7F / 0xFF and fp16 Inf/NaN decode to no number: the hardware's
        # result would be meaningless, so the definition has none either
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        codes = np.asarray(qt.scales)
        code = codes[where] if codes.shape == bad.shape else codes
        raise ParameterError(f"{qt.scheme.name} tensor holds a NaN/Inf block scale (scales"
                             f"{list(where)}, code {code!r}); scales "
                             f"must be finite: E8M0 0..254, E4M3 codes other than 0x7F / 0xFF, "
                             f"finite fp16")
    if qt.scheme.block == 0 or s.shape[qt.axis] == 1:
        s = np.repeat(s, nb, axis=qt.axis)
    elif qt.block != block:  # qt has one scale over all K, repeated on the shared grid
        s = np.repeat(s, nb, axis=qt.axis)
    return s


def gemm(a, b, *, acc_bits=32, overflow="wrap", block_acc=None):
    """The exact result (float64, M x N) a MAC array computes for ``a @ b``.

    ``a`` (M x K, quantized with ``axis=-1``) and ``b`` (K x N, ``axis=0``) are
    :class:`QuantizedTensor` s.  Order of operations, grids and rounding: module docstring.

    ``block_acc=(W, F)``: the windowed cross-block accumulator of the block-scaled PEs
    instead (module docstring, "Windowed cross-block accumulator"): ``W`` bits, ``F``
    fraction bits, ``overflow`` applied to it; ``acc_bits`` is then not used (block sums are
    exact).  Default ``None``: the behaviour above, unchanged.
    """
    if block_acc is not None:
        if not isinstance(block_acc, (tuple, list)) or len(block_acc) != 2:
            raise ParameterTypeError(f"block_acc must be a pair (acc_bits, acc_frac_bits), not "
                            f"{block_acc!r}")
        w, f = block_acc
        acc = gemm_block_acc(a, b, acc_bits=w, acc_frac_bits=f, overflow=overflow)
        x = np.ldexp(_ints_to_float(acc), -int(f))
        ta = a.tensor_scale if a.tensor_scale is not None else 1.0
        tb = b.tensor_scale if b.tensor_scale is not None else 1.0
        return x * (np.float64(ta) * np.float64(tb)) if (ta != 1.0 or tb != 1.0) else x
    acc_bits = _check_acc(acc_bits, overflow)
    _check_operands(a, b)
    pa, fa, amax = _operand_ints(a)
    pb, fb, bmax = _operand_ints(b)
    m, k = pa.shape
    n = pb.shape[1]
    block = _block_size(a, b)
    nb = -(-k // block) if k else 0
    sa = np.asarray(_scales_per_block(a, nb, block), dtype=np.float64)  # (M, nb)
    sb = np.asarray(_scales_per_block(b, nb, block), dtype=np.float64)  # (nb, N)
    ta = a.tensor_scale if a.tensor_scale is not None else 1.0
    tb = b.tensor_scale if b.tensor_scale is not None else 1.0
    exact_scales = {a.scheme.scale_kind, b.scheme.scale_kind} <= {"e8m0", "e4m3"} and nb > 1
    if nb == 0:
        x = np.zeros((m, n))
    elif exact_scales:
        x = _exact_cross_block(pa, pb, sa, sb, block, nb, acc_bits, overflow, fa + fb,
                               amax, bmax)
    else:
        x = _float_cross_block(pa, pb, sa, sb, block, nb, acc_bits, overflow, fa + fb,
                               amax, bmax)
    return x * (np.float64(ta) * np.float64(tb)) if (ta != 1.0 or tb != 1.0) else x


# -- fast exact paths ------------------------------------------------------------------------
# The definition, computed by BLAS wherever BLAS cannot round: a float matmul is exact when
# every product and every partial sum is an integer (times a power of two common to the
# output) below 2**24 (float32) or 2**53 (float64).  Each path checks that bound from the
# formats' largest integers, the block length and the scales' mantissas and exponents, and
# otherwise falls back to the int64 / Python-int loops that spell the definition out:
#
# * one block over K (per tensor, per channel): one matmul, then t = fl(S * sa * sb 2**-g);
# * no block sum can overflow and every term S_j sa_j sb_j is exact (MX, NVFP4, q4_0's fp16
#   scales): the scales folded into the operands, one matmul forms the exact sum
#   (:func:`_fold_exact`);
# * float32 scales (int4_g<N>, e3m0_g<N>, nf4_g<N>, bitmod_g<N>) or wrapping block sums: the
#   block sums S_j by BLAS, tile by tile, then the ordered float64 sum (:func:`_blockwise`)
#   or, for exact scales, the exact int64 sum rounded once (:func:`_blockwise_int`); block
#   sums beyond float64 that wrap are formed modulo 2**acc_bits from limbs (:func:`_int_parts`:
#   one float64 part with signed residues up to 32-bit accumulators, two parts beyond);
# * wrapped block sums of exact scales that the 2-adic valuations of the elements prove to
#   be multiples of 2**acc_bits (they wrap to 0) are skipped, the few others summed element
#   by element (:func:`_wrapped_pairs`; MX fp8 e5m2 at 32 bits: nearly all vanish);
# * block sums of exact scales beyond float64 that cannot wrap (MX fp8 e5m2 from 70 bits:
#   block sums up to 2**68.6): the scales folded in, one float64 matmul of the elements
#   that are multiples of 2**t (t from the data's own row sums: every partial sum below
#   2**(53 + t_a + t_b)), the few others' products in int64, both added and rounded once
#   (:func:`_split_exact`).
#
# After each block product, one fused pass (:mod:`nybble.sw.golden_kernels`, numba) wraps,
# scales and adds it -- the same operations, each rounded on its own, that four to six numpy
# passes did.  Tiles are shared among threads (numpy, BLAS and the kernels release the GIL);
# tests/sw/test_golden_fast.py checks every path against the definition bit for bit, and
# every bound at its switch point.
#
# Where the time goes at 1024^3 (one thread, against numpy's float32 matmul on one thread =
# 1; a loaded machine, so +-30%): int4_g32 / e3m0_g32 ~1.2 BLAS block products (K = 32 is
# short) + ~0.2 fused passes; nf4_g64 ~2.1 float64 block products (codebook integers of
# 2**14: sums beyond float32) + ~0.25; mxfp8_e4m3 ~2.4 float64 block products (sums up to
# 2**41 before the 32-bit wrap) + ~0.5 fused passes + ~0.13 valuations; mxfp8_e5m2 at 32
# bits ~0.9, mostly element integers and valuations (block sums wrapped to 40 bits take two
# float64 limb products per element pair, ~3.5).  Larger gemm calls (OpenBLAS limited to one
# thread) and other tile sizes measured no better.
# At the widths that never wrap (nybble.sw.scheme_acc_bits; what `nybble bench golden`
# times), measured on two threads against numpy's float32 matmul on two threads, loaded
# machine: mxfp8_e4m3 at 42 bits ~2.2 (no wrap: the folded sum, one float64 matmul);
# nf4_g64 at 36 bits ~1.7 (as at 32: float64 block products, fused passes); mxfp8_e5m2 at
# 70 bits ~2.0-2.2, the float64 matmul of the split sum (numpy's float64 matmul alone
# ~2.0-2.2) plus ~10 ms of kernels.

_F32_EXACT = 2 ** 24
_F64_EXACT = 2 ** 53
_BLAS_SERIAL = 1 << 18  # m*n*k of one gemm call that OpenBLAS runs on the calling thread
_TILE = 1 << 18         # outputs per tile: numpy calls long enough to share the GIL
_PARALLEL_WORK = 1 << 24  # m*n*k from which the tiles are shared among threads


def _threads():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _run_row_tiles(fn, m, tm, work):
    """``fn(r0, r1)`` over row tiles ``[r0, r1)`` of height ``tm`` on up to :func:`_threads`
    threads (numpy and BLAS release the GIL); the first exception is re-raised."""
    tiles = [(r, min(m, r + tm)) for r in range(0, m, tm)]
    nt = min(_threads() if work >= _PARALLEL_WORK else 1, len(tiles))
    if nt <= 1:
        for r0, r1 in tiles:
            fn(r0, r1)
        return
    it = iter(tiles)
    lock = threading.Lock()
    errors = []

    def worker():
        while not errors:
            with lock:
                t = next(it, None)
            if t is None:
                return
            try:
                fn(*t)
            except BaseException as e:  # noqa: BLE001 -- re-raised in the caller
                errors.append(e)
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(nt - 1)]
    for t in threads:
        t.start()
    worker()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _gemm_plan(a, b, out, cm, cn):
    """``out[...] = a @ b`` as one numpy call per part, each a stack of gemm calls of at
    most ``cm`` x ``cn`` outputs (small enough for OpenBLAS to run them on the calling
    thread): returns the ``(a, b, out)`` view triples to pass to ``np.matmul``."""
    h, kb = a.shape
    w = b.shape[1]
    hq, wq = h - h % cm, w - w % cn
    parts = []
    for r0, r1, rows in ((0, hq, cm), (hq, h, h - hq)):
        if r1 == r0:
            continue
        ar = a[r0:r1].reshape((r1 - r0) // rows, 1, rows, kb)
        o = out[r0:r1]
        if wq:
            parts.append((ar, b[:, :wq].reshape(kb, wq // cn, cn).transpose(1, 0, 2),
                          o[:, :wq].reshape((r1 - r0) // rows, rows, wq // cn, cn)
                          .transpose(0, 2, 1, 3)))
        if wq < w:
            parts.append((ar[:, 0], b[:, wq:], o[:, wq:].reshape((r1 - r0) // rows, rows,
                                                                 w - wq)))
    return parts


def _tile_plan(m, n, kb):
    """``(cm, cn, tm, tn)``: gemm calls of ``cm`` x ``cn`` outputs over ``kb`` (about
    ``_BLAS_SERIAL`` multiply-adds), output tiles of ``tm`` x ``tn`` (about ``_TILE``)."""
    side = max(8, int((_BLAS_SERIAL / kb) ** 0.5))  # gemm calls of about side x side outputs
    cm = min(m, 1 << (side.bit_length() - 1))
    cn = min(n, max(8, _BLAS_SERIAL // (cm * kb) // 16 * 16))  # whole SIMD panels
    tn = n if n * cm <= _TILE else min(n, max(cn, _TILE // cm // cn * cn))
    tm = max(cm, _TILE // tn // cm * cm)
    return cm, cn, tm, tn


def _blockwise(a, b, block, nb, col, row, *, mode="outer", wrap_bits=None):
    """Cross-block float64 sums, tile by tile (threads share the tiles).

    ``a`` (M, K), ``b`` (K, N, C-contiguous) float arrays whose block products
    ``S_j = a[:, Kj] @ b[Kj, :]`` BLAS computes exactly (the caller checked it).  ``S_j`` is
    wrapped to ``wrap_bits`` bits when given.  Then, in ascending block order from X = +0.0,
    ``X = fl(X + t_j)`` with ``col`` (M, nb), ``row`` (nb, N) and
    mode ``"outer"``: ``t_j = fl(S_j * fl(col_j * row_j))``;
    mode ``"colrow"``: ``t_j = fl(fl(S_j * col_j) * row_j)`` (the caller checked that the
    first product is exact, so this is the same single rounding).

    Each block product is one numpy call of stacked gemm calls small enough for OpenBLAS to
    run them on the calling thread (about 2**18 multiply-adds), so that threads can share
    the tiles; a tile's numpy calls are long enough that the threads rarely wait for the
    GIL, and its arrays stay in the cache."""
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n))
    if m == 0 or n == 0:
        return out
    cm, cn, tm, tn = _tile_plan(m, n, min(block, k))
    sdt = np.result_type(a.dtype, b.dtype)
    blocks = [slice(j * block, min(k, (j + 1) * block)) for j in range(nb)]
    ctiles = [(c0, min(n, c0 + tn)) for c0 in range(0, n, tn)]
    col_t = np.ascontiguousarray(col.T)  # (nb, M)
    row = np.ascontiguousarray(row)

    def rows(r0, r1):
        h = r1 - r0
        s_buf = np.empty(h * tn, sdt)
        x_buf = np.empty(h * tn) if tn < n else None
        for c0, c1 in ctiles:
            w = c1 - c0
            s_t = s_buf[:h * w].reshape(h, w)
            x = out[r0:r1] if x_buf is None else x_buf[:h * w].reshape(h, w)
            x.fill(0.0)
            for j, ks in enumerate(blocks):
                for args in _gemm_plan(a[r0:r1, ks], b[ks, c0:c1], s_t, cm, cn):
                    np.matmul(*args[:2], out=args[2])
                # one fused pass: wrap, scale, add
                _kernels().add_scaled(x, s_t, col_t[j, r0:r1], row[j, c0:c1],
                                      wrap_bits or 0, mode == "colrow")
            if x_buf is not None:
                out[r0:r1, c0:c1] = x

    _run_row_tiles(rows, m, tm, m * n * k)
    return out


def _int_parts(pa, pb, block, nb, bound, wrap_bits, amax, bmax):
    """How :func:`_blockwise_int` forms the block sums ``S_j`` exactly with BLAS: a list of
    ``(a, b, shift, block length)``, ``S_j = sum over the parts of (a_j @ b_j) << shift``
    (modulo 2**64), or None.  One part when float32 / float64 sums are exact; when they are
    not but ``S_j`` is wrapped to ``w <= 64`` bits, only ``S_j mod 2**w`` matters: with
    ``p = p_hi 2**h + p_lo`` (``2 h >= w``, ``0 <= p_lo < 2**h``),
    ``a b = a_lo b_lo + (a_hi b_lo + a_lo b_hi) 2**h`` modulo 2**w, and the cross term
    matters only modulo ``2**r`` (``r = w - h``): a factor of it may be replaced by its signed
    residue modulo 2**r (``|res| <= 2**(r-1)``), and ``a_lo b_lo + 2**h a_lo b_hi = a_lo (b_lo +
    2**h res(b_hi))`` modulo 2**w.  One float64 part of two segments per block,
    ``[a_lo | 2**h res(a_hi)] @ [b_lo + 2**h res(b_hi) ; res(b_lo)]``, when every partial sum
    is an integer below ``kb lo (lo + 2**(h+r-1)) + kb 2**(h+2r-2) < 2**53`` (``lo = 2**h -
    1``; ``w = 32``: blocks up to 42); else two parts, the cross term unreduced."""
    if pa.dtype == object or pb.dtype == object:
        return None
    ops = _float_operands(pa, pb, bound)
    if ops is not None:
        return [(*ops, 0, block)]
    if wrap_bits is None or wrap_bits > 64 or max(amax, bmax) >= _F64_EXACT:
        return None
    h = -(-wrap_bits // 2)
    r = wrap_bits - h
    kb = min(block, pa.shape[1])
    hi_a, hi_b = -(-amax // (1 << h)), -(-bmax // (1 << h))  # >= |p_hi|
    lo = (1 << h) - 1
    one = kb * lo * (lo + (1 << (h + r - 1))) + (kb << (h + 2 * r - 2)) < _F64_EXACT
    if not one and (kb * lo * lo >= _F64_EXACT or kb * (hi_a * lo + lo * hi_b) >= _F64_EXACT):
        return None
    m, k = pa.shape
    n = pb.shape[1]
    kp = nb * block  # zero-padded to whole blocks: zeros add nothing

    def split(p, axis):
        p = p.astype(np.float64)  # exact: |p| < 2**53 (checked above)
        pad = [(0, 0), (0, 0)]
        pad[axis] = (0, kp - k)
        p = np.pad(p, pad)
        p_hi = np.floor(p * 2.0 ** -h)
        return p_hi, p - p_hi * 2.0 ** h  # p_lo in [0, 2**h)

    def per_block(parts, axis):
        if axis == 1:
            return np.concatenate([q.reshape(m, nb, block) for q in parts],
                                  axis=2).reshape(m, len(parts) * kp)
        return np.concatenate([q.reshape(nb, block, n) for q in parts],
                              axis=1).reshape(len(parts) * kp, n)
    if one:  # (the kernels form the same limbs and residues with int64 masks and shifts)
        return [(_kernels().wrapped_limbs_rows(pa, block, nb, h, r),
                 _kernels().wrapped_limbs_cols(pb, block, nb, h, r), 0, 2 * block)]
    a_hi, a_lo = split(pa, 1)
    b_hi, b_lo = split(pb, 0)
    # per block j: [a_hi_j | a_lo_j] @ [b_lo_j ; b_hi_j] = a_hi_j b_lo_j + a_lo_j b_hi_j
    return [(a_lo, b_lo, 0, block),
            (per_block([a_hi, a_lo], 1), per_block([b_lo, b_hi], 0), h, 2 * block)]


def _blockwise_int(parts, nb, m, n, ma, sha, mb, shb, wrap_bits, in_float=False):
    """Exact cross-block sums in int64, tile by tile (threads share the tiles):
    ``X = sum_j wrap(S_j) * ma_j 2**sha_j * mb_j 2**shb_j`` with integer mantissas ``ma``
    (M, nb), ``mb`` (nb, N) and shifts ``sha``, ``shb`` >= 0 (the caller checked that every
    partial sum is below 2**63); ``S_j`` from ``parts`` (:func:`_int_parts`), wrapped to
    ``wrap_bits`` bits (two's complement, by shifts) when given.

    ``in_float``: the caller checked that there is one part, every ``|S_j|`` is below 2**52
    and every partial sum below 2**53: ``X`` is then formed in float64 (exact integers),
    returned as float64."""
    out = np.empty((m, n), np.float64 if in_float else np.int64)
    if m == 0 or n == 0:
        return out
    if len(parts) > 2 or parts[0][2] != 0:
        raise AssertionError("_int_parts gives one part, or two with the first unshifted")
    cm, cn, tm, tn = _tile_plan(m, n, max(min(p[3], p[0].shape[1]) for p in parts))
    ctiles = [(c0, min(n, c0 + tn)) for c0 in range(0, n, tn)]
    fa_t = np.ascontiguousarray(_int_factors(ma, sha).T)  # (nb, M)
    fb = _int_factors(mb, shb)  # (nb, N)
    shift = parts[1][2] if len(parts) > 1 else -1
    w = 64 if wrap_bits is None else wrap_bits  # the low 64 bits of an int64: itself
    if in_float:  # (float64 integers below 2**53: exact)
        fa_t, fb, w = fa_t.astype(np.float64), fb.astype(np.float64), wrap_bits or 0

    def rows(r0, r1):
        h = r1 - r0
        bufs = [np.empty(h * tn, np.result_type(p[0].dtype, p[1].dtype)) for p in parts]
        x_buf = np.empty(h * tn, out.dtype) if tn < n else None
        for c0, c1 in ctiles:
            wd = c1 - c0
            x = out[r0:r1] if x_buf is None else x_buf[:h * wd].reshape(h, wd)
            x.fill(0)
            for j in range(nb):
                s = []
                for i, (a, b, _, bl) in enumerate(parts):
                    ks = slice(j * bl, min(a.shape[1], (j + 1) * bl))
                    s.append(bufs[i][:h * wd].reshape(h, wd))
                    for args in _gemm_plan(a[r0:r1, ks], b[ks, c0:c1], s[-1], cm, cn):
                        np.matmul(*args[:2], out=args[2])
                # one fused pass: (S_lo + S_hi << shift) mod 2**64, wrapped, times the factors
                if in_float:
                    _kernels().add_wrapped_float(x, s[0], w, fa_t[j, r0:r1], fb[j, c0:c1])
                else:
                    _kernels().add_wrapped(x, s[0], s[-1], shift, w, fa_t[j, r0:r1],
                                           fb[j, c0:c1])
            if x_buf is not None:
                out[r0:r1, c0:c1] = x

    _run_row_tiles(rows, m, tm, m * n * nb * max(min(p[3], p[0].shape[1]) for p in parts))
    return out


_PAIRS_SHARE = 16  # direct block sums pay when at most 1 / 16 of them can be nonzero


def _wrapped_pairs(pa, pb, block, nb, w, ma, sha, mb, shb):
    """:func:`_blockwise_int`'s sum for block sums wrapped to ``w <= 64`` bits, formed
    directly where they can be nonzero, or None when that is not most of them.

    Row i's elements in block j are multiples of ``2**alpha[i, j]``, column l's of
    ``2**beta[j, l]`` (:func:`block_valuations`): every product, and so the block sum, is a
    multiple of ``2**(alpha + beta)``; from ``alpha + beta >= w`` on it wraps to exactly 0.
    The remaining block sums are formed modulo 2**64 (:func:`add_wrapped_pairs`), which
    the wrap to ``w <= 64`` bits leaves unchanged.  Used when at most 1 / ``_PAIRS_SHARE``
    of the (row, column, block) triples remain: e.g. MX fp8 e5m2 block sums wrapped to 32
    bits, whose elements are mostly multiples of 2**16 (products of 2**32)."""
    m, k = pa.shape
    n = pb.shape[1]
    if w > 64 or m == 0 or n == 0 or pa.dtype == object or pb.dtype == object:
        return None
    alpha = _kernels().block_valuations(pa, block, nb, 1)
    beta = _kernels().block_valuations(pb, block, nb, 0)
    b_sorted = np.sort(beta, axis=1)
    left = sum(int(np.searchsorted(b_sorted[j], w - alpha[:, j]).sum()) for j in range(nb))
    if left * _PAIRS_SHARE > m * n * nb:
        return None
    x = np.zeros((m, n), np.int64)
    _kernels().add_wrapped_pairs(x, np.ascontiguousarray(pa, dtype=np.int64),
                      np.ascontiguousarray(pb.T, dtype=np.int64), block, w, alpha, beta,
                      _int_factors(ma, sha), _int_factors(mb, shb))
    return x


def _int_factors(mant, shift):
    """``mant * 2**shift`` as int64 (integer mantissas, shifts >= 0 of :func:`_pow2_folds`).
    Below 2**62: the callers checked ``_fold_bound(smax, ...) < 2**62`` with ``smax >= 1``
    (``acc_bits >= 2``, a format's largest integer >= 1), and that bound is at least the
    product of the largest factors."""
    return mant.astype(np.int64) << shift.astype(np.int64)


def _float_operands(pa, pb, bound):
    """Element integers as the float type in which BLAS sums blocks exactly (|sum| <=
    ``bound``): (a, b), or None when float64 is not enough."""
    if bound < _F32_EXACT:
        dt = np.float32
    elif bound < 2 ** 52:
        dt = np.float64
    else:
        return None
    if pa.dtype == object or pb.dtype == object:
        return None
    return pa.astype(dt, copy=False), pb.astype(dt, copy=False)


def _bits(mant):
    """Bit length of the largest |mantissa| in an integer array (0 when empty)."""
    return int(np.abs(mant).max(initial=0)).bit_length()


def _uniform(s):
    """Whether ``s`` holds at least one scale and every one is the same number."""
    return s.size > 0 and bool(np.all(s == s.flat[0]))


def _float_cross_block(pa, pb, sa, sb, block, nb, acc_bits, overflow, g, amax, bmax):
    """Float-scaled blocks: ``X = fl(X + fl(S_j * 2**-g * fl(sa_j * sb_j)))`` in ascending
    block order, from X = +0.0 (module docstring)."""
    m, k = pa.shape
    n = pb.shape[1]
    lim = 1 << (acc_bits - 1)
    bound = amax * bmax * min(block, k)  # >= |every partial block sum|
    safe = bound < lim
    ma, _ = _split_pow2(sa)
    mb, _ = _split_pow2(sb)
    a_bits, b_bits = _bits(ma), _bits(mb)
    # fl(sa_j sb_j) is the exact product, and no product of scales, block sums and 2**-g
    # comes near float64's subnormals or infinity: the products may be formed in any order
    tiny = float(np.min(np.abs(sa[sa != 0]), initial=1.0)) * \
        float(np.min(np.abs(sb[sb != 0]), initial=1.0)) * 2.0 ** -g
    huge = float(np.max(np.abs(sa), initial=0.0)) * float(np.max(np.abs(sb), initial=0.0)) * \
        2.0 ** -g * float(min(bound, lim, 1 << 1000))
    scales_exact = a_bits + b_bits <= 53 and tiny >= 2.0 ** -1000 and huge < 2.0 ** 1000
    if scales_exact and nb > 1 and safe:
        # every term and every partial sum exact: the ordered float64 sum is the exact sum
        x = _fold_exact(pa, pb, sa, sb, block, nb, g, amax, bmax)
        if x is not None:
            return x
    sbg = sb * 2.0 ** -g
    smax = min(bound, lim)  # >= |S_j| after wrap / saturate
    whole = None  # the one block sum, when there is one block
    if scales_exact and nb == 1:
        s = whole = _accumulate(pa, pb, acc_bits, overflow, amax, bmax)
        if s.dtype != object and smax < _F64_EXACT:
            if _uniform(sa) and _uniform(sbg):
                # per tensor: c = sa sb 2**-g is exact (mantissas of <= 53 bits together,
                # normal range: scales_exact), so fl(S * c) is t with its one rounding
                x = np.multiply(s, sa[0, 0] * sbg[0, 0], dtype=np.float64)
            elif smax * 2 ** a_bits <= _F64_EXACT:  # S * sa exact: one rounding, by sb 2**-g
                x = np.multiply(s, sa[:, :1], dtype=np.float64)
                x *= sbg[:1, :]
            else:
                x = sa[:, :1] * sbg[:1, :]
                x *= s
            x += 0.0  # X = fl(+0.0 + t): no -0.0
            return x
    elif scales_exact and bound < 2 ** 52 and (safe or overflow == "wrap"):
        # S_j * sa_j exact: one rounding, by sb_j 2**-g, gives t_j
        col_exact = smax * 2 ** a_bits <= _F64_EXACT
        ops = _float_operands(pa, pb, bound)
        if ops is not None:
            return _blockwise(*ops, block, nb, sa, sbg, mode="colrow" if col_exact else "outer",
                              wrap_bits=None if safe else acc_bits)
    # the definition, block by block on whole matrices
    grid = 2.0 ** -g
    x = np.zeros((m, n))
    for j in range(nb):
        ks = slice(j * block, min(k, (j + 1) * block))
        s = whole if whole is not None else \
            _accumulate(pa[:, ks], pb[ks, :], acc_bits, overflow, amax, bmax)
        x = x + (s.astype(np.float64) * grid) * (sa[:, j][:, None] * sb[j, :][None, :])
    return x


def _fold(p, fold, block, axis, dt):
    """``p`` times each block's factor ``fold`` along ``axis``, in the float type ``dt`` (the
    caller checked that every product is exact in it)."""
    k = p.shape[axis]
    nb = fold.shape[axis]
    p = p.astype(dt, copy=False)
    if nb * block != k:  # ragged last block: expand the factors element by element
        f = np.repeat(fold, block, axis=axis)
        f = f[:, :k] if axis == 1 else f[:k, :]
        return p * f.astype(dt)
    if axis == 1:
        out = p.reshape(p.shape[0], nb, block) * fold[:, :, None].astype(dt)
    else:
        out = p.reshape(nb, block, p.shape[1]) * fold[:, None, :].astype(dt)
    return out.reshape(p.shape)


def _split_pow2(s):
    """Scale values as (odd-or-zero integer mantissa, exponent): s = mant * 2**exp."""
    mant, ex = np.frexp(s)  # s = mant * 2**ex, 0.5 <= |mant| < 1
    mi = np.ldexp(mant, 53).astype(np.int64)
    low = mi & -mi  # lowest set bit: strip trailing zeros so mantissas stay small
    tz = np.where(mi != 0, np.frexp(low.astype(np.float64))[1] - 1, 0)
    return mi >> tz, ex.astype(np.int64) - 53 + tz


def _min_exponents(ma, ea, mb, eb):
    """Each row's (A, ``(M, 1)``) / column's (B, ``(1, N)``) smallest exponent among its
    nonzero scale mantissas (0 where all are zero)."""
    big = np.iinfo(np.int64).max
    ea_min = np.min(np.where(ma != 0, ea, big), axis=1, keepdims=True)
    eb_min = np.min(np.where(mb != 0, eb, big), axis=0, keepdims=True)
    return np.where(ea_min == big, 0, ea_min), np.where(eb_min == big, 0, eb_min)


def _pow2_folds(sa, sb):
    """Scales as exact integer factors relative to each row's / column's smallest exponent:
    ``sa = fold_a * 2**ea_min`` (fold_a (M, nb) float64 integers, ea_min (M, 1)), likewise
    ``sb = fold_b * 2**eb_min``; and the bit lengths of the largest factors."""
    ma, ea = _split_pow2(sa)  # (M, nb)
    mb, eb = _split_pow2(sb)  # (nb, N)
    ea_min, eb_min = _min_exponents(ma, ea, mb, eb)
    # (a zero mantissa's exponent may lie below the minimum; its factor is 0 whatever it is)
    sha = np.where(ma != 0, ea - ea_min, 0)
    shb = np.where(mb != 0, eb - eb_min, 0)
    fa_bits = int(sha.max()) + _bits(ma) if sha.size else 0
    fb_bits = int(shb.max()) + _bits(mb) if shb.size else 0
    if fa_bits >= 1000 or fb_bits >= 1000:
        return None
    fold_a = (ma * np.exp2(sha)).astype(np.float64)  # exact below 2**1024
    fold_b = (mb * np.exp2(shb)).astype(np.float64)
    return fold_a, fold_b, ea_min, eb_min, fa_bits, fb_bits, (ma, sha, mb, shb)


def _fold_bound(smax, fold_a, fold_b):
    """>= |every partial sum over blocks of S_j fold_a fold_b| with |S_j| <= smax: the sum for
    row m and column n is at most smax * sum_j |fold_a[m, j]| * max|fold_b| (and vice versa)."""
    if fold_a.size == 0:
        return 0.0
    rows = float(np.abs(fold_a).sum(axis=1).max()) * float(np.abs(fold_b).max())
    cols = float(np.abs(fold_b).sum(axis=0).max()) * float(np.abs(fold_a).max())
    return float(min(smax, 1 << 1000)) * min(rows, cols)


def _fold_exact(pa, pb, sa, sb, block, nb, grid_bits, amax, bmax):
    """``sum_j S_j sa_j sb_j 2**-grid_bits`` as one exact BLAS matmul, the scales' mantissas
    and exponents folded into the operands (relative to each row's / column's smallest
    exponent), when every partial sum is an integer below 2**52 and no block sum can
    overflow; None otherwise."""
    folds = _pow2_folds(sa, sb)
    if folds is None:
        return None
    fold_a, fold_b, ea_min, eb_min, fa_bits, fb_bits, _ = folds
    if amax.bit_length() + fa_bits >= 53 or bmax.bit_length() + fb_bits >= 53:
        return None
    bound = _fold_bound(min(block, pa.shape[1]) * amax * bmax, fold_a, fold_b)
    if bound >= 2 ** 52:
        return None
    f32 = bound < _F32_EXACT and amax * float(np.abs(fold_a).max(initial=0)) < _F32_EXACT \
        and bmax * float(np.abs(fold_b).max(initial=0)) < _F32_EXACT
    dt, emax = (np.float32, 126) if f32 else (np.float64, 1022)
    e_a, e_b = ea_min - grid_bits, eb_min
    # every operand, product and partial sum is an integer multiple of 2**(e_a + e_b) below
    # bound * 2**(e_a + e_b): fold the powers of two in too while those stay normal numbers
    if e_a.size and e_b.size and int(e_a.min()) + int(e_b.min()) >= -emax and \
            int(e_a.max()) + int(e_b.max()) + int(bound).bit_length() <= emax and \
            min(int(e_a.min()), int(e_b.min())) >= -emax and \
            max(int(e_a.max()) + amax.bit_length() + fa_bits,
                int(e_b.max()) + bmax.bit_length() + fb_bits) <= emax:
        a_f = _fold(pa, fold_a * np.exp2(e_a), block, 1, dt)
        b_f = _fold(pb, fold_b * np.exp2(e_b), block, 0, dt)
        return np.asarray(a_f @ b_f, dtype=np.float64)
    s = _fold(pa, fold_a, block, 1, dt) @ _fold(pb, fold_b, block, 0, dt)
    # |s| < 2**53 is exact; scaling by powers of two is exact
    return _scale_pow2(s, e_a, e_b)


_SPLIT_SHARE = 32  # the low entries' int64 products pay up to 1 / 32 of m*n*k


def _split_exact(pa, pb, block, grid_bits, folds, amax, bmax):
    """``sum_j S_j sa_j sb_j 2**-grid_bits`` exactly, rounded once, for exact scales whose
    sum leaves float64 (MX fp8 e5m2: block sums up to 2**69), when no block sum can overflow;
    None when the low entries below are more than 1 / ``_SPLIT_SHARE`` of the work.

    The scales folded into the operands (``A``, ``B``: integers, :func:`_pow2_folds`), every
    partial sum of ``A @ B`` is at most ``bound`` = the largest row sum of ``|A|`` times the
    largest ``|B|`` (or the transpose).  The entries of ``A`` that are multiples of
    ``2**ta`` and those of ``B`` that are multiples of ``2**tb`` (``A_hi``, ``B_hi``) have
    products and partial sums that are multiples of ``2**(ta + tb)`` below ``bound``: with
    ``bound < 2**(53 + ta + tb)`` one float64 matmul forms ``A_hi @ B_hi`` exactly (in any
    order, fused or not).  The rest, ``A_lo @ B + A_hi @ B_lo``, has few terms (elements of
    small 2-adic valuation: in MX e5m2, those far below their block's largest) and is formed
    in int64 (:func:`add_lo_products`, checked below 2**62); where they land, the two
    integers are added and rounded once (:func:`round_hi_lo_at`).  The result's powers of
    two are folded into the operands (None where a product would leave float64's normal
    numbers: not for E8M0 scales).  The data's own magnitudes set ``ta + tb``: for
    ``nybble bench golden``'s Gaussian 1024 x 1024 operands in MX fp8 e5m2, ``ta + tb = 22``
    and 1 and 2 of the 2**20 elements are low."""
    fold_a, fold_b, ea_min, eb_min, fa_bits, fb_bits, (ma, sha, mb, shb) = folds
    if amax.bit_length() + fa_bits > 53 or bmax.bit_length() + fb_bits > 53:
        return None  # folded operands beyond float64's integers
    m, k = pa.shape
    n = pb.shape[1]
    if m == 0 or n == 0 or k == 0:
        return None
    nb = fold_a.shape[1]
    # |A| summed over each row, the largest |A|, likewise B's columns (float64 sums of
    # integers: relative errors below 2**-40, covered by the margin)
    sum_a, max_a = _kernels().block_abs_stats(pa, block, nb, 1)
    sum_b, max_b = _kernels().block_abs_stats(pb, block, nb, 0)
    rows_a, cols_b = float((sum_a * np.abs(fold_a)).sum(axis=1).max()), \
        float((sum_b * np.abs(fold_b)).sum(axis=0).max())
    max_a, max_b = float((max_a * np.abs(fold_a)).max()), float((max_b * np.abs(fold_b)).max())
    margin = 1 + 2.0 ** -30
    bound = min(rows_a * max_b, cols_b * max_a) * margin
    need = max(0, np.frexp(bound)[1] - 53)  # bound < 2**(53 + need)
    if need > 62:
        return None
    ta = (need + 1) // 2
    fa_i, fb_i = _int_factors(ma, sha), _int_factors(mb, shb)
    e_col, e_row = ea_min[:, 0] - grid_bits, eb_min[0]  # the result's powers of two
    # folded into the operands while every operand, product and partial sum stays a normal
    # float64 (then exact: integers times 2**(e_col + e_row), below 2**(53 + need) times it)
    # (always for E8M0 scales: |e| <= 127 + 127 + the grid's fraction bits)
    if not (int(e_col.min()) + int(e_row.min()) >= -1022 and
            min(int(e_col.min()), int(e_row.min())) >= -1022 and
            int(e_col.max()) + int(e_row.max()) + 53 + need <= 1023 and
            max(int(e_col.max()), int(e_row.max())) + 53 <= 1023):
        return None
    col, row = np.exp2(e_col.astype(np.float64)), np.exp2(e_row.astype(np.float64))
    hi_a, hi_b = np.empty((m, k)), np.empty((k, n))
    # more low entries of A alone (of B alone) than m k / 32 (k n / 32) would not pay: the
    # kernels list at most one more, and the check below refuses a list that was cut short
    kern = _kernels()
    n_a, a_lo = kern.split_folded(pa, fa_i, block, 1, ta, hi_a, m * k // _SPLIT_SHARE + 1, col)
    n_b, b_lo = kern.split_folded(pb, fb_i, block, 0, need - ta, hi_b, k * n // _SPLIT_SHARE + 1,
                             row)
    if (n_a * n + n_b * m) * _SPLIT_SHARE > m * n * k:
        return None
    if n_a != a_lo[0].size or n_b != b_lo[0].size:
        raise AssertionError("split_folded's caps let a list that was cut short through")
    lo_rows = np.bincount(a_lo[0], np.abs(a_lo[2]).astype(np.float64), m).max(initial=0)
    lo_cols = np.bincount(b_lo[1], np.abs(b_lo[2]).astype(np.float64), n).max(initial=0)
    if (float(lo_rows) * max_b + max_a * float(lo_cols)) * margin >= 2 ** 62:
        return None
    c = np.zeros((m, n), np.int64)
    kern.add_lo_products(c, pa, fa_i, pb, fb_i, block, ta, a_lo, b_lo)
    # all the work that does not need the matmul is done: after a threaded BLAS call its
    # threads spin for a while and slow any pass over the whole output (~15 ms at 1024**2)
    x = hi_a @ hi_b  # exact where c is 0; rounded once where the low products land
    kern.round_hi_lo_at(x, c, need, col, row, a_lo[0], b_lo[1])
    return x


def _scale_pow2(x, e_col, e_row):
    """``x * 2**(e_col + e_row)`` as float64 (``x`` exact integers: float, int64 or Python
    ints; ``e_col`` (M, 1), ``e_row`` (1, N) integers): each ``x`` rounded once to float64,
    the power-of-two scaling exact unless the result is subnormal or overflows."""
    if x.dtype == object:
        x = _ints_to_float(x)
    if np.all(np.abs(e_col) <= 500) and np.all(np.abs(e_row) <= 500):
        out = np.multiply(x, np.exp2(e_col.astype(np.float64)), dtype=np.float64)
        out *= np.exp2(e_row.astype(np.float64))  # no subnormal / infinite intermediate
        return out
    return np.ldexp(x.astype(np.float64), (e_col + e_row).astype(np.int64))


def _drop_zero_blocks(pa, pb, sa, sb, block):
    """The scales with 0 where the row's / column's block holds only zeros (its block sums
    are 0 whatever the scale, so the exact sum is unchanged), and whether any changed."""
    starts = np.arange(0, pa.shape[1], block)
    if starts.size == 0:
        return sa, sb, False
    za = np.logical_or.reduceat(np.asarray(pa != 0), starts, axis=1)  # (M, nb)
    zb = np.logical_or.reduceat(np.asarray(pb != 0), starts, axis=0)  # (nb, N)
    sa2, sb2 = np.where(za, sa, 0.0), np.where(zb, sb, 0.0)
    return sa2, sb2, bool(np.any(sa2 != sa) or np.any(sb2 != sb))


def _exact_cross_block(pa, pb, sa, sb, block, nb, acc_bits, overflow, grid_bits, amax, bmax):
    """X = sum_j S_j sa_j sb_j 2**-grid_bits exactly, rounded once to float64."""
    m, k = pa.shape
    n = pb.shape[1]
    lim = 1 << (acc_bits - 1)
    bound = amax * bmax * min(block, k)
    safe = bound < lim
    for retry in (False, True):
        if retry:  # the scales of all-zero blocks (E8M0 2**-127) may be what spreads them
            sa, sb, dropped = _drop_zero_blocks(pa, pb, sa, sb, block)
            if not dropped:
                break
        if safe:
            x = _fold_exact(pa, pb, sa, sb, block, nb, grid_bits, amax, bmax)
            if x is not None:
                return x
        folds = _pow2_folds(sa, sb)
        if safe and folds is not None and bound >= 2 ** 52:  # block sums beyond float64
            x = _split_exact(pa, pb, block, grid_bits, folds, amax, bmax)
            if x is not None:
                return x
        if folds is not None and (safe or overflow == "wrap"):
            # block sums one by one (wrapped), combined exactly in int64 and rounded once
            fold_a, fold_b, ea_min, eb_min, fa_bits, fb_bits, (ma, sha, mb, shb) = folds
            wrap_bits = None if safe else acc_bits
            x_bound = _fold_bound(min(bound, lim), fold_a, fold_b)
            if x_bound < 2 ** 62:
                x = None if safe else _wrapped_pairs(pa, pb, block, nb, acc_bits, ma, sha,
                                                     mb, shb)
                if x is not None:
                    return _scale_pow2(x, ea_min - grid_bits, eb_min)
                parts = _int_parts(pa, pb, block, nb, bound, wrap_bits, amax, bmax)
                if parts is not None:
                    # one part of plain block sums (|S_j| <= bound < 2**52; wrapped: <=
                    # 2**(acc_bits-1)) and every partial sum below 2**53: float64 is exact
                    in_float = bound < 2 ** 52 and x_bound < _F64_EXACT
                    x = _blockwise_int(parts, nb, m, n, ma, sha, mb, shb, wrap_bits,
                                       in_float)
                    return _scale_pow2(x, ea_min - grid_bits, eb_min)
    # general path: per-block exact integer sums combined with Python integers
    ma, ea = _split_pow2(sa)  # (M, nb)
    mb, eb = _split_pow2(sb)  # (nb, N)
    ea_min, eb_min = _min_exponents(ma, ea, mb, eb)
    total = np.zeros((m, n), dtype=object)
    emin = int(ea_min.min()) + int(eb_min.min())
    for j in range(nb):
        ks = slice(j * block, min(k, (j + 1) * block))
        s = _accumulate(pa[:, ks], pb[ks, :], acc_bits, overflow, amax, bmax)
        s = (s.astype(np.int64) if s.dtype.kind == "f" else s).astype(object)
        f = np.outer(ma[:, j], mb[j, :]).astype(object)
        # (a zero mantissa's exponent may lie below emin; its term is 0 whatever the shift)
        sh = np.maximum(ea[:, j][:, None] + eb[j, :][None, :] - emin, 0).astype(object)
        total = total + s * f * np.vectorize(lambda v: 1 << int(v), otypes=[object])(sh)
    out = np.vectorize(lambda v: float(v) if abs(v) < (1 << 1000) else float("inf"),
                       otypes=[np.float64])(total)
    # float(int) rounds to nearest even; the power-of-two scaling after it is exact
    return np.ldexp(out, emin - grid_bits)


# -- the windowed cross-block accumulator of the block-scaled PEs ---------------------------

def _ints_to_float(acc):
    """Integer array (int64 or Python ints) -> float64, each rounded once to nearest even."""
    acc = np.asarray(acc)
    if acc.dtype != object:
        return acc.astype(np.float64)
    return np.vectorize(lambda v: float(v) if abs(v) < (1 << 1023) else
                        (float("inf") if v > 0 else float("-inf")), otypes=[np.float64])(acc)


def acc_to_float(acc, frac_bits):
    """Accumulators (integers on the grid ``2**-frac_bits``) -> float64 values, each rounded
    once to nearest even."""
    return np.ldexp(_ints_to_float(acc), -int(frac_bits))


def _scale_values(codes, fmt, name):
    """Scale codes of ``fmt`` -> exact float64 values; NaN / Inf codes refused."""
    fmt = get_format(fmt)
    c = np.asarray(codes)
    if not np.issubdtype(c.dtype, np.integer):
        raise ParameterTypeError(f"{name} must be an integer array of {fmt.name} codes, not dtype {c.dtype}")
    if c.size and (c.min() < 0 or c.max() >= fmt.n_codes):
        raise ParameterError(f"{name} codes of {fmt.name} must be in 0..{fmt.n_codes - 1}")
    v = fmt.values[c.astype(np.int64)]
    if not np.all(np.isfinite(v)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(v))[0])
        raise ParameterError(f"{name} holds the NaN/Inf code {int(c[bad])} of {fmt.name} at {bad}")
    return v


def _check_window(acc_bits, acc_frac_bits, overflow):
    acc_bits = check_integral("acc_bits", acc_bits, 2, 4096)
    acc_frac_bits = check_integral("acc_frac_bits", acc_frac_bits, -4096, 4096)
    if overflow not in OVERFLOW_MODES:
        raise ParameterError(f"overflow must be one of {', '.join(OVERFLOW_MODES)}, not {overflow!r}")
    return acc_bits, acc_frac_bits


def _block_window_core(pa, pb, g, sa, sb, block, acc_bits, acc_frac_bits, overflow,
                       amax, bmax):
    """Steps 1-3 of the windowed cross-block accumulator.  ``pa`` (M, K), ``pb`` (K, N)
    element integers on grids summing to ``2**-g``; ``sa`` (M, nb), ``sb`` (nb, N) exact
    float64 scale values.  Returns ``(acc, overflow flags)``."""
    m, k = pa.shape
    n = pb.shape[1]
    nb = -(-k // block) if k else 0
    if sa.shape != (m, nb) or sb.shape != (nb, n):
        raise ParameterError(f"scales must be (M, blocks) = {(m, nb)} for a and (blocks, N) = "
                         f"{(nb, n)} for b (block {block}), not {sa.shape} and {sb.shape}")
    w, f = acc_bits, acc_frac_bits
    lim = 1 << (w - 1)
    big_obj = w > 60
    acc = np.zeros((m, n), dtype=object if big_obj else np.int64)
    flags = np.zeros((m, n), dtype=bool)
    ma, ea = _split_pow2(sa)   # odd-or-zero integer mantissa, exponent: s = mant * 2**exp
    mb, eb = _split_pow2(sb)
    bound = int(amax) * int(bmax) * block
    fold = int(np.abs(ma).max(initial=0)) * int(np.abs(mb).max(initial=0))
    fast = not big_obj and bound * fold < 2 ** 52
    for j in range(nb):
        ks = slice(j * block, min(k, (j + 1) * block))
        s = _int_matmul(pa[:, ks], pb[ks, :], bound)
        s = s.astype(np.int64) if s.dtype.kind == "f" else s
        sh = ea[:, j][:, None] + eb[j, :][None, :] + (f - g)
        if fast:
            t = s.astype(np.int64) * np.outer(ma[:, j], mb[j, :])
            c, far = _floor_shift_int64(t, sh, w, overflow)
        else:
            t = s.astype(object) * np.outer(ma[:, j], mb[j, :]).astype(object)
            c, far = _floor_shift_object(t, sh.astype(object), w, overflow)
        total = (acc + c if j else c) if fast else (acc.astype(object) + c if j else c)
        out = far | (total >= lim) | (total < -lim)
        if np.any(out) and overflow == "error":
            mm, nn = (int(i) for i in np.argwhere(out)[0])
            raise ParameterError(f"cross-block accumulator overflow: acc_bits={w} "
                             f"(acc_frac_bits={f}) is too narrow; output [{mm}, {nn}] leaves "
                             f"the range at block {j}")
        flags |= out
        if overflow == "wrap":
            total = (total + lim) % (2 * lim) - lim
        else:
            total = np.minimum(np.maximum(total, -lim), lim - 1)
        acc = total if big_obj else total.astype(np.int64)
    return acc, flags


def _floor_shift_int64(t, sh, w, overflow):
    """``c = floor(t * 2**sh)`` for int64 ``t`` (|t| < 2**52), ``w <= 60``: returns ``(c, far)``;
    where ``|c|`` needs more than ``w + 1`` bits (``far``) ``c`` is replaced by its value modulo
    ``2**w`` (wrap) or by ``+-2**w`` (saturate, error): all that the accumulator needs."""
    right = t >> np.minimum(np.maximum(-sh, 0), 63)
    mag = np.abs(t)
    bits = np.where(mag > 0, np.frexp(mag.astype(np.float64))[1], 0)  # bit length, exact < 2**52
    lsh = np.maximum(sh, 0)
    far = (sh >= 0) & (mag > 0) & (bits + lsh > w + 1)
    near_left = np.where(far, 0, t) << np.where(far | (t == 0), 0, lsh)
    if overflow == "wrap":
        keep = np.clip(w - lsh, 0, 62)
        wrapped = np.where(lsh < w, (t & ((np.int64(1) << keep) - 1)) << np.minimum(lsh, 62), 0)
        far_val = wrapped
    else:
        far_val = np.where(t > 0, np.int64(1) << w, -(np.int64(1) << w))
    c = np.where(sh < 0, right, np.where(far, far_val, near_left))
    return c, far


def _floor_shift_object(t, sh, w, overflow):
    """:func:`_floor_shift_int64` in Python integers (any width)."""
    def one(tv, shv):
        tv, shv = int(tv), int(shv)
        if tv == 0:
            return 0, False
        if shv < 0:
            return tv >> min(-shv, tv.bit_length() + 1), False
        if tv.bit_length() + shv <= w + 1:
            return tv << shv, False
        if overflow == "wrap":
            return ((tv << shv) % (1 << w) if shv < w else 0), True
        return ((1 << w) if tv > 0 else -(1 << w)), True
    c, far = np.frompyfunc(one, 2, 2)(t, sh)
    return c, far.astype(bool)


def gemm_block_codes(a_codes, a_scales, b_codes, b_scales, fmt_a, fmt_b, *, scale_fmt,
                     block, acc_bits, acc_frac_bits, overflow="wrap", return_overflow=False):
    """The windowed cross-block accumulator (module docstring) for raw codes.

    ``a_codes`` (M x K) and ``b_codes`` (K x N) are element codes of ``fmt_a`` / ``fmt_b``;
    ``a_scales`` (M x nb) and ``b_scales`` (nb x N), ``nb = ceil(K / block)``, are scale
    codes of ``scale_fmt`` (``"e8m0"``, ``"e4m3"``, ``"float16"``, ... or a pair of formats,
    one per operand).  Returns the ``acc_bits``-bit accumulators (int64, or Python ints past
    60 bits) on the grid ``2**-acc_frac_bits``; with ``return_overflow`` also the sticky
    overflow flag of every output.
    """
    acc_bits, acc_frac_bits = _check_window(acc_bits, acc_frac_bits, overflow)
    block = check_integral("block", block, 1)
    sfa, sfb = scale_fmt if isinstance(scale_fmt, (tuple, list)) else (scale_fmt, scale_fmt)
    pa, fa, amax = _operand(a_codes, fmt_a, "a_codes")
    pb, fb, bmax = _operand(b_codes, fmt_b, "b_codes")
    if pa.shape[1] != pb.shape[0]:
        raise ParameterError(f"K mismatch: a_codes is {pa.shape[0]} x {pa.shape[1]} and b_codes is "
                         f"{pb.shape[0]} x {pb.shape[1]}; a's columns must equal b's rows")
    sa = _scale_values(a_scales, sfa, "a_scales")
    sb = _scale_values(b_scales, sfb, "b_scales")
    acc, flags = _block_window_core(pa, pb, fa + fb, sa, sb, block, acc_bits, acc_frac_bits,
                                    overflow, amax, bmax)
    return (acc, flags) if return_overflow else acc


def gemm_block_acc(a, b, *, acc_bits, acc_frac_bits, overflow="wrap", return_overflow=False):
    """The windowed cross-block accumulator (module docstring) of two :class:`QuantizedTensor`
    s: ``acc_bits``-bit integers on the grid ``2**-acc_frac_bits`` (int64, or Python ints past
    60 bits), per-tensor scales not applied (:func:`gemm` with ``block_acc`` applies them).

    Any symmetric schemes with equal block sizes along K (the block-scaled PEs implement
    mxfp4, mxint8, nvfp4 and q4_0); blocked like :func:`gemm`'s operands.
    """
    acc_bits, acc_frac_bits = _check_window(acc_bits, acc_frac_bits, overflow)
    _check_operands(a, b)
    pa, fa, amax = _operand_ints(a)
    pb, fb, bmax = _operand_ints(b)
    k = pa.shape[1]
    block = _block_size(a, b) if k else 1
    nb = -(-k // block) if k else 0
    sa = np.asarray(_scales_per_block(a, nb, block), dtype=np.float64)
    sb = np.asarray(_scales_per_block(b, nb, block), dtype=np.float64)
    if not (np.all(np.isfinite(sa)) and np.all(np.isfinite(sb))):
        raise ParameterError("block scales must be finite (a NaN scale code was given)")
    acc, flags = _block_window_core(pa, pb, fa + fb, sa, sb, block, acc_bits, acc_frac_bits,
                                    overflow, amax, bmax)
    return (acc, flags) if return_overflow else acc
