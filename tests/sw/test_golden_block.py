"""The windowed cross-block accumulator of nybble.sw (gemm(..., block_acc=...),
gemm_block_acc, gemm_block_codes) against a slow reference written from the module docstring
with Fractions: random and adversarial blocks, every scale format, wrap / saturate / error."""
from fractions import Fraction
import math

import numpy as np
import pytest

from nybble.sw import (gemm, gemm_block_acc, gemm_block_codes, get_format, quantize,
                       QuantizedTensor, get_scheme)

SCALES = {"e8m0": "float8_e8m0fnu", "e4m3": "float8_e4m3fn", "fp16": "float16"}


def ref(a, sa, b, sb, fa, fb, sfmt, block, w, f, overflow):
    """Docstring steps 1-3, one output at a time, in Fractions."""
    va, vb = get_format(fa).values, get_format(fb).values
    vs = get_format(sfmt).values
    lim = 1 << (w - 1)
    m, k = a.shape
    n = b.shape[1]
    acc = np.zeros((m, n), dtype=object)
    flags = np.zeros((m, n), dtype=bool)
    for i in range(m):
        for j in range(n):
            x, flag = 0, False
            for blk in range(-(-k // block)):
                s = sum(Fraction(float(va[a[i, kk]])) * Fraction(float(vb[b[kk, j]]))
                        for kk in range(blk * block, min(k, (blk + 1) * block)))
                c = math.floor(s * Fraction(float(vs[sa[i, blk]])) *
                               Fraction(float(vs[sb[blk, j]])) * Fraction(2) ** f)
                t = x + c if blk else c
                if not -lim <= t < lim:
                    flag = True
                    if overflow == "error":
                        raise OverflowError
                x = (t + lim) % (2 * lim) - lim if overflow == "wrap" else max(-lim, min(lim - 1, t))
            acc[i, j], flags[i, j] = x, flag
    return acc, flags


def _finite(fmt):
    return np.flatnonzero(get_format(fmt).finite)


def _check(a, sa, b, sb, fa, fb, sfmt, block, w, f, overflow):
    got, flags = gemm_block_codes(a, sa, b, sb, fa, fb, scale_fmt=sfmt, block=block,
                                  acc_bits=w, acc_frac_bits=f, overflow=overflow,
                                  return_overflow=True)
    want, wflags = ref(a, sa, b, sb, fa, fb, sfmt, block, w, f, overflow)
    bad = np.argwhere((np.asarray(got, dtype=object) != want) | (flags != wflags))
    assert bad.size == 0, (f"{fa} {sfmt} W={w} F={f} {overflow}: first mismatch at "
                           f"{tuple(bad[0])}: got {got[tuple(bad[0])]} "
                           f"({flags[tuple(bad[0])]}), want {want[tuple(bad[0])]} "
                           f"({wflags[tuple(bad[0])]})")
    return want, wflags


CASES = [  # element, scale format, block, acc bits, frac bits, scale codes drawn from
    ("fp4_e2m1", "e8m0", 32, 32, 16, range(100, 150)),
    ("fp4_e2m1", "e8m0", 32, 24, 8, range(0, 255)),      # wild scales: overflow and vanish
    ("fp4_e2m1", "e8m0", 16, 96, 40, range(0, 255)),     # > 60 bits: Python-int path
    ("int8_mx", "e8m0", 32, 40, 20, range(110, 140)),
    ("fp4_e2m1", "e4m3", 16, 64, 20, None),               # NVFP4 with its exact window
    ("fp4_e2m1", "e4m3", 16, 20, 0, None),
    ("int4", "fp16", 32, 48, 24, None),
    ("int4", "fp16", 32, 16, 12, None),
]


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("elem,sfmt,block,w,f,pool", CASES,
                         ids=[f"{c[0]}-{c[1]}-b{c[2]}-W{c[3]}F{c[4]}" for c in CASES])
def test_random_blocks_against_fractions(elem, sfmt, block, w, f, pool, overflow, rng):
    m, n, k = 3, 4, 2 * block + 5               # a partial last block
    nb = -(-k // block)
    a = rng.choice(_finite(elem), (m, k))
    b = rng.choice(_finite(elem), (k, n))
    pool = np.asarray(pool) if pool is not None else _finite(SCALES[sfmt])
    sa, sb = rng.choice(pool, (m, nb)), rng.choice(pool, (nb, n))
    _check(a, sa, b, sb, elem, elem, SCALES[sfmt], block, w, f, overflow)


def _extremes(sfmt):
    f = get_format(sfmt)
    fin = _finite(sfmt)
    v = f.values[fin]
    pos = fin[v > 0]
    return int(pos[np.argmin(f.values[pos])]), int(pos[np.argmax(f.values[pos])])


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("sname", ["e8m0", "e4m3", "fp16"])
def test_adversarial_blocks(sname, overflow):
    sfmt = SCALES[sname]
    elem = "int4" if sname == "fp16" else "fp4_e2m1"
    fe = get_format(elem)
    fin = _finite(elem)
    hi, lo = int(fin[np.argmax(fe.values[fin])]), int(fin[np.argmin(fe.values[fin])])
    zero = int(np.flatnonzero(fe.values == 0)[0])
    smin, smax = _extremes(sfmt)
    one = int(np.flatnonzero(get_format(sfmt).values == 1.0)[0])
    block, w, f = 16, 24, 8
    rows = [  # (elements of A, scale codes of A): one row per adversarial case, 3 blocks
        ([zero] * 3, [smax] * 3),                 # all-zero blocks under the largest scale
        ([hi, hi, hi], [smax, one, one]),         # saturated elements, largest scale
        ([hi, hi, hi], [smin, smin, smin]),       # smallest scales: below the LSB
        ([lo, lo, lo], [smin, one, smin]),        # negative contributions below the LSB
        ([hi, hi, lo], [one, one, one]),          # all elements saturated, unit scales
    ]
    a = np.array([[c for c in cs for _ in range(block)] for cs, _ in rows])
    sa = np.array([s for _, s in rows])
    b = np.array([[hi] * 2 for _ in range(3 * block)])
    sb = np.array([[one, smin]] * 3)              # column 1: the smallest scale of B too
    want, flags = _check(a, sa, b, sb, elem, elem, sfmt, block, w, f, overflow)
    assert all(v == 0 for v in want[0]) and not flags[0].any(), "zero blocks contribute 0"
    assert flags[1, 0], "the largest scale overflows a 24-bit window"
    assert want[2, 1] == 0, "smallest x smallest scale vanishes below the LSB"
    assert want[3, 1] < 0, "a negative contribution below the LSB floors to -1"
    assert want[4, 0] == (1 << f) * 16 * (int(fe.values[hi] ** 2) * 2 - int(fe.values[hi] *
                                                                       -fe.values[lo]))


def test_contribution_below_the_lsb_vanishes_by_truncation():
    # one block of sum 1 (fp4 0.5 * 2.0), scales 2^-20 * 2^0: 2^-20 below a 2^-8 LSB -> 0;
    # the negative sum floors to -1 LSB
    e2m1 = get_format("fp4_e2m1")
    half, two = (int(np.flatnonzero(e2m1.values == v)[0]) for v in (0.5, 2.0))
    neg = int(np.flatnonzero(e2m1.values == -0.5)[0])
    a = np.array([[half] + [0] * 31, [neg] + [0] * 31])
    b = np.array([[two]] + [[0]] * 31)
    got = gemm_block_codes(a, np.array([[107], [107]]), b, np.array([[127]]), "fp4_e2m1",
                           "fp4_e2m1", scale_fmt="e8m0", block=32, acc_bits=16, acc_frac_bits=8)
    assert got.tolist() == [[0], [-1]]


@pytest.mark.parametrize("scheme,w,f", [("mxfp4", 40, 20), ("mxint8", 48, 24),
                                        ("nvfp4", 64, 20), ("q4_0", 48, 24)])
def test_quantized_tensors_and_float_result(scheme, w, f, rng):
    k = 64 if scheme == "q4_0" else 70
    x, y = rng.standard_normal((4, k)), rng.standard_normal((k, 5))
    qa, qb = quantize(x, scheme, axis=-1), quantize(y, scheme, axis=0)
    acc = gemm_block_acc(qa, qb, acc_bits=w, acc_frac_bits=f)
    ts = (qa.tensor_scale or 1.0) * (qb.tensor_scale or 1.0)
    val = gemm(qa, qb, block_acc=(w, f))
    assert np.array_equal(val, np.ldexp(acc.astype(np.float64), -f) * ts)
    # wide windows are exact here: equal to the default exact cross-block sum
    exact = qa.dequantize() @ qb.dequantize()
    assert np.allclose(val, exact, rtol=0, atol=2.0 ** -f * k * ts * 4)
    if scheme in ("mxfp4", "nvfp4"):
        assert np.array_equal(val, gemm(qa, qb))


def test_object_and_int64_paths_agree(rng):
    a = rng.choice(_finite("fp4_e2m1"), (6, 96))
    b = rng.choice(_finite("fp4_e2m1"), (96, 5))
    sa, sb = rng.integers(90, 160, (6, 3)), rng.integers(90, 160, (3, 5))
    for ov in ("wrap", "saturate"):
        fast = gemm_block_codes(a, sa, b, sb, "fp4_e2m1", "fp4_e2m1", scale_fmt="e8m0",
                                block=32, acc_bits=60, acc_frac_bits=20, overflow=ov)
        wide = gemm_block_codes(a, sa, b, sb, "fp4_e2m1", "fp4_e2m1", scale_fmt="e8m0",
                                block=32, acc_bits=61, acc_frac_bits=20, overflow=ov)
        assert fast.dtype == np.int64 and wide.dtype == object
        lim = 1 << 59
        wrapped = np.array([[(int(v) + lim) % (2 * lim) - lim if ov == "wrap"
                             else max(-lim, min(lim - 1, int(v))) for v in r] for r in wide])
        # where the 61-bit result fits in 60 bits the two must agree
        fits = np.array([[-lim <= int(v) < lim for v in r] for r in wide])
        assert np.array_equal(fast[fits], wrapped[fits].astype(np.int64))


def test_default_gemm_is_unchanged(rng):
    qa = quantize(rng.standard_normal((3, 64)), "mxfp4", axis=-1)
    qb = quantize(rng.standard_normal((64, 2)), "mxfp4", axis=0)
    assert np.array_equal(gemm(qa, qb), gemm(qa, qb, block_acc=None))


def test_errors():
    a = np.zeros((2, 32), int)
    b = np.zeros((32, 2), int)
    s1, s2 = np.full((2, 1), 127), np.full((1, 2), 127)
    kw = dict(scale_fmt="e8m0", block=32, acc_bits=16, acc_frac_bits=4)
    with pytest.raises(ValueError, match=r"^a_scales holds the NaN/Inf code 255 of "
                                         r"float8_e8m0fnu at \(0, 0\)$"):
        gemm_block_codes(a, np.full((2, 1), 255), b, s2, "fp4_e2m1", "fp4_e2m1", **kw)
    with pytest.raises(ValueError, match=r"NaN/Inf code 127 of float8_e4m3fn"):
        gemm_block_codes(a, s1, b, s2, "fp4_e2m1", "fp4_e2m1",
                         **{**kw, "scale_fmt": "e4m3"})
    with pytest.raises(ValueError, match=r"^scales must be \(M, blocks\) = \(2, 1\)"):
        gemm_block_codes(a, np.full((2, 2), 1), b, s2, "fp4_e2m1", "fp4_e2m1", **kw)
    with pytest.raises(ValueError, match=r"^acc_frac_bits must be in -4096\.\.4096"):
        gemm_block_codes(a, s1, b, s2, "fp4_e2m1", "fp4_e2m1", **{**kw, "acc_frac_bits": 5000})
    big = np.full((2, 32), int(np.flatnonzero(get_format("fp4_e2m1").values == 6.0)[0]))
    with pytest.raises(ValueError, match=r"^cross-block accumulator overflow: acc_bits=12 "
                                         r"\(acc_frac_bits=4\) is too narrow; output \[0, 0\]"):
        gemm_block_codes(big, s1, big.T, s2, "fp4_e2m1", "fp4_e2m1",
                         **{**kw, "overflow": "error", "acc_bits": 12})
    qa = quantize(np.ones((2, 32)), "mxfp4", axis=-1)
    with pytest.raises(TypeError, match=r"^block_acc must be a pair \(acc_bits, acc_frac_bits\)"):
        gemm(qa, quantize(np.ones((32, 2)), "mxfp4", axis=0), block_acc=32)
    with pytest.raises(ValueError, match="block sizes differ along K"):
        gemm_block_acc(quantize(np.ones((2, 64)), "mxfp4", axis=-1),
                       quantize(np.ones((64, 2)), "nvfp4", axis=0), acc_bits=32, acc_frac_bits=8)
