"""``nybble gemm --pe bitserial`` and ``nybble cycles --pe bitserial``: ok paths, the verdict,
and every refusal naming its flag."""
import json

import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.sim.cycles import gemm_cycles

GEMM = ["gemm", "--pe", "bitserial", "--array", "2x2", "--sim", "amaranth"]


def test_random_mix_is_exact_and_reports_the_trade(run_cli):
    rc, out, err = run_cli(GEMM + ["--m", "3", "--n", "5", "--k", "12", "--group", "4",
                                   "--dtype-mix", "int4=0.5,e3m0=0.5", "--json"])
    doc = json.loads(out)
    assert rc == 0, err
    assert doc["mismatches"] == 0 and doc["cycles"] == doc["model_cycles"]
    assert doc["dtype_mix"] == {"int4": 0.5, "e3m0": 0.5} and doc["group"] == 4
    assert doc["ideal_cycles"] == 3 * 5 * 12 / 4 and doc["utilization"] < 1
    assert 1 <= doc["mean_cycles_per_mac"] <= 3 and doc["rel_error"] < 1e-12
    assert doc["jobs"] == 1


def test_bitmod_scheme_runs_one_job_per_group(run_cli, tmp_path):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "a.npy", rng.normal(size=(2, 16)))
    np.save(tmp_path / "w.npy", rng.normal(size=(16, 3)))
    rc, out, err = run_cli(GEMM + ["--a", str(tmp_path / "a.npy"), "--b",
                                   str(tmp_path / "w.npy"), "--scheme", "bitmod_g8",
                                   "--out", str(tmp_path / "c.npy"), "--json"])
    doc = json.loads(out)
    assert rc == 0, err
    assert doc["jobs"] == 2 and doc["mismatches"] == 0 and doc["scheme"] == "bitmod_g8"
    assert set(doc["dtype_mix"]) <= {"bitmod_er_pos", "bitmod_er_neg", "bitmod_ea_pos",
                                     "bitmod_ea_neg"}
    assert 0 < doc["rel_error"] < 0.2
    c = np.load(tmp_path / "c.npy")
    ref = np.load(tmp_path / "a.npy") @ np.load(tmp_path / "w.npy")
    assert np.linalg.norm(c - ref) / np.linalg.norm(ref) == pytest.approx(doc["rel_error"])


def test_a_mismatch_exits_1(faulty_golden, run_cli):
    rc, out, _ = run_cli(GEMM + ["--m", "3", "--n", "4", "--k", "5", "--json"])
    assert rc == 1 and json.loads(out)["mismatches"] == 1


@pytest.mark.parametrize("extra, message", [
    (["--dtype-mix", "int5=1"], "--dtype-mix: dtype mix: data type must be one of int4, "),
    (["--dtype-mix", "int4=0.4"], "the fractions must sum to 1, not 0.4"),
    (["--group", "0"], "--group must be at least 1, not 0"),
    (["--scheme", "bitmod_g8"], "--scheme applies to --a/--b files"),
    (["--area"], "--area with --pe bitserial"),
    (["--dataflow", "ws"], "--pe bitserial runs output-stationary (--dataflow os), not 'ws'"),
])
def test_gemm_refusals(extra, message, run_cli):
    rc, _, err = run_cli(GEMM + ["--m", "2", "--n", "2", "--k", "2"] + extra)
    assert rc == 2 and message in err


