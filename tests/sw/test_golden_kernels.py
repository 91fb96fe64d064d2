"""The fused kernels against the numpy passes they replace, bit for bit, on operands where a
fused multiply-add, a reassociation or a narrower integer type would give other bits."""
from fractions import Fraction

import numpy as np
import pytest

from nybble.sw import golden_kernels as kernels


def bits(x):
    return np.ascontiguousarray(x, dtype=np.float64).view(np.int64)


def test_float_kernels_round_each_operation_and_never_fuse(rng):
    # x = -fl(last product): the sum is 0 when the product is rounded before the add, and
    # minus its rounding error (not 0) when a multiply and the add are fused into an FMA
    s = rng.integers(1, 2 ** 20, (1, 64)).astype(np.float64)
    col, row = rng.standard_normal(1) * 3, rng.standard_normal(64) / 7
    for colrow, last in ((True, ((s * col[:, None]), row[None, :])),
                         (False, (s, col[:, None] * row[None, :]))):
        x = -(last[0] * last[1])
        exact = [Fraction(float(p)) * Fraction(float(q)) for p, q in
                 zip(*np.broadcast_arrays(*last), strict=True) for p, q in zip(p, q)]
        fused = [float(Fraction(float(v)) + e) for v, e in zip(x.ravel(), exact)]
        assert sum(f != 0.0 for f in fused) > 32  # the operands tell an FMA apart
        got = x.copy()
        kernels.add_scaled(got, s, col, row, 0, colrow)
        assert np.array_equal(bits(got), bits(np.zeros_like(x)))


@pytest.mark.parametrize("sdt,w", [(np.float32, 0), (np.float64, 0), (np.float32, 11),
                                   (np.float64, 1), (np.float64, 30), (np.float64, 52)])
def test_float_kernels_match_the_numpy_passes(sdt, w, rng):
    top = 2 ** 20 if sdt == np.float32 else 2 ** 52 - 1
    s = rng.integers(-top, top, (37, 53)).astype(sdt)
    s[0, :6] = [-top, top - 1, 0, -1, 2 ** (w - 1) if w else 3, -(2 ** (w - 1)) - 1 if w else 5]
    col = rng.standard_normal(37) * 2.0 ** rng.integers(-30, 30, 37)
    row = rng.standard_normal(53) * 2.0 ** rng.integers(-30, 30, 53)
    x = rng.standard_normal((37, 53)) * 1e9
    v = s.astype(np.int64)
    if w:  # two's complement wrap, in Python integers
        v = np.array([[(int(t) + (1 << (w - 1))) % (1 << w) - (1 << (w - 1)) for t in r]
                      for r in v])
    v = v.astype(np.float64)
    for colrow, want in ((True, x + (v * col[:, None]) * row[None, :]),
                         (False, x + v * (col[:, None] * row[None, :]))):
        got = x.copy()
        kernels.add_scaled(got, s, col, row, w, colrow)
        assert np.array_equal(bits(got), bits(want))


@pytest.mark.parametrize("w", [1, 2, 31, 32, 33, 63, 64])
def test_wrapped_sum_is_modular(w, rng):
    # block sums near 2**52 (one part) plus a second part shifted past 2**64
    s0 = rng.integers(-2 ** 52, 2 ** 52, (9, 11)).astype(np.float64)
    s1 = rng.integers(-2 ** 40, 2 ** 40, (9, 11)).astype(np.float64)
    s0[0, 0], s1[0, 0] = -(2.0 ** 52), -(2.0 ** 40)
    f = 1 if w > 60 else 3  # (the caller keeps every product and sum inside int64)
    fa, fb = rng.choice([-f, -1, 1, f], 9), rng.choice([-f, -1, 1, f], 11)
    x0 = 0 if w > 60 else 5
    for shift in (-1, 0, 16, 30):
        got = np.full((9, 11), x0, np.int64)
        kernels.add_wrapped(got, s0, s1, shift, w, fa, fb)
        u = [[int(s0[i, l]) + (int(s1[i, l]) << shift if shift >= 0 else 0) for l in range(11)]
             for i in range(9)]
        want = [[x0 + ((v + (1 << (w - 1))) % (1 << w) - (1 << (w - 1))) * int(fa[i]) * int(fb[l])
                 for l, v in enumerate(r)] for i, r in enumerate(u)]
        assert got.tolist() == want


