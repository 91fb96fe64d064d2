"""ggml Q4_0 / Q4_1 / Q4_K codecs against gguf-py (llama.cpp's own numpy port) as the oracle."""

import hashlib

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

from nybble.sw import ggml

RNG = np.random.default_rng(20240611)


def _special_blocks(rng, k):
    """Rows of 32-element blocks that hit the corner cases of the block quantizers."""
    rows = []
    base = rng.standard_normal(k)

    def row(fn):
        r = base.copy().reshape(-1, 32)
        fn(r)
        rows.append(r.reshape(-1))

    row(lambda r: r.__setitem__(0, 0.0))                          # all-zero block
    row(lambda r: r.__setitem__(1, 0.75))                         # all-equal, positive
    row(lambda r: r.__setitem__(2, -3.25))                        # all-equal, negative
    row(lambda r: r.__setitem__((3, 7), 40.0))                    # single positive outlier
    row(lambda r: r.__setitem__((4, 19), -40.0))                  # single negative outlier
    row(lambda r: r.__setitem__(5, -np.abs(r[5])))                # all negative: max is negative
    row(lambda r: r.__setitem__(6, np.abs(r[6])))                 # all positive
    row(lambda r: r.__setitem__((7, slice(None)), np.r_[-2.0, 2.0, np.zeros(30)]))  # |max| tie
    row(lambda r: r.__setitem__(8, np.arange(32) - 16.0))         # exact grid: ties at .5
    row(lambda r: r.__setitem__(9, r[9] * 1e-6))                  # tiny: subnormal fp16 scale
    row(lambda r: r.__setitem__(10, r[10] * 1e4))                 # large
    return np.stack(rows)


DISTRIBUTIONS = {
    "normal": lambda rng, s: rng.standard_normal(s),
    "uniform": lambda rng, s: rng.uniform(-1, 1, s),
    "positive": lambda rng, s: rng.uniform(0.1, 3, s),
    "negative": lambda rng, s: -rng.uniform(0.1, 3, s),
    "heavy_tailed": lambda rng, s: rng.standard_t(2, s),
    "sparse": lambda rng, s: rng.standard_normal(s) * (rng.random(s) < 0.1),
    "integers": lambda rng, s: rng.integers(-8, 8, s).astype(float),
    "special": lambda rng, s: _special_blocks(rng, s[1]),
}


def _data(name, shape=(24, 512)):
    seed = list(DISTRIBUTIONS).index(name)                # str hash() is salted per process
    return DISTRIBUTIONS[name](np.random.default_rng(seed), shape).astype(np.float32)


# ------------------------------------------------------------------------- Q4_0 / Q4_1

