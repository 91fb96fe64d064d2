# amaranth: UnusedElaboratable=no
"""The cost model: features, the sweep and its report (the fit: test_area_model.py)."""

import math

import pytest

from nybble.synth import cost
from nybble.synth.asic_clock import clock_mhz
from nybble.synth.cost import (DEFAULT_KINDS, HOROWITZ_45NM, cost_report, cost_sweep,
                               find_liberty, pe_features, select_kinds)


def test_features_of_int4_fp4_and_dot_products():
    int4 = pe_features("int4", 32, 10)
    assert (int4.lanes, int4.n, int4.m, int4.exp_bits, int4.shift) == (1, 4, 4, 0, 0)
    assert (int4.tree_bits, int4.acc_bits, int4.register_bits) == (0, 32, 10)
    fp4 = pe_features("fp4_e2m1", 32, 10)
    # 2-bit significands, a 9-bit product placed at 5 positions: 9 * ceil(log2 5)
    assert (fp4.n, fp4.m, fp4.exp_bits, fp4.shift) == (2, 2, 4, 27)
    dp = pe_features("int4_dp4", 32, 34)
    # four 8-bit products: two 9-bit adders, one 10-bit adder
    assert (dp.lanes, dp.tree_bits, dp.macs_per_cycle) == (4, 9 + 9 + 10, 4.0)
    lut = pe_features("lut_nf4", 32, 14)
    assert (lut.n, lut.m, lut.table_bits) == (8, 16, 16 * 16)
    shared = pe_features("lut_nf4_shared", 32, 14)   # the array holds the table
    assert (shared.table_bits, shared.table_held_bits, lut.table_held_bits) == (256, 0, 256)
    serial = pe_features("bitserial", 32, 34)
    assert serial.macs_per_cycle == pytest.approx(1 / 3)  # int4 weights: 3 bits
    assert serial.rom_entries == 7 * 16
    bf16 = pe_features("bf16", 64, 34)
    assert bf16.wide_input_bits > 0


def test_select_kinds():
    assert select_kinds() == list(DEFAULT_KINDS)
    assert select_kinds(["int4", "int8"]) == ["int4", "int8", "int4_dp4", "int8_dp4",
                                              "int4_dp16", "int8_dp16"]
    # a format alias is the same format
    assert select_kinds(["fp4_e2m1"]) == ["fp4_e2m1", "lmul_fp4_e2m1", "fp4_e2m1_dp4"]
    assert select_kinds(["int4"], ["int4_dp2"]) == ["int4", "int4_dp4", "int4_dp16",
                                                    "int4_dp2"]
    # --pe alone: exactly the kinds named, no dot products added
    assert select_kinds(None, ["int4", "int8", "int4"]) == ["int4", "int8"]
    with pytest.raises(ValueError, match=r"^--formats: unknown format 'int3'; formats are "):
        select_kinds(["int3"])
    with pytest.raises(ValueError, match=r"^PE kind must be one of .*not 'int3'$"):
        select_kinds(None, ["int3"])
    with pytest.raises(ValueError, match=r"^No PE kind of the sweep uses only the formats "
                                         r"\['nf4'\]; name kinds with --pe$"):
        select_kinds(["nf4"])


def test_find_liberty(tmp_path, monkeypatch):
    assert find_liberty("none") is None and find_liberty(None) is None
    lib = tmp_path / "cells.lib"
    lib.write_text("library(x) {}")
    assert find_liberty(str(lib)) == str(lib)
    monkeypatch.setenv("NYBBLE_LIBERTY", str(lib))
    assert find_liberty("auto") == str(lib)
    with pytest.raises(FileNotFoundError, match=r"^Liberty file '/nonexistent\.lib' does not "
                                                r"exist \(give a \.lib path, 'auto' or "
                                                r"'none'\)$"):
        find_liberty("/nonexistent.lib")


def test_horowitz_anchor_is_the_published_table():
    assert HOROWITZ_45NM["32b int mult"][1] / HOROWITZ_45NM["8b int mult"][1] == \
        pytest.approx(12.39, abs=0.01)
    assert len(HOROWITZ_45NM) == 8