@pytest.mark.parametrize("h,r", [(16, 16), (17, 16), (2, 1), (30, 29)])
def test_limbs_and_residues(h, r, rng):
    p = rng.integers(-2 ** 40, 2 ** 40, (6, 70))
    p[0, :4] = [-(2 ** 40), 2 ** 40 - 1, -1, (1 << h) - 1]
    block, nb = 32, 3
    rows = kernels.wrapped_limbs_rows(p, block, nb, h, r)
    cols = kernels.wrapped_limbs_cols(p.T.copy(), block, nb, h, r)
    assert rows.shape == (6, nb * 2 * block) and cols.shape == (nb * 2 * block, 6)

    def res(v):
        return (v + (1 << (r - 1))) % (1 << r) - (1 << (r - 1))
    for i in range(6):
        for kk in range(nb * block):
            v = int(p[i, kk]) if kk < 70 else 0
            lo, hi = v % (1 << h), v >> h
            c = kk // block * 2 * block + kk % block
            assert (rows[i, c], rows[i, c + block]) == (lo, res(hi) << h)
            assert (cols[c, i], cols[c + block, i]) == (lo + (res(hi) << h), res(lo))


@pytest.mark.parametrize("w", [0, 1, 32, 52])
def test_wrapped_float_sum_matches_the_int64_one(w, rng):
    s = rng.integers(-2 ** 52 + 1, 2 ** 52, (7, 13)).astype(np.float64)
    s[0, :3] = [-(2.0 ** 52) + 1, 2.0 ** 52 - 1, 0.0]
    fa = rng.integers(0, 2 ** 20 if w and w <= 32 else 2, 7).astype(np.int64)  # < 2**53
    fb = rng.choice([-1, 1], 13)
    want = np.zeros((7, 13), np.int64)
    kernels.add_wrapped(want, s, s, -1, w or 64, fa, fb)
    got = np.zeros((7, 13))
    kernels.add_wrapped_float(got, s, w, fa.astype(np.float64), fb.astype(np.float64))
    assert np.array_equal(got, want.astype(np.float64)) and (np.abs(want) < 2 ** 53).all()


# -- the split exact sum beyond float64 (nybble.sw.golden._split_exact) ----------------------

def _round_f64(v):
    """An integer (Python int) rounded once to float64, to nearest even."""
    return float(v)  # CPython's int -> float conversion rounds to nearest even


@pytest.mark.parametrize("s", [0, 1, 22, 53, 62])
def test_round_hi_lo_at_rounds_the_exact_sum_once(s, rng):
    # h: multiples of 2**s below 2**(53 + s); c: int64 below 2**62, many of them not exact
    # in float64 (the sticky-bit branch), ties at the rounding position, negative sums
    m, n = 9, 40
    y = rng.integers(-(2 ** 53) + 1, 2 ** 53, (m, n))
    y[0, :6] = [2 ** 53 - 1, -(2 ** 53) + 1, 0, 1, -1, 2 ** 52]
    h = y.astype(np.float64) * 2.0 ** s
    c = rng.integers(-(2 ** 62) + 1, 2 ** 62, (m, n)) >> rng.integers(0, 62, (m, n))
    c[1, :4] = [2 ** 62 - 1, -(2 ** 62) + 1, 0, (1 << 54) + 1]
    # exact ties: sum = (2**53 + 1) * 2**t, halfway between two float64 neighbours
    for l, t in enumerate((0, 5, 9)):
        total = ((1 << 53) + 1) << t
        c[2, l] = total - int(y[2, l]) * 2 ** s if abs(total - int(y[2, l]) * 2 ** s) < 2 ** 62 \
            else c[2, l]
    col = 2.0 ** rng.integers(-20, 20, m)
    row = 2.0 ** rng.integers(-20, 20, n)
    got = h * col[:, None] * row[None, :]
    kernels.round_hi_lo_at(got, c, s, col, row, np.arange(m), np.arange(0))
    want = [[_round_f64(int(y[i, l]) * 2 ** s + int(c[i, l])) * col[i] * row[l]
             for l in range(n)] for i in range(m)]
    assert np.array_equal(bits(got), bits(np.array(want)))
    assert sum(float(v) != v for v in c.ravel().tolist()) > 20  # the slow branch ran


