"""Chains, the stability prediction against measurement, diagnosis, and ``nybble stability``."""

import json

import numpy as np
import pytest

from nybble.sw import quantize
from nybble.analysis.chains import (FAMILIES, synthetic_chain, check_chain, load_chain, hadamard,
                                    rotate_chain, chain_product)
from nybble.analysis.stability import (analyze, group_noise, predict_chain,
                                       measure_chain, scheme_bits, gaussian_crest)


# -- chains --------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_synthetic_chain_shapes_and_scale(family):
    mats = synthetic_chain(family, 32, 5, seed=1)
    assert len(mats) == 5 and all(m.shape == (32, 32) for m in mats)
    if family != "inverse_pairs":
        for m in mats:
            assert np.sum(m * m) == pytest.approx(32, rel=1e-9)
    again = synthetic_chain(family, 32, 5, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(mats, again))


def test_inverse_pairs_multiply_to_identity():
    mats = synthetic_chain("inverse_pairs", 16, 4, seed=0, condition=100)
    np.testing.assert_allclose(chain_product(mats), np.eye(16), atol=1e-8)
    s = np.linalg.svd(mats[0], compute_uv=False)
    assert s[0] / s[-1] == pytest.approx(100, rel=1e-6)


def test_hadamard_and_rotation_preserve_the_chain():
    h = hadamard(8)
    np.testing.assert_array_equal(h @ h.T, 8 * np.eye(8))
    mats = synthetic_chain("student_t", 32, 3, seed=2)
    rot, h0 = rotate_chain(mats, seed=3)
    x = np.random.default_rng(0).standard_normal((32, 5))
    np.testing.assert_allclose(chain_product(rot) @ (h0.T @ x), chain_product(mats) @ x,
                               atol=1e-9)
    # incoherence processing lowers the crest factor of heavy-tailed weights
    crest = lambda m: np.max(np.abs(m)) / np.sqrt(np.mean(m * m))
    assert crest(rot[1]) < 0.6 * crest(mats[1])


