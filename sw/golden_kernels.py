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
"""

import math

import numba
import numpy as np

__all__ = ["add_scaled", "add_wrapped", "add_wrapped_float", "add_wrapped_pairs", "block_valuations",
           "wrapped_limbs_rows", "wrapped_limbs_cols"]

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
