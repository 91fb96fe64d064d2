import numpy as np
import pytest

from nybble.explore.weights import GGUF_LLAMA_TENSORS, load_weights
from nybble.explore.workload import load_workload
from nybble.sw.errors import InputFileError


def test_npy_directory_orients_and_names(tmp_path, tiny_topology):
    w = load_workload(tiny_topology)          # fc1: K=64, N=32; fc2: K=32, N=16
    np.save(tmp_path / "fc1.npy", np.ones((32, 64)))   # N x K: transposed
    np.save(tmp_path / "fc2.npy", np.ones((32, 16)))   # K x N: as is
    got = load_weights(tmp_path, w)
    assert got["fc1"].shape == (64, 32) and got["fc2"].shape == (32, 16)


def test_errors(tmp_path, tiny_topology):
    w = load_workload(tiny_topology)
    with pytest.raises(InputFileError, match=r"hold none of the workload's weights "
                                             r"\(<layer>\.npy files for layers fc1, fc2\)"):
        load_weights(tmp_path, w)
    np.save(tmp_path / "fc1.npy", np.ones(3))
    with pytest.raises(InputFileError, match=r"weights for fc1 must be 2-D"):
        load_weights(tmp_path, w)
    with pytest.raises(InputFileError, match=r"must be a \.gguf file or a directory"):
        load_weights(tmp_path / "x.bin", w)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(InputFileError, match="GGUF weights map onto llama-7b layers"):
        load_weights(gguf, w)


def test_gguf_llama(tmp_path, rng):
    from gguf import GGMLQuantizationType as T, GGUFWriter
    from gguf.quants import quantize as gq
    path = tmp_path / "m.gguf"
    wr = GGUFWriter(str(path), "llama")
    for name in ("blk.0.attn_q.weight", "blk.0.attn_output.weight", "blk.1.ffn_up.weight"):
        wr.add_tensor(name, gq(rng.standard_normal((48, 64)).astype(np.float32), T.Q4_0),
                      raw_dtype=T.Q4_0)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    w = load_workload("llama-7b", phase="decode", seq_len=16)
    got = load_weights(path, w)
    assert set(got) == {"q_proj", "o_proj"}          # block 0 only
    assert got["q_proj"].shape == (64, 48)           # ne = (64, 48): K = 64, N = 48
    assert set(load_weights(path, w, block=1)) == {"ffn_up"}
    assert all(a.ndim == 2 and np.all(np.isfinite(a)) for a in got.values())
    assert GGUF_LLAMA_TENSORS["o_proj"] == "attn_output"
