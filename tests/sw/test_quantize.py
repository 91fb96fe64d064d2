import re

import numpy as np
import pytest

from nybble.sw import quantize, decode, get_scheme, from_bytes, QuantizedTensor
from nybble.sw.errors import ParameterError

MX = {"mxfp4": ("float4_e2m1fn", 2), "mxfp6_e2m3": ("float6_e2m3fn", 2),
      "mxfp6_e3m2": ("float6_e3m2fn", 4), "mxfp8_e4m3": ("float8_e4m3fn", 8),
      "mxfp8_e5m2": ("float8_e5m2", 15), "mxint8": ("int8_mx", 0)}


@pytest.mark.parametrize("scheme", sorted(MX))
def test_mx_scale_rule(scheme, rng):
    elem, emax = MX[scheme]
    x = rng.standard_normal((4, 128)) * rng.lognormal(0, 3, (4, 1))
    x[0, :32] = 0  # an all-zero block gets scale byte 0x00
    x[1, 32:64] = 2.0 ** 5  # amax exactly a power of two
    qt = quantize(x, scheme)
    assert qt.scales.shape == (4, 4) and qt.scales.dtype == np.uint8
    amax = np.abs(x).reshape(4, 4, 32).max(-1)
    with np.errstate(divide="ignore"):
        want = np.where(amax > 0, np.floor(np.log2(amax)) - emax + 127, 0)
    assert np.array_equal(qt.scales, want.astype(np.uint8))
    assert qt.scales[0, 0] == 0 and qt.scales[1, 1] == 5 - emax + 127
    # elements: x / 2^e rounded to nearest even, saturated
    e = np.repeat(qt.scales.astype(int) - 127, 32, axis=1)
    from nybble.sw import encode
    assert np.array_equal(qt.codes, encode(x / 2.0 ** e, elem))
    err = np.abs(qt.dequantize() - x).max() / np.abs(x).max()
    assert err < 0.3


def test_nvfp4_convention(rng):
    x = rng.standard_normal((8, 64)).astype(np.float32)
    qt = quantize(x, "nvfp4")
    ts = np.float32(np.abs(x).max() / (448 * 6))
    assert qt.tensor_scale == float(ts)
    amax = np.abs(x.astype(np.float64)).reshape(8, 4, 16).max(-1)
    from nybble.sw import encode
    assert np.array_equal(qt.scales, encode(amax / 6 / np.float64(ts), "fp8_e4m3"))
    rel = np.linalg.norm(qt.dequantize() - x) / np.linalg.norm(x)
    assert rel < 0.15


@pytest.mark.parametrize("scheme,block", [("int4_tensor", 0), ("int4_channel", None),
                                          ("int4_g32", 32), ("nf4_g64", 64),
                                          ("e3m0_g32", 32), ("bitmod_g128", 128)])
def test_float_scaled_schemes(scheme, block, rng):
    x = rng.standard_normal((16, 256))
    qt = quantize(x, scheme, axis=-1)
    assert qt.scheme.block == block
    assert qt.codes.shape == x.shape
    rel = np.linalg.norm(qt.dequantize() - x) / np.linalg.norm(x)
    assert rel < {"int4_tensor": 0.3, "e3m0_g32": 0.35}.get(scheme, 0.2)
    # the largest element of each group maps onto the format's largest magnitude
    if scheme.startswith("int4"):
        assert np.max(np.abs(decode(qt.codes, "int4"))) == 7


def test_bitmod_picks_the_best_type_per_group(rng):
    x = rng.standard_normal((4, 256))
    qt = quantize(x, "bitmod_g128")
    assert qt.extra["types"].shape == (4, 2)
    from nybble.sw.quantize import BITMOD_TYPES
    from nybble.sw import encode, get_format
    for r in range(4):
        for g in range(2):
            xs = x[r, g * 128:(g + 1) * 128]
            errs = []
            for t in BITMOD_TYPES:
                f = get_format(t)
                for top in {12.0, f.max_abs}:
                    s = np.float32(np.abs(xs).max() / top)
                    errs.append(np.sum((decode(encode(xs / s, f), f) * s - xs) ** 2))
            got = np.sum((qt.dequantize()[r, g * 128:(g + 1) * 128] - xs) ** 2)
            assert np.isclose(got, min(errs))


def test_axis_zero_blocks_columns(rng):
    x = rng.standard_normal((64, 3))
    qt = quantize(x, "mxfp4", axis=0)
    assert qt.scales.shape == (2, 3)
    assert np.allclose(qt.dequantize(), quantize(x.T, "mxfp4").dequantize().T)


def test_partial_block_is_padded(rng):
    x = rng.standard_normal((2, 40))
    qt = quantize(x, "mxfp4")
    assert qt.scales.shape == (2, 2) and qt.codes.shape == (2, 40)
    tail = quantize(x[:, 32:], "mxfp4")
    assert np.array_equal(qt.scales[:, 1], tail.scales[:, 0])


