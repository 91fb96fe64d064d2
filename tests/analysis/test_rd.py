"""Lloyd-Max, the Gaussian limits, GPTQ, and ``nybble rd``."""


import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from nybble.sw import quantize, get_format
from nybble.analysis.lloyd_max import (lloyd_max, gaussian_quantizer_mse, gaussian_quantizer_stats,
                                       gaussian_cell_moments, truncated_gaussian_sigma)
from nybble.analysis import rate_distortion as rd
from nybble.analysis.gptq import gptq_quantize, weighted_error


# -- Lloyd-Max -------------------------------------------------------------------------------

# Max (1960), "Quantizing for minimum distortion", Table I/II: MSE of the optimal 2, 4, 8, 16
# level quantizers of a unit Gaussian.
MAX_1960 = {1: 0.3634, 2: 0.1175, 3: 0.03454, 4: 0.009497}


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_lloyd_max_against_max_1960_to_4_significant_digits(bits):
    # 4 significant digits: within half a unit of the 4th digit of the larger of the two,
    # relative 5e-4 (Max's 3- and 4-bit entries are 2e-4 and 4e-4 below the exact optimum)
    assert lloyd_max(bits).mse == pytest.approx(MAX_1960[bits], rel=5e-4)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_lloyd_max_against_independent_quadrature(bits):
    q = lloyd_max(bits)
    lo = np.concatenate([[-np.inf], q.thresholds])
    hi = np.concatenate([q.thresholds, [np.inf]])
    mse = sum(integrate.quad(lambda x, c=c: (x - c) ** 2 * norm.pdf(x), a, b,
                             epsabs=1e-14, epsrel=1e-12)[0] for a, b, c in zip(lo, hi, q.levels))
    assert q.mse == pytest.approx(mse, rel=1e-9)
    exact = {1: 1 - 2 / np.pi}  # 1 bit: levels +-sqrt(2/pi)
    if bits in exact:
        assert q.mse == pytest.approx(exact[bits], rel=1e-12)


@pytest.mark.parametrize("bits", [2, 4, 6])
def test_lloyd_max_optimality_conditions(bits):
    q = lloyd_max(bits)
    np.testing.assert_allclose(q.thresholds, 0.5 * (q.levels[1:] + q.levels[:-1]))
    lo = np.concatenate([[-np.inf], q.thresholds])
    hi = np.concatenate([q.thresholds, [np.inf]])
    p, m1, _ = gaussian_cell_moments(lo, hi)
    np.testing.assert_allclose(q.levels, m1 / p, atol=1e-12)
    np.testing.assert_allclose(q.levels, -q.levels[::-1], atol=1e-12)


def test_lloyd_max_published_levels_and_gap():
    q = lloyd_max(4)
    # Max's 16-level output levels (positive half)
    np.testing.assert_allclose(q.levels[8:], [0.1284, 0.3881, 0.6568, 0.9424, 1.256, 1.618,
                                              2.069, 2.733], atol=6e-4)
    assert q.gap_bits == pytest.approx(0.641, abs=1e-3)  # ANCHORS: ~0.64 bit at 4 bits
    assert lloyd_max(8).gap_bits == pytest.approx(0.716, abs=2e-3)  # -> Panter-Dite 0.722


def test_uniform_16_level_optimum():
    """Max's optimal uniform 16-level quantizer: step 0.3352, MSE 0.01154."""
    levels = (np.arange(16) - 7.5) * 0.3352
    assert gaussian_quantizer_mse(levels) == pytest.approx(0.01154, rel=5e-4)


def test_gaussian_quantizer_stats_against_monte_carlo():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1_000_000) * 1.7
    v = np.unique(get_format("float4_e2m1fn").values)
    idx = np.clip(np.searchsorted(v, x), 1, v.size - 1)
    q = np.where(np.abs(v[idx] - x) < np.abs(v[idx - 1] - x), v[idx], v[idx - 1])
    st = gaussian_quantizer_stats(v, 1.7)
    assert st["mse"] == pytest.approx(np.mean((q - x) ** 2), rel=5e-3)
    assert st["eqx"] == pytest.approx(np.mean(q * x), rel=5e-3)
    # stochastic rounding: unbiased inside the range, variance (x - lo)(hi - x)
    lo = v[np.clip(np.searchsorted(v, x, side="right") - 1, 0, v.size - 2)]
    hi = v[np.clip(np.searchsorted(v, x, side="right"), 1, v.size - 1)]
    xc = np.clip(x, v[0], v[-1])
    mc = np.mean((xc - lo) * (hi - xc) + (x - xc) ** 2)
    assert gaussian_quantizer_mse(v, 1.7, "stochastic") == pytest.approx(mc, rel=5e-3)


def test_truncated_gaussian_sigma_round_trip():
    sd = np.array([0.01, 0.2, 0.4, 0.55])
    sig = truncated_gaussian_sigma(sd, 1.0)
    p, _, m2 = gaussian_cell_moments(-1.0, 1.0, sig)
    np.testing.assert_allclose(np.sqrt(m2 / p), sd, rtol=1e-4)


@pytest.mark.parametrize("bits, exc", [(0, ValueError), (9, ValueError), (2.0, TypeError)])
def test_lloyd_max_wrong_bits(bits, exc):
    with pytest.raises(exc, match=r"^bits must be"):
        lloyd_max(bits)


# -- the limits -------------------------------------------------------------------------------