@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_q4_0_byte_exact(dist):
    x = _data(dist)
    q, d = ggml.q4_0_quantize(x)
    assert q.dtype == np.uint8 and q.shape == x.shape and q.max() <= 15
    assert d.dtype == np.float16 and d.shape == (x.shape[0], x.shape[1] // 32)
    data = ggml.q4_0_to_bytes(q, d)
    assert data == quantize(x, T.Q4_0).tobytes()
    q2, d2 = ggml.q4_0_from_bytes(data, *x.shape)
    assert np.array_equal(q2, q) and np.array_equal(d2.view(np.uint16), d.view(np.uint16))
    ref = dequantize(np.frombuffer(data, np.uint8).reshape(x.shape[0], -1), T.Q4_0)
    ours = ggml.q4_0_dequantize(q, d)
    assert ours.dtype == np.float64 and np.array_equal(ours, ref.astype(np.float64))


@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_q4_1_byte_exact(dist):
    x = _data(dist)
    q, d, m = ggml.q4_1_quantize(x)
    assert q.dtype == np.uint8 and q.max() <= 15
    assert d.dtype == m.dtype == np.float16 and m.shape == (x.shape[0], x.shape[1] // 32)
    data = ggml.q4_1_to_bytes(q, d, m)
    assert data == quantize(x, T.Q4_1).tobytes()
    q2, d2, m2 = ggml.q4_1_from_bytes(data, *x.shape)
    assert np.array_equal(q2, q)
    assert np.array_equal(d2.view(np.uint16), d.view(np.uint16))
    assert np.array_equal(m2.view(np.uint16), m.view(np.uint16))
    ref = dequantize(np.frombuffer(data, np.uint8).reshape(x.shape[0], -1), T.Q4_1)
    assert np.array_equal(ggml.q4_1_dequantize(q, d, m), ref.astype(np.float64))


def test_q4_0_semantics():
    # the largest-magnitude element maps to code 0 (value -8*d), whatever its sign
    x = np.zeros((2, 32), np.float32)
    x[0, 5], x[0, 6] = 4.0, -1.0
    x[1, 9], x[1, 10] = -4.0, 1.0
    q, d = ggml.q4_0_quantize(x)
    assert d[0, 0] == np.float16(-0.5) and q[0, 5] == 0 and q[0, 6] == 10
    assert d[1, 0] == np.float16(0.5) and q[1, 9] == 0 and q[1, 10] == 10
    assert np.array_equal(ggml.q4_0_dequantize(q, d), x)


def test_nibble_layout_q4_0():
    q = np.arange(32, dtype=np.uint8).reshape(1, 32) % 16
    data = ggml.q4_0_to_bytes(q, np.array([[1.0]], np.float16))
    assert data[:2] == np.float16(1.0).tobytes()
    # element j in the low nibble, element j + 16 in the high nibble of byte j
    assert list(data[2:]) == [(j % 16) | (((j + 16) % 16) << 4) for j in range(16)]


def test_float64_input_is_cast_to_float32_first():
    x = RNG.standard_normal((4, 64))
    assert ggml.q4_0_to_bytes(*ggml.q4_0_quantize(x)) == quantize(x.astype(np.float32), T.Q4_0).tobytes()


# ------------------------------------------------------------------------- Q4_K

@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_q4_k_decodes_like_gguf(dist):
    x = _data(dist, (8, 1024))
    rows = x.shape[0]
    q, d, dmin, sc, mn = ggml.q4_k_quantize(x)
    assert q.dtype == sc.dtype == mn.dtype == np.uint8
    assert d.dtype == dmin.dtype == np.float16 and d.shape == dmin.shape == (rows, 4)
    assert sc.shape == mn.shape == (rows, 32) and q.max() <= 15 and sc.max() <= 63 and mn.max() <= 63
    data = ggml.q4_k_to_bytes(q, d, dmin, sc, mn)
    assert len(data) == rows * 4 * 144
    ref = dequantize(np.frombuffer(data, np.uint8).reshape(rows, -1), T.Q4_K)
    assert np.array_equal(ggml.q4_k_dequantize(q, d, dmin, sc, mn), ref.astype(np.float64))
    back = ggml.q4_k_from_bytes(data, rows, 1024)
    for a, b in zip((q, d, dmin, sc, mn), back):
        assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))
    assert ggml.q4_k_to_bytes(*back) == data


