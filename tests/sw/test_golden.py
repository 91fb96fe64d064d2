"""The golden GEMM against a slow, independent reference written from its docstring."""
import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from nybble.sw.errors import ParameterError
from nybble.sw import (quantize, gemm, gemm_codes, min_acc_bits, scheme_acc_bits,
                       product_format, encode,
                       get_format, CODEBOOK_FRAC_BITS)


def _ref_ints(fmt):
    f = get_format(fmt)
    fb = f.frac_bits if f.frac_bits is not None else CODEBOOK_FRAC_BITS
    out = []
    for v in f.values:
        q = Fraction(float(v)) * 2 ** fb if np.isfinite(v) else Fraction(0)
        if q.denominator != 1:  # round half away from zero
            q = int(abs(q) + Fraction(1, 2)) * (1 if q >= 0 else -1)
        out.append(int(q))
    return out, fb


def slow_block_sum(pa, pb, acc_bits, overflow):
    lim = 1 << (acc_bits - 1)
    acc = 0
    for x, y in zip(pa, pb):
        acc += x * y
        if overflow == "wrap":
            acc = (acc + lim) % (2 * lim) - lim
        elif not -lim <= acc < lim:
            if overflow == "error":
                raise OverflowError
            acc = max(-lim, min(lim - 1, acc))
    return acc


def slow_gemm_codes(a, b, fa, fb, acc_bits, overflow):
    ta, _ = _ref_ints(fa)
    tb, _ = _ref_ints(fb)
    m, k = a.shape
    n = b.shape[1]
    return np.array([[slow_block_sum([ta[a[i, kk]] for kk in range(k)],
                                     [tb[b[kk, j]] for kk in range(k)], acc_bits, overflow)
                      for j in range(n)] for i in range(m)], dtype=object)


FORMAT_PAIRS = [("int4", "int4"), ("uint4", "uint4"), ("fp4_e2m1", "fp4_e2m1"),
                ("e3m0", "e3m0"), ("int8", "e3m0"), ("int8", "nf4"), ("fp8_e4m3", "fp8_e4m3"),
                ("int8", "int8"), ("e3m0_b4", "fp4_e2m1"), ("bf16", "bf16"), ("fp16", "fp16")]


@pytest.mark.parametrize("fa,fb", FORMAT_PAIRS)
@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_gemm_codes_random(fa, fb, overflow, rng):
    A, B = get_format(fa), get_format(fb)
    ca = rng.choice(np.flatnonzero(A.finite), size=(5, 23))
    cb = rng.choice(np.flatnonzero(B.finite), size=(23, 4))
    bits = min_acc_bits(fa, fb, 23)
    for acc_bits in (bits, max(bits - 4, 2)):
        got = gemm_codes(ca, cb, fa, fb, acc_bits=acc_bits, overflow=overflow)
        want = slow_gemm_codes(ca, cb, fa, fb, acc_bits, overflow)
        assert np.array_equal(got.astype(object), want), f"{fa}x{fb} acc_bits={acc_bits}"
        # integers as documented (int64, or Python ints past 62 bits), never the float the
        # fast path summed in
        assert got.dtype in (np.int64, object), got.dtype


@pytest.mark.parametrize("fa,fb", [("int4", "int4"), ("fp4_e2m1", "fp4_e2m1"), ("e3m0", "e3m0")])
def test_all_max_magnitude_codes_cross_wrap_and_saturate(fa, fb):
    A, B = get_format(fa), get_format(fb)
    big_a = int(np.argmax(np.abs(np.where(A.finite, A.values, 0))))
    big_b = int(np.argmax(np.abs(np.where(B.finite, B.values, 0))))
    k = 300
    ca = np.full((2, k), big_a)
    cb = np.full((k, 3), big_b)
    _, pmin, pmax = product_format(fa, fb)
    p = (A.values[big_a] * B.values[big_b]) * 2 ** product_format(fa, fb)[0]
    acc_bits = 12
    wrap = gemm_codes(ca, cb, fa, fb, acc_bits=acc_bits, overflow="wrap")
    exact = int(p) * k
    assert int(wrap[0, 0]) == ((exact + 2048) % 4096) - 2048
    sat = gemm_codes(ca, cb, fa, fb, acc_bits=acc_bits, overflow="saturate")
    assert int(sat[0, 0]) == (2047 if p > 0 else -2048)
    with pytest.raises(ValueError, match=r"acc_bits=12 is too narrow.*min_acc_bits"):
        gemm_codes(ca, cb, fa, fb, acc_bits=acc_bits, overflow="error")
    wide = gemm_codes(ca, cb, fa, fb, acc_bits=min_acc_bits(fa, fb, k), overflow="error")
    assert int(wide[0, 0]) == exact