@pytest.mark.synth
def test_sweep_and_report(shared_cache, tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    kinds = ["int4", "fp4_e2m1", "e3m0", "int8", "int4_dp4", "int8_dp4", "fp4_e2m1_dp4"]
    lines = []
    sweep = cost_sweep(kinds, cache_dir=shared_cache, build_dir=build, progress=lines.append)
    # every kind under exact-k; int4, int8 and their dp4 again under the equal policy
    headline = ["int4", "int8", "int4_dp4", "int8_dp4"]
    assert len([x for x in lines if x.startswith("[")]) == len(kinds) + len(headline)
    assert any(x.startswith("  elaborating int8 (28-bit accumulator, exact-k)") for x in lines)
    assert sweep["acc_bits"]["int4"] == 20
    assert sweep["by_policy"]["equal"]["acc_bits"]["int4"] == 32
    rows, summary = cost_report(sweep, array=(4, 4))
    assert [r["pe"] for r in rows] == kinds
    heads = {(h["pair"], h["pe"]): h for h in summary["headline"]}
    mac = heads[("int8/int4", "MAC")]
    assert mac["exact-k"]["transistors"] == pytest.approx(
        sweep["pes"]["int8"].transistors / sweep["pes"]["int4"].transistors, abs=1e-3)
    assert mac["exact-k"]["acc_bits"] == [28, 20] and mac["equal"]["acc_bits"] == [32, 32]
    # a narrower int4 accumulator: int8/int4 grows
    assert mac["exact-k"]["transistors"] > mac["equal"]["transistors"]
    assert summary["acc_policy"] == "exact-k" and set(summary["conventions"]) == {
        "exact-k", "equal"}
    for r in rows:
        # one technology: the ASIC clock estimate of the PE's own logic depth
        assert r["asic_mhz"] == pytest.approx(clock_mhz(r["logic_depth"]), abs=0.1)
        assert r["gops_per_s_per_mtransistor"] == pytest.approx(
            2 * r["macs_per_cycle"] * r["asic_mhz"] / r["transistors"] * 1e3, rel=1e-2)
    for r in rows:
        for key in ("pe", "formats", "bits", "cells", "transistors", "area_um2", "fmax_mhz",
                    "macs_per_cycle", "model_area", "model_error"):
            assert key in r, key
        assert r["area_um2"] is None and r["fmax_mhz"] is None
        assert math.isfinite(r["model_error"])
        assert r["array_4x4_macs_per_cycle"] == 16 * r["macs_per_cycle"]
    by = {r["pe"]: r for r in rows}
    assert by["int8"]["equal_area_pes"] == 16
    assert by["int4"]["equal_area_pes"] > 16
    pairs = {x["pair"]: x for x in summary["ratios"]}
    assert pairs["int8/int4"]["transistors"] == pytest.approx(
        by["int8"]["transistors"] / by["int4"]["transistors"], abs=1e-3)
    assert "int8_dp4/int4_dp4" in pairs
    # amortising the accumulator: the dot product shows more of the n^2 of the multipliers
    assert pairs["int8_dp4/int4_dp4"]["transistors"] > pairs["int8/int4"]["transistors"]
    assert summary["model"]["points"] == len(kinds)
    # a second sweep comes from the cache
    again = cost_sweep(kinds, cache_dir=shared_cache, build_dir=build)
    assert all(r.cached for r in again["pes"].values())


@pytest.mark.synth
def test_sweep_with_arrays_reports_results_as_they_arrive(shared_cache, tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    kinds, arrived = ["int4", "int8"], []
    sweep = cost_sweep(kinds, cache_dir=shared_cache, build_dir=build, array=(2, 2),
                       array_depth=4, on_result=lambda *r: arrived.append(r[:3]))
    assert sorted(arrived) == sorted((what, policy, k) for what in ("pe", "array")
                                     for policy in ("exact-k", "equal") for k in kinds)
    rows, summary = cost_report(sweep, array=(2, 2))
    arrays = [r for r in rows if r["scope"] == "array"]
    assert [r["pe"] for r in arrays] == kinds
    for r in arrays:
        assert r["transistors"] == sum(r["parts"].values())
        assert r["parts"]["pes"] == 4 * sweep["pes"][r["pe"]].transistors
        assert r["buffer_model"] == "sram" and r["depth"] == 4
    for r in arrays:
        pe = next(x for x in rows if x["scope"] == "pe" and x["pe"] == r["pe"])
        assert r["pe_asic_mhz"] == pe["asic_mhz"] and r["asic_mhz"] <= pe["asic_mhz"]
        assert r["logic_depth"] == max(r["pe_logic_depth"], r["rest_logic_depth"])
    head = next(h for h in summary["headline"] if h["pe"].startswith("array"))
    eq = sweep["by_policy"]["equal"]["arrays"]
    assert head["equal"]["transistors"] == pytest.approx(
        eq["int8"].transistors / eq["int4"].transistors, abs=1e-3)


@pytest.mark.synth
def test_interrupted_sweep_resumes_from_the_cache(tmp_path):
    kinds = ["int4", "e3m0", "int4_e3m0"]

    class Interrupt(Exception):
        pass

    def stop_after_first(line):
        if line.startswith("[1/"):
            raise Interrupt(line)

    with pytest.raises(Interrupt):
        cost_sweep(kinds, jobs=1, cache_dir=tmp_path / "cache", build_dir=tmp_path,
                   progress=stop_after_first, compare_policies=False)
    lines = []
    sweep = cost_sweep(kinds, jobs=1, cache_dir=tmp_path / "cache", build_dir=tmp_path,
                       progress=lines.append, compare_policies=False)
    cached = {name: r.cached for name, r in sweep["pes"].items()}
    # the run under way when the sweep stopped may have finished; none started after it
    assert cached["int4"] and not cached["int4_e3m0"], cached
    assert any("int4 (exact-k): Yosys" in x and "(cached)" in x for x in lines)


@pytest.mark.synth
def test_timeout_leaves_a_kind_out_and_the_fit_names_it(tmp_path, monkeypatch):
    """``timeout``: a synthesis that does not finish in time is left out, the sweep goes on,
    and the stored model says which kind it was not fitted on and why."""
    cache = tmp_path / "cache"
    cost_sweep(["int4", "int4_e3m0"], jobs=1, cache_dir=cache, build_dir=tmp_path,
               compare_policies=False)
    lines = []
    sweep = cost_sweep(["int4", "e3m0", "int4_e3m0"], jobs=1, cache_dir=cache,
                       build_dir=tmp_path, compare_policies=False, timeout=0.01,
                       progress=lines.append)
    assert list(sweep["pes"]) == ["int4", "int4_e3m0"]    # cached: no Yosys run to time out
    assert sweep["failed"] == [{"what": "pe", "policy": "exact-k", "pe": "e3m0",
                                "error": "Yosys did not finish within 0.01 s"}]
    assert any("e3m0 (exact-k): Yosys: left out: Yosys did not finish" in x for x in lines)
    monkeypatch.setattr(cost, "DEFAULT_KINDS", ("int4", "e3m0", "int4_e3m0"))
    path = tmp_path / "model.json"
    _, about = cost.fit_stored_model(sweep, path)
    assert about["kinds"] == ["int4", "int4_e3m0"]
    assert about["excluded"] == {"e3m0": "synthesis left out of the sweep: Yosys did not "
                                          "finish within 0.01 s"}
    assert about["source"].endswith(", except e3m0 (excluded: see why)")
    assert about["held_out"]["per_pe"] == {}           # no IEEE-style kind in this sweep
    assert set(about["loo"]["per_pe"]) == {"int4", "int4_e3m0"}
    _, summary = cost_report(sweep)
    assert summary["left_out"] == sweep["failed"]
    # a kind missing for any other reason is refused
    monkeypatch.setattr(cost, "DEFAULT_KINDS", ("int4", "e3m0", "int4_e3m0", "int8"))
    with pytest.raises(ValueError, match=r"^The stored model is fitted on the full default "
                                         r"sweep; this sweep lacks int8$"):
        cost.fit_stored_model(sweep, path)
