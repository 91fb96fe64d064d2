"""Every command's ``--json`` path prints exactly one strict JSON document on stdout, on a
working path and on a failing one (the failure's document is ``{"error", "exit_status"}``)."""
import json

import pytest

from nybble.__main__ import COMMAND_MODULES


def _strict(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))


# (command, working argv, failing argv); {tmp} is a temporary directory
CASES = {
    "formats": (["formats", "int4"], ["formats", "fp5"]),
    "quantize": (["quantize", "{tmp}/x.npy", "--scheme", "mxfp4"],
                 ["quantize", "{tmp}/missing.npy", "--scheme", "mxfp4"]),
    "bench": (["bench", "golden", "--size", "16", "--repeats", "1", "--schemes",
               "int4_tensor"], ["bench", "golden", "--size", "0"]),
    "cycles": (["cycles", "--array", "4x4", "--workload", "llama-7b", "--seq-len", "8"],
               ["cycles", "--array", "4by4", "--workload", "llama-7b"]),
    "gemm": (["gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "3", "--sim",
              "amaranth"], ["gemm", "--array", "2x2", "--pe", "int3"]),
    "pe-report": (["pe-report", "--kinds", "int4", "--no-synth"],
                  ["pe-report", "--kinds", "int3", "--no-synth"]),
    "stability": (["stability", "--family", "gaussian", "--n", "16", "--depth", "1",
                   "--schemes", "mxfp4", "--trials", "4"],
                  ["stability", "--family", "laplace"]),
    "rd": (["rd", "--quick"], ["rd", "--seed", "-1"]),
    "format-search": (["format-search", "{tmp}/x.npy"], ["format-search", "{tmp}/nope.npy"]),
    "demo": (None, ["demo", "digits", "--scheme", "int3"]),
    "verilog": (["verilog", "--pe", "int4", "-o", "{tmp}/pe.v"],
                ["verilog", "--pe", "int4", "-o", "{tmp}/pe.v", "--name", "9bad"]),
    "fpga": (None, ["fpga", "--board", "nope", "--pe", "int4", "--array", "2x2"]),
    "cost": (None, ["cost", "--jobs", "0"]),
    "energy": (["energy", "--pe", "int4", "--data", "uniform", "--macs", "64", "--no-anchors",
                "--no-area"], ["energy", "--pe", "mxfp4"]),
    "cache": (["cache", "info", "--build-dir", "{tmp}/build"],
              ["cache", "info", "--build-dir", "{tmp}/x.npy"]),
    "example": (["example", "X.npy", "--out", "{tmp}/ex"], ["example", "nope"]),
    "explore": (["explore", "--workload", "llama-7b", "--phase", "decode", "--seq-len", "16",
                 "--pe", "bitserial", "--array", "2x2", "--out", "{tmp}/explore",
                 "--clock-mhz", "100", "--no-area", "--workers", "1"],
                ["explore", "--workload", "llama-7b", "--constraint", "area<<1"]),
}


def test_every_command_is_covered():
    modules = {("pe-report" if m == "cmd_pe" else m[4:].replace("_", "-"))
               for m in COMMAND_MODULES}
    assert modules == set(CASES)


@pytest.mark.parametrize("command", sorted(CASES))
def test_json_on_stdout(command, run_cli, tmp_path):
    import numpy as np
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((4, 64)))
    ok, bad = CASES[command]
    if ok is not None:
        rc, out, err = run_cli([a.format(tmp=tmp_path) for a in ok] + ["--json"])
        assert rc == 0, err
        _strict(out)
    rc, out, err = run_cli([a.format(tmp=tmp_path) for a in bad] + ["--json"])
    doc = _strict(out)
    assert rc == 2 and doc["exit_status"] == 2 and doc["error"] in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_argparse_errors_take_the_same_path(capsys):
    from nybble.__main__ import main
    with pytest.raises(SystemExit) as e:
        main(["gemm", "--m", "many", "--json"])
    out, err = capsys.readouterr()
    assert e.value.code == 2 and "argument --m: invalid int value: 'many'" in err
    assert _strict(out) == {"error": "argument --m: invalid int value: 'many'", "exit_status": 2}
