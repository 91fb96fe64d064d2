"""The IEEE-style FP golden model (nybble.sw.ieee_fp) against independent oracles: numpy's
float32 arithmetic (IEEE, RNE, subnormals kept) and exact rational sums."""
from fractions import Fraction
import math

import numpy as np
import pytest

from nybble.sw import get_format
from nybble.sw.errors import ParameterError, ParameterTypeError
from nybble.sw.ieee_fp import (FP32_INF, FP32_NAN, fp32_add, fp32_bits_to_float, ieee_dot,
                               ieee_steps, round_fp32, step_sums)


def _np_bits(x):
    """float32 values -> bit patterns, NaN canonical (the model's convention)."""
    x = np.asarray(x, dtype=np.float32)
    b = x.view(np.uint32).copy()
    b[np.isnan(x)] = FP32_NAN
    return b


def test_round_fp32_matches_numpy_casts():
    # float64 values with <= 53 significant bits cast to float32 is one exact RNE rounding
    rng = np.random.default_rng(1)
    mags = rng.integers(1, 1 << 53, 4000, dtype=np.int64) >> rng.integers(0, 52, 4000)
    exps = rng.integers(-200, 110, 4000)
    for mag, e in zip(mags.tolist(), exps.tolist()):
        v = math.ldexp(mag, e)
        with np.errstate(over="ignore"):
            want = int(_np_bits(np.float32(-v))[()]) if v else 0
        assert round_fp32(True, mag, e) == want, (mag, e)


@pytest.mark.parametrize("mag, exp, want", [
    (0, 5, 0),                           # exact zero is +0
    (1, -150, 0x80000000),               # half the smallest subnormal: tie to even -> -0
    (3, -151, 0x80000001),               # 0.75 * 2**-149 -> smallest subnormal
    ((1 << 25) - 1, -25, 0xBF800000),     # a tie, rounds up to 1.0 (carry into the exponent)
    ((1 << 25) - 1, 103, 0xFF800000),     # a tie, rounds to 2**128: -Inf
    ((1 << 23) - 1, -149, 0x807FFFFF),    # largest subnormal, exact
])
def test_round_fp32_corners(mag, exp, want):
    assert round_fp32(True, mag, exp) == want


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp8_e5m2"])
def test_every_8bit_product_is_numpy_float32(fmt):
    f = get_format(fmt)
    a = np.repeat(np.arange(256), 256)[:, None]
    b = np.tile(np.arange(256), 256)[:, None]
    with np.errstate(invalid="ignore"):
        p = f.values[a[:, 0]].astype(np.float32) * f.values[b[:, 0]].astype(np.float32)
    want = _np_bits(p)
    want[p == 0] = 0          # an exact zero sum is +0
    assert np.array_equal(step_sums(a, b, fmt, fmt), want)


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp8_e5m2", "fp16", "bf16"])
def test_mac_chains_are_numpy_float32(fmt):
    # lanes = 1: acc = fp32(acc + fp32(a*b)), float32 arithmetic in numpy
    f = get_format(fmt)
    rng = np.random.default_rng(len(fmt))
    n = 3000
    a = rng.integers(0, f.n_codes, (n, 1))
    b = rng.integers(0, f.n_codes, (n, 1))
    first = rng.random(n) < 0.05
    first[0] = True
    acc, non_finite = ieee_steps(a, b, first, fmt, fmt)
    va = f.values[a[:, 0]].astype(np.float32)
    vb = f.values[b[:, 0]].astype(np.float32)
    cur = np.float32(0)
    with np.errstate(all="ignore"):
        for i in range(n):
            p = va[i] * vb[i]
            if va[i] == 0 or vb[i] == 0:   # an exact zero is +0; an underflow keeps its sign
                p = np.float32(0)
            cur = p if first[i] else np.float32(cur + p)
            assert acc[i] == _np_bits(cur)[()], (i, hex(acc[i]), cur)
    assert np.array_equal(non_finite, ~np.isfinite(fp32_bits_to_float(acc)))


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp8_e5m2", "fp16", "bf16"])
def test_dp4_rounds_the_exact_group_sum_once(fmt):
    f = get_format(fmt)
    rng = np.random.default_rng(7)
    fin = np.flatnonzero(f.finite)
    a = rng.choice(fin, (400, 4))
    b = rng.choice(fin, (400, 4))
    a[50:60, 1], b[50:60, 1] = a[50:60, 0], b[50:60, 0] ^ (1 << (f.bits - 1))
    g = step_sums(a, b, fmt, fmt)
    for i in range(len(a)):
        exact = sum(Fraction(float(f.values[x])) * Fraction(float(f.values[y]))
                    for x, y in zip(a[i], b[i]))
        # the reference rounding: exact rational -> float32 by comparing neighbours
        q = exact * (1 << 400)
        assert q.denominator == 1
        s = int(q)
        assert g[i] == round_fp32(s < 0, abs(s), -400)
    # a cancelling pair contributes exactly nothing
    two = step_sums(a[50:60, :2], b[50:60, :2], fmt, fmt)
    assert not two.any()


