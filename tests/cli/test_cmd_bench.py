"""``nybble bench``: ratios measured side by side, every RTL run checked bit for bit."""
import json

from nybble.__main__ import main


def test_bench_golden(capsys):
    rc = main(["bench", "golden", "--size", "32", "--repeats", "1", "--schemes", "int4_tensor",
               "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rc == 0 and rows[0]["scheme"] == "int4_tensor"
    assert rows[0]["ratio"] == rows[0]["gemm_seconds"] / rows[0]["numpy_float32_seconds"]


def test_bench_sim_small(capsys):
    rc = main(["bench", "sim", "--array", "2x2", "--pe", "int4_dp4", "--size", "8",
               "--speed-size", "16", "--no-amaranth", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["mismatches"] == 0
    assert [r["dataflow"] for r in doc["runs"]] == ["os", "ws", "os"]
    for r in doc["runs"]:
        assert r["cycles"] == r["model_cycles"] and 0 < r["utilization"] <= 1
        assert r["ideal_cycles"] == r["m"] * r["n"] * r["k"] / (2 * 2 * 4)


def test_bad_size_is_one_line(capsys):
    assert main(["bench", "golden", "--size", "0"]) == 2
    assert capsys.readouterr().err == "nybble bench: error: --size must be at least 1, not 0\n"


def test_bench_golden_repeats_zero(capsys):
    assert main(["bench", "golden", "--repeats", "0"]) == 2
    assert capsys.readouterr().err == ("nybble bench: error: --repeats must be at least 1, "
                                       "not 0\n")


def test_bench_errors_counts_every_class(monkeypatch, capsys):
    import nybble.bad_inputs as bad
    picked = [c for c in bad.CASES if c[1] in ("formats unknown, --json", "negative --seed")]
    monkeypatch.setattr(bad, "CASES", picked)
    rc = main(["bench", "errors", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["clean"] == doc["tried"] == 2
    assert doc["classes"]["json"] == {"clean": 1, "tried": 1}


def test_bench_explore_bad_workers(capsys):
    assert main(["bench", "explore", "--workers", "0,2"]) == 2
    assert capsys.readouterr().err == ("nybble bench: error: --workers must list positive "
                                       "worker counts, not '0,2'\n")
    assert main(["bench", "explore", "--workers", "one"]) == 2
