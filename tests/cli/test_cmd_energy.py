"""``nybble energy``: JSON rows, text, plot, data files and bad input (int4, small runs)."""
import json
import os

import numpy as np
import pytest

from nybble.synth.energy import GENERIC_45NM


def test_json_rows(run_cli):
    rc, out, err = run_cli(["energy", "--pe", "int4", "--data", "uniform,zeros50",
                            "--macs", "512", "--no-anchors", "--no-area", "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    assert [(r["pe"], r["data"]) for r in doc["rows"]] == [("int4", "uniform"),
                                                          ("int4", "zeros50")]
    for r in doc["rows"]:
        assert r["netlist_equals_golden"] and r["checked_steps"] == 512 == r["macs"]
        assert r["pj_per_mac"] == pytest.approx(sum(r["breakdown_pj_per_mac"].values()))
        assert r["operand_sram_pj_per_mac"] == pytest.approx(1.0 * 10 / 8)
    assert doc["model"]["unit_ff"] == GENERIC_45NM.unit_ff and doc["model"]["volts"] == 0.9
    assert doc["anchors"] is None and doc["ratios"] == []
    assert "int4 on uniform" in err


def test_text_plot_and_files(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "A.npy", rng.standard_normal((8, 16)))
    np.save(tmp_path / "B.npy", rng.standard_normal((16, 8)))
    png = tmp_path / "e.png"
    rc, out, err = run_cli(["energy", "--pe", "int4", "--data",
                            f"{tmp_path}/A.npy,{tmp_path}/B.npy", "--macs", "300",
                            "--no-anchors", "--no-area", "--plot", str(png)])
    assert rc == 0, err
    assert out.splitlines()[0].startswith("energy per MAC: generic gates, 45 nm, 0.9 V")
    assert "A.npy,B.npy" in out and png.stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["--pe", "mxfp4"], "--pe 'mxfp4': energy runs take MAC and dot-product kinds"),
    (["--pe", "int3"], "--pe: PE kind must be one of"),
    (["--data", "cifar"], "--data must be a comma-separated list of uniform, gaussian, "
                          "digits, zeros50, or A.npy,B.npy, not 'cifar'"),
    (["--macs", "0"], "--macs must be at least 1, not 0"),
    (["--data", "x.npy,y.npy"], "A file 'x.npy' does not exist"),
    (["--liberty", "nope.lib"], "--liberty file 'nope.lib' does not exist"),
    (["--liberty", "nope.lib", "--calibrate"], "--calibrate fits the generic model"),
])
def test_bad_input(run_cli, argv, message):
    rc, out, err = run_cli(["energy", *argv, "--no-anchors"])
    assert rc == 2 and message in err and "Traceback" not in err


def test_gemm_energy_flag(run_cli):
    # `nybble gemm --energy` (the hook in cli/cmd_gemm.py) on the Amaranth simulator
    rc, out, err = run_cli(["gemm", "--array", "2x2", "--m", "2", "--n", "2", "--k", "8",
                            "--sim", "amaranth", "--energy", "--json"])
    assert rc == 0, err
    e = json.loads(out)["energy"]
    assert e["macs"] == 32 and e["compute_pj"] > 0 and e["sram_pj"] > 0
    rc, out, err = run_cli(["gemm", "--array", "2x2", "--scheme", "mxfp4", "--energy"])
    assert rc == 2 and "--energy takes MAC and dot-product PE kinds" in err


OSU018 = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib"


@pytest.mark.skipif(not os.path.isfile(OSU018),
                    reason="needs Debian's qflow-tech-osu018 Liberty (optional)")
def test_liberty(run_cli):
    rc, out, err = run_cli(["energy", "--pe", "int4", "--data", "uniform", "--macs", "512",
                            "--no-anchors", "--no-area", "--liberty", OSU018, "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    (row,) = doc["rows"]
    assert doc["model"]["volts"] == 1.8 and doc["model"]["liberty"] == OSU018
    assert row["leakage_nw"] > 0 and row["pj_per_mac"] > 0


@pytest.mark.slow
def test_anchors_and_calibration(run_cli):
    # the stored capacitance per gate unit is the one the anchors fit (calibrated once)
    rc, out, err = run_cli(["energy", "--pe", "int4", "--data", "uniform", "--macs", "1000",
                            "--no-area", "--calibrate", "--json"])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["calibration"]["unit_ff"] == pytest.approx(GENERIC_45NM.unit_ff, rel=0.02)
    names = [r["operator"] for r in doc["anchors"]["operators"]]
    assert names == ["8b int add", "32b int add", "8b int mult", "32b int mult",
                     "16b fp mult", "32b fp mult"]
    ratios = {r["ratio"]: r for r in doc["anchors"]["ratios"]}
    assert ratios["8b int mult : 32b int add"]["within_2x"]
    assert ratios["32b int mult : 8b int mult"]["within_2x"]
