"""``nybble gemm``: the main job's JSON contract, on the Amaranth simulator (no build)."""
# amaranth: UnusedElaboratable=no
import json

import numpy as np
import pytest

from nybble.__main__ import main
from nybble.hw.config import ArrayConfig
from nybble.sim.cycles import gemm_cycles
from nybble.sim.schedule import fit_config, schedule_for


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


def test_nybble_gemm_exits_non_zero_on_a_mismatch(faulty_golden, capsys):
    rc = main(["gemm", "--array", "2x2", "--m", "3", "--n", "4", "--k", "5", "--sim",
               "amaranth", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["mismatches"] == 1
    assert (doc["first_mismatch"]["row"], doc["first_mismatch"]["col"]) == (1, 2)
    rc = main(["gemm", "--array", "2x2", "--m", "3", "--n", "4", "--k", "5", "--sim",
               "amaranth"])
    out = capsys.readouterr().out
    assert rc == 1 and "mismatches vs nybble.sw golden: 1 of 12 (first at row 1, column 2" in out


def test_nybble_gemm_exits_zero_without_one(capsys):
    rc = main(["gemm", "--array", "2x2", "--m", "3", "--n", "4", "--k", "5", "--sim",
               "amaranth", "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["mismatches"] == 0


@pytest.mark.parametrize("pe,lanes", [("int4_dp4", 4), ("int4_dp8", 8), ("mxfp4", 8)])
def test_utilization_counts_lanes(pe, lanes, capsys):
    m, n, k = 6, 4, 64
    rc = main(["gemm", "--array", "2x2", "--pe", pe, "--m", str(m), "--n", str(n), "--k",
               str(k), "--sim", "amaranth", "--json"])
    doc = json.loads(capsys.readouterr().out)
    cfg = ArrayConfig(rows=2, cols=2, pe=pe)
    cfg = fit_config(cfg, schedule_for(cfg, m, n, k))
    model = gemm_cycles(cfg, m, n, k)
    assert rc == 0 and doc["mismatches"] == 0 and doc["lanes"] == lanes
    assert doc["ideal_cycles"] == m * n * k / (2 * 2 * lanes) == model.ideal_cycles
    assert doc["cycles"] == doc["model_cycles"] == model.cycles
    assert 0 < doc["utilization"] <= 1
    assert doc["utilization"] == pytest.approx(model.utilization)


def test_one_gemm_builds_one_schedule_and_no_throwaway_pe(monkeypatch, capsys):
    """With the Verilog cached, a Verilator run builds no Amaranth component at all, and the
    schedule is made once (it sizes the buffers and lays out the job)."""
    from amaranth._unused import MustUse
    from nybble.sim import run as run_mod, schedule as schedule_mod
    argv = ["gemm", "--array", "2x2", "--pe", "int4_dp4", "--m", "3", "--n", "5", "--k", "9",
            "--json"]
    assert main(argv) == 0          # fills the Verilog and Verilator caches
    capsys.readouterr()
    built, schedules = [], []
    new = MustUse.__new__
    monkeypatch.setattr(MustUse, "__new__", lambda cls, *a, src_loc_at=0, **kw: (
        built.append(cls.__name__) or new(cls, *a, src_loc_at=src_loc_at + 1, **kw)))
    real = schedule_mod.schedule_for

    def counting(*a, **kw):
        schedules.append(a[1:])
        return real(*a, **kw)

    import nybble.cmd_gemm as cmd_gemm
    for mod in (schedule_mod, run_mod, cmd_gemm):
        monkeypatch.setattr(mod, "schedule_for", counting)
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mismatches"] == 0 and doc["cached_build"]
    assert built == [] and schedules == [(3, 5, 9)]


# -- hardening: inputs are values, outputs go exactly where asked, nothing is lost ------------

def _save(tmp_path, name, x):
    np.save(tmp_path / name, x)
    return str(tmp_path / name)


def test_integer_inputs_are_values_codes_need_codes(tmp_path, capsys):
    a = _save(tmp_path, "a.npy", np.array([[-8, 7, 3], [0, -1, 2]]))
    b = _save(tmp_path, "b.npy", np.array([[1, -2], [3, 4], [-5, 6]]))
    out = str(tmp_path / "c")                     # no suffix: written exactly there
    rc = main(["gemm", "--array", "2x2", "--a", a, "--b", b, "--sim", "amaranth", "--out",
               out, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["mismatches"] == 0 and doc["out"] == out
    want = np.array([[-8, 7, 3], [0, -1, 2]]) @ np.array([[1, -2], [3, 4], [-5, 6]])
    assert np.array_equal(np.load(out), want) and not (tmp_path / "c.npy").exists()
    # the same numbers as raw int4 codes (two's complement nibbles)
    codes = _save(tmp_path, "ac.npy", np.array([[8, 7, 3], [0, 15, 2]]))
    bc = _save(tmp_path, "bc.npy", np.array([[1, 14], [3, 4], [11, 6]]))
    rc = main(["gemm", "--array", "2x2", "--a", codes, "--b", bc, "--codes", "--sim",
               "amaranth", "--out", out, "--json"])
    assert rc == 0 and np.array_equal(np.load(out), want)
    capsys.readouterr()


@pytest.mark.parametrize("a,message", [
    (np.array([[1, 9]]), "--a holds 9 at (0, 1), which is not a int4 value (-8 .. 7); "
                         "quantize floats with --scheme, or give raw codes with --codes"),
    (np.array([[0.5, 1.0]]), "--a holds 0.5 at (0, 0), which is not a int4 value (-8 .. 7); "
                             "quantize floats with --scheme, or give raw codes with --codes"),
])
def test_values_that_the_format_cannot_hold_are_named(a, message, tmp_path, capsys):
    args = ["gemm", "--array", "2x2", "--a", _save(tmp_path, "a.npy", a), "--b",
            _save(tmp_path, "b.npy", np.ones((2, 2), int)), "--sim", "amaranth"]
    assert main(args) == 2
    assert capsys.readouterr().err == f"nybble gemm: error: {message}\n"


@pytest.mark.parametrize("flag,target,message", [
    ("--out", "{d}", "--out '{d}' is a directory; give a file name"),
    ("--out", "{f}/c.npy", "--out '{f}/c.npy': '{f}' is a file, not a directory"),
    ("--waves", "{f}/w.vcd", "--waves '{f}/w.vcd': '{f}' is a file, not a directory"),
    ("--build-dir", "{f}", "--build-dir '{f}' is not a directory"),
])
def test_output_paths_are_checked_before_the_run(flag, target, message, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    d = {"d": str(tmp_path), "f": str(f)}
    rc = main(["gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "2", "--sim",
               "amaranth", flag, target.format(**d), "--json"])
    out, err = capsys.readouterr()
    assert rc == 2 and json.loads(out) == {"error": message.format(**d), "exit_status": 2}
    assert err == f"nybble gemm: error: {message.format(**d)}\n"


def test_a_failed_write_names_the_flag(capsys):
    rc = main(["gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "2", "--sim",
               "amaranth", "--out", "/dev/full"])
    assert rc == 1
    assert "nybble gemm: error: could not write --out '/dev/full': No space left on device" \
        in capsys.readouterr().err


def test_narrow_accumulator_is_reported(capsys):
    rc = main(["gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "64", "--acc-bits",
               "8", "--sim", "amaranth", "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert rc == 0 and doc["acc_bits_needed"] == 14 and doc["acc_may_overflow"]
    assert ("warning: --acc-bits 8 is narrower than the 14 bits a K = 64 dot product can "
            "need (nybble.sw.min_acc_bits): results wrap where they overflow") in err


@pytest.mark.parametrize("argv,message", [
    (["--seed", "-1"], "--seed must be at least 0, not -1"),
    (["--m", "0"], "--m must be at least 1, not 0"),
    (["--depth", "0"], "--depth must be at least 1, not 0"),
    (["--codes"], "--codes applies to --a/--b files"),
])
def test_bad_numbers_name_the_flag(argv, message, capsys):
    assert main(["gemm", "--array", "2x2", "--sim", "amaranth"] + argv) == 2
    assert capsys.readouterr().err == f"nybble gemm: error: {message}\n"


def test_missing_icarus_is_a_usage_error(monkeypatch, capsys):
    import nybble.cmd_gemm as cmd_gemm
    monkeypatch.setattr(cmd_gemm, "available_simulators", lambda: ["verilator"])
    assert main(["gemm", "--array", "2x2", "--cocotb", "--sim", "icarus", "--json"]) == 2
    out, err = capsys.readouterr()
    assert "needs Icarus Verilog (iverilog), which is not installed" in json.loads(out)["error"]
    assert "needs Icarus Verilog (iverilog), which is not installed" in err


@pytest.mark.cocotb
def test_cocotb_json_is_one_document(capfd):
    """The cocotb path's build and simulator logs go to stderr, not into the JSON."""
    rc = main(["gemm", "--array", "2x3", "--acc-bits", "16", "--depth", "64", "--m", "5",
               "--n", "4", "--k", "7", "--cocotb", "--json"])
    out, err = capfd.readouterr()
    doc = json.loads(out)
    assert rc == 0 and doc["mismatches"] == 0 and doc["simulator"] == "cocotb"
    assert "cocotb" in err


def test_a_gemm_too_big_to_simulate_is_refused_before_any_work(capsys):
    rc = main(["gemm", "--array", "4x4", "--m", "4", "--n", "4", "--k", "300000000", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 2 and doc["error"] == ("a 4x300000000 @ 300000000x4 GEMM has 2,400,000,000 "
                                        "operand elements; the simulated array holds at most "
                                        "268,435,456: use a smaller --m/--n/--k")
    rc = main(["gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "20000000", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 2 and doc["error"].startswith("a 2x20000000 @ 20000000x2 GEMM needs ")
    assert "MiB of on-chip buffers on a 2x2 array" in doc["error"]


def test_overflow_error_refuses_a_narrow_accumulator(capsys):
    argv = ["gemm", "--array", "2x2", "--m", "2", "--n", "2", "--sim", "amaranth",
            "--overflow", "error"]
    assert main(argv + ["--k", "64", "--acc-bits", "8"]) == 2
    assert capsys.readouterr().err == (
        "nybble gemm: error: --overflow error: --acc-bits 8 is narrower than the 14 bits a "
        "K = 64 dot product can need (nybble.sw.min_acc_bits); raise --acc-bits\n")
    assert main(argv + ["--k", "64", "--acc-bits", "14", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["acc_may_overflow"] is False
