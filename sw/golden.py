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

import numpy as np

from .formats import get_format, check_integral, CODEBOOK_FRAC_BITS
from .quantize import QuantizedTensor, BITMOD_TYPES
from .errors import ParameterError, ParameterTypeError
from .lmul import lmul_table

__all__ = ["gemm", "gemm_codes", "gemm_block_acc", "gemm_block_codes", "min_acc_bits",
           "product_format", "element_ints", "acc_to_float", "CODEBOOK_FRAC_BITS",
           "OVERFLOW_MODES", "PRODUCT_KINDS"]

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
    fin_a = get_format(fmt_a).finite
    fin_b = get_format(fmt_b).finite
    va = [int(v) for v in np.asarray(ia)[fin_a]]
    vb = [int(v) for v in np.asarray(ib)[fin_b]]
    cands = [min(va) * min(vb), min(va) * max(vb), max(va) * min(vb), max(va) * max(vb)]
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
    # saturate / error: the order of additions matters; walk k in ascending order
    big = bound >= 2 ** 62
    dt = object if big else np.int64
    acc = np.zeros((pa.shape[0], pb.shape[1]), dtype=dt)
    pa, pb = pa.astype(dt), pb.astype(dt)
    for kk in range(k):
        acc = acc + np.outer(pa[:, kk], pb[kk, :])
        over = (acc >= lim) | (acc < -lim)
        if np.any(over):
            if overflow == "error":
                m, n = (int(i) for i in np.argwhere(over)[0])
                raise ParameterError(
                    f"accumulator overflow: acc_bits={acc_bits} is too narrow; output "
                    f"[{m}, {n}] leaves the range at k={kk} (nybble.sw.min_acc_bits gives "
                    "the width that cannot overflow)")
            acc = np.clip(acc, -lim, lim - 1)
    return acc


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
        return _accumulate(pa, pb, acc_bits, overflow)
    return _accumulate(pa, pb, acc_bits, overflow, amax, bmax)


def _operand_ints(qt):
    """Element integers (tensor shape) and their grid's fraction bits."""
    if qt.scheme.element.startswith("bitmod"):
        tabs = [element_ints(t) for t in BITMOD_TYPES]
        f = tabs[0][1]
        table = np.stack([t[0] for t in tabs])
        types = np.repeat(qt.extra["types"], qt.block, axis=qt.axis)
        idx = [slice(None)] * 2
        idx[qt.axis] = slice(0, qt.shape[qt.axis])
        return table[types[tuple(idx)], qt.codes.astype(np.int64)], f, int(np.abs(table).max())
    ints, f, amax = _table(qt.elem_fmt)
    return ints[qt.codes], f, amax


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
    sa = _scales_per_block(a, nb, block)  # (M, nb)
    sb = _scales_per_block(b, nb, block)  # (nb, N)
    ta = a.tensor_scale if a.tensor_scale is not None else 1.0
    tb = b.tensor_scale if b.tensor_scale is not None else 1.0
    exact_scales = {a.scheme.scale_kind, b.scheme.scale_kind} <= {"e8m0", "e4m3"} and nb > 1
    grid = 2.0 ** -(fa + fb)
    if exact_scales:
        x = _exact_cross_block(pa, pb, sa, sb, block, nb, acc_bits, overflow, fa + fb,
                               amax, bmax)
    else:
        x = np.zeros((m, n))
        for j in range(nb):
            ks = slice(j * block, min(k, (j + 1) * block))
            s = _accumulate(pa[:, ks], pb[ks, :], acc_bits, overflow, amax, bmax)
            x = x + (s.astype(np.float64) * grid) * (sa[:, j][:, None] * sb[j, :][None, :])
    return x * (np.float64(ta) * np.float64(tb)) if (ta != 1.0 or tb != 1.0) else x


def _fold(p, pmax, fold, block, axis):
    """``p`` (|p| <= pmax) times each block's integer factor ``fold`` along ``axis`` (exact:
    float32 only while every product stays below 2**24, float64 otherwise)."""
    k = p.shape[axis]
    nb = fold.shape[axis]
    small = p.dtype == np.float32 and pmax * float(np.max(fold, initial=0)) < 2 ** 24
    dt = np.float32 if small else np.float64
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


def _exact_cross_block(pa, pb, sa, sb, block, nb, acc_bits, overflow, grid_bits, amax, bmax):
    """X = sum_j S_j sa_j sb_j 2**-grid_bits exactly, rounded once to float64."""
    m, k = pa.shape
    n = pb.shape[1]
    ma, ea = _split_pow2(sa)  # (M, nb)
    mb, eb = _split_pow2(sb)  # (nb, N)
    lim = 1 << (acc_bits - 1)
    in_block_safe = amax * bmax * block < lim
    if nb == 0:
        return np.zeros((m, n))
    # fold the scale mantissas and exponents into integer operands, relative to each row's /
    # column's smallest exponent, so one exact integer matmul forms the whole sum
    ea_min = np.min(np.where(ma != 0, ea, np.iinfo(np.int64).max), axis=1, keepdims=True)
    ea_min = np.where(ea_min == np.iinfo(np.int64).max, 0, ea_min)
    eb_min = np.min(np.where(mb != 0, eb, np.iinfo(np.int64).max), axis=0, keepdims=True)
    eb_min = np.where(eb_min == np.iinfo(np.int64).max, 0, eb_min)
    sha, shb = ea - ea_min, eb - eb_min
    fa_bits = int(sha.max()) + int(np.abs(ma).max()).bit_length() if sha.size else 0
    fb_bits = int(shb.max()) + int(np.abs(mb).max()).bit_length() if shb.size else 0
    if in_block_safe and amax.bit_length() + fa_bits < 53 and bmax.bit_length() + fb_bits < 53:
        # exact in float64 (every value is an integer below 2**53); float32 for the matmul
        # below when the bound allows it
        fold_a = (ma * np.exp2(sha)).astype(np.float64)  # (M, nb) integers
        fold_b = (mb * np.exp2(shb)).astype(np.float64)  # (nb, N)
        # every partial sum of row m and column n is at most ||a_m||_1 * max|b| (and vice
        # versa); ||a_m||_1 <= block * amax * sum_j fold_a[m, j]
        bound = min(block * amax * float(np.abs(fold_a).sum(axis=1).max()) * bmax
                    * float(np.abs(fold_b).max()),
                    block * bmax * float(np.abs(fold_b).sum(axis=0).max()) * amax
                    * float(np.abs(fold_a).max()))
        if bound < 2 ** 52:
            a_f = _fold(pa, amax, fold_a, block, axis=1)
            b_f = _fold(pb, bmax, fold_b, block, axis=0)
            s = _int_matmul(a_f, b_f, bound)
            # |s| < 2**53 is exact; scaling by powers of two is exact
            return (s.astype(np.float64) * np.exp2(ea_min - grid_bits)) * np.exp2(eb_min)
    # general path: per-block exact integer sums combined with Python integers
    total = np.zeros((m, n), dtype=object)
    emin = int(ea_min.min()) + int(eb_min.min())
    for j in range(nb):
        ks = slice(j * block, min(k, (j + 1) * block))
        s = _accumulate(pa[:, ks], pb[ks, :], acc_bits, overflow, amax, bmax)
        s = (s.astype(np.int64) if s.dtype.kind == "f" else s).astype(object)
        f = np.outer(ma[:, j], mb[j, :]).astype(object)
        sh = (ea[:, j][:, None] + eb[j, :][None, :] - emin).astype(object)
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