def test_round_hi_lo_at_rounds_only_the_rows_and_columns_given(rng):
    # x = h * col * row (exact); c nonzero in rows 1, 4 and columns 0, 2 (also where both)
    s, m, n = 20, 6, 5
    h = rng.integers(-(2 ** 53) + 1, 2 ** 53, (m, n)).astype(np.float64) * 2.0 ** s
    c = np.zeros((m, n), np.int64)
    rows, cols = np.array([4, 1, 4]), np.array([2, 0])
    c[rows, :] = rng.integers(-(2 ** 61), 2 ** 61, (3, n))
    c[:, cols] = rng.integers(-(2 ** 61), 2 ** 61, (m, 2))
    col, row = 2.0 ** rng.integers(-40, 40, m), 2.0 ** rng.integers(-40, 40, n)
    x = h * col[:, None] * row[None, :]
    kernels.round_hi_lo_at(x, c, s, col, row, rows, cols)
    want = [[float(int(h[i, l]) + int(c[i, l])) * col[i] * row[l] for l in range(n)]
            for i in range(m)]  # (c = 0: h itself, exact)
    assert np.array_equal(bits(x), bits(np.array(want)))


@pytest.mark.parametrize("axis", [1, 0])
def test_split_folded_by_valuation(axis, rng):
    block, t = 8, 5
    p = rng.integers(-2 ** 20, 2 ** 20, (13, 21)) << rng.integers(0, 8, (13, 21))
    p[0, :3] = 0
    nb = -(-p.shape[axis] // block)
    fac = np.int64(1) << rng.integers(0, 4, (p.shape[0], nb) if axis == 1 else (nb, p.shape[1]))
    q = p * (np.repeat(fac, block, axis=axis)[:, :p.shape[1]] if axis == 1
             else np.repeat(fac, block, axis=axis)[:p.shape[0]])
    scale = 2.0 ** rng.integers(-30, 30, p.shape[0] if axis == 1 else p.shape[1])
    sc = scale[:, None] if axis == 1 else scale[None, :]
    for cap in (0, 3, p.size):
        hi = np.full(p.shape, np.nan)
        cnt, (rows, cols, vals) = kernels.split_folded(p, fac, block, axis, t, hi, cap, scale)
        low = q % (1 << t) != 0
        assert np.array_equal(hi, np.where(low, 0, q).astype(np.float64) * sc)
        assert cnt == low.sum() and len(rows) == min(cap, cnt)
        idx = np.argwhere(low)[:cap]
        assert rows.tolist() == idx[:, 0].tolist() and cols.tolist() == idx[:, 1].tolist()
        assert vals.tolist() == q[low][:cap].tolist()


def test_lo_products_complete_the_hi_matmul(rng):
    # A_hi @ B_hi (exact here) + the int64 low products = A @ B, folded by block
    block, ta, tb = 4, 3, 2
    pa = rng.integers(-50, 50, (6, 10)) << rng.integers(0, 5, (6, 10))
    pb = rng.integers(-50, 50, (10, 7)) << rng.integers(0, 5, (10, 7))
    fa = np.int64(1) << rng.integers(0, 3, (6, 3))
    fb = np.int64(1) << rng.integers(0, 3, (3, 7))
    hi_a, hi_b = np.empty(pa.shape), np.empty(pb.shape)
    _, a_lo = kernels.split_folded(pa, fa, block, 1, ta, hi_a, pa.size, np.ones(6))
    _, b_lo = kernels.split_folded(pb, fb, block, 0, tb, hi_b, pb.size, np.ones(7))
    assert 0 < len(a_lo[0]) < pa.size and 0 < len(b_lo[0]) < pb.size
    c = np.zeros((6, 7), np.int64)
    kernels.add_lo_products(c, pa, fa, pb, fb, block, ta, a_lo, b_lo)
    qa = pa * np.repeat(fa, block, axis=1)[:, :10]
    qb = pb * np.repeat(fb, block, axis=0)[:10]
    assert np.array_equal(c + (hi_a @ hi_b).astype(np.int64), qa @ qb)


def test_block_abs_stats(rng):
    p = rng.integers(-2 ** 40, 2 ** 40, (5, 11))
    for axis in (1, 0):
        nb = -(-p.shape[axis] // 4)
        sums, maxs = kernels.block_abs_stats(p, 4, nb, axis)
        starts = np.arange(0, p.shape[axis], 4)
        assert np.array_equal(sums, np.add.reduceat(np.abs(p), starts, axis=axis))
        assert np.array_equal(maxs, np.maximum.reduceat(np.abs(p), starts, axis=axis))
