"""The LLM-FP4 format search and ``nybble format-search``."""

import zlib

import numpy as np
import pytest

from nybble.sw import get_format, codebook, encode, decode
from nybble.analysis.format_search import format_search, format_values, format_candidates


def _rng(tag):
    return np.random.default_rng(zlib.crc32(tag.encode()))


@pytest.mark.parametrize("e, m, bias, name", [(2, 1, 1, "float4_e2m1fn"), (3, 0, 3, "e3m0"),
                                              (3, 0, 4, "e3m0_b4")])
def test_format_values_agree_with_the_registry(e, m, bias, name):
    ours = np.unique(format_values(e, m, bias))
    ref = get_format(name).values
    np.testing.assert_array_equal(ours, np.unique(ref[np.isfinite(ref)]))


def test_e0_is_the_sign_magnitude_int_grid_and_e1m2_the_same_grid():
    np.testing.assert_array_equal(np.unique(format_values(0, 3, 0)) * 4, np.arange(-7, 8))
    np.testing.assert_array_equal(np.unique(format_values(1, 2, 0)) * 4, np.arange(-7, 8) * 2)


def test_candidates():
    assert [c[0] for c in format_candidates(4)] == ["e0m3", "e1m2", "e2m1", "e3m0"]
    assert len(format_candidates(8)) == 8


@pytest.mark.parametrize("dist, winners", [
    ("uniform", {"e0m3", "e1m2"}),
    ("gaussian", {"e2m1", "e0m3", "e1m2"}),  # within ~3% of each other (test_rd)
    ("laplace", {"e2m1"}),
    ("student_t2", {"e3m0"}),
])
def test_the_search_picks_the_format_the_distribution_needs(dist, winners):
    rng = _rng(dist)
    x = {"uniform": lambda: rng.uniform(-1, 1, (64, 256)),
         "gaussian": lambda: rng.standard_normal((64, 256)),
         "laplace": lambda: rng.laplace(size=(64, 256)),
         "student_t2": lambda: rng.standard_t(2, (64, 256))}[dist]()
    res = format_search(x, 4)
    assert res["best"]["format"] in winners
    by = {c["format"]: c for c in res["candidates"]}
    assert by["e0m3"]["mse"] == pytest.approx(by["e1m2"]["mse"])  # the same grid
    for c in res["candidates"]:
        assert c["mse"] <= c["mse_amax"] * (1 + 1e-12)  # searching the range never loses


def test_reported_bias_reproduces_the_reported_mse():
    x = _rng("bias").standard_normal((32, 128))
    res = format_search(x, 4)
    for c in res["candidates"]:
        levels = format_values(c["exp_bits"], c["man_bits"], c["bias"])
        fmt = codebook(format_values(c["exp_bits"], c["man_bits"], 0.0))
        scale = 2.0 ** -c["bias"]
        q = decode(encode(x / scale, fmt), fmt) * scale
        assert np.mean((q - x) ** 2) == pytest.approx(c["mse"], rel=1e-9)
        assert np.max(levels) == pytest.approx(c["max_value"], rel=1e-12)


def test_gaussian_tensor_search_near_the_exact_best_scale():
    """e2m1 with the best range on Gaussian data: the exact optimum is 0.01268 (test_rd)."""
    x = _rng("exact").standard_normal((64, 512))
    by = {c["format"]: c for c in format_search(x, 4)["candidates"]}
    assert by["e2m1"]["relative_mse"] == pytest.approx(0.01268, rel=0.03)


def test_per_channel_is_at_least_as_good_as_per_tensor():
    x = _rng("chan").standard_normal((16, 128)) * np.linspace(0.1, 3, 16)[:, None]
    t = format_search(x, 4, granularity="tensor")
    c = format_search(x, 4, granularity="channel")
    assert c["best"]["mse"] < t["best"]["mse"]
    assert len(c["best"]["bias"]) == 16
    cols = format_search(x, 4, granularity="channel", axis=1)
    assert len(cols["best"]["bias"]) == 128


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(bits=5), ValueError, r"^bits must be one of 2, 3, 4, 8 \(2\*\*bits must be a "
                               r"codebook size\), not 5$"),
    (dict(granularity="row"), ValueError, r"^granularity must be one of tensor, channel, "
                                          r"not 'row'$"),
    (dict(x=np.ones(8), granularity="channel"), ValueError,
     r"^granularity 'channel' needs an array with at least 2 dimensions, not shape \(8,\)$"),
    (dict(x=np.array([1.0, np.inf])), ValueError, r"^x must be finite: element \(1,\) is inf$"),
    (dict(x=np.zeros((0, 3))), ValueError, r"^x must not be empty"),
    (dict(x=np.array(["a"])), TypeError, r"^x must be a real array"),
])
def test_format_search_wrong_parameters(kwargs, exc, msg):
    kw = {"x": np.ones((4, 4)), **kwargs}
    with pytest.raises(exc, match=msg):
        format_search(kw.pop("x"), **kw)




