"""``nybble cost``: the JSON rows, the files, the table (a small sweep)."""
import csv
import json

import pytest

from nybble.__main__ import main

KEYS = {"pe", "formats", "bits", "cells", "transistors", "area_um2", "fmax_mhz",
        "macs_per_cycle", "model_area", "model_error"}


@pytest.mark.synth
def test_small_sweep(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NYBBLE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    argv = ["cost", "--pe", "int4", "int8", "int4_dp4", "--liberty", "none", "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["pe"] for r in rows] == ["int4", "int8", "int4_dp4"]
    for r in rows:
        assert KEYS <= set(r)
        assert r["area_um2"] is None and r["fmax_mhz"] is None
    # three kinds under exact-k, the same three again under equal (all headline kinds)
    assert "[6/6]" in captured.err and "elaborating int4_dp4" in captured.err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["area_breakdown.png", "area_vs_bits.png", "cost.csv", "cost.json",
                     "cost_partial.json", "cost_summary.json", "throughput_per_area.png"]
    partial = json.loads((out / "cost_partial.json").read_text())
    assert sorted((r["policy"], r["pe"]) for r in partial) == sorted(
        (p, k) for p in ("exact-k", "equal") for k in ("int4", "int8", "int4_dp4"))
    with open(out / "cost.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["pe"] for r in table] == ["int4", "int8", "int4_dp4"]
    summary = json.loads((out / "cost_summary.json").read_text())
    assert {x["pair"] for x in summary["ratios"]} == {"int8/int4"}
    assert summary["acc_policy"] == "exact-k" and summary["k"] == 4096
    # warm: everything from the cache, the table for people
    assert main([*argv, "--no-plots"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:3] == ["pe", "formats", "acc"]
    assert "Measured area ratios" in text and "Horowitz, ISSCC 2014, 45 nm" in text
    assert "error against the flattened totals of this sweep (3 PEs): max" in text
    assert "leave-one-out" in text
    assert "Headline ratios under each accumulator policy" in text
    assert "exact-k: every accumulator the narrowest" in text

@pytest.mark.slow
@pytest.mark.synth
def test_block(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NYBBLE_CACHE", str(tmp_path / "cache"))
    argv = ["cost", "--block", "--pe", "mxfp4", "--liberty", "none", "--out", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    (row,) = json.loads(captured.out)
    assert (row["kind"], row["lanes"], row["block_size"], row["scale"]) == (
        "mxfp4", 8, 32, "e8m0")
    assert set(row["overhead"]) == {"fp4_e2m1_dp8", "int4_dp8"}
    assert row["overhead"]["fp4_e2m1_dp8"] == pytest.approx(
        row["transistors"] / row["baselines"]["fp4_e2m1_dp8"]["transistors"] - 1, abs=1e-4)
    assert row["buffer_bits_overhead"] == 1.25 and "[1/1] mxfp4" in captured.err
    assert json.loads((tmp_path / "block_cost.json").read_text()) == [row]
    assert main(argv) == 0
    assert "mxfp4  8      32" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--formats", "int3"], "--formats: unknown format 'int3'"),
    (["--pe", "int3"], "PE kind must be one of"),
    (["--array", "4by4"], "--array must look like ROWSxCOLS"),
    (["--jobs", "0"], "--jobs must be at least 1, not 0"),
    (["--k", "0"], "--k must be between 1 and 16777216 products, not 0"),
    (["--acc-policy", "wide"], "--acc-policy must be exact-k or equal, not 'wide'"),
    (["--buffers", "dram"], "--buffers must be sram or ff, not 'dram'"),
    (["--fit-model", "--pe", "int4"], "--fit-model fits on the full default sweep"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds, not 0"),
    (["--block", "--pe", "int4"], "--block: --pe must name block-scaled kinds (mxfp4, "),
    (["--liberty", "/nonexistent.lib"], "Liberty file '/nonexistent.lib' does not exist"),
])
def test_bad_input(argv, message, tmp_path, capsys):
    assert main(["cost", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