def test_ggml_refuses_partial_blocks():
    with pytest.raises(ValueError, match="multiple of 32.*40 elements"):
        quantize(np.ones((2, 40)), "q4_0")


def test_stochastic_rounding_option(rng):
    x = rng.standard_normal((4, 64))
    a = quantize(x, "int4_g32", rounding="stochastic", seed=3)
    b = quantize(x, "int4_g32", rounding="stochastic", seed=3)
    c = quantize(x, "int4_g32")
    assert np.array_equal(a.codes, b.codes) and not np.array_equal(a.codes, c.codes)


def test_mxfp4_bytes_match_ggml(rng):
    import gguf  # a core dependency
    from gguf.quants import quantize as gq, dequantize as gd
    x = (rng.standard_normal((32, 256)) * rng.lognormal(0, 2, (32, 1))).astype(np.float32)
    x[3, :32] = 0
    qt = quantize(x, "mxfp4", rounding="nearest_toward_zero")
    ref = gq(x, gguf.GGMLQuantizationType.MXFP4)
    assert qt.to_bytes() == ref.tobytes()
    back = from_bytes(ref.tobytes(), "mxfp4", x.shape)
    assert np.array_equal(back.dequantize(), gd(ref, gguf.GGMLQuantizationType.MXFP4))


def test_unknown_scheme_lists_names():
    with pytest.raises(ValueError, match=r"unknown scheme 'int3'.*mxfp4.*int4_g<N>"):
        get_scheme("int3")
    with pytest.raises(ValueError, match="group size"):
        get_scheme("int4_g0")


def test_bad_input():
    with pytest.raises(ValueError, match=r"x must be finite: element at index \(0, 1\)"):
        quantize(np.array([[1.0, np.nan]]), "mxfp4")
    with pytest.raises(TypeError, match="real"):
        quantize(np.array(["a"]), "mxfp4")
    with pytest.raises(ValueError, match="at least one dimension"):
        quantize(np.float64(1.0), "mxfp4")
    with pytest.raises(ValueError, match="axis must be in -2..1"):
        quantize(np.ones((2, 2)), "mxfp4", axis=2)
    with pytest.raises(ValueError, match="rounding must be one of"):
        quantize(np.ones((2, 2)), "mxfp4", rounding="bankers")
    with pytest.raises(ValueError, match=r"q4_0 data for shape \(2, 32\) must be 36 bytes"):
        from_bytes(bytes(35), "q4_0", (2, 32))
    with pytest.raises(ValueError, match="from_bytes reads"):
        from_bytes(bytes(1), "nvfp4", (1, 16))
    with pytest.raises(ValueError, match="to_bytes is defined"):
        quantize(np.ones((1, 32)), "int4_g32").to_bytes()


@pytest.mark.parametrize("scheme,kind", [("int4_tensor", "float32"), ("int4_g32", "float32"),
                                         ("mxfp4", "E8M0"), ("nvfp4", "float32"),
                                         ("q4_0", "fp16")])
@pytest.mark.parametrize("value,result", [(1e300, "inf / NaN"), (1e-50, "zeros")])
def test_magnitudes_beyond_the_scales_are_refused(scheme, kind, value, result):
    x = np.full((2, 64), value)
    with pytest.raises(ValueError, match=rf"^x needs {scheme} scales from .* but its {kind} "
                                         rf"scales hold .*: rescale x \(it would quantize to "
                                         rf"{re.escape(result)}\)$"):
        quantize(x, scheme, axis=-1)


def test_magnitudes_inside_the_scales_quantize(rng):
    """Far from 1 but inside E8M0's range, MXFP4 is exactly scale-invariant."""
    x = rng.standard_normal((2, 64))
    ref = quantize(x, "mxfp4", axis=-1).dequantize()
    for k in (100, -100):
        q = quantize(np.ldexp(x, k), "mxfp4", axis=-1)
        assert np.array_equal(np.ldexp(q.dequantize(), -k), ref)


@pytest.mark.parametrize("scheme", ["mxfp4", "int4_g32", "int4_channel", "nvfp4", "q4_0"])
@pytest.mark.parametrize("shape", [(0, 64), (4, 0)])
def test_empty_tensor_with_block_scales_is_refused(scheme, shape):
    with pytest.raises(ParameterError, match=rf"^x is empty \(shape \({shape[0]}, {shape[1]}\)\); "
                       rf"{scheme} has a scale per block along the axis and needs at least one "
                       r"element$"):
        quantize(np.zeros(shape, np.float32), scheme)


def test_empty_tensor_per_tensor_scale():
    assert quantize(np.zeros((0, 64), np.float32), "int4_tensor").codes.shape == (0, 64)
