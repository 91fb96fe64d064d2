"""``nybble gemm --scheme mxfp4|nvfp4|mxint8|q4_0`` and GGUF inputs, from real runs
(Amaranth simulator, small arrays)."""
# amaranth: UnusedElaboratable=no
import json

import gguf
import numpy as np
import pytest

from nybble.__main__ import main


def _gemm(argv):
    """``nybble gemm ARGV``: the exit status."""
    return main(["gemm", *argv])


@pytest.mark.parametrize("scheme,extra", [("mxfp4", []), ("nvfp4", ["--acc-bits", "64"]),
                                          ("mxint8", ["--acc-bits", "48"])])
def test_float_inputs(scheme, extra, tmp_path, capsys, rng):
    np.save(tmp_path / "a.npy", rng.standard_normal((3, 48)))
    np.save(tmp_path / "b.npy", rng.standard_normal((48, 5)))
    out = tmp_path / "c.npy"
    rc = _gemm(["--scheme", scheme, "--array", "2x2", "--a", str(tmp_path / "a.npy"),
                "--b", str(tmp_path / "b.npy"), "--sim", "amaranth", "--out", str(out),
                "--json", *extra])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["mismatches"] == 0 and doc["pe"] == scheme
    assert doc["cycles"] == doc["model_cycles"] and doc["scheme"] == scheme
    assert doc["block_size"] == (16 if scheme == "nvfp4" else 32)
    c = np.load(out)
    assert c.shape == (3, 5) and doc["max_abs_error_vs_dequantized"] < 1e-3
    assert doc["max_abs_error_vs_float"] == pytest.approx(
        float(np.max(np.abs(c - np.load(tmp_path / "a.npy") @ np.load(tmp_path / "b.npy")))))


def test_random_inputs_and_block_size(capsys):
    rc = _gemm(["--scheme", "mxfp4", "--block-size", "16", "--array", "2x2", "--m", "3",
                "--n", "3", "--k", "40", "--sim", "amaranth"])
    out, err = capsys.readouterr()
    assert rc == 0 and "mxfp4 (blocks of 16)" in out and \
        "mismatches vs nybble.sw golden: 0 of 9" in out


def test_gguf_inputs(tmp_path, capsys, rng):
    from gguf.quants import quantize as gq
    T = gguf.GGMLQuantizationType
    path = str(tmp_path / "w.gguf")
    wr = gguf.GGUFWriter(path, "llama")
    wr.add_tensor("w_q4", gq(rng.standard_normal((5, 64)).astype(np.float32), T.Q4_0),
                  raw_dtype=T.Q4_0)
    wr.add_tensor("w_mx", gq(rng.standard_normal((3, 64)).astype(np.float32), T.MXFP4),
                  raw_dtype=T.MXFP4)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    # Q4_0 weights as B (x @ W.T), random activations quantized to q4_0 as A
    rc = _gemm(["--b-gguf", path, "--b-tensor", "w_q4", "--m", "2", "--array", "2x2",
                "--acc-bits", "48", "--sim", "amaranth", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["mismatches"] == 0 and doc["pe"] == "q4_0"
    assert (doc["m"], doc["k"], doc["n"]) == (2, 64, 5) and doc["inputs"]["b"] == "gguf:w_q4"
    # both operands from the file, MXFP4
    rc = _gemm(["--a-gguf", path, "--a-tensor", "w_mx", "--b-gguf", path, "--b-tensor",
                "w_mx", "--array", "2x2", "--sim", "amaranth", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["mismatches"] == 0 and (doc["m"], doc["n"]) == (3, 3)
    # errors: scheme mismatch, missing tensor name, wrong PE
    assert _gemm(["--scheme", "mxfp4", "--b-gguf", path, "--b-tensor", "w_q4", "--sim",
                  "amaranth"]) == 2
    assert "--b-tensor is q4_0 but --scheme is mxfp4" in capsys.readouterr().err
    assert _gemm(["--b-gguf", path, "--sim", "amaranth"]) != 0
    assert _gemm(["--scheme", "nvfp4", "--pe", "mxfp4", "--sim", "amaranth"]) == 2
    assert "--scheme nvfp4 runs on --pe nvfp4, not mxfp4" in capsys.readouterr().err


def test_integer_inputs_are_values_and_codes_are_refused(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.arange(64, dtype=np.int64).reshape(2, 32) % 7 - 3)
    np.save(tmp_path / "b.npy", np.ones((32, 2), np.int64))
    argv = ["--scheme", "mxfp4", "--a", str(tmp_path / "a.npy"), "--b",
            str(tmp_path / "b.npy"), "--array", "2x2", "--sim", "amaranth", "--json"]
    assert _gemm(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mismatches"] == 0 and doc["max_abs_error_vs_float"] == 0  # small ints: exact
    assert _gemm(argv[:-1] + ["--codes"]) == 2
    assert "--codes: a block-scaled array takes values" in capsys.readouterr().err


@pytest.fixture
def gguf_file(tmp_path, rng):
    from gguf.quants import quantize as gq
    T = gguf.GGMLQuantizationType
    path = str(tmp_path / "w.gguf")
    wr = gguf.GGUFWriter(path, "llama")
    wr.add_tensor("w_q4", gq(rng.standard_normal((5, 64)).astype(np.float32), T.Q4_0),
                  raw_dtype=T.Q4_0)
    wr.add_tensor("norm", rng.standard_normal(64).astype(np.float32))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    return path


@pytest.mark.parametrize("argv,message", [
    (["--b-gguf", "{missing}", "--b-tensor", "w"], "GGUF file '{missing}' does not exist"),
    (["--b-gguf", "{path}", "--b-tensor", "nope"],
     "GGUF file '{path}' has no tensor 'nope'; its tensors are: w_q4 (Q4_0), norm (F32)"),
    (["--b-gguf", "{path}", "--b-tensor", "norm"],
     "tensor 'norm' of '{path}' is F32; nybble runs Q4_0 and MXFP4 tensors on the "
     "block-scaled arrays"),
    (["--b-gguf", "{path}"],
     "--b-gguf needs --b-tensor NAME (the file's tensors: w_q4 (Q4_0), norm (F32))"),
    (["--a-tensor", "w_q4"], "--a-tensor needs --a-gguf FILE"),
    (["--b-gguf", "{short}", "--b-tensor", "w_q4"],
     "GGUF file '{short}' is truncated or not a GGUF file"),
])
def test_gguf_mistakes_get_their_own_message(argv, message, gguf_file, tmp_path, capsys):
    short = tmp_path / "short.gguf"
    short.write_bytes(open(gguf_file, "rb").read()[:40])
    names = {"path": gguf_file, "missing": str(tmp_path / "missing.gguf"), "short": str(short)}
    rc = _gemm([a.format(**names) for a in argv] + ["--m", "2", "--sim", "amaranth", "--json"])
    out, err = capsys.readouterr()
    assert rc == 2 and json.loads(out) == {"error": err[len("nybble gemm: error: "):-1],
                                           "exit_status": 2}
    assert err.startswith("nybble gemm: error: " + message.format(**names)), err
    assert err.count("\n") == 1