def test_saturation_depends_on_order():
    # +7*7 fifty times then -8*7 fifty times: saturating at 12 bits clips the climb
    ca = np.array([[7] * 50 + [8] * 50])  # int4 code 8 = -8
    cb = np.full((100, 1), 7)
    sat = gemm_codes(ca, cb, "int4", "int4", acc_bits=12, overflow="saturate")
    assert int(sat[0, 0]) == 2047 - 50 * 56
    wrap = gemm_codes(ca, cb, "int4", "int4", acc_bits=12, overflow="wrap")
    assert int(wrap[0, 0]) == 50 * 49 - 50 * 56


def test_min_acc_bits():
    assert min_acc_bits("int4", "int4", 1) == 8  # (-8) * (-8) = 64
    assert min_acc_bits("int4", "int4", 64) == 14
    assert min_acc_bits("fp4_e2m1", "fp4_e2m1", 1) == 9  # 36 with 2 fraction bits = 144
    assert product_format("fp4_e2m1", "fp4_e2m1") == (2, -144, 144)
    assert product_format("e3m0", "e3m0")[0] == 4


@pytest.mark.parametrize("scheme,k,want", [
    ("mxfp8_e5m2", 1024, 70),   # blocks of 32 products up to (57344 * 2**16)**2
    ("mxfp8_e4m3", 1024, 42),
    ("mxfp8_e4m3", 20, 41),     # one short block: 20 products
    ("nf4_g64", 1024, 36),      # codebook integers of 2**14, blocks of 64
    ("int4_tensor", 1024, 18),  # one block over all of K: 64 * 1024 = 2**16
    ("int4_channel", 100, 14),
    ("bitmod_g128", 256, 17),   # the widest pair of BitMoD's types
])
def test_scheme_acc_bits_is_the_narrowest_that_never_wraps(scheme, k, want, rng):
    assert scheme_acc_bits(scheme, k) == want
    a = quantize(rng.standard_normal((3, k)), scheme, axis=-1)
    b = quantize(rng.standard_normal((k, 2)), scheme, axis=0)
    assert gemm(a, b, acc_bits=want, overflow="error").shape == (3, 2)


def test_scheme_acc_bits_names_the_bad_k():
    with pytest.raises(ParameterError, match="k"):
        scheme_acc_bits("mxfp4", 0)


