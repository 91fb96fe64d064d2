"""gemm's fast paths (exact float32 / float64 BLAS sums, block-wise tiles on threads, int64
cross-block sums, wrapped limbs) against slow references, bit for bit:

* an independent reference written from the module docstring in Python integers and floats
  (small shapes, every scheme family, wrap / saturate / error accumulators, ragged blocks);
* gemm's own definition paths (the fast paths switched off) on larger shapes, with tiles and
  BLAS calls made small so that several tiles, ragged tiles and threads are exercised.

Bit for bit includes the sign of zero: results are compared as int64 bit patterns."""
from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest

from nybble.sw import (quantize, gemm, gemm_codes, get_format, get_scheme, scheme_names,
                       QuantizedTensor, CODEBOOK_FRAC_BITS)
from nybble.sw import golden
from nybble.sw.quantize import BITMOD_TYPES


def bits(x):
    return np.ascontiguousarray(x, dtype=np.float64).view(np.int64)


def assert_same(got, want):
    assert got.shape == want.shape
    bad = np.argwhere(bits(got) != bits(want))
    assert bad.size == 0, (f"{len(bad)} mismatches, first at {tuple(bad[0])}: got "
                           f"{got[tuple(bad[0])]!r}, want {want[tuple(bad[0])]!r}")


# -- an independent reference ----------------------------------------------------------------

@lru_cache(maxsize=None)
def _ints(fmt):
    """Element values as integers on the format's grid (codebooks: 2**-14, half away)."""
    f = get_format(fmt)
    fb = f.frac_bits if f.frac_bits is not None else CODEBOOK_FRAC_BITS
    out = []
    for v in f.values:
        q = Fraction(float(v)) * 2 ** fb if np.isfinite(v) else Fraction(0)
        if q.denominator != 1:
            q = int(abs(q) + Fraction(1, 2)) * (1 if q >= 0 else -1)
        out.append(int(q))
    return out, fb


def _elements(qt):
    """The element integers of a 2-D QuantizedTensor (lists of Python ints) and the grid."""
    codes = np.asarray(qt.codes, dtype=np.int64)
    if qt.scheme.element.startswith("bitmod"):
        tables = [_ints(t) for t in BITMOD_TYPES]
        types = np.repeat(qt.extra["types"], qt.block, axis=qt.axis)
        types = types[:, :codes.shape[1]] if qt.axis == 1 else types[:codes.shape[0], :]
        return [[tables[t][0][c] for t, c in zip(tr, cr)] for tr, cr in zip(types, codes)], \
            tables[0][1]
    table, f = _ints(qt.elem_fmt)
    return [[table[c] for c in row] for row in codes], f


def _block_sum(xs, ys, acc_bits, overflow):
    lim = 1 << (acc_bits - 1)
    acc = 0
    for k, (x, y) in enumerate(zip(xs, ys)):
        acc += x * y
        if overflow == "wrap":
            acc = (acc + lim) % (2 * lim) - lim
        elif not -lim <= acc < lim:
            if overflow == "error":
                raise OverflowError(k)
            acc = max(-lim, min(lim - 1, acc))
    return acc


