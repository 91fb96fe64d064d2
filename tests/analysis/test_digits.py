"""The digits MLP on the golden 4-bit GEMM, and ``nybble demo digits``."""


import numpy as np
import pytest

from nybble.sw import gemm
from nybble.analysis.digits import train_digits_mlp, run_digits, quantized_forward


@pytest.fixture(scope="module")
def model():
    return train_digits_mlp(hidden=64, seed=0)


def test_best_4bit_scheme_within_2_points_of_float32(model):
    res = run_digits(model=model)
    assert res["float32_accuracy"] > 0.95
    assert res["best_delta_points"] < 2.0
    assert len(res["schemes"]) == 8
    for r in res["schemes"]:
        assert r["accuracy"] > 0.9, r


def test_matmul_hook_sees_every_gemm(model):
    calls = []

    def hook(a, b):
        calls.append((a.shape, b.shape, a.scheme.name))
        return gemm(a, b)

    x = model.x_test[:20]
    ref = quantized_forward(model, x, "mxfp4")
    out = quantized_forward(model, x, "mxfp4", matmul=hook)
    np.testing.assert_array_equal(out, ref)
    assert calls == [((20, 64), (64, 64), "mxfp4"), ((20, 64), (64, 10), "mxfp4")]


def test_golden_path_equals_dequantized_float_to_rounding(model):
    x = model.x_test[:50]
    deq = lambda a, b: a.dequantize() @ b.dequantize()
    np.testing.assert_allclose(quantized_forward(model, x, "int4_g32"),
                               quantized_forward(model, x, "int4_g32", matmul=deq), atol=1e-9)


def test_bad_scheme_fails_before_training():
    with pytest.raises(ValueError, match=r"^scheme must be one of .* not 'int3'$"):
        run_digits(["int3"])


