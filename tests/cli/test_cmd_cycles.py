"""``nybble cycles`` and :mod:`nybble.sim.report`: workloads through the cycle model, end to end.

The CLI runs the real cycle model (``nybble.sim.cycles.gemm_cycles``); the report module is
also checked with a simple counting model passed as its ``cycle_fn``.
"""

import csv
import io
import json
import math
import re

import pytest

from nybble.__main__ import main
from nybble.sim import report as report_mod
from nybble.cmd_example import SCALESIM_CFG
from nybble.sim.cycles import GemmCycles
from nybble.sim.workloads import Layer, llama_7b


def counting_gemm_cycles(config, m, n, k):
    """A simple output-stationary count for the report module's own checks: one tile per
    rows x cols block, skew paid per tile."""
    tiles = math.ceil(m / config.rows) * math.ceil(n / config.cols)
    cycles = tiles * (k + config.rows + config.cols - 1)
    ideal = math.ceil(m * n * k / (config.rows * config.cols))
    return GemmCycles(m, n, k, cycles, ideal, ideal / cycles, tiles,
                      a_reads=tiles * k, a_writes=math.ceil(m / config.rows) * k,
                      b_reads=tiles * k, b_writes=math.ceil(n / config.cols) * k,
                      c_reads=0, c_writes=tiles * config.rows)


