import numpy as np
import pytest

from nybble.explore.accuracy import (layer_error, layer_operands, numerics_of,
                                     predicted_cosine, synthetic_activations, synthetic_weights,
                                     weights_digest, workload_accuracy)
from nybble.explore.workload import load_workload
from nybble.sim.workloads import Layer
from nybble.sw.quantize import quantize


def test_numerics_of_plain_block_and_bitserial():
    n = numerics_of("int8_e3m0")
    assert (n.activation.element, n.weight.element) == ("int8", "e3m0")
    assert n.activation.block is None and n.weight.scale_kind == "float32" and not n.shared
    assert numerics_of("mxfp4").weight.name == "mxfp4" and numerics_of("mxfp4").shared
    assert numerics_of("int4_dp4").key == numerics_of("int4").key
    b = numerics_of("bitserial")
    assert (b.activation.element, b.weight.element) == ("int8", "int4")


def test_synthetic_data_is_deterministic_and_heavy_tailed():
    w = synthetic_weights(512, 64, ("q", 1))
    assert np.array_equal(w, synthetic_weights(512, 64, ("q", 1)))
    assert not np.array_equal(w, synthetic_weights(512, 64, ("k", 1)))
    z = w / w.std()
    assert np.mean(z ** 4) > 4           # Student-t 5: kurtosis well above a Gaussian's 3
    x = synthetic_activations(16, 1000, ("x",))
    amax = np.max(np.abs(x), axis=0)
    assert np.sum(amax > 10) >= 3        # outlier feature channels (x20)


def test_layer_error_matches_an_independent_computation(rng):
    a, b = rng.standard_normal((6, 40)), rng.standard_normal((40, 5))
    n = numerics_of("int4")
    got = layer_error(a, b, n)
    aq = quantize(a, n.activation, axis=-1).dequantize()
    bq = quantize(b, n.weight, axis=0).dequantize()
    c, cq = a @ b, aq @ bq
    assert got["sqnr_db"] == pytest.approx(10 * np.log10(np.sum(c ** 2) / np.sum((c - cq) ** 2)))
    cos = [np.dot(c[i], cq[i]) / np.linalg.norm(c[i]) / np.linalg.norm(cq[i]) for i in range(6)]
    assert got["cosine"] == pytest.approx(np.mean(cos))
    # integer operands int8 holds exactly: exact product, no SQNR
    ai = rng.integers(-127, 128, (4, 8)).astype(float)
    ai[:, 0] = 127
    bi = rng.integers(-127, 128, (8, 3)).astype(float)
    bi[0, :] = 127
    exact = layer_error(ai, bi, numerics_of("int8"))
    assert exact["sqnr_db"] is None and exact["cosine"] == pytest.approx(1.0)


def test_layer_operands_sample_sizes_and_sources():
    a, b, src = layer_operands(Layer("x", 100, 1000, 48))
    assert a.shape == (64, 48) and b.shape == (48, 256) and src == "synthetic"
    a, b, src = layer_operands(Layer("s", 1, 20, 16), weight_layer=False)
    assert a.shape == (1, 16) and b.shape == (16, 20) and src == "activations"
    user = np.ones((10, 300))
    a, b, src = layer_operands(Layer("u", 4, 4, 4), weights=user)
    assert a.shape == (4, 10) and b.shape == (10, 256) and src == "user"


def test_workload_accuracy_orders_formats(tiny_topology):
    w = load_workload(tiny_topology)
    res = {pe: workload_accuracy(pe, w) for pe in ("int4", "fp8_e4m3", "int8")}
    for r in res.values():
        assert [l["name"] for l in r["layers"]] == ["fc1", "fc2"]
        assert r["chain_depth"] == 2 and r["predicted_scope"] == "weights and activations"
    assert res["int4"]["layer_sqnr_db_mean"] < res["fp8_e4m3"]["layer_sqnr_db_mean"]
    assert res["int4"]["layer_sqnr_db_mean"] < res["int8"]["layer_sqnr_db_mean"]
    assert res["int4"]["cosine"] < res["fp8_e4m3"]["cosine"] <= 1
    assert res["int4"]["cosine"] < res["int8"]["cosine"] <= 1
    mixed = workload_accuracy("lut_nf4", w)
    assert mixed["predicted_scope"] == "weights"


def test_predicted_cosine_is_the_stability_analyzer(rng):
    from nybble.analysis.stability import predict_chain
    chain = [rng.standard_normal((32, 32)) for _ in range(3)]
    n = numerics_of("fp4_e2m1")
    cos, scope = predicted_cosine(chain, n)
    assert cos == predict_chain(chain, n.weight, activations=True, trials=64, seed=0)["cosine"]


def test_weights_digest():
    assert weights_digest(None) == "synthetic"
    a = {"q": np.zeros((2, 2))}
    assert weights_digest(a) == weights_digest({"q": np.zeros((2, 2))})
    assert weights_digest(a) != weights_digest({"q": np.ones((2, 2))})