def test_rotation_of_non_power_of_two_sizes_is_orthogonal():
    mats = [np.random.default_rng(0).standard_normal((12, 10))]
    rot, h0 = rotate_chain(mats)
    np.testing.assert_allclose(h0 @ h0.T, np.eye(10), atol=1e-12)
    np.testing.assert_allclose(rot[0] @ h0.T, mats[0], atol=1e-12)


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(family="laplace"), ValueError,
     r"^family must be one of gaussian, orthogonal, student_t, ill_conditioned, "
     r"outlier_columns, inverse_pairs, not 'laplace'$"),
    (dict(family="gaussian", n=1), ValueError, r"^n must be in 2\.\.16384, not 1$"),
    (dict(family="gaussian", depth=0), ValueError, r"^depth must be in 1\.\.1024, not 0$"),
    (dict(family="gaussian", depth=2.5), TypeError, r"^depth must be an integer, not 2\.5$"),
    (dict(family="ill_conditioned", condition=0.5), ValueError,
     r"^condition must be >= 1, not 0\.5$"),
])
def test_synthetic_chain_wrong_parameters(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        synthetic_chain(**kwargs)


def test_check_chain_shape_mismatch_names_both_matrices():
    a, b = np.ones((8, 4)), np.ones((8, 5))
    with pytest.raises(ValueError, match=r"^shape mismatch in the chain: w2 is 8 x 5 but w1 is "
                                         r"8 x 4; .* so w2 needs 8 columns$"):
        check_chain([a, b], names=["w1", "w2"])


@pytest.mark.parametrize("bad, exc, msg", [
    (np.ones(4), ValueError, r"^matrix 1 must be a 2-D matrix \(out x in\), not 1-D"),
    (np.ones((2, 2, 2)), ValueError, r"^matrix 1 must be a 2-D matrix"),
    (np.zeros((0, 3)), ValueError, r"^matrix 1 is empty"),
    (np.array([[1.0, np.nan]]), ValueError, r"^matrix 1 must be finite: element \(0, 1\) is nan$"),
    (np.array([["a"]]), TypeError, r"^matrix 1 must hold real numbers"),
])
def test_check_chain_bad_matrices(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        check_chain([bad])


def test_load_chain_from_npy_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((6, 4)), rng.standard_normal((5, 6)), rng.standard_normal((3, 5))
    np.save(tmp_path / "a.npy", a)
    np.savez(tmp_path / "bc.npz", first=b, second=c)
    mats, names = load_chain([tmp_path / "a.npy", tmp_path / "bc.npz"])
    assert [m.shape for m in mats] == [(6, 4), (5, 6), (3, 5)]
    assert names[1].endswith("bc.npz[first]") and names[2].endswith("bc.npz[second]")


def test_load_chain_errors(tmp_path):
    garbage = tmp_path / "bad.npy"
    garbage.write_bytes(b"this is not numpy")
    with pytest.raises(ValueError, match=r"^cannot read '.*bad\.npy' as a numpy \.npy file"):
        load_chain([garbage])
    with pytest.raises(FileNotFoundError, match=r"^matrix file '.*nope\.npy' does not exist$"):
        load_chain([tmp_path / "nope.npy"])
    txt = tmp_path / "m.txt"
    txt.write_text("1 2")
    with pytest.raises(ValueError, match=r"^matrix file '.*m\.txt' must be \.npy or \.npz"):
        load_chain([txt])
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(ValueError, match=r"^'.*empty\.npz' holds no arrays$"):
        load_chain([tmp_path / "empty.npz"])
    np.save(tmp_path / "x.npy", np.ones((4, 3)))
    np.save(tmp_path / "y.npy", np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"^shape mismatch in the chain: .*y\.npy is 2 x 5 but "
                                         r".*x\.npy is 4 x 3"):
        load_chain([tmp_path / "x.npy", tmp_path / "y.npy"])


# -- step 1: one matrix ----------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["gaussian", "student_t", "outlier_columns"])
@pytest.mark.parametrize("scheme", ["int4_channel", "int4_g32", "mxfp4", "nvfp4", "e3m0_g32",
                                    "nf4_g64"])
def test_group_noise_matches_the_quantizer(family, scheme):
    """The crest-factor model of one matrix, against the decorrelated error of quantize()."""
    a = synthetic_chain(family, 128, 1, seed=5)[0]
    noise, crest = group_noise(a, scheme)
    q = quantize(a, scheme, axis=-1).dequantize()
    beta = np.sum(q * a) / np.sum(a * a)
    measured = np.sum((q - beta * a) ** 2) / np.sum(a * a)
    assert noise.sum() / np.sum(a * a) == pytest.approx(measured, rel=0.12), (family, scheme)
    assert crest.min() >= 1.0


def test_group_noise_is_step_squared_over_12_for_int4_groups():
    x = np.random.default_rng(3).standard_normal((512, 32))
    noise, _ = group_noise(x, "int4_g32")
    step = np.max(np.abs(x), axis=1) / 7
    expected = np.mean(step ** 2 / 12) * 31 / 32  # the max element of each group is exact
    assert noise.mean() == pytest.approx(expected, rel=0.01)


def test_gaussian_crest_reference():
    assert gaussian_crest(1) == pytest.approx(np.sqrt(2 / np.pi), rel=1e-4)
    assert 2.3 < gaussian_crest(32) < 2.4


def test_scheme_bits():
    assert scheme_bits("mxfp4", 256) == 4.25
    assert scheme_bits("int4_g32", 256) == 5.0
    assert scheme_bits("nvfp4", 256) == 4.5 + 32 / 256
    assert scheme_bits("bitmod_g128", 256) == 4 + 32 / 128 + 2 / 128


# -- steps 2-4: whole chains -------------------------------------------------------------------

@pytest.mark.parametrize("family", ["gaussian", "orthogonal"])
def test_prediction_within_0p02_up_to_depth_16(family):
    """The acceptance bar: n = 256, every depth 1..16, int4 per-tensor, int4_g32, mxfp4."""
    mats = synthetic_chain(family, 256, 16, seed=0)
    res = analyze(mats, ["int4_tensor", "int4_g32", "mxfp4"], trials=256, seed=0)
    for r in res:
        for layer in r["per_layer"]:
            diff = abs(layer["predicted_cosine"] - layer["measured_cosine"])
            assert diff < 0.02, (family, r["scheme"], layer["layer"], diff)
        assert abs(r["predicted_sign_agreement"] - r["sign_agreement"]) < 0.02
        assert r["p_positive_inner"] == 1.0 and r["predicted_p_positive_inner"] > 0.999
    assert res[0]["chain"]["cancellation"] is False
    assert res[0]["chain"]["max_amplification"] < 1.2


def test_cancellation_is_flagged_by_the_prediction_alone():
    mats = synthetic_chain("inverse_pairs", 64, 4, seed=0, condition=1e3)
    res = analyze(mats, ["int4_g32", "mxfp4", "nvfp4"], measure=False)
    assert res[0]["chain"]["cancellation"] is True
    assert res[0]["chain"]["max_amplification"] > 100
    for r in res:
        assert r["measured_cosine"] is None
        assert r["predicted_stable"] is False and r["predicted_cosine"] < 0.3
        # what a per-layer heuristic sees: every layer's own relative error is small
        assert max(p["weight_nsr"] for p in r["per_layer"]) < 0.05
        assert "amplification" in r["diagnosis"] and "cancellation" in r["diagnosis"]
    assert res[0]["cheapest_meeting_target"] is None


def test_cancellation_prediction_is_quantitative():
    mats = synthetic_chain("inverse_pairs", 128, 4, seed=1, condition=10)
    res = analyze(mats, ["int4_tensor", "int4_g32"], seed=1)
    for r in res:
        assert abs(r["predicted_cosine"] - r["measured_cosine"]) < 0.03, r["scheme"]
        assert r["per_layer"][0]["amplification"] > 4
    assert res[0]["chain"]["cancellation"] is True


def test_measured_collapse_of_a_strong_cancellation():
    mats = synthetic_chain("inverse_pairs", 64, 2, seed=2, condition=1e4)
    r = analyze(mats, ["int4_tensor"], trials=128, seed=2)[0]
    assert r["measured_cosine"] < 0.2 and r["predicted_cosine"] < 0.2
    assert 0.3 < r["sign_agreement"] < 0.7


def test_rotation_rescues_heavy_tails():
    mats = synthetic_chain("student_t", 128, 4, seed=3)
    plain = analyze(mats, ["int4_tensor"], seed=3)[0]
    rot = analyze(mats, ["int4_tensor"], seed=3, rotate="hadamard")[0]
    assert rot["measured_cosine"] > plain["measured_cosine"] + 0.2
    assert rot["predicted_cosine"] > plain["predicted_cosine"] + 0.2
    assert "crest factor" in plain["diagnosis"]
    assert abs(rot["predicted_cosine"] - rot["measured_cosine"]) < 0.03


@pytest.mark.parametrize("options", [dict(rounding="stochastic"), dict(activations=True),
                                     dict(activations=True, rotate="hadamard")])
def test_prediction_options(options):
    mats = synthetic_chain("gaussian", 128, 6, seed=4)
    res = analyze(mats, ["int4_g32", "mxfp4", "int4_tensor"], seed=4, **options)
    for r in res:
        assert abs(r["predicted_cosine"] - r["measured_cosine"]) < 0.03, (options, r["scheme"])
        if options.get("activations"):
            assert "act_nsr" in r["per_layer"][0]


def test_stochastic_rounding_costs_accuracy():
    mats = synthetic_chain("orthogonal", 64, 4, seed=6)
    near = predict_chain(mats, "int4_g32")
    stoch = predict_chain(mats, "int4_g32", rounding="stochastic")
    assert stoch["nsr"] > 1.5 * near["nsr"]  # (x-lo)(hi-x) averages step^2/6, not step^2/12


def test_measure_chain_is_deterministic_and_reports_layers():
    mats = synthetic_chain("gaussian", 32, 3, seed=7)
    a = measure_chain(mats, "mxfp4", trials=16, seed=1)
    b = measure_chain(mats, "mxfp4", trials=16, seed=1)
    assert a["cosine"] == b["cosine"] and len(a["layers"]) == 3
    assert 0 < a["layers"][0]["rel_error"] < a["layers"][-1]["rel_error"]


def test_analyze_json_keys_and_cheapest_scheme():
    mats = synthetic_chain("orthogonal", 64, 2, seed=8)
    res = analyze(mats, ["int4_tensor", "mxfp4", "int4_g32"], target_cosine=0.98, trials=64)
    keys = {"scheme", "measured_cosine", "predicted_cosine", "p_positive_inner",
            "sign_agreement", "top1_agreement", "per_layer"}
    assert all(keys <= set(r) for r in res)
    json.dumps(res)  # plain JSON types only
    ok = [r for r in res if r["predicted_cosine"] >= 0.98]
    cheapest = min(ok, key=lambda r: r["bits_per_weight"])["scheme"]
    assert all(r["cheapest_meeting_target"] == cheapest for r in res)
    assert cheapest == "mxfp4"


@pytest.mark.parametrize("kwargs, msg", [
    (dict(schemes=["int5_tensor"]), r"^scheme must be one of int4_tensor, .* not 'int5_tensor'$"),
    (dict(schemes=["q4_k"]), r"^scheme must be a symmetric block scheme .* not 'q4_k'"),
    (dict(rotate="givens"), r"^rotate must be 'hadamard' or None, not 'givens'$"),
    (dict(rounding="nearest_away"),
     r"^rounding must be one of nearest_even, stochastic, not 'nearest_away'$"),
    (dict(target_cosine=1.5), r"^target_cosine must be in \(0, 1\], not 1\.5$"),
    (dict(schemes=[]), r"^schemes must name at least one scheme$"),
])
def test_analyze_wrong_parameters(kwargs, msg):
    mats = synthetic_chain("gaussian", 8, 1)
    with pytest.raises(ValueError, match=msg):
        analyze(mats, **{"schemes": ["mxfp4"], **kwargs})


# -- the command line --------------------------------------------------------------------------