def run_cli(capsys, *argv):
    """``nybble cycles ARGV --json``: exit code, the one JSON document, stderr."""
    code = main(["cycles", *argv, "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out) if code == 0 else None   # json.loads rejects anything but one document
    return code, doc, err


def check_totals(doc):
    layers, t = doc["layers"], doc["totals"]
    assert t["layers"] == len(layers)
    assert t["gemms"] == sum(r["count"] for r in layers)
    assert t["macs"] == sum(r["m"] * r["n"] * r["k"] * r["count"] for r in layers)
    for r in layers:
        assert r["total_cycles"] == r["cycles"] * r["count"], r["name"]
        assert r["utilization"] == pytest.approx(r["ideal_cycles"] / r["cycles"]), r["name"]
    assert t["cycles"] == sum(r["cycles"] * r["count"] for r in layers)
    for f in ("a_reads", "b_reads", "c_writes"):
        assert t[f] == sum(r[f] * r["count"] for r in layers), f
    assert t["utilization"] == pytest.approx(t["ideal_cycles"] / t["cycles"])
    assert t["seconds"] == pytest.approx(t["cycles"] / (doc["config"]["clock_mhz"] * 1e6))


def test_llama_7b_json(capsys):
    code, doc, err = run_cli(capsys, "--array", "16x16", "--dataflow", "os", "--pe", "int4",
                             "--workload", "llama-7b", "--seq-len", "2048")
    assert code == 0, err
    assert set(doc) == {"config", "workload", "layers", "totals"}
    c = doc["config"]
    assert (c["rows"], c["cols"], c["dataflow"], c["pe"], c["acc_bits"]) == (16, 16, "os", "int4", 32)
    assert doc["workload"] == {"name": "llama-7b", "seq_len": 2048}
    assert [(r["name"], r["m"], r["n"], r["k"], r["count"]) for r in doc["layers"]] == [
        (l.name, l.m, l.n, l.k, l.count) for l in llama_7b(2048)]
    assert doc["totals"]["macs"] == 448_824_082_432
    check_totals(doc)
    assert "llama-7b" in err                    # progress goes to stderr


def test_resnet50_ws_json(capsys):
    code, doc, err = run_cli(capsys, "--array", "8x8", "--dataflow", "ws", "--workload",
                             "resnet50", "--batch", "2")
    assert code == 0, err
    assert doc["config"]["dataflow"] == "ws"
    assert doc["totals"]["layers"] == doc["totals"]["gemms"] == 54
    assert doc["totals"]["macs"] == 2 * 4_089_184_256
    check_totals(doc)


def test_text_table(capsys):
    assert main(["cycles", "--workload", "llama-7b", "--seq-len", "64", "--array", "4x4"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("4x4 os array, pe int4, acc 32 bits")
    assert any(l.split()[0] == "attn_scores" and l.split()[1:5] == ["64", "64", "128", "32"]
               for l in lines if l.strip())
    assert any(l.startswith("total ") for l in lines)
    assert "MACs in" in lines[-1]


def test_topology_and_csv(capsys, tmp_path):
    topo = tmp_path / "gpt2.csv"
    topo.write_text("Layer,M,N,K\nQKT,1024,1024,64\nQKTV,1024,64,1024\n")
    out_csv = tmp_path / "out.csv"
    code, doc, err = run_cli(capsys, "--topology", str(topo), "--array", "16x16",
                             "--csv", str(out_csv))
    assert code == 0, err
    assert doc["workload"]["name"] == str(topo)
    check_totals(doc)
    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["QKT", "QKTV"]
    assert rows[0]["m"] == "1024" and rows[0]["k"] == "64"
    assert sum(int(r["total_cycles"]) for r in rows) == doc["totals"]["cycles"]
    assert "wrote" in err


SCALE_CFG = SCALESIM_CFG.replace("Dataflow : os", "Dataflow : ws")


def test_config_file_and_overrides(capsys, tmp_path):
    cfg = tmp_path / "scale.cfg"
    cfg.write_text(SCALE_CFG)
    code, doc, err = run_cli(capsys, "--config", str(cfg), "--workload", "llama-7b",
                             "--seq-len", "128")
    assert code == 0, err
    c = doc["config"]
    assert (c["rows"], c["cols"], c["dataflow"]) == (32, 32, "ws")
    # 64 kB: A words of 32 int4 codes (128 bits), C words of 32 x 32-bit accumulators
    assert (c["a_depth"], c["b_depth"], c["c_depth"]) == (4096, 4096, 512)
    assert doc["workload"]["config_file"] == str(cfg)
    code, doc, err = run_cli(capsys, "--config", str(cfg), "--array", "8x4", "--dataflow", "os",
                             "--workload", "llama-7b", "--seq-len", "128")
    assert code == 0, err
    c = doc["config"]
    assert (c["rows"], c["cols"], c["dataflow"]) == (8, 4, "os")
    assert (c["a_depth"], c["c_depth"]) == (64 * 8192 // 32, 64 * 8192 // 128)


@pytest.mark.parametrize("argv, msg", [
    (["--workload", "resnet50", "--seq-len", "128"],
     r"--seq-len does not apply to --workload resnet50 \(it takes --batch, --image\)"),
    (["--workload", "llama-7b", "--seq-len", "0"], r"llama_7b\.seq_len must be at least 1, not 0"),
    (["--workload", "llama-7b", "--array", "16by16"], r"--array must look like ROWSxCOLS"),
    (["--workload", "llama-7b", "--array", "0x4"], r"ArrayConfig\.rows must be in 1\.\.256, not 0"),
    (["--topology", "missing.csv"], r"SCALE-Sim topology file 'missing\.csv' does not exist"),
])
def test_usage_errors(capsys, argv, msg):
    code = main(["cycles", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and json.loads(out)["exit_status"] == 2
    assert re.search(r"^nybble cycles: error: .*" + msg, err, re.M), err


def test_bad_files_name_file_and_line(capsys, tmp_path):
    cfg = tmp_path / "is.cfg"
    cfg.write_text(SCALE_CFG.replace("Dataflow : ws", "Dataflow : is"))
    code = main(["cycles", "--config", str(cfg), "--workload", "resnet50"])
    _, err = capsys.readouterr()
    assert code == 2
    assert ("dataflow 'is' (input-stationary) runs on the streaming top only (the transposed "
            "GEMM on its weight-stationary array): give a streaming flag such as --dram-bw"
            in err)
    cfg.write_text(SCALE_CFG.replace("ArrayHeight:    32", "ArrayHeight:    512"))
    code = main(["cycles", "--config", str(cfg), "--workload", "resnet50"])
    _, err = capsys.readouterr()
    assert code == 2
    assert (f"ArrayConfig.rows must be in 1..256, not 512 (array from {cfg} and the command line)"
            in err)
    topo = tmp_path / "bad.csv"
    topo.write_text("Layer, M, N, K,\nA, 1, 2, 3,\nB, 1, x, 3,\n")
    code = main(["cycles", "--topology", str(topo), "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and json.loads(out)["error"] in err
    assert f"{topo}:3: column 'N' must be a positive integer, not 'x'" in err
    topo.write_text("Layer,M,N,K\nA,1,2,3\n")
    code = main(["cycles", "--topology", str(topo), "--seq-len", "8"])
    _, err = capsys.readouterr()
    assert code == 2 and "--seq-len only applies to --workload, not to --topology" in err


def test_needs_a_workload(capsys):
    with pytest.raises(SystemExit) as e:
        main(["cycles", "--json"])
    assert e.value.code == 2
    assert "one of the arguments --workload --topology --weights is required" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# the report module directly, with a counting model

def test_run_workload_caches_shapes_and_writes(tmp_path):
    from nybble.hw.config import ArrayConfig
    calls = []

    def model(config, m, n, k):
        calls.append((m, n, k))
        return counting_gemm_cycles(config, m, n, k)

    config = ArrayConfig(rows=4, cols=4)
    layers = [Layer("a", 8, 8, 8), Layer("b", 8, 8, 8, count=3), Layer("c", 5, 7, 9, count=2)]
    rep = report_mod.run_workload(config, layers, cycle_fn=model, workload={"name": "toy"})
    assert calls == [(8, 8, 8), (5, 7, 9)]
    g1, g2 = counting_gemm_cycles(config, 8, 8, 8), counting_gemm_cycles(config, 5, 7, 9)
    assert rep.totals["cycles"] == 4 * g1.cycles + 2 * g2.cycles
    assert rep.totals["ideal_cycles"] == 4 * g1.ideal_cycles + 2 * g2.ideal_cycles
    assert rep.totals["gemms"] == 6
    assert list(rep.layers[0]) == list(report_mod.LAYER_FIELDS)
    assert list(rep.totals) == list(report_mod.TOTAL_FIELDS)
    rep.write_json(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(rep.to_json())
    buf = io.StringIO()
    rep.write_csv(buf)
    assert buf.getvalue() == rep.csv_text()
    assert buf.getvalue().splitlines()[0] == ",".join(report_mod.LAYER_FIELDS)
    with pytest.raises(ValueError, match=r"^the workload has no layers$"):
        report_mod.run_workload(config, [], cycle_fn=model)
