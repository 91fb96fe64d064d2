import ml_dtypes
import numpy as np
import pytest

from nybble.sw import get_format, format_names, codebook, FormatError, encode, decode

ML = {
    "float4_e2m1fn": ml_dtypes.float4_e2m1fn, "float6_e2m3fn": ml_dtypes.float6_e2m3fn,
    "float6_e3m2fn": ml_dtypes.float6_e3m2fn, "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8_e5m2": ml_dtypes.float8_e5m2, "bfloat16": ml_dtypes.bfloat16,
    "float16": np.float16, "float8_e8m0fnu": ml_dtypes.float8_e8m0fnu,
    "int4": ml_dtypes.int4, "uint4": ml_dtypes.uint4, "int8": np.int8, "int16": np.int16,
}


@pytest.mark.parametrize("name", sorted(ML))
def test_value_table_matches_ml_dtypes(name):
    fmt = get_format(name)
    dt = np.dtype(ML[name])
    codes = np.arange(fmt.n_codes)
    if dt.itemsize * 8 == fmt.bits:
        raw = codes.astype(np.uint8 if fmt.bits <= 8 else np.uint16).view(dt)
    else:  # sub-byte ml_dtypes types are stored one per byte, low bits
        raw = codes.astype(np.uint8).view(dt)
    with np.errstate(invalid="ignore"):  # NaN codes of 16-bit formats
        ref = raw.astype(np.float64)
    same = (ref == fmt.values) | (np.isnan(ref) & np.isnan(fmt.values))
    assert same.all(), f"{name}: codes {codes[~same][:8]} differ"
    # sign of zero too
    assert np.array_equal(np.signbit(ref[~np.isnan(ref)]), np.signbit(fmt.values[~np.isnan(ref)]))


@pytest.mark.parametrize("alias,name", [("fp4_e2m1", "float4_e2m1fn"), ("fp8_e4m3", "float8_e4m3fn"),
                                        ("fp8_e5m2", "float8_e5m2"), ("fp6_e2m3", "float6_e2m3fn"),
                                        ("fp6_e3m2", "float6_e3m2fn"), ("bf16", "bfloat16"),
                                        ("fp16", "float16"), ("e8m0", "float8_e8m0fnu")])
def test_aliases(alias, name):
    assert get_format(alias) is get_format(name)


def test_e3m0_bias_parameter():
    f3, f4 = get_format("e3m0"), get_format("e3m0_b4")
    assert f3.bias == 3 and f4.bias == 4
    assert sorted(set(np.abs(f3.values))) == [0, 0.25, 0.5, 1, 2, 4, 8, 16]
    assert sorted(set(np.abs(f4.values))) == [0, 0.125, 0.25, 0.5, 1, 2, 4, 8]
    assert f3.frac_bits == 2 and f4.frac_bits == 3


def test_fp4_r4_is_radix_4():
    f = get_format("fp4_r4")
    mags = sorted(set(np.abs(f.values)) - {0})
    assert all(b / a == 4 for a, b in zip(mags, mags[1:]))
    assert get_format("fp4_r4_b2").max_value == 4.0 ** 5


def test_bitmod_types():
    for name, special in [("bitmod_er_pos", 10), ("bitmod_er_neg", -10),
                          ("bitmod_ea_pos", 16), ("bitmod_ea_neg", -16)]:
        f = get_format(name)
        assert f.values[8] == special
        base = set(f.values) - {special}
        assert base == {0, 1, 2, 3, 4, 6, 8, 12, -1, -2, -3, -4, -6, -8, -12}


def test_nf4_table_is_bitsandbytes():
    f = get_format("nf4")
    assert f.values[0] == -1 and f.values[7] == 0 and f.values[15] == 1
    assert np.all(np.diff(f.values) > 0)
    assert f.frac_bits is None  # not representable on a short fixed-point grid


def test_user_codebook():
    cb = codebook(np.linspace(-1, 1, 16), name="lin")
    assert cb.bits == 4 and cb.kind == "codebook"
    assert np.array_equal(decode(encode(cb.values, cb), cb), cb.values)


def test_every_format_has_a_spec():
    for name in format_names():
        spec = get_format(name).spec()
        assert spec["bits"] == get_format(name).bits
        if get_format(name).bits <= 8:
            assert len(spec["values"]) == 2 ** spec["bits"]


def test_unknown_format_lists_valid_names():
    with pytest.raises(FormatError, match=r"unknown format 'fp5'.*valid formats: .*int4"):
        get_format("fp5")
    with pytest.raises(TypeError, match="fmt must be a format name"):
        get_format(4)
    with pytest.raises(FormatError, match="bias of e3m0 must be in -16..16"):
        get_format("e3m0_b99")


def test_codebook_errors():
    with pytest.raises(FormatError, match="16 values"):
        codebook([1, 2, 3])
    with pytest.raises(FormatError, match="finite"):
        codebook([np.nan] * 16)
