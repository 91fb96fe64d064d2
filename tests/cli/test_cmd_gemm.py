"""``nybble gemm``: the main job's JSON contract, on the Amaranth simulator (no build)."""
# amaranth: UnusedElaboratable=no
import json

import numpy as np
import pytest

from nybble.__main__ import main


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_keys_and_zero_mismatches(capsys):
    rc, out, _ = _run(["gemm", "--array", "2x2", "--pe", "int4", "--m", "3", "--n", "5",
                       "--k", "7", "--sim", "amaranth", "--json"], capsys)
    d = json.loads(out)  # exactly one JSON document
    assert rc == 0
    for key in ("cycles", "ideal_cycles", "utilization", "mismatches", "sim_seconds",
                "build_seconds", "macs_per_second"):
        assert key in d, key
    assert d["mismatches"] == 0 and d["cycles"] == d["model_cycles"]
    assert d["ideal_cycles"] == 3 * 5 * 7 / 4


def test_float_inputs_write_the_exact_result(tmp_path, capsys, rng):
    from nybble.sw import quantize, gemm
    a, b = rng.standard_normal((4, 9)), rng.standard_normal((9, 3))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    rc, out, _ = _run(["gemm", "--array", "2x2", "--a", str(tmp_path / "a.npy"), "--b",
                       str(tmp_path / "b.npy"), "--scheme", "int4_channel", "--sim", "amaranth",
                       "--out", str(tmp_path / "c.npy"), "--json"], capsys)
    d = json.loads(out)
    assert rc == 0 and d["mismatches"] == 0 and 0 < d["rel_error"] < 0.5
    want = gemm(quantize(a, "int4_channel", axis=-1), quantize(b, "int4_channel", axis=0))
    assert np.array_equal(np.load(tmp_path / "c.npy"), want)


@pytest.mark.synth
def test_area_is_reported(capsys):
    rc, out, _ = _run(["gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "2",
                       "--sim", "amaranth", "--area", "--json"], capsys)
    d = json.loads(out)
    assert d["area"]["pe_transistors"] > 0
    assert d["area"]["array_transistors"] == 4 * d["area"]["pe_transistors"]


@pytest.mark.parametrize("argv,msg", [
    (["--array", "16"], "--array must look like ROWSxCOLS"),
    (["--pe", "int3"], "PE kind must be one of"),
    (["--waves", "x.txt"], "--waves must name a .vcd or .fst file"),
    (["--sim", "amaranth", "--a", "missing.npy", "--b", "missing.npy", "--scheme",
      "int4_tensor"], "does not exist"),
])
def test_bad_input_is_one_clear_line(argv, msg, capsys):
    rc, out, err = _run(["gemm", "--m", "2", "--n", "2", "--k", "2"] + argv, capsys)
    assert rc == 2 and msg in err and "Traceback" not in err
