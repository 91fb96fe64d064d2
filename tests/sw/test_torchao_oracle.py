"""MX and NVFP4 quantization against torchao (needs the CPU ``torch`` and ``torchao``, which
the project does not depend on: skipped with a reason where they are absent)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (optional oracle)")
mx = pytest.importorskip("torchao.prototype.mx_formats.mx_tensor",
                         reason="torchao not installed (optional oracle)")
nv = pytest.importorskip("torchao.prototype.mx_formats.nvfp4_tensor",
                         reason="torchao without nvfp4 (optional oracle)")

from nybble.sw import quantize  # noqa: E402


def _codes(data, n):
    raw = data.view(torch.uint8).numpy().reshape(data.shape[0], -1)
    if raw.shape[1] * 2 == n:  # two fp4 codes per byte, low nibble first
        return np.stack([raw & 0xF, raw >> 4], -1).reshape(raw.shape[0], n)
    return raw


@pytest.mark.parametrize("elem,scheme", [("float4_e2m1fn_x2", "mxfp4"),
                                         ("float8_e4m3fn", "mxfp8_e4m3"),
                                         ("float8_e5m2", "mxfp8_e5m2")])
def test_mx_matches_torchao(elem, scheme, rng):
    x = (rng.standard_normal((16, 256)) * rng.lognormal(0, 2, (16, 1))).astype(np.float32)
    x[2, :32] = 0  # an all-zero block
    scale, data = mx.to_mx(torch.from_numpy(x), getattr(torch, elem), 32)
    qt = quantize(x, scheme)
    assert np.array_equal(scale.view(torch.uint8).numpy().reshape(qt.scales.shape), qt.scales)
    assert np.array_equal(_codes(data, 256), qt.codes)


def test_nvfp4_matches_torchao(rng):
    # blocks within 2^9 of the tensor's largest: torchao clamps block scales at 2^-6 where
    # Nybble keeps E4M3 subnormals (FORMATS.md), so tinier blocks differ by design
    x = (rng.standard_normal((16, 256)) * rng.lognormal(0, 0.5, (16, 1))).astype(np.float32)
    ts = nv.per_tensor_amax_to_scale(torch.tensor(np.abs(x).max()))
    scale, data = nv.nvfp4_quantize(torch.from_numpy(x), 16, ts)
    qt = quantize(x, "nvfp4")
    assert qt.tensor_scale == float(ts)
    assert np.array_equal(scale.view(torch.uint8).numpy().reshape(qt.scales.shape), qt.scales)
    assert np.array_equal(_codes(data, 256), qt.codes)