def test_specials():
    f = "fp16"
    inf, ninf, nan, one, zero = 0x7C00, 0xFC00, 0x7E00, 0x3C00, 0x0000
    cases = [([inf, one], [one, one], FP32_INF), ([inf, ninf], [one, one], FP32_NAN),
             ([inf, one], [zero, one], FP32_NAN), ([nan, one], [one, one], FP32_NAN),
             ([ninf, one], [one, one], FP32_INF | 1 << 31)]
    for a, b, want in cases:
        assert step_sums(np.array([a]), np.array([b]), f, f)[0] == want
    # e4m3fn: S.1111.111 is NaN, no Inf; 448 * 448 * 4 stays finite in FP32
    e4 = "fp8_e4m3"
    assert step_sums(np.array([[0x7F]]), np.array([[0x38]]), e4, e4)[0] == FP32_NAN
    assert step_sums(np.full((1, 4), 0x7E), np.full((1, 4), 0x7E), e4, e4)[0] == \
        _np_bits(np.float32(4 * 448.0 * 448.0))
    # accumulation overflow to Inf, then Inf - Inf = NaN; overflow flags follow
    big = np.full((3, 1), 0x7BFF)   # fp16 max
    acc, nf = ieee_steps(big, big, [1, 0, 0], "fp16", "fp16")
    assert list(nf) == [False, False, False] and acc[-1] == _np_bits(np.float32(3 * 65504.0**2))
    acc, nf = ieee_steps(np.array([[0x7F7F], [0x7F7F], [0xFF7F]]), np.array([[0x7F7F]] * 3),
                         [1, 0, 0], "bf16", "bf16")
    assert acc[0] == FP32_INF and list(nf) == [True, True, True]
    assert fp32_add(np.uint32(FP32_INF), np.uint32(FP32_INF | 1 << 31))[()] == FP32_NAN
    assert fp32_add(np.uint32(1 << 31), np.uint32(1 << 31))[()] == 1 << 31
    assert fp32_add(np.uint32(0x3F800000), np.uint32(0xBF800000))[()] == 0


def test_ieee_dot_is_steps_of_lanes():
    f = get_format("fp16")
    rng = np.random.default_rng(3)
    fin = np.flatnonzero(f.finite)
    a, b = rng.choice(fin, (3, 8)), rng.choice(fin, (8, 2))
    got = ieee_dot(a, b, "fp16", "fp16", lanes=4)
    for i in range(3):
        for j in range(2):
            acc, _ = ieee_steps(a[i].reshape(2, 4), b[:, j].reshape(2, 4), [1, 0], "fp16", "fp16")
            assert got[i, j] == acc[-1]


def test_bad_input():
    with pytest.raises(ParameterError, match=r"^fmt_a of an IEEE-style FP PE must be a float "
                                             r"format .*not int8 \(kind 'int'\)$"):
        step_sums(np.zeros((1, 1), int), np.zeros((1, 1), int), "int8", "fp16")
    with pytest.raises(ParameterError, match=r"^K must be a positive multiple of lanes=4, not 6$"):
        ieee_dot(np.zeros((1, 6), int), np.zeros((6, 1), int), "fp16", "fp16", lanes=4)
    with pytest.raises(ParameterError, match=r"^a_codes codes of float8_e4m3fn must be in "
                                             r"0\.\.255$"):
        step_sums(np.full((1, 1), 256), np.zeros((1, 1), int), "fp8_e4m3", "fp8_e4m3")
    with pytest.raises(ParameterTypeError, match=r"^a_codes must be an integer array"):
        step_sums(np.zeros((1, 1)), np.zeros((1, 1), int), "fp16", "fp16")
    with pytest.raises(ParameterError, match=r"^the first step must have first=1"):
        ieee_steps(np.zeros((1, 1), int), np.zeros((1, 1), int), [0], "fp16", "fp16")
