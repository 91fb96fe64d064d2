"""Fused elementwise kernels of the golden GEMM's cross-block sums (numba, compiled on first
use and cached on disk).

Each kernel does, in one pass over an output tile, what :mod:`nybble.sw.golden` would
otherwise spell as three to six numpy passes; the arithmetic is the same operation for
operation, so the results are the same bit for bit:

* :func:`add_scaled` -- float64: ``x = fl(x + fl(fl(s * col) * row))`` or
  ``x = fl(x + fl(s * fl(col * row)))``, each operation rounded to nearest even on its
  own (``s``: block sums, exact integers, wrapped first when asked).  Compiled without
  ``fastmath``: LLVM neither reassociates nor contracts a multiply and an add into an FMA
  (fusion needs the ``contract`` flag, which numba sets only under ``fastmath``);
  ``tests/sw/test_golden_kernels.py`` checks this on operands where an FMA would round
  differently.
* :func:`add_wrapped` -- int64: block sums (exact integers held in a float array) wrapped
  modulo ``2**w`` to two's complement, times integer factors per row and per column, added
  to an int64 sum.  Integer arithmetic has no rounding to get wrong; the modular steps run
  in uint64, whose overflow numba defines as wrap-around.  :func:`add_wrapped_float`: the
  same in float64 where every value is an integer below 2**53 (exact whatever the order).
* :func:`add_wrapped_pairs` -- the same sum with the block sums formed element by element
  (uint64, modulo 2**64), for the few (row, column, block) triples whose block sum can be
  nonzero modulo ``2**w``; :func:`block_valuations` finds them.
* :func:`wrapped_limbs_rows` / :func:`wrapped_limbs_cols` -- the limb and residue operands
  of the wrapped block sums, laid out block by block, from int64 masks and shifts.
* :func:`block_abs_stats`, :func:`split_folded`, :func:`add_lo_products`,
  :func:`round_hi_lo_at` -- exact sums beyond
  float64 (``nybble.sw.golden._split_exact``): an operand with its block scales folded in,
  split by 2-adic valuation into a float64 part BLAS sums exactly and a few low entries;
  their products in int64; the two integers added and rounded once to float64.
"""

import math

import numba
import numpy as np

__all__ = ["add_scaled", "add_wrapped", "add_wrapped_float", "add_wrapped_pairs", "block_valuations",
           "wrapped_limbs_rows", "wrapped_limbs_cols", "block_abs_stats", "split_folded",
           "add_lo_products", "round_hi_lo_at"]

# nogil: the golden GEMM runs tiles on threads; no fastmath (see the module docstring);
# boundscheck off (the default): the callers pass arrays of matching shapes
_JIT = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")


@numba.njit(**_JIT)
def _wrap(v, w, down, span):
    """The integer ``v`` (a float64, |v| < 2**52) modulo ``2**w`` in [-2**(w-1), 2**(w-1)),
    ``1 <= w <= 52`` (``down = 2**-w``, ``span = 2**w``); ``v`` itself for ``w = 0``.
    ``v - 2**w floor(v 2**-w + 1/2)``: every step is exact (``v 2**-w`` is a multiple of
    2**-w below 2**(52-w), so adding 1/2 needs at most 53 bits; the rest are integers below
    2**53), and it stays in float64 (AVX2 has no packed float64 -> int64 conversion)."""
    if w == 0:
        return v
    return v - math.floor(v * down + 0.5) * span


@numba.njit(**_JIT)
def add_scaled(x, s, col, row, w, colrow):
    """``x[i, l] = fl(x[i, l] + t)`` in float64, ``S = wrap_w(s[i, l])`` (:func:`_wrap`;
    ``w = 0``: no wrap) and ``t = fl(fl(S * col[i]) * row[l])`` (``colrow``) or ``t = fl(S *
    fl(col[i] * row[l]))``.

    ``x`` (h, w) float64, updated in place; ``s`` (h, w) float32 or float64 holding exact
    integers below 2**52 (converted exactly); ``col`` (h,), ``row`` (w,) float64."""
    h, wd = s.shape
    down, span = 2.0 ** -w, 2.0 ** w
    for i in range(h):
        c = col[i]
        for l in range(wd):
            v = _wrap(np.float64(s[i, l]), w, down, span)
            x[i, l] = x[i, l] + ((v * c) * row[l] if colrow else v * (c * row[l]))


