import ml_dtypes
import numpy as np
import pytest

from nybble.sw import get_format, encode, decode, pack4, unpack4

FLOATS = {
    "float4_e2m1fn": ml_dtypes.float4_e2m1fn, "float6_e2m3fn": ml_dtypes.float6_e2m3fn,
    "float6_e3m2fn": ml_dtypes.float6_e3m2fn, "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16,
}


def _ml_codes(x, name):
    dt = FLOATS[name]
    f = get_format(name)
    raw = x.astype(np.float32).astype(dt)
    codes = raw.view(np.uint8 if f.bits <= 8 else np.uint16).astype(np.int64)
    return codes & ((1 << f.bits) - 1)


def _every_value_and_tie(fmt):
    v = np.unique(fmt.values[fmt.finite])
    mids = (v[1:] + v[:-1]) / 2
    # just above and below every tie, too
    eps = np.abs(mids) * 2.0 ** -20 + 1e-30
    return np.concatenate([v, mids, mids + eps, mids - eps, [-0.0]])


@pytest.mark.parametrize("name", sorted(FLOATS))
def test_nearest_even_matches_ml_dtypes_on_every_code_and_tie(name, rng):
    fmt = get_format(name)
    x = _every_value_and_tie(fmt)
    x = np.concatenate([x, rng.uniform(fmt.min_value, fmt.max_value, 20000)])
    x = x.astype(np.float32).astype(np.float64)  # inputs ml_dtypes sees without double rounding
    got = encode(x, name).astype(np.int64)
    ref = _ml_codes(x, name)
    bad = got != ref
    assert not bad.any(), f"{name}: x={x[bad][:4]} got {got[bad][:4]} want {ref[bad][:4]}"


@pytest.mark.parametrize("name,dt", [("int4", ml_dtypes.int4), ("uint4", ml_dtypes.uint4),
                                     ("int8", np.int8)])
def test_int_rounding_matches_ml_dtypes_round_half_even(name, dt):
    f = get_format(name)
    x = np.arange(f.min_value - 0.5, f.max_value + 0.75, 0.25)
    got = decode(encode(x, name), name)
    ref = np.clip(np.round(x), f.min_value, f.max_value)  # numpy rounds half to even
    assert np.array_equal(got, ref)


def test_saturation():
    assert decode(encode([1e9, -1e9], "fp4_e2m1"), "fp4_e2m1").tolist() == [6.0, -6.0]
    assert decode(encode([1e9, -1e9], "fp8_e4m3"), "fp8_e4m3").tolist() == [448.0, -448.0]
    assert decode(encode([1e9], "fp8_e5m2"), "fp8_e5m2").tolist() == [57344.0]
    assert decode(encode([1e30], "fp16"), "fp16").tolist() == [65504.0]
    assert decode(encode([100, -100], "int4"), "int4").tolist() == [7.0, -8.0]


def test_e3m0_ties():
    # 1.5 * 2^k rounds up to 2^(k+1); the tie between 0 and 2^-2 goes to 0
    x = [0.125, 0.1875, 0.375, 0.75, 3.0, 12.0, 24.0, -3.0, -0.125]
    want = [0.0, 0.25, 0.5, 1.0, 4.0, 16.0, 16.0, -4.0, -0.0]
    assert decode(encode(x, "e3m0"), "e3m0").tolist() == want
    assert decode(encode([0.0625, 0.09], "e3m0_b4"), "e3m0_b4").tolist() == [0.0, 0.125]


@pytest.mark.parametrize("mode,want", [
    ("nearest_even", [0.0, 1.0, 2.0, 4.0, -4.0, -1.0]),
    ("nearest_away", [0.5, 1.0, 3.0, 6.0, -6.0, -1.0]),
    ("toward_zero", [0.0, 0.5, 2.0, 4.0, -4.0, -0.5]),
])
def test_rounding_modes_fp4(mode, want):
    x = [0.25, 0.75, 2.5, 5.0, -5.0, -0.75]
    assert decode(encode(x, "fp4_e2m1", rounding=mode), "fp4_e2m1").tolist() == want


def test_stochastic_rounding_is_unbiased_and_seeded():
    x = np.full(200000, 2.25)  # between 2 and 3
    v = decode(encode(x, "fp4_e2m1", rounding="stochastic", seed=1), "fp4_e2m1")
    assert set(np.unique(v)) == {2.0, 3.0}
    assert abs(v.mean() - 2.25) < 0.01
    v2 = decode(encode(x, "fp4_e2m1", rounding="stochastic", seed=1), "fp4_e2m1")
    assert np.array_equal(v, v2)


def test_negative_zero_follows_sign():
    assert encode([-0.1, 0.1, -0.0], "fp4_e2m1").tolist() == [8, 0, 8]
    assert encode([-0.1], "int4").tolist() == [0]


def test_nan_inf_rejected_with_index():
    with pytest.raises(ValueError, match=r"float4_e2m1fn.*index \(1, 0\)"):
        encode(np.array([[1.0, 2.0], [np.inf, 0.0]]), "fp4_e2m1")
    with pytest.raises(ValueError, match=r"int4.*index 2"):
        encode([1.0, 2.0, np.nan], "int4")


def test_bad_arguments():
    with pytest.raises(ValueError, match="rounding must be one of nearest_even"):
        encode([1.0], "int4", rounding="up")
    with pytest.raises(TypeError, match="real numbers"):
        encode(np.array(["a"]), "int4")
    with pytest.raises(ValueError, match=r"codes of int4 must be in 0..15"):
        decode([16], "int4")
    with pytest.raises(TypeError, match="integer array"):
        decode([1.5], "int4")


def test_decode_all_codes_round_trip():
    for name in ("int4", "uint4", "fp4_e2m1", "e3m0", "nf4", "fp8_e4m3", "bitmod_ea_pos"):
        f = get_format(name)
        codes = np.flatnonzero(f.finite)
        back = encode(decode(codes, f), f)
        assert np.array_equal(decode(back, f), decode(codes, f))


def test_pack4_low_nibble_first():
    assert pack4([1, 2, 3]).tolist() == [0x21, 0x03]
    assert unpack4(bytes([0x21, 0x03]), 3).tolist() == [1, 2, 3]
    c = np.arange(16)
    assert np.array_equal(unpack4(pack4(c), 16), c)
    with pytest.raises(ValueError, match="4-bit codes 0..15"):
        pack4([16])
    with pytest.raises(ValueError, match="n must be in 0..4"):
        unpack4(bytes(2), 5)