def test_q4_k_layout_with_random_fields():
    # every field value, independent of the quantizer: gguf must decode our packing the same way
    rng = np.random.default_rng(7)
    rows, k = 16, 512
    q = rng.integers(0, 16, (rows, k), dtype=np.uint8)
    sc = rng.integers(0, 64, (rows, k // 32), dtype=np.uint8)
    mn = rng.integers(0, 64, (rows, k // 32), dtype=np.uint8)
    d = rng.uniform(1e-3, 1, (rows, k // 256)).astype(np.float16)
    dmin = rng.uniform(1e-3, 1, (rows, k // 256)).astype(np.float16)
    data = ggml.q4_k_to_bytes(q, d, dmin, sc, mn)
    ref = dequantize(np.frombuffer(data, np.uint8).reshape(rows, -1), T.Q4_K)
    assert np.array_equal(ggml.q4_k_dequantize(q, d, dmin, sc, mn), ref.astype(np.float64))
    sc2, mn2 = ggml.q4_k_from_bytes(data, rows, k)[3:]
    assert np.array_equal(sc2, sc) and np.array_equal(mn2, mn)


def test_q4_k_error_is_sane():
    x = RNG.standard_normal((32, 2048)).astype(np.float32)
    y = ggml.q4_k_dequantize(*ggml.q4_k_quantize(x))
    rel_rms = np.sqrt(np.mean((y - x) ** 2) / np.mean(x.astype(np.float64) ** 2))
    assert rel_rms < 0.12
    # and Q4_K (fitted scale and min per 32) beats Q4_0 (max-based scale) on the same data
    y0 = ggml.q4_0_dequantize(*ggml.q4_0_quantize(x))
    assert np.mean((y - x) ** 2) < np.mean((y0 - x) ** 2)


def test_q4_k_degenerate_blocks():
    x = np.zeros((3, 256), np.float32)
    x[1] = 0.37                                                    # constant positive
    x[2] = -0.37                                                   # constant negative
    q, d, dmin, sc, mn = ggml.q4_k_quantize(x)
    assert np.all(ggml.q4_k_to_bytes(q[:1], d[:1], dmin[:1], sc[:1], mn[:1]) == bytes(144))
    y = ggml.q4_k_dequantize(q, d, dmin, sc, mn)
    assert np.allclose(y, x, atol=2e-3)


# Known answers from llama.cpp's quantize_row_q4_K_ref (C, float32, no FMA contraction) on
# inputs that are exact rational formulas, so no RNG stream is involved.
_KA_HEX = (
    "9d1f582bfffffcfffffefefdefcedf9c605e4d2c1a09e8d7c5a49382705f4d3c2b0af8d7c6b5a382716f5e3d2b"
    "1af9e83d2c1af9e8c7b5a49371605f4e2c1b0ae8d7c6a49382705f4e3d2b0af9d7c6b50af8d7c6b5a382716f4e"
    "3d2b1af9e8d6b5a49371605e4d2c1b09e8d7c5a49382d7c5b49382705f4d3c1b0af8e7c6b5a382716f4e3d2b0a"
    "f9e8d6b5a49271605e"
)
_KA_SHA256 = "6ab20f68ffecd16500577610444581c9f9965cd7ed97e5004bd34db9bddce40a"


def test_q4_k_known_answers_from_c_reference():
    i = np.arange(256)
    x1 = (((i * 7919) % 1000 - 500) / 137.0).astype(np.float32).reshape(1, 256)
    assert ggml.q4_k_to_bytes(*ggml.q4_k_quantize(x1)).hex() == _KA_HEX
    j = np.arange(8 * 1024)
    x2 = (((((j * 2654435761) % 65521) - 32760) / 4099.0) ** 3 / 50.0).astype(np.float32)
    data = ggml.q4_k_to_bytes(*ggml.q4_k_quantize(x2.reshape(8, 1024)))
    assert hashlib.sha256(data).hexdigest() == _KA_SHA256


# ------------------------------------------------------------------------- errors

@pytest.mark.parametrize("scheme, block, nbytes", [("q4_0", 32, 18), ("q4_1", 32, 20),
                                                   ("q4_k", 256, 144)])
def test_wrong_byte_length(scheme, block, nbytes):
    from_bytes = getattr(ggml, f"{scheme}_from_bytes")
    expected = 3 * 2 * nbytes
    good = bytes(expected)
    assert from_bytes(good, 3, 2 * block)[0].shape == (3, 2 * block)
    with pytest.raises(ValueError, match=rf"{scheme}: expected {expected} bytes .*got {expected - 1}"):
        from_bytes(good[:-1], 3, 2 * block)
    with pytest.raises(ValueError, match=rf"{scheme}: expected {expected} bytes .*got {expected + nbytes}"):
        from_bytes(good + bytes(nbytes), 3, 2 * block)


@pytest.mark.parametrize("scheme, block", [("q4_0", 32), ("q4_1", 32), ("q4_k", 256)])
def test_k_not_a_multiple_of_block(scheme, block):
    k = block + 16
    quantize_fn = getattr(ggml, f"{scheme}_quantize")
    from_bytes = getattr(ggml, f"{scheme}_from_bytes")
    with pytest.raises(ValueError, match=rf"{scheme}: K={k} is not a multiple of the block size {block}"):
        quantize_fn(np.zeros((2, k), np.float32))
    with pytest.raises(ValueError, match=rf"{scheme}: K={k} is not a multiple of the block size {block}"):
        from_bytes(bytes(100), 2, k)


def test_bad_field_values_rejected():
    with pytest.raises(ValueError, match="q4_0: q values must lie in 0..15"):
        ggml.q4_0_to_bytes(np.full((1, 32), 16), np.ones((1, 1), np.float16))
    z = np.zeros((1, 1), np.float16)
    with pytest.raises(ValueError, match="q4_k: sc and mn must lie in 0..63"):
        ggml.q4_k_to_bytes(np.zeros((1, 256), np.uint8), z, z, np.full((1, 8), 64), np.zeros((1, 8)))
    with pytest.raises(ValueError, match="2-D"):
        ggml.q4_0_quantize(np.zeros(64, np.float32))


def test_constants():
    assert ggml.BLOCK == {"q4_0": 32, "q4_1": 32, "q4_k": 256}
    assert ggml.BLOCK_BYTES == {"q4_0": 18, "q4_1": 20, "q4_k": 144}