@numba.njit(**_JIT)
def add_wrapped(x, s0, s1, shift, w, fa, fb):
    """``x[i, l] += wrap_w(s0[i, l] + s1[i, l] * 2**shift) * fa[i] * fb[l]`` in int64.

    ``s0``, ``s1`` (h, w) hold exact integers below 2**63 in a float array (``s1`` is
    ignored when ``shift < 0``); their sum is formed modulo 2**64.  ``wrap_w``: the low
    ``w`` bits as a two's-complement number (``1 <= w <= 64``).  ``fa`` (h,), ``fb`` (w,)
    int64; the caller checked that no product or partial sum leaves int64."""
    h, wd = s0.shape
    up = np.uint64(64 - w)
    for i in range(h):
        f = fa[i]
        for l in range(wd):
            u = np.uint64(np.int64(s0[i, l]))
            if shift >= 0:
                u = u + (np.uint64(np.int64(s1[i, l])) << np.uint64(shift))
            t = np.int64(u << up) >> np.int64(64 - w)  # sign-extend the low w bits
            x[i, l] += t * f * fb[l]


@numba.njit(**_JIT)
def _limbs(v, h, r):
    """``(lo, hi)`` of the integer ``v``: ``v = hi 2**h + lo``, ``0 <= lo < 2**h``."""
    return v & ((np.int64(1) << h) - 1), v >> h


@numba.njit(**_JIT)
def _res(v, r):
    """The signed residue of the integer ``v`` modulo 2**r, in [-2**(r-1), 2**(r-1))."""
    half = np.int64(1) << (r - 1)
    return ((v + half) & ((np.int64(1) << r) - 1)) - half