def test_gemm_file_refusals(run_cli, tmp_path):
    np.save(tmp_path / "a.npy", np.ones((2, 4)))
    np.save(tmp_path / "w.npy", np.ones((4, 2)))
    files = ["--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "w.npy")]
    for extra, message in (
            ([], "--pe bitserial takes float --a/--b with --scheme bitmod_g<N>"),
            (["--scheme", "int4_g4"], "--scheme bitmod_g<N> (e.g. bitmod_g128), not int4_g4"),
            (["--codes"], "--codes: bit-serial weights need a data type per group"),
            (["--scheme", "bitmod_g4", "--dtype-mix", "e3m0=1"], "--dtype-mix draws random"),
            (["--scheme", "bitmod_g4", "--group", "2"], "--group 2 contradicts --scheme")):
        rc, _, err = run_cli(GEMM + files + extra)
        assert rc == 2 and message in err, (extra, err)


def test_mix_flags_need_the_bitserial_pe(run_cli):
    rc, _, err = run_cli(["gemm", "--pe", "int4", "--dtype-mix", "int4=1"])
    assert rc == 2 and "--dtype-mix applies to --pe bitserial, not --pe int4" in err
    rc, _, err = run_cli(["cycles", "--workload", "llama-7b", "--group", "4"])
    assert rc == 2 and "--group applies to --pe bitserial, not --pe int4" in err


def test_cycles_with_a_mix_and_with_a_weight_file(run_cli, tmp_path):
    (tmp_path / "t.csv").write_text("Layer, M, N, K,\nfc1, 9, 70, 33,\nfc2, 40, 5, 300,\n")
    rc, out, err = run_cli(["cycles", "--pe", "bitserial", "--array", "4x4", "--topology",
                            str(tmp_path / "t.csv"), "--dtype-mix", "e3m0=1", "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["workload"]["dtype_mix"] == {"e3m0": 1.0}
    cfg = ArrayConfig(rows=4, cols=4, pe="bitserial")
    row = doc["layers"][0]
    sel = np.full((row["k"], row["n"]), 2)
    assert row["cycles"] == gemm_cycles(cfg, row["m"], row["n"], row["k"], sel=sel).cycles
    assert row["mean_cycles_per_mac"] == 1
    np.save(tmp_path / "w.npy", np.random.default_rng(0).normal(size=(64, 8)))
    rc, out, err = run_cli(["cycles", "--pe", "bitserial", "--array", "4x4", "--weights",
                            str(tmp_path / "w.npy"), "--m", "16", "--group", "32", "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    assert [(r["m"], r["n"], r["k"]) for r in doc["layers"]] == [(16, 8, 64)]
    assert 2 <= doc["layers"][0]["mean_cycles_per_mac"] <= 3
    rc, _, err = run_cli(["cycles", "--pe", "int4", "--weights", str(tmp_path / "w.npy")])
    assert rc == 2 and "--weights applies to --pe bitserial, not --pe int4" in err


def test_bench_speed_run_is_checked(run_cli):
    rc, out, err = run_cli(["bench", "bitserial", "--array", "2x2", "--speed-size", "9",
                            "--repeats", "2", "--group", "4", "--no-area", "--json"])
    assert rc == 0, err
    sp = json.loads(out)["speed"]
    assert sp["mismatches"] == 0 and sp["cycles"] == sp["model_cycles"] and sp["runs"] == 2
    assert sp["macs_per_second"] > 0
    rf = json.loads(out)["reference"]   # the int4 array, same GEMM, same harness
    assert rf["pe"] == "int4" and rf["mismatches"] == 0 and rf["cycles"] > 0
    ratio = json.loads(out)["speed_ratio"]
    assert ratio["cycles_per_cpu_second"] == pytest.approx(
        sp["cycles_per_cpu_second"] / rf["cycles_per_cpu_second"])


@pytest.mark.parametrize("extra, message", [
    (["--speed-size", "0"], "--speed-size must be at least 1, not 0"),
    (["--dtype-mix", "e3m0=2"], "the fractions must sum to 1, not 2"),
    (["--plot", "x.svg"], "--plot must name a .png file, not 'x.svg'"),
    (["--array", "2by2"], "ROWSxCOLS"),
    (["--reference", "bitserial"], "--reference must be a MAC or dot-product PE kind "
                                   "(e.g. int4, int8_int4) or none, not 'bitserial'"),
])
def test_bench_refusals(extra, message, run_cli):
    rc, _, err = run_cli(["bench", "bitserial", "--no-area", "--no-speed"] + extra)
    assert rc == 2 and message in err, err


@pytest.mark.slow
@pytest.mark.synth
def test_bench_area_on_a_small_array(run_cli, tmp_path):
    rc, out, err = run_cli(["bench", "bitserial", "--array", "2x2", "--no-speed", "--size",
                            "16", "--plot", str(tmp_path / "t.png"), "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    assert set(doc["areas"]) == {"bitserial", "int8_int4", "int8_fp4_e2m1", "int8_e3m0"}
    assert all(a["transistors"] > 0 for a in doc["areas"].values())
    assert set(doc["ratios"]) == {"all-int4", "int4/fp4/e3m0=50/30/20", "all-e3m0"}
    assert (tmp_path / "t.png").stat().st_size > 0