def test_inner_product_limit():
    rs = rd.ip_critical_rate()
    assert rs == pytest.approx(0.906, abs=5e-4)
    assert rd.ip_distortion_limit(0.0) == 1.0
    f = lambda r: 2 * 2.0 ** (-2 * r) - 2.0 ** (-4 * r)
    assert rd.ip_distortion_limit(4.0) == pytest.approx(f(4.0))
    assert rd.ip_distortion_limit(rs) == pytest.approx(f(rs))
    # the linear part is the tangent: below the curve, touching at R*
    r = np.linspace(0.01, rs - 0.01, 20)
    assert np.all(rd.ip_distortion_limit(r) < f(r))
    for rate in (0.3, 0.906, 2.0, 4.25):
        assert rd.ip_rate(rd.ip_distortion_limit(rate)) == pytest.approx(rate, rel=1e-9)


def test_scalar_quantizers_meet_2d_plus_d2_on_matmul():
    rep = rd.inner_product_report(["int4_g32", "mxfp4"], n=1024, m=32, p=32)
    for r in rep["schemes"]:
        assert r["distortion"] == pytest.approx(r["naive_2d_plus_d2"], rel=0.1)
        assert r["distortion"] > r["limit"] and 0.5 < r["gap_bits"] < 2.5


def test_waterfilling():
    lam = np.ones(64)
    assert rd.waterfilling_distortion(lam, 3.0) == pytest.approx(64 * 2.0 ** -6)
    lam = np.logspace(0, -3, 64)
    d = rd.waterfilling_distortion(lam, 2.0)
    assert d < np.sum(lam) * 2.0 ** -4  # beats spending 2 bits on every direction
    assert rd.waterfilling_rate(lam, d) == pytest.approx(2.0, rel=1e-8)


def test_scalar_report_numbers():
    rep = rd.scalar_report(["int4_g32", "mxfp4", "nf4_g64"], rows=64, cols=1024)
    by = {r["scheme"]: r for r in rep["schemes"]}
    assert by["int4_g32"]["rate"] == 5.0 and by["mxfp4"]["rate"] == 4.25
    assert by["int4_g32"]["mse"] == pytest.approx(0.0094, rel=0.05)
    assert by["mxfp4"]["mse"] == pytest.approx(0.0132, rel=0.05)
    assert by["mxfp4"]["gap_bits"] == pytest.approx(
        4.25 - 0.5 * np.log2(1 / by["mxfp4"]["mse"]))
    fmts = {r["format"]: r for r in rep["element_formats"]}
    # int4 (-8..7) with the best scale is a 16-level uniform grid, slightly asymmetric
    assert 0.01154 < fmts["int4"]["mse"] < 0.0120
    assert fmts["nf4"]["excess_over_lloyd_max"] < 0.05  # NF4 is nearly Lloyd-Max
    assert fmts["e3m0"]["mse"] > 2.5 * fmts["float4_e2m1fn"]["mse"]
    assert [r["bits"] for r in rep["lloyd_max"]][:4] == [1, 2, 3, 4]


# -- GPTQ ----------------------------------------------------------------------------------

def _problem(rows=48, k=64, seed=0):
    h = rd.calibration_covariance(k, samples=1024, seed=seed)
    w = np.random.default_rng(seed).standard_normal((rows, k))
    return w, h


def test_gptq_with_identity_covariance_is_round_to_nearest():
    w, _ = _problem()
    for scheme in ("int4_channel", "int4_g32", "mxfp4"):
        wq, _ = gptq_quantize(w, np.eye(w.shape[1]), scheme, damp=0.0)
        np.testing.assert_allclose(wq, quantize(w, scheme, axis=-1).dequantize(), atol=1e-12)


def test_gptq_block_size_does_not_change_the_result():
    w, h = _problem()
    a, _ = gptq_quantize(w, h, "int4_g32", block_size=64)
    b, _ = gptq_quantize(w, h, "int4_g32", block_size=7)
    np.testing.assert_allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("scheme", ["int4_channel", "int4_g32", "mxfp4", "nf4_g32", "e3m0_g32"])
def test_gptq_beats_round_to_nearest(scheme):
    w, h = _problem()
    wq, info = gptq_quantize(w, h, scheme)
    rtn = weighted_error(w, quantize(w, scheme, axis=-1).dequantize(), h)
    assert info["weighted_error"] == pytest.approx(weighted_error(w, wq, h))
    assert info["weighted_error"] < 0.6 * rtn
    wr, info_r = gptq_quantize(w, h, scheme, rotate=True)
    assert info_r["weighted_error"] < info["weighted_error"]
    # every column of the result lies on the scheme's grid: re-quantizing changes nothing
    # for per-channel scales (the grid is fixed by the original W)
    if scheme == "int4_channel":
        s = np.max(np.abs(w), axis=1, keepdims=True) / 7
        np.testing.assert_allclose(wq / s, np.round(wq / s), atol=1e-6)


def test_gptq_report_limits():
    rep = rd.gptq_report(["int4_channel"], rows=32, k=64)
    r = rep["schemes"][0]
    assert r["limit"] < r["gptq_rotated"] < r["gptq"] < r["rtn"]
    assert r["gptq_gap_bits"] < r["rtn_gap_bits"]


@pytest.mark.parametrize("args, msg", [
    ((np.ones((4, 8)), np.eye(7), "int4_g4"), r"^h must be K x K = 8 x 8"),
    ((np.ones(8), np.eye(8), "int4_g4"), r"^w must be 2-D"),
    ((np.ones((4, 8)), np.eye(8), "nvfp4"), r"^gptq supports .* not 'nvfp4'$"),
    ((np.ones((4, 8)), np.eye(8), "bitmod_g8"), r"^gptq supports .* not 'bitmod_g8'$"),
])
def test_gptq_wrong_inputs(args, msg):
    with pytest.raises(ValueError, match=msg):
        gptq_quantize(*args)


# -- the command line --------------------------------------------------------------------------



