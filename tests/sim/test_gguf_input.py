"""GGUF tensors (Q4_0, MXFP4) as array operands: written with gguf-py's GGUFWriter and
quantizer, read back byte for byte, run on the block-scaled arrays."""
# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

import gguf  # a core dependency
from gguf import GGUFWriter, GGMLQuantizationType as T  # noqa: E402
from gguf.quants import quantize as gg_quantize, dequantize as gg_dequantize  # noqa: E402

from nybble.sim.gguf_input import load_gguf_tensor, gguf_tensor_names  # noqa: E402


@pytest.fixture
def tiny_gguf(tmp_path, rng):
    """A GGUF file with a Q4_0 (3 x 64), an MXFP4 (4 x 96), a 3-D Q4_0 and an F32 tensor."""
    w = {"q4": rng.standard_normal((3, 64)).astype(np.float32),
         "mx": (rng.standard_normal((4, 96)) * 3).astype(np.float32)}
    raw = {"q4": gg_quantize(w["q4"], T.Q4_0), "mx": gg_quantize(w["mx"], T.MXFP4)}
    path = str(tmp_path / "tiny.gguf")
    wr = GGUFWriter(path, "llama")
    wr.add_tensor("blk.0.attn_q.weight", raw["q4"], raw_dtype=T.Q4_0)
    wr.add_tensor("blk.0.ffn_up.weight", raw["mx"], raw_dtype=T.MXFP4)
    wr.add_tensor("experts", gg_quantize(rng.standard_normal((2, 2, 32)).astype(np.float32),
                                         T.Q4_0), raw_dtype=T.Q4_0)
    wr.add_tensor("norm.weight", w["q4"][0])
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    return path, raw


def test_read_back_exactly(tiny_gguf):
    path, raw = tiny_gguf
    assert gguf_tensor_names(path) == {"blk.0.attn_q.weight": "Q4_0",
                                       "blk.0.ffn_up.weight": "MXFP4", "experts": "Q4_0",
                                       "norm.weight": "F32"}
    q4 = load_gguf_tensor(path, "blk.0.attn_q.weight")
    assert (q4.scheme.name, q4.shape, q4.axis) == ("q4_0", (3, 64), 1)
    assert q4.to_bytes() == raw["q4"].tobytes()
    assert np.array_equal(q4.dequantize(), gg_dequantize(raw["q4"], T.Q4_0))
    mx = load_gguf_tensor(path, "blk.0.ffn_up.weight")
    assert (mx.scheme.name, mx.shape) == ("mxfp4", (4, 96))
    assert mx.to_bytes() == raw["mx"].tobytes()
    assert np.array_equal(mx.dequantize(), gg_dequantize(raw["mx"], T.MXFP4))
    # B operand: the stored N x K weight transposed, blocks along axis 0
    mxb = load_gguf_tensor(path, "blk.0.ffn_up.weight", axis=0)
    assert (mxb.shape, mxb.axis) == ((96, 4), 0)
    assert np.array_equal(mxb.dequantize(), gg_dequantize(raw["mx"], T.MXFP4).T)
    assert mxb.to_bytes() == raw["mx"].tobytes()


def test_gguf_weights_run_on_the_array(tiny_gguf, rng):
    from nybble.hw.config import ArrayConfig
    from nybble.sw import quantize
    from nybble.sim.check import check_gemm
    path, _ = tiny_gguf
    w = load_gguf_tensor(path, "blk.0.attn_q.weight", axis=0)        # 64 x 3
    x = quantize(rng.standard_normal((2, 64)), "q4_0", axis=-1)
    cfg = ArrayConfig(rows=2, cols=2, pe="q4_0", acc_bits=48, a_depth=64, b_depth=64,
                      c_depth=64)
    r = check_gemm(cfg, x, w, sim="amaranth")
    assert r.mismatches == 0 and r.cycles == r.model_cycles
    assert np.allclose(r.result * 2.0 ** -24, x.dequantize() @ w.dequantize(), atol=1e-5)


def test_errors(tiny_gguf, tmp_path):
    path, _ = tiny_gguf
    with pytest.raises(ValueError, match=r"has no tensor 'nope'; its tensors are: "
                                         r"blk\.0\.attn_q\.weight \(Q4_0\), "
                                         r"blk\.0\.ffn_up\.weight \(MXFP4\), experts \(Q4_0\), "
                                         r"norm\.weight \(F32\)$"):
        load_gguf_tensor(path, "nope")
    with pytest.raises(ValueError, match=r"^tensor 'norm\.weight' of .* is F32; nybble runs "
                                         r"Q4_0 and MXFP4 tensors on the block-scaled arrays$"):
        load_gguf_tensor(path, "norm.weight")
    with pytest.raises(ValueError, match=r"^tensor 'experts' has shape \(2, 2, 32\) "
                                         r"\(numpy order\); a GEMM operand must be 2-D$"):
        load_gguf_tensor(path, "experts")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_gguf_tensor(str(tmp_path / "missing.gguf"), "x")
    with pytest.raises(ValueError, match=r"^axis must be -1 \(as stored\) or 0"):
        load_gguf_tensor(path, "blk.0.attn_q.weight", axis=2)