def reference(a, b, acc_bits=32, overflow="wrap"):
    """gemm from the module docstring: block sums walked in k, then the exact (MX, NVFP4)
    or the ordered float64 (float scales) sum over blocks, then the tensor scales."""
    ea, fa = _elements(a)
    eb, fb = _elements(b)
    eb = [list(col) for col in zip(*eb)]  # columns of B
    m, k, n = len(ea), a.shape[1], len(eb)
    ba = a.block if a.scheme.block != 0 else k
    bb = b.block if b.scheme.block != 0 else k
    block = bb if ba == k else ba  # the block along K (one operand may span all of K)
    nb = -(-k // block)
    sa = np.broadcast_to(a.block_scale_values(), (m, a.block_scale_values().shape[1]))
    sb = np.broadcast_to(b.block_scale_values(), (b.block_scale_values().shape[0], n))
    exact = {a.scheme.scale_kind, b.scheme.scale_kind} <= {"e8m0", "e4m3"} and nb > 1
    g = fa + fb
    out = np.zeros((m, n))
    for i in range(m):
        for c in range(n):
            total, x = Fraction(0), 0.0
            for j in range(nb):
                ks = slice(j * block, min(k, (j + 1) * block))
                s = _block_sum(ea[i][ks], eb[c][ks], acc_bits, overflow)
                s_a = float(sa[i, j if sa.shape[1] > 1 else 0])
                s_b = float(sb[j if sb.shape[0] > 1 else 0, c])
                if exact:
                    total += s * Fraction(s_a) * Fraction(s_b) / 2 ** g
                else:
                    x = x + (s * 2.0 ** -g) * (s_a * s_b)
            out[i, c] = float(total) if exact else x
    t = (a.tensor_scale or 1.0) * (b.tensor_scale or 1.0)
    return out * t if t != 1.0 else out


def _adversarial(rng, m, k, n, scheme):
    """Random rows and columns plus saturated blocks of one sign and of alternating signs
    (block sums that overflow narrow accumulators, order-dependent under saturation)."""
    x = rng.standard_normal((m, k)) * rng.lognormal(0, 1, (m, 1))
    y = rng.standard_normal((k, n)) * rng.lognormal(0, 1, (1, n))
    x[0] = 1.0
    y[:, 0] = 1.0
    if m > 1:
        x[1] = np.where((np.arange(k) // 16) % 2, -1.0, 1.0)
    if m > 2:
        x[2, : k // 2] = 0.0  # all-zero blocks
    if n > 1:
        y[:, 1] = -1.0
    return quantize(x, scheme, axis=-1), quantize(y, scheme, axis=0)


GEMM_SCHEMES = [s for s in scheme_names() if get_scheme(s).symmetric] + \
    ["int4_g16", "e3m0_g64", "nf4_g32", "bitmod_g32", "int4_g7"]


def test_gemm_schemes_are_every_symmetric_one():
    assert {"q4_1", "q4_k"}.isdisjoint(GEMM_SCHEMES)
    assert {"int4_tensor", "int4_channel", "mxfp8_e5m2", "nvfp4", "q4_0"} <= set(GEMM_SCHEMES)


@pytest.mark.parametrize("scheme", GEMM_SCHEMES)
def test_every_scheme_against_the_reference(scheme, rng):
    k = 64 if scheme == "q4_0" else 71  # a ragged last block where the scheme allows it
    a, b = _adversarial(rng, 4, k, 3, scheme)
    for acc_bits, overflow in [(32, "wrap"), (64, "wrap"), (10, "wrap"), (10, "saturate"),
                               (13, "saturate"), (24, "wrap")]:
        assert_same(gemm(a, b, acc_bits=acc_bits, overflow=overflow),
                    reference(a, b, acc_bits, overflow))


@pytest.mark.parametrize("scheme", ["int4_g32", "mxfp4", "nvfp4", "nf4_g64", "mxfp8_e5m2",
                                    "int4_tensor", "q4_0"])
def test_error_mode_raises_where_the_walk_overflows(scheme, rng):
    # small elements everywhere but in row 0 of A and column 0 of B: output [0, 0] is the
    # first to leave a 9-bit accumulator
    x = np.clip(rng.standard_normal((3, 64)) * 0.05, -0.3, 0.3)
    y = np.clip(rng.standard_normal((64, 2)) * 0.05, -0.3, 0.3)
    x[0], y[:, 0] = 1.0, 1.0
    a, b = quantize(x, scheme), quantize(y, scheme, axis=0)
    with pytest.raises(ValueError, match=r"acc_bits=9 is too narrow; output \[0, 0\] leaves"):
        gemm(a, b, acc_bits=9, overflow="error")
    assert_same(gemm(a, b, acc_bits=96, overflow="error"), reference(a, b, 96, "error"))


def test_mixed_per_channel_and_grouped_operands(rng):
    x, y = rng.standard_normal((5, 96)), rng.standard_normal((96, 4))
    a, b = quantize(x, "int4_channel"), quantize(y, "int4_g32", axis=0)
    for acc_bits, overflow in [(32, "wrap"), (11, "wrap"), (11, "saturate")]:
        assert_same(gemm(a, b, acc_bits=acc_bits, overflow=overflow),
                    reference(a, b, acc_bits, overflow))


def test_mx_scale_exponents_far_apart(rng):
    # scales 2^-100 .. 2^100 along one row: beyond int64 -> the Python-int path; within a
    # narrower spread the int64 path (wrapped block sums, exact sum rounded once)
    for spread, acc_bits in [(np.array([-100, 0, 60, 100]), 32), (np.array([-20, 0, 9, 25]), 12),
                             (np.array([-20, 0, 9, 25]), 32)]:
        x = rng.standard_normal((3, 128)) * np.repeat(2.0 ** spread, 32)
        y = rng.standard_normal((128, 2))
        for scheme in ("mxfp4", "mxfp8_e4m3"):
            a, b = quantize(x, scheme), quantize(y, scheme, axis=0)
            assert_same(gemm(a, b, acc_bits=acc_bits), reference(a, b, acc_bits))


@pytest.mark.parametrize("ex,ey", [(-120, -10), (100, 30), (0, 0)])
def test_tiny_and_huge_magnitudes(ex, ey, rng):
    # the scales' powers of two are folded into float32 / float64 operands only while every
    # operand, product and partial sum stays a normal number of that type
    x = rng.standard_normal((5, 96)) * 2.0 ** ex
    y = rng.standard_normal((96, 4)) * 2.0 ** ey
    for scheme in ("mxfp4", "mxint8", "nvfp4", "int4_g32") + (("q4_0",) if ex == 0 else ()):
        a, b = quantize(x, scheme), quantize(y, scheme, axis=0)
        assert_same(gemm(a, b), reference(a, b))


def test_negative_and_zero_scales(rng):
    # q4_0's d is negative for a positive extreme; an all-zero block has d = 0
    x = np.abs(rng.standard_normal((4, 96)))
    x[1, 32:64] = 0.0
    y = -np.abs(rng.standard_normal((96, 3)))
    a, b = quantize(x, "q4_0"), quantize(y, "q4_0", axis=0)
    assert (a.block_scale_values() < 0).any() and (a.block_scale_values() == 0).any()
    for acc_bits, overflow in [(32, "wrap"), (9, "wrap"), (9, "saturate")]:
        got = gemm(a, b, acc_bits=acc_bits, overflow=overflow)
        assert_same(got, reference(a, b, acc_bits, overflow))
    assert not np.signbit(gemm(quantize(np.zeros((2, 32)), "q4_0"),
                               quantize(-np.ones((32, 2)), "q4_0", axis=0))).any()


# -- the fast paths against gemm's own definition paths ---------------------------------------

@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles of a few hundred outputs, gemm calls of a few thousand multiply-adds, every
    tiled sum on threads: many tiles, ragged ones, and tiles finishing out of order."""
    monkeypatch.setattr(golden, "_TILE", 1 << 9)
    monkeypatch.setattr(golden, "_BLAS_SERIAL", 1 << 12)
    monkeypatch.setattr(golden, "_PARALLEL_WORK", 0)
    monkeypatch.setattr(golden, "_threads", lambda: 3)


def _definition(a, b, **kw):
    """gemm with every fast path switched off: the block-by-block definition loops (float64
    in ascending block order; Python integers for the exact sums)."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(golden, "_fold_exact", lambda *args, **kwargs: None)
        mp.setattr(golden, "_float_operands", lambda *args, **kwargs: None)
        mp.setattr(golden, "_int_parts", lambda *args, **kwargs: None)
        mp.setattr(golden, "_wrapped_pairs", lambda *args, **kwargs: None)
        mp.setattr(golden, "_split_exact", lambda *args, **kwargs: None)
        return gemm(a, b, **kw)
    finally:
        mp.undo()


FAST_CASES = [  # scheme, acc_bits, overflow: which path each exercises
    ("int4_g32", 32, "wrap"),        # float32 block sums, S * sa exact: fl(fl(S sa) sb)
    ("int4_g32", 11, "wrap"),        # wrapped block sums (float wrap), then the same
    ("e3m0_g32", 32, "wrap"),
    ("bitmod_g32", 32, "wrap"),
    ("nf4_g64", 32, "wrap"),         # float64 block sums (2**34 > 2**24), S * sa not exact
    ("nf4_g64", 30, "wrap"),         # ... wrapping where a block sum leaves 30 bits
    ("nf4_g256", 40, "wrap"),        # one block over K: the per-channel path in float64
    ("int4_channel", 32, "wrap"),
    ("int4_tensor", 14, "wrap"),     # the whole-K sum wraps
    ("q4_0", 32, "wrap"),            # fp16 scales: every term exact, one float64 matmul
    ("mxfp4", 32, "wrap"),           # exact scales folded into one matmul
    ("mxint8", 12, "wrap"),          # wrapped block sums, int64 cross-block sum
    ("nvfp4", 10, "wrap"),           # E4M3 mantissas multiplied in int64
    ("mxfp8_e4m3", 32, "wrap"),      # float64 block sums wrapped to 32 bits, int64 sum
    ("mxfp8_e5m2", 32, "wrap"),      # block sums beyond float64: wrapped through two limbs
    ("mxfp8_e5m2", 40, "wrap"),
]


@pytest.mark.parametrize("scheme,acc_bits,overflow", FAST_CASES,
                         ids=[f"{s}-{w}-{o}" for s, w, o in FAST_CASES])
def test_fast_paths_match_the_definition(scheme, acc_bits, overflow, small_tiles, rng):
    m, k, n = 37, (192 if scheme == "q4_0" else 200), 29  # ragged blocks and tiles
    a, b = _adversarial(rng, m, k, n, scheme)
    got = gemm(a, b, acc_bits=acc_bits, overflow=overflow)
    assert_same(got, _definition(a, b, acc_bits=acc_bits, overflow=overflow))


@pytest.mark.parametrize("scheme", ["int4_g32", "nf4_g64", "mxfp8_e4m3", "nvfp4"])
def test_saturate_matches_the_definition(scheme, small_tiles, rng):
    a, b = _adversarial(rng, 21, 96, 17, scheme)
    for acc_bits in (12, 20, 33):
        assert_same(gemm(a, b, acc_bits=acc_bits, overflow="saturate"),
                    _definition(a, b, acc_bits=acc_bits, overflow="saturate"))


def test_production_gemm_calls_on_threads_match_the_definition(monkeypatch, rng):
    # the production gemm call sizes, tiles of 8192 outputs, on threads
    monkeypatch.setattr(golden, "_TILE", 1 << 13)
    monkeypatch.setattr(golden, "_PARALLEL_WORK", 0)
    monkeypatch.setattr(golden, "_threads", lambda: 2)
    for scheme, acc_bits in [("int4_g32", 32), ("nf4_g64", 32), ("mxfp8_e4m3", 32)]:
        a, b = _adversarial(rng, 70, 160, 300, scheme)
        assert_same(gemm(a, b, acc_bits=acc_bits), _definition(a, b, acc_bits=acc_bits))


# -- the block accumulator of gemm_codes -----------------------------------------------------

def _walk(ca, cb, fa, fb, acc_bits, overflow):
    ta, _ = _ints(fa)
    tb, _ = _ints(fb)
    return np.array([[_block_sum([ta[v] for v in row], [tb[v] for v in col], acc_bits,
                                 overflow) for col in cb.T] for row in ca], dtype=object)


@pytest.mark.parametrize("overflow", ["saturate", "error"])
def test_ordered_walk_only_where_a_prefix_can_overflow(overflow, monkeypatch, rng):
    # rows 0-1 saturate (max codes), the rest cannot overflow; tiny walk chunks
    monkeypatch.setattr(golden, "_WALK", 64)
    int4 = get_format("int4")
    ca = rng.integers(0, 16, (9, 40))
    ca[:2] = 7
    ca[2:] = np.where(rng.random((7, 40)) < 0.5, 1, 15)  # +-1
    cb = rng.choice(np.flatnonzero(int4.finite), (40, 6))
    cb[:, :3] = 7
    if overflow == "error":
        with pytest.raises(ValueError, match=r"acc_bits=10 is too narrow; output \[0, 0\] "
                                             r"leaves the range at k=10 "):
            gemm_codes(ca, cb, "int4", "int4", acc_bits=10, overflow="error")
        ca[:2] = 1
        got = gemm_codes(ca, cb, "int4", "int4", acc_bits=10, overflow="error")
        assert np.array_equal(got.astype(object), _walk(ca, cb, "int4", "int4", 10, "wrap"))
        return
    got = gemm_codes(ca, cb, "int4", "int4", acc_bits=10, overflow="saturate")
    assert np.array_equal(got.astype(object), _walk(ca, cb, "int4", "int4", 10, "saturate"))


@pytest.mark.parametrize("fa,acc_bits", [("int8", 40), ("fp8_e4m3", 48), ("fp8_e5m2", 70),
                                         ("fp16", 100)])
def test_block_accumulator_beyond_float32(fa, acc_bits, rng):
    # K long enough that float32 partial sums are not exact: float64, int64 or Python ints
    f = get_format(fa)
    big = int(np.flatnonzero(f.values == np.nanmax(np.where(f.finite, f.values, np.nan)))[0])
    ca = rng.choice(np.flatnonzero(f.finite), (3, 300))
    cb = rng.choice(np.flatnonzero(f.finite), (300, 2))
    ca[0] = big
    cb[:, 0] = big
    for ov, bits_ in [("wrap", acc_bits), ("wrap", 33), ("saturate", 33)]:
        got = gemm_codes(ca, cb, fa, fa, acc_bits=bits_, overflow=ov)
        assert np.array_equal(got.astype(object), _walk(ca, cb, fa, fa, bits_, ov))


# -- the decoded-operand cache ---------------------------------------------------------------

def test_operand_cache_follows_in_place_changes(rng):
    a = quantize(rng.standard_normal((4, 64)), "int4_g32")
    b = quantize(rng.standard_normal((64, 3)), "int4_g32", axis=0)
    first = gemm(a, b)
    assert_same(gemm(a, b), first)  # served from the cache
    a.codes[0, :] = (a.codes[0, :] + 1) % 16  # changed in place: decoded anew
    assert_same(gemm(a, b), reference(a, b))
    assert not np.array_equal(gemm(a, b)[0], first[0])
    c = quantize(rng.standard_normal((4, 64)), "bitmod_g32")
    d = quantize(rng.standard_normal((64, 3)), "bitmod_g32", axis=0)
    gemm(c, d)
    c.extra["types"][0, 0] = (c.extra["types"][0, 0] + 1) % len(BITMOD_TYPES)
    assert_same(gemm(c, d), reference(c, d))


def test_operand_cache_is_bounded_and_read_only(rng):
    import gc
    import weakref
    qs = [quantize(rng.standard_normal((2, 32)), "mxfp4") for _ in range(8)]
    b = quantize(rng.standard_normal((32, 2)), "mxfp4", axis=0)
    for q in qs:
        gemm(q, b)
    assert len(golden._OPERANDS) <= golden._OPERANDS_KEPT
    ints = golden._operand_ints(qs[-1])[0]
    with pytest.raises(ValueError):
        ints[0, 0] = 1
    ref = weakref.ref(qs[-1])
    del qs, ints, q
    gc.collect()
    assert ref() is None  # the cache holds no tensor alive


def test_quantized_tensor_is_unchanged_by_gemm(rng):
    a = quantize(rng.standard_normal((3, 64)), "nvfp4")
    b = quantize(rng.standard_normal((64, 2)), "nvfp4", axis=0)
    before = (a.codes.copy(), a.scales.copy(), dict(a.extra), vars(a).keys())
    gemm(a, b)
    assert np.array_equal(a.codes, before[0]) and np.array_equal(a.scales, before[1])
    assert a.extra == before[2] and vars(a).keys() == before[3]
    assert isinstance(a, QuantizedTensor) and a.codes.flags.writeable


def test_all_zero_mx_blocks_keep_the_fast_paths(monkeypatch, rng):
    # an all-zero block gets the E8M0 scale 2**-127; it must not spread the exponents of its
    # row so far that the sum falls back to Python integers (block by block)
    x, y = rng.standard_normal((6, 128)), rng.standard_normal((128, 5))
    x[1, 32:64] = 0.0
    y[64:96, 2] = 0.0
    cases = [("mxfp4", 32, "wrap"), ("mxfp8_e4m3", 32, "wrap"), ("mxint8", 12, "wrap")]
    want = {}
    for scheme, acc_bits, overflow in cases:
        a, b = quantize(x, scheme), quantize(y, scheme, axis=0)
        want[scheme] = reference(a, b, acc_bits, overflow)

    def no_walk(*args, **kwargs):
        raise AssertionError("block-by-block definition path taken")
    monkeypatch.setattr(golden, "_accumulate", no_walk)
    for scheme, acc_bits, overflow in cases:
        a, b = quantize(x, scheme), quantize(y, scheme, axis=0)
        assert a.scales[1, 1] == 0  # E8M0 code 0: 2**-127
        assert_same(gemm(a, b, acc_bits=acc_bits, overflow=overflow), want[scheme])


# -- the switch points: where float32 (float64) sums stop being exact, the next path --------
# Each case sits on both sides of a bound the code proves from the formats' largest integers,
# the block length and the scales; the operands make the exact sum an odd integer just past
# 2**24 on the far side, which no float32 sum can hold, so a bound off by one element fails.

def _codes(fmt, values):
    from nybble.sw import encode
    c = encode(np.asarray(values, dtype=np.float64), fmt)
    assert np.array_equal(get_format(fmt).values[c.astype(np.int64)], values)  # exact values
    return c


def _qt(codes, scheme, scales, axis):
    codes = np.asarray(codes)
    return QuantizedTensor(codes, np.asarray(scales), get_scheme(scheme), codes.shape, axis)


def _int4_operands(k):
    """1 x K and K x 2 int4 codes: products 64 (-8 x -8) but one, which is +-1: exact sums
    64 (K - 1) + 1 and 64 (K - 1) - 1."""
    a = np.full(k, -8.0)
    a[-1] = 1.0
    b = np.full((k, 2), -8.0)
    b[-1] = [1.0, -1.0]
    return _codes("int4", a)[None, :], _codes("int4", b)


# int4 x int4: the bound is 64 K, float32 while 64 K < 2**24, i.e. K < 2**18
@pytest.mark.parametrize("k", [2 ** 18 - 1, 2 ** 18, 2 ** 18 + 1])
def test_block_accumulator_switches_to_float64_where_float32_stops_being_exact(k):
    ca, cb = _int4_operands(k)
    want = [64 * (k - 1) + 1, 64 * (k - 1) - 1]
    got = gemm_codes(ca, cb, "int4", "int4", acc_bits=32)
    assert got.dtype == np.int64  # the contract: integers, whatever the sum ran in
    ints = golden.element_ints("int4")[0]
    path = golden._accumulate(ints[ca.astype(np.int64)], ints[cb.astype(np.int64)], 32, "wrap")
    assert path.dtype == (np.float32 if 64 * k < 2 ** 24 else np.float64)
    assert [int(v) for v in got[0]] == want
    if k == 2 ** 18 + 1:  # the data discriminate: a float32 sum cannot hold the result
        f32 = ca.astype(np.int64) * 0 + golden.element_ints("int4")[0][ca.astype(np.int64)]
        s = f32.astype(np.float32) @ golden.element_ints("int4")[0][cb.astype(np.int64)] \
            .astype(np.float32)
        assert [int(v) for v in s[0]] != want
    # per tensor (gemm, scale 1 on both sides): the same switch, t = fl(S * 1 * 1)
    x = gemm(_qt(ca, "int4_tensor", np.float32(1.0), 1),
             _qt(cb, "int4_tensor", np.float32(1.0), 0))
    assert [int(v) for v in x[0]] == want


@pytest.mark.parametrize("group", [2 ** 18 - 1, 2 ** 18 + 1])
@pytest.mark.parametrize("folded", [True, False])
def test_grouped_block_sums_switch_to_float64(group, folded):
    # two int4 groups of `group`: float32 block sums below the bound, float64 past it.
    # Scales 1 and 2**-3 keep every term exact (the sum folded into one matmul); scales
    # with full 24-bit mantissas do not (block sums, then the ordered float64 sum)
    ca, cb = _int4_operands(2 * group)
    if folded:
        sa, sb = np.array([[1.0, 0.125]]), np.ones((2, 2))
    else:
        sa = np.array([[1 + 2.0 ** -23, 3 * (1 - 2.0 ** -23)]])
        sb = np.array([[1 - 2.0 ** -22, 1 + 2.0 ** -21], [5 * (1 + 2.0 ** -20), 1.0]])
    sa, sb = sa.astype(np.float32), sb.astype(np.float32)
    x = gemm(_qt(ca, f"int4_g{group}", sa, 1), _qt(cb, f"int4_g{group}", sb, 0))
    sums = [[64 * group, 64 * group], [64 * (group - 1) + 1, 64 * (group - 1) - 1]]
    want = []
    for n in range(2):
        acc = 0.0  # the definition, in Python floats (IEEE double)
        for j in range(2):
            acc = acc + sums[j][n] * (float(sa[0, j]) * float(sb[j, n]))
        want.append(acc)
    assert list(x[0]) == want


# mxfp4 with every E8M0 scale 1: the folded sum's bound is 4608 nb (block sum <= 32 * 144 on
# the quarter grid), float32 while below 2**24, i.e. up to 3640 blocks
@pytest.mark.parametrize("nb", [3640, 3641])
def test_folded_mx_sum_switches_to_float64(nb):
    k = 32 * nb
    a = np.full(k, 6.0)
    a[-1] = 0.5
    b = np.full((k, 1), 6.0)
    b[-1] = 0.5
    ones_a, ones_b = np.full((1, nb), 127, np.uint8), np.full((nb, 1), 127, np.uint8)
    x = gemm(_qt(_codes("float4_e2m1fn", a)[None, :], "mxfp4", ones_a, 1),
             _qt(_codes("float4_e2m1fn", b), "mxfp4", ones_b, 0))
    exact = 144 * (k - 1) + 1  # quarter units, odd
    if nb == 3641:  # float32 cannot hold the sum: the exactness check below discriminates
        assert int(np.float32(exact)) != exact
    assert Fraction(float(x[0, 0])) == Fraction(exact, 4)


def _e5m2_adversarial(rng, m, k, n):
    """e5m2 elements at the ends of the limbs and residues the wrapped single-part sum uses:
    2**31 and 2**15 on the element grid (values 32768 and 0.5: hi / lo halves +-2**15),
    57344 * 2**-16 (the largest low half below 2**16), the largest (57344), random codes."""
    fin = np.flatnonzero(get_format("float8_e5m2").finite)
    special = _codes("float8_e5m2", [32768.0, 0.5, -32768.0, -0.5, 57344.0, -57344.0,
                                     0.875, -0.875])
    ca = rng.choice(fin, (m, k)).astype(np.uint8)
    cb = rng.choice(fin, (k, n)).astype(np.uint8)
    ca[0], cb[:, 0] = special[0], special[1]  # 2**16 res(a_hi) res(b_lo) = 2**46 at every k
    ca[1], cb[:, 1] = special[1], special[2]
    ca[2] = rng.choice(special, k)
    cb[:, 2] = rng.choice(special, k)
    ca[3], cb[:, 3] = special[6], special[0]  # a_lo (b_lo + 2**16 res(b_hi)) = -57344 * 2**31
    return ca, cb


@pytest.mark.parametrize("acc_bits", [31, 32, 33, 64])
def test_wrapped_e5m2_block_sums_at_the_residue_bound(acc_bits, rng, monkeypatch):
    # block sums of e5m2 products (up to 2**63.6) wrapped to acc_bits: one float64 part of
    # residues up to 32 bits (block 32: 2**52 + 2**51 + 2**37 < 2**53), two parts from 33
    ca, cb = _e5m2_adversarial(rng, 4, 96, 4)
    sa = rng.integers(124, 131, (4, 3)).astype(np.uint8)
    sb = rng.integers(124, 131, (3, 4)).astype(np.uint8)
    a, b = _qt(ca, "mxfp8_e5m2", sa, 1), _qt(cb, "mxfp8_e5m2", sb, 0)
    seen = []
    real = golden._int_parts

    def spy(*args, **kwargs):
        parts = real(*args, **kwargs)
        seen.append(None if parts is None else len(parts))
        return parts
    monkeypatch.setattr(golden, "_int_parts", spy)
    assert_same(gemm(a, b, acc_bits=acc_bits), reference(a, b, acc_bits))
    # (64 bits: the wrapped block sums themselves leave int64, the Python-int path)
    assert seen == {31: [1], 32: [1], 33: [2], 64: []}[acc_bits]


def test_per_tensor_scale_product_rounds_once(rng):
    # int4_tensor: t = fl(S * fl(sa sb)) with full 24-bit scale mantissas, and +0.0 for the
    # zero sums of a zero row (never -0.0)
    x = rng.standard_normal((5, 300))
    x[2] = 0.0
    y = rng.standard_normal((300, 4))
    a, b = quantize(x, "int4_tensor"), quantize(y, "int4_tensor", axis=0)
    got = gemm(a, b)
    assert_same(got, reference(a, b))
    assert not np.signbit(got[2]).any()
    zero = quantize(np.zeros((2, 8)), "int4_tensor")
    assert_same(gemm(zero, quantize(-np.ones((8, 2)), "int4_tensor", axis=0)), np.zeros((2, 2)))


def test_per_tensor_empty_operands():
    for m, k, n in [(0, 8, 3), (2, 8, 0)]:
        a = quantize(np.ones((m, k)), "int4_tensor")
        b = quantize(np.ones((k, n)), "int4_tensor", axis=0)
        assert gemm(a, b).shape == (m, n)


# -- wrapped block sums that vanish: the valuation bound -------------------------------------
# An e5m2 element 5.0 is 5 * 2**16 on its grid (valuation 16), 2.5 is 5 * 2**15 (15), 4.0 is
# 2**18 (18): 5.0 times 2.5 is an odd multiple of 2**31, which a 32-bit accumulator wraps to
# -2**31 (not 0); 5.0 times 5.0 is a multiple of 2**32 (0).

def _spy_taken(monkeypatch, name):
    """Record, for each call of the path ``golden.<name>``, whether it gave the sum (True)
    or left it to the next path (False, it returned None)."""
    seen = []
    real = getattr(golden, name)

    def spy(*args, **kwargs):
        x = real(*args, **kwargs)
        seen.append(x is not None)
        return x
    monkeypatch.setattr(golden, name, spy)
    return seen


def _spy_pairs(monkeypatch):
    """Record whether each gemm took the direct wrapped block sums (True) or BLAS (False)."""
    return _spy_taken(monkeypatch, "_wrapped_pairs")


@pytest.mark.parametrize("alpha_plus_beta", [31, 32])
def test_wrapped_block_sums_vanish_from_the_valuation_bound(alpha_plus_beta, monkeypatch):
    seen = _spy_pairs(monkeypatch)
    k, n = 64, 4
    a = np.full((4, k), 5.0)
    b = np.full((k, n), 5.0)
    b[0, 0] = 2.5 if alpha_plus_beta == 31 else 5.0  # block 0 of column 0: valuation 15
    b[5, 0] = -5.0  # block sum 25 * 2**31 + 29 * 25 * 2**32: an odd multiple of 2**31
    a[2:, :32] = 4.0  # rows 2, 3, block 0: valuation 18
    sa = np.full((4, 2), 127, np.uint8)
    sb = np.full((2, n), 127, np.uint8)
    qa = _qt(_codes("float8_e5m2", a), "mxfp8_e5m2", sa, 1)
    qb = _qt(_codes("float8_e5m2", b), "mxfp8_e5m2", sb, 0)
    got = gemm(qa, qb)
    assert_same(got, reference(qa, qb))
    # rows 0, 1 x column 0 x block 0 are the only block sums not known to vanish
    assert seen == [True]
    assert (got[:2, 0] == (-(2.0 ** 31) * 2.0 ** -32 if alpha_plus_beta == 31 else 0.0)).all()
    assert (got[2:] == 0).all() and (got[:, 1:] == 0).all()


@pytest.mark.parametrize("left", [2, 3])
def test_direct_wrapped_sums_switch_to_blas_past_their_share(left, monkeypatch, rng):
    # 4 x 4 outputs, 2 blocks: 32 triples, summed directly while at most 32 / 16 = 2 are left
    seen = _spy_pairs(monkeypatch)
    k = 64
    a = rng.choice([5.0, -5.0, 6.0, 7.0, -28.0], (4, k))  # valuations 16 to 18
    b = rng.choice([5.0, -5.0, 7.0, 20.0, -448.0], (k, 4))  # 16 to 22
    b[:32, 0] = 2.5  # column 0, block 0: valuation 15 ...
    b[31, 0] = 5.0  # ... and a block sum with row 0 that is an odd multiple of 2**31
    a[0, :32] = 5.0
    a[left:, :32] = rng.choice([4.0, -4.0, 16.0, 6.0], (4 - left, 32))  # valuations 17+
    alpha = golden._kernels().block_valuations(_codes_ints(a), 32, 2, 1)
    assert (alpha[:left, 0] == 16).all() and (alpha[left:, 0] >= 17).all()
    sa = rng.integers(120, 135, (4, 2)).astype(np.uint8)
    sb = rng.integers(120, 135, (2, 4)).astype(np.uint8)
    qa = _qt(_codes("float8_e5m2", a), "mxfp8_e5m2", sa, 1)
    qb = _qt(_codes("float8_e5m2", b), "mxfp8_e5m2", sb, 0)
    for acc_bits in (31, 32):
        got = gemm(qa, qb, acc_bits=acc_bits)
        assert_same(got, reference(qa, qb, acc_bits))
    assert got[0, 0] != 0.0
    # 31 bits: 16 + 15 is not below 31, every block sum vanishes; 32: `left` triples remain
    assert seen == [True, left == 2]


def _codes_ints(values):
    return np.asarray(values, dtype=np.float64) * 2.0 ** 16  # e5m2's grid: exact integers


def test_direct_wrapped_sums_match_the_definition_on_mostly_large_elements(rng, monkeypatch):
    # MX fp8 e5m2 of Gaussian data: block maxima near 2**15, so elements mostly multiples of
    # 2**16 on the grid; a few tiny ones (and zeros) make some block sums survive the wrap
    seen = _spy_pairs(monkeypatch)
    x = rng.standard_normal((40, 256))
    y = rng.standard_normal((256, 30))
    x[rng.random(x.shape) < 0.003] = 1e-4
    y[rng.random(y.shape) < 0.003] = -3e-5
    x[3, :40] = 0.0
    a, b = quantize(x, "mxfp8_e5m2"), quantize(y, "mxfp8_e5m2", axis=0)
    for acc_bits in (24, 32, 40):
        got = gemm(a, b, acc_bits=acc_bits)
        assert_same(got, reference(a, b, acc_bits))
        assert_same(got, _definition(a, b, acc_bits=acc_bits))
    assert seen[:2] == [True, True] and len(seen) == 3  # 40 bits: too many survive
    assert np.count_nonzero(gemm(a, b, acc_bits=32)) > 0



@pytest.mark.parametrize("e", [21, 22])
def test_int_cross_block_sum_switches_from_float64_past_2_53(e, monkeypatch):
    # mxfp8_e4m3, 32-bit wrap: block sums -2**31 (256 x 32 on the 2**-18 grid), -1, -1 with
    # row scales 2**e, 1, 1: the sums are bounded by 2**31 (2**e + 2), below 2**53 up to e =
    # 21.  At e = 22 the exact -2**53 - 2 is representable but a float64 sum in block order
    # would round -2**53 - 1 to -2**53 on the way: the int64 path must take over there
    seen = []
    real = golden._blockwise_int
    monkeypatch.setattr(golden, "_blockwise_int",
                        lambda *args: seen.append(args[-1]) or real(*args))
    a = np.zeros((1, 96))
    b = np.zeros((96, 1))
    a[0, [0, 32, 64]] = [256.0, 2.0 ** -9, 2.0 ** -9]
    b[[0, 32, 64], 0] = [32.0, -(2.0 ** -9), -(2.0 ** -9)]
    qa = _qt(_codes("float8_e4m3fn", a), "mxfp8_e4m3", np.array([[127 + e, 127, 127]],
                                                                np.uint8), 1)
    qb = _qt(_codes("float8_e4m3fn", b), "mxfp8_e4m3", np.full((3, 1), 127, np.uint8), 0)
    got = gemm(qa, qb)
    assert_same(got, reference(qa, qb))
    assert Fraction(float(got[0, 0])) == Fraction(-(2 ** (31 + e)) - 2, 2 ** 18)
    assert seen == [e == 21]


# -- block sums beyond float64 that do not wrap: split by valuation (golden._split_exact) ----

def _spy_split(monkeypatch):
    return _spy_taken(monkeypatch, "_split_exact")


def _e5m2_large_and_low(rng, m, k, n, n_low_a, n_low_b):
    """MX fp8 e5m2 operands of large elements (multiples of 2**29 on the 2**-16 grid:
    values 2**13 .. 57344) with ``n_low_a`` / ``n_low_b`` odd ones (3 * 2**-16, -2**-16:
    2-adic valuation 0) at random places, some sharing a k; E8M0 scales 2**-3 .. 2**3."""
    big = _codes("float8_e5m2", [8192.0, -16384.0, 32768.0, -49152.0, 57344.0, -57344.0])
    low = _codes("float8_e5m2", [3 * 2.0 ** -16, -(2.0 ** -16)])
    ca, cb = rng.choice(big, (m, k)), rng.choice(big, (k, n))
    for c, cnt in ((ca, n_low_a), (cb, n_low_b)):
        flat = rng.choice(c.size, cnt, replace=False)
        c.flat[flat] = rng.choice(low, cnt)
    nb = -(-k // 32)
    sa = rng.integers(124, 131, (m, nb)).astype(np.uint8)
    sb = rng.integers(124, 131, (nb, n)).astype(np.uint8)
    return _qt(ca, "mxfp8_e5m2", sa, 1), _qt(cb, "mxfp8_e5m2", sb, 0)


@pytest.mark.parametrize("acc_bits", [69, 70, 80])
def test_e5m2_block_sums_beyond_float64_split_from_70_bits(acc_bits, rng, monkeypatch):
    # e5m2 block sums reach 2**68.6 (min_acc_bits 70): from 70 bits none can wrap, and the
    # exact sum is one float64 matmul of the elements that are multiples of 2**t plus the
    # int64 products of the few others; at 69 they may wrap (the wrapped paths)
    assert golden.min_acc_bits("float8_e5m2", "float8_e5m2", 32) == 70
    seen = _spy_split(monkeypatch)
    a, b = _e5m2_large_and_low(rng, 12, 80, 11, 5, 4)
    assert_same(gemm(a, b, acc_bits=acc_bits), reference(a, b, acc_bits))
    assert seen == ([] if acc_bits == 69 else [True])


@pytest.mark.parametrize("extra", [0, 1])
def test_split_sum_switches_to_the_definition_past_its_share(extra, rng, monkeypatch):
    # (low entries of A * N + of B * M) * _SPLIT_SHARE <= M N K: 16 * 16 * 64 / 32 / 16 = 32
    # low entries in all; one more and the Python-integer definition sums
    seen = _spy_split(monkeypatch)
    a, b = _e5m2_large_and_low(rng, 16, 64, 16, 20, 12 + extra)
    assert_same(gemm(a, b, acc_bits=70), reference(a, b, 70))
    assert seen == [not extra]


def test_split_sum_lists_every_low_entry_of_a_wide_operand(rng, monkeypatch):
    # 4 x 64 @ 64 x 64: up to (4 * 64 * 64 / 32) / 4 = 128 low entries of B pay, more than
    # A's share of its own list (4 * 64 / 32 = 8): each operand's list holds its own share
    seen = _spy_split(monkeypatch)
    a, b = _e5m2_large_and_low(rng, 4, 64, 64, 0, 120)
    assert_same(gemm(a, b, acc_bits=70), reference(a, b, 70))
    assert seen == [True]


@pytest.mark.parametrize("spread", [20, 21])
def test_split_sum_needs_folded_elements_below_2_53(spread, rng, monkeypatch):
    # e5m2 integers reach 2**31.8 (32 bits); a row's E8M0 scales 2**spread apart fold it into
    # 32 + spread + 1 bits: float64 holds them up to spread 20, then the definition sums
    seen = _spy_split(monkeypatch)
    a, b = _e5m2_large_and_low(rng, 3, 64, 5, 2, 2)
    sa = np.full((3, 2), 120, np.uint8)
    sa[1, 1] += spread
    a = _qt(a.codes, "mxfp8_e5m2", sa, 1)
    assert_same(gemm(a, b, acc_bits=70), reference(a, b, 70))
    assert seen == [spread == 20]


def test_split_sum_of_gaussian_mx_e5m2_with_small_elements(rng, monkeypatch):
    # quantized Gaussian data: block maxima near 2**15, a few tiny elements and all-zero
    # blocks (E8M0 2**-127 scales, dropped before the split); against the definition
    seen = _spy_split(monkeypatch)
    x = rng.standard_normal((40, 256)) * rng.lognormal(0, 2, (40, 1))
    y = rng.standard_normal((256, 30))
    x[rng.random(x.shape) < 0.002] = 1e-4
    y[rng.random(y.shape) < 0.002] = -3e-5
    x[3, :40] = 0.0
    a, b = quantize(x, "mxfp8_e5m2"), quantize(y, "mxfp8_e5m2", axis=0)
    assert_same(gemm(a, b, acc_bits=70), _definition(a, b, acc_bits=70))
    assert seen[-1] is True
