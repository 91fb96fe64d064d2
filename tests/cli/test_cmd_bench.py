"""``nybble bench``: ratios measured side by side, every RTL run checked bit for bit."""
import json

import nybble.cmd_bench as bench
from nybble.__main__ import main


def test_bench_golden(capsys):
    rc = main(["bench", "golden", "--size", "32", "--repeats", "1", "--schemes", "int4_tensor",
               "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rc == 0 and rows[0]["scheme"] == "int4_tensor"
    assert rows[0]["ratio"] == rows[0]["gemm_seconds"] / rows[0]["numpy_float32_seconds"]
    # int4 x int4 over K = 32: |sum| <= 64 * 32 = 2**11, 13 bits never wrap
    assert (rows[0]["acc_bits"], rows[0]["no_wrap_acc_bits"], rows[0]["wraps"]) == (13, 13, False)


def test_bench_golden_times_each_scheme_at_its_no_wrap_width(capsys, monkeypatch):
    widths = []
    real = bench.gemm
    monkeypatch.setattr(bench, "gemm", lambda a, b, **kw: (widths.append(kw), real(a, b, **kw))[1])
    rc = main(["bench", "golden", "--size", "64", "--repeats", "1", "--schemes", "mxfp8_e5m2",
               "nf4_g64", "--json"])
    rows = json.loads(capsys.readouterr().out)
    # block sums of 32 e5m2 products reach 2**68.6, of 64 NF4 ones (grid 2**-14) 2**34
    assert rc == 0 and [(r["acc_bits"], r["wraps"]) for r in rows] == [(70, False), (36, False)]
    assert widths == [{"acc_bits": 70}, {"acc_bits": 36}]
    rc = main(["bench", "golden", "--size", "64", "--repeats", "1", "--schemes", "mxfp8_e5m2",
               "--acc-bits", "32"])
    out = capsys.readouterr().out
    assert rc == 0 and "acc 32 bits (wraps)" in out and widths[-1] == {"acc_bits": 32}


def test_bench_golden_acc_bits_out_of_range(capsys):
    assert main(["bench", "golden", "--acc-bits", "1"]) == 2
    assert capsys.readouterr().err == ("nybble bench: error: --acc-bits must be in 2..4096, "
                                       "not 1\n")


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