def slow_gemm(a, b, acc_bits=32, overflow="wrap"):
    """The module docstring's definition, with Fractions."""
    from nybble.sw.golden import _operand_ints
    pa, fa, _ = _operand_ints(a)
    pb, fb, _ = _operand_ints(b)
    pa, pb = pa.astype(np.int64), pb.astype(np.int64)
    k = pa.shape[1]
    blk = a.block if a.scheme.block else b.block
    if a.scheme.block == 0 and b.scheme.block == 0:
        blk = k
    nb = -(-k // blk)
    sa = np.repeat(a.block_scale_values(), nb if a.block_scale_values().shape[1] == 1 else 1, axis=1)
    sb = np.repeat(b.block_scale_values(), nb if b.block_scale_values().shape[0] == 1 else 1, axis=0)
    exact = a.scheme.scale_kind in ("e8m0", "e4m3") and b.scheme.scale_kind in ("e8m0", "e4m3") and nb > 1
    out = np.zeros((pa.shape[0], pb.shape[1]))
    for i in range(pa.shape[0]):
        for j in range(pb.shape[1]):
            total, x = Fraction(0), 0.0
            for t in range(nb):
                ks = range(t * blk, min(k, (t + 1) * blk))
                s = slow_block_sum([int(pa[i, q]) for q in ks], [int(pb[q, j]) for q in ks],
                                   acc_bits, overflow)
                if exact:
                    total += s * Fraction(float(sa[i, t])) * Fraction(float(sb[t, j])) / 2 ** (fa + fb)
                else:
                    x = x + (s * 2.0 ** -(fa + fb)) * (sa[i, t] * sb[t, j])
            out[i, j] = float(total) if exact else x
    t = (a.tensor_scale or 1.0) * (b.tensor_scale or 1.0)
    return out * t if t != 1.0 else out


@pytest.mark.parametrize("scheme", ["int4_tensor", "int4_channel", "int4_g32", "mxfp4", "nvfp4",
                                    "mxint8", "mxfp6_e3m2", "e3m0_g32", "nf4_g32", "bitmod_g32",
                                    "q4_0"])
def test_gemm_matches_slow_reference(scheme, rng):
    x = rng.standard_normal((6, 64)) * rng.lognormal(0, 2, (6, 1))
    y = rng.standard_normal((64, 5)) * rng.lognormal(0, 2, (1, 5))
    a, b = quantize(x, scheme, axis=-1), quantize(y, scheme, axis=0)
    got = gemm(a, b)
    assert np.array_equal(got, slow_gemm(a, b))
    # and it is what the scheme represents
    assert np.allclose(got, a.dequantize() @ b.dequantize(), rtol=1e-6, atol=1e-9) or \
        scheme.startswith("nf4")


def test_mx_exact_with_wide_exponent_spread(rng):
    # blocks with scales 2^-100 .. 2^100 in one row force the exact (Python int) path
    x = rng.standard_normal((3, 128)) * np.repeat(2.0 ** np.array([-100, 0, 60, 100]), 32)
    y = rng.standard_normal((128, 2))
    a, b = quantize(x, "mxfp4"), quantize(y, "mxfp4", axis=0)
    assert np.array_equal(gemm(a, b), slow_gemm(a, b))


def test_gemm_errors(rng):
    a = quantize(rng.standard_normal((4, 64)), "mxfp4")
    b = quantize(rng.standard_normal((32, 4)), "mxfp4", axis=0)
    with pytest.raises(ValueError, match=r"K mismatch: a is 4 x 64 and b is 32 x 4"):
        gemm(a, b)
    with pytest.raises(ValueError, match="b must be blocked along K: quantize it with axis=0"):
        gemm(a, quantize(rng.standard_normal((64, 4)), "mxfp4", axis=-1))
    with pytest.raises(TypeError, match="QuantizedTensor"):
        gemm(np.ones((2, 2)), a)
    with pytest.raises(ValueError, match="block sizes differ along K"):
        gemm(a, quantize(rng.standard_normal((64, 4)), "nvfp4", axis=0))
    with pytest.raises(ValueError, match="zero points"):
        gemm(quantize(rng.standard_normal((2, 64)), "q4_1"), quantize(rng.standard_normal((64, 2)), "q4_1", axis=0))
    with pytest.raises(ValueError, match="overflow must be one of wrap, saturate, error"):
        gemm(a, quantize(rng.standard_normal((64, 4)), "mxfp4", axis=0), overflow="clip")
    with pytest.raises(ValueError, match="a_codes must be 2-D"):
        gemm_codes(np.zeros(3, int), np.zeros((3, 1), int), "int4", "int4")
    with pytest.raises(TypeError, match="integer array of int4 codes"):
        gemm_codes(np.zeros((1, 3)), np.zeros((3, 1), int), "int4", "int4")
    with pytest.raises(ValueError, match="NaN/Inf code of float8_e4m3fn"):
        gemm_codes(np.full((1, 1), 0x7F), np.zeros((1, 1), int), "fp8_e4m3", "fp8_e4m3")


@pytest.mark.parametrize("scheme, code", [("mxfp4", 0xFF), ("nvfp4", 0x7F), ("nvfp4", 0xFF)])
def test_nan_scale_codes_are_refused(scheme, code):
    """A NaN block scale (E8M0 0xFF, E4M3 0x7F / 0xFF) has no defined product: refused, naming
    the scale, instead of a finite-looking garbage result."""
    rng = np.random.default_rng(3)
    a = quantize(rng.standard_normal((4, 64)), scheme, axis=-1)
    b = quantize(rng.standard_normal((64, 4)), scheme, axis=0)
    scales = np.array(a.scales, copy=True)
    scales[1, 0] = code
    bad = dataclasses.replace(a, scales=scales)
    with pytest.raises(ParameterError, match=r"NaN/Inf block scale \(scales\[1, 0\]"):
        gemm(bad, b)