@numba.njit(**_JIT)
def wrapped_limbs_rows(p, block, nb, h, r):
    """Row operand (M, K) of the single-part wrapped block sums (``nybble.sw.golden.
    _int_parts``): (M, nb * 2 * block) float64, block j's columns ``[lo_j | 2**h res_r(hi_j)]``,
    zero past K.  ``p`` holds integers below 2**53 (any numeric dtype); every output is an
    integer below 2**53, so the float64 values are exact."""
    m, k = p.shape
    out = np.zeros((m, nb * 2 * block))
    for i in range(m):
        for kk in range(k):
            lo, hi = _limbs(np.int64(p[i, kk]), h, r)
            c = (kk // block) * 2 * block + kk % block
            out[i, c] = lo
            out[i, c + block] = np.float64(_res(hi, r) << h)
    return out


@numba.njit(**_JIT)
def wrapped_limbs_cols(p, block, nb, h, r):
    """Column operand (K, N) of the single-part wrapped block sums: (nb * 2 * block, N)
    float64, block j's rows ``[lo_j + 2**h res_r(hi_j) ; res_r(lo_j)]``, zero past K (``p``
    as :func:`wrapped_limbs_rows`)."""
    k, n = p.shape
    out = np.zeros((nb * 2 * block, n))
    for kk in range(k):
        rr = (kk // block) * 2 * block + kk % block
        for l in range(n):
            lo, hi = _limbs(np.int64(p[kk, l]), h, r)
            out[rr, l] = np.float64(lo + (_res(hi, r) << h))
            out[rr + block, l] = np.float64(_res(lo, r))
    return out


@numba.njit(**_JIT)
def add_wrapped_float(x, s, w, fa, fb):
    """:func:`add_wrapped` in float64 for one part: ``x[i, l] += wrap_w(s[i, l]) * fa[i] *
    fb[l]`` with ``s`` exact integers below 2**52, ``w <= 52`` (0: no wrap, :func:`_wrap`),
    ``x``, ``fa``, ``fb`` float64 integers.  The caller checked that every product and
    partial sum is an integer below 2**53: each operation is then exact, in any order and
    fused or not."""
    h, wd = s.shape
    down, span = 2.0 ** -w, 2.0 ** w
    for i in range(h):
        f = fa[i]
        for l in range(wd):
            x[i, l] += _wrap(np.float64(s[i, l]), w, down, span) * f * fb[l]


@numba.njit(**_JIT)
def add_wrapped_pairs(x, pa, pb_t, block, w, alpha, beta, fa, fb):
    """``x[i, l] += wrap_w(S_j[i, l]) * fa[i, j] * fb[j, l]`` over the blocks ``j`` with
    ``alpha[i, j] + beta[j, l] < w``; the other block sums are multiples of ``2**w`` (the
    caller's valuation bound) and wrap to 0.

    ``pa`` (M, K) and ``pb_t`` (N, K, B transposed) int64 element integers; ``S_j[i, l] =
    sum over block j of pa[i, k] pb_t[l, k]`` formed modulo 2**64 in uint64 (exactly the true
    sum modulo 2**64), then wrapped to ``w <= 64`` bits as :func:`add_wrapped`.  ``alpha``
    (M, nb), ``beta`` (nb, N) int64; ``fa`` (M, nb), ``fb`` (nb, N) int64 factors; the caller
    checked that no product or partial sum of ``x`` leaves int64."""
    m, k = pa.shape
    n = pb_t.shape[0]
    nb = alpha.shape[1]
    up = np.uint64(64 - w)
    for j in range(nb):
        k0 = j * block
        k1 = min(k, k0 + block)
        bmin = beta[j, 0]
        for l in range(n):
            bmin = min(bmin, beta[j, l])
        for i in range(m):
            a = alpha[i, j]
            if a + bmin >= w:
                continue
            for l in range(n):
                if a + beta[j, l] >= w:
                    continue
                acc = np.uint64(0)
                for kk in range(k0, k1):
                    acc += np.uint64(pa[i, kk]) * np.uint64(pb_t[l, kk])
                t = np.int64(acc << up) >> np.int64(64 - w)
                x[i, l] += t * fa[i, j] * fb[j, l]


@numba.njit(**_JIT)
def _valuation(v):
    """The 2-adic valuation of an integer ``v`` (|v| < 2**63); 127 for 0."""
    if v == 0:
        return 127
    return math.frexp(np.float64(v & -v))[1] - 1  # a power of two: exact in float64


@numba.njit(**_JIT)
def block_valuations(p, block, nb, axis):
    """The smallest 2-adic valuation of the integers in each block of ``block`` elements of
    ``p`` along ``axis`` (127 for an all-zero block): (M, nb) for ``axis=1``, (nb, N) for
    ``axis=0``.  ``p`` holds integers below 2**63 in any numeric dtype.  The smallest
    valuation of several integers is that of their bitwise or (two's complement keeps the
    trailing zeros of negative numbers)."""
    m, n = p.shape
    acc = np.zeros((m, nb) if axis == 1 else (nb, n), np.int64)
    for i in range(m):
        for kk in range(n):
            if axis == 1:
                acc[i, kk // block] |= np.int64(p[i, kk])
            else:
                acc[i // block, kk] |= np.int64(p[i, kk])
    out = np.empty(acc.shape, np.int64)
    for i in range(acc.shape[0]):
        for j in range(acc.shape[1]):
            out[i, j] = _valuation(acc[i, j])
    return out


@numba.njit(**_JIT)
def block_abs_stats(p, block, nb, axis):
    """The sum and the largest of ``|p|`` in each block of ``block`` elements along ``axis``:
    two float64 arrays, (M, nb) for ``axis=1``, (nb, N) for ``axis=0``.  ``p`` holds integers
    below 2**53; the sums are rounded (relative error below ``block * 2**-53``)."""
    m, n = p.shape
    shape = (m, nb) if axis == 1 else (nb, n)
    sums = np.zeros(shape)
    maxs = np.zeros(shape)
    if axis == 1:
        # a block's elements are contiguous: sum them in registers (same order as below)
        for i in range(m):
            for j in range(nb):
                s = 0.0
                mx = 0.0
                for kk in range(j * block, min(n, (j + 1) * block)):
                    v = abs(np.float64(p[i, kk]))
                    s += v
                    mx = max(mx, v)
                sums[i, j] = s
                maxs[i, j] = mx
        return sums, maxs
    for i in range(m):
        j = i // block
        for kk in range(n):
            v = abs(np.float64(p[i, kk]))
            sums[j, kk] += v
            maxs[j, kk] = max(maxs[j, kk], v)
    return sums, maxs


@numba.njit(**_JIT)
def split_folded(p, fac, block, axis, t, hi, cap, scale):
    """The folded operand ``q = p * fac`` (``fac`` (M, nb) int64 per block along ``axis`` 1,
    or (nb, N) along 0) split by 2-adic valuation: ``hi[i, k] = q * scale`` (float64;
    ``scale`` a power of two per row for ``axis`` 1, per column for 0) where ``q`` is a
    multiple of ``2**t`` (0 included), else 0.  Returns the number of other entries and the
    first ``cap`` of them, row-major, as ``(rows, cols, values)`` int64 arrays (``q``, not
    scaled).  The caller checked ``|q| < 2**53`` and that ``q * scale`` stays a normal
    float64 (exact), and ``0 <= t <= 62``."""
    m, n = p.shape
    mask = (np.int64(1) << t) - 1
    rows = np.empty(cap, np.int64)
    cols = np.empty(cap, np.int64)
    vals = np.empty(cap, np.int64)
    cnt = 0
    for i in range(m):
        for k0 in range(0, n, block if axis == 1 else n):
            for kk in range(k0, min(n, k0 + block) if axis == 1 else n):
                f = fac[i, k0 // block] if axis == 1 else fac[i // block, kk]
                q = np.int64(p[i, kk]) * f
                if q & mask:
                    hi[i, kk] = 0.0
                    if cnt < cap:
                        rows[cnt], cols[cnt], vals[cnt] = i, kk, q
                    cnt += 1
                else:
                    hi[i, kk] = np.float64(q) * (scale[i] if axis == 1 else scale[kk])
    return cnt, (rows[:min(cnt, cap)], cols[:min(cnt, cap)], vals[:min(cnt, cap)])


@numba.njit(**_JIT)
def add_lo_products(c, pa, fa, pb, fb, block, ta, a_lo, b_lo):
    """``c += A_lo @ B + A_hi @ B_lo`` in int64, ``A = pa * fa``, ``B = pb * fb`` folded as
    :func:`split_folded` (``A_hi``: the entries of A that are multiples of ``2**ta``), ``a_lo``
    / ``b_lo`` the low entries it returned.  With ``A_hi @ B_hi`` this is all of ``A @ B``.
    The caller checked that no product or partial sum leaves int64."""
    m = pa.shape[0]
    n = pb.shape[1]
    rows, cols, vals = a_lo
    for e in range(rows.size):
        i, kk, v = rows[e], cols[e], vals[e]
        j = kk // block
        for l in range(n):
            c[i, l] += v * (np.int64(pb[kk, l]) * fb[j, l])
    mask = (np.int64(1) << ta) - 1
    rows, cols, vals = b_lo
    for e in range(rows.size):
        kk, l, v = rows[e], cols[e], vals[e]
        j = kk // block
        for i in range(m):
            q = np.int64(pa[i, kk]) * fa[i, j]
            if not q & mask:  # A_hi (A_lo's products are in the first loop)
                c[i, l] += q * v


@numba.njit(**_JIT)
def _round_sum(hv, cv, s, low, down):
    """The integer ``hv + cv`` rounded once to float64 (:func:`round_hi_lo_at`)."""
    cf = np.float64(cv)
    if np.int64(cf) == cv:
        return hv + cf
    y = np.int64(hv * down) + (cv >> s)
    r = cv & low
    neg = y < 0
    if neg:  # -(y 2**s + r) = (-y - 1) 2**s + (2**s - r)
        if r:
            y, r = -y - 1, low + 1 - r
        else:
            y = -y
    sh = s
    if sh > 0:
        e = math.frexp(np.float64(y))[1] if y else 0  # >= the bit length of y
        q = min(sh, 60 - e)
        if q > 0:
            y = (y << q) | (r >> (sh - q))
            r &= (np.int64(1) << (sh - q)) - 1
            sh -= q
    if sh > 0 and r:
        y |= 1
    v = math.ldexp(np.float64(y), sh)
    return -v if neg else v


@numba.njit(**_JIT)
def round_hi_lo_at(x, c, s, col, row, rows, cols):
    """In the rows ``rows`` and the columns ``cols`` (``c`` is 0 elsewhere), ``x[i, l] =
    fl(h + c[i, l]) * col[i] * row[l]``: the integer ``h + c`` rounded once to float64, to
    nearest even, then scaled by powers of two.  ``x`` holds ``h * col[i] * row[l]``, each
    exact (the caller folded the powers of two into the operands where every product stays
    a normal float64), so ``h = x / col[i] / row[l]`` exactly.

    ``h``: exact integers, multiples of ``2**s`` below ``2**(53 + s)``; ``c`` int64 below
    2**62; ``0 <= s <= 62``.  Where float64 holds ``c`` exactly, one float64 addition of two
    exact numbers is that rounding.  Elsewhere, with ``y = h / 2**s + floor(c / 2**s)``
    (|y| < 2**63) and ``r = c mod 2**s``, the sum is ``y 2**s + r``, taken by magnitude
    (rounding to nearest even is symmetric).  Bits of ``r`` move into ``y`` until ``y``
    holds about 60 bits; if some remain, they all lie below the rounding position of ``y``
    (>= 6 bits up), so ``y`` with its bit 0 or-ed with ``r != 0`` (a sticky bit) rounds
    alike; int64 -> float64 rounds to nearest even, the scalings by powers of two are
    exact."""
    m, n = x.shape
    low = (np.int64(1) << s) - 1
    down = 2.0 ** -s
    done = np.zeros(m, np.bool_)
    for i in rows:
        if done[i]:
            continue
        done[i] = True
        for l in range(n):
            h = x[i, l] / col[i] / row[l]
            x[i, l] = (_round_sum(h, c[i, l], s, low, down) * col[i]) * row[l]
    for l in np.unique(cols):
        for i in range(m):
            if not done[i]:
                h = x[i, l] / col[i] / row[l]
                x[i, l] = (_round_sum(h, c[i, l], s, low, down) * col[i]) * row[l]
