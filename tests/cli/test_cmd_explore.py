"""``nybble explore``: flags, errors, JSON and the files it writes (the library is tested in
tests/explore/)."""
import json

import numpy as np
import distributed
import pytest


@pytest.fixture
def topo(tmp_path):
    path = tmp_path / "topo.csv"
    path.write_text("Layer, M, N, K,\nfc1, 8, 32, 64,\nfc2, 8, 16, 32,\n")
    return str(path)


def test_no_area_bitserial_points_run_without_synthesis(run_cli, tmp_path, topo, monkeypatch):
    monkeypatch.setenv("NYBBLE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    argv = ["explore", "--workload", topo, "--pe", "bitserial", "--array", "2x2",
            "--dataflow", "os,ws", "--clock-mhz", "100", "--dram-bw", "1", "--no-area",
            "--out", str(out)]
    rc, stdout, err = run_cli(argv + ["--workers", "1", "--json"])
    assert rc == 0, err
    doc = json.loads(stdout)
    assert [r["label"] for r in doc["rows"]] == ["bitserial 2x2 os @1GB/s @100MHz"]
    assert doc["skipped"][0]["point"]["dataflow"] == "ws"
    row = doc["rows"][0]
    assert row["cycles"] > 0 and row["dtype_mix"].startswith("int4=0.5")
    assert row["stalled_cycles"].startswith("missing: the streaming top's stall model")
    assert 0 < row["cosine_layer_min"] < 1 and row["numerics"].startswith("activations int8")
    assert doc["missing"]["energy_j"].startswith("the energy model refuses it (energy runs "
                                                 "take MAC")
    assert sorted(p.rsplit("/", 1)[1] for p in doc["files"]) == \
        ["explore.csv", "explore.html", "explore.json"]   # no number to plot
    assert doc["stats"]["computed"] == 1
    rc, stdout, err = run_cli(argv + ["--constraint", "cosine>=0.5"])
    assert rc == 1 and "(1 cached)" in stdout       # no point has a throughput per area
    assert "bitserial 2x2 os @1GB/s @100MHz: macs_per_cycle_per_mtransistor is missing" \
        in stdout
    assert "best: no point meets it" in stdout
    rc, stdout, err = run_cli(argv + ["--no-energy", "--json"])
    assert rc == 0, err
    row = json.loads(stdout)["rows"][0]
    assert "energy_j" not in row
    assert row["inferences_per_j"] == "missing: inferences_per_j (its metric was not run)"


def test_points_file_and_weights(run_cli, tmp_path, topo, monkeypatch):
    monkeypatch.setenv("NYBBLE_CACHE", str(tmp_path / "cache"))
    pts = tmp_path / "p.csv"
    pts.write_text("pe,array,clock_mhz\nbitserial,4x4,100\n")
    wdir = tmp_path / "w"
    wdir.mkdir()
    np.save(wdir / "fc1.npy", np.random.default_rng(0).standard_normal((64, 32)))
    rc, stdout, err = run_cli(["explore", "--workload", topo, "--points", str(pts),
                               "--weights", str(wdir), "--out", str(tmp_path / "o"),
                               "--no-area",
                               "--workers", "1", "--json"])
    assert rc == 0, err
    layers = json.loads(stdout)["rows"][0]["layer_accuracy"]
    assert [(l["name"], l["source"]) for l in layers] == [("fc1", "user"), ("fc2", "synthetic")]


@pytest.mark.parametrize("argv, match", [
    (["--pe", "int3"], "PE kind must be one of"),
    (["--no-area"], "--no-area needs --clock-mhz"),
    (["--dataflow", "os,is"], "--dataflow must list os and/or ws, not 'is'"),
    (["--clock-mhz", "fast"], "--clock-mhz must be a comma-separated list of numbers"),
    (["--constraint", "area<<3"], "constraint 'area<<3': '<3' is not a number"),
    (["--objective", "speed"], "objective: unknown column 'speed'"),
    (["--workers", "0"], "--workers must be at least 1, not 0"),
    (["--scheduler", "localhost:8786"], "scheduler address must look like tcp://HOST:8786"),
    (["--points", "{tmp}/none.csv"], "points file '.*none.csv' does not exist"),
    (["--points", "{tmp}/p.csv", "--clock-mhz", "100"], "--clock-mhz is an axis of the cross "
                                                         "product; with --points put it in"),
    (["--weights", "{tmp}/nothing"], "must be a .gguf file or a directory of .npy files"),
    (["--phase", "decode"], "phase, seq_len and batch apply to llama-7b / resnet50"),
])
def test_errors(run_cli, tmp_path, topo, argv, match):
    (tmp_path / "p.csv").write_text("pe,array\nint4,4x4\n")
    rc, out, err = run_cli(["explore", "--workload", topo, "--out", str(tmp_path / "o")]
                           + [a.format(tmp=tmp_path) for a in argv])
    assert rc == 2
    assert __import__("re").search(match, err), err


@pytest.mark.slow
@pytest.mark.synth
def test_scheduler_path_equals_local_with_area(run_cli, tmp_path, topo, monkeypatch):
    monkeypatch.setenv("NYBBLE_CACHE", str(tmp_path / "cache"))
    base = ["explore", "--workload", topo, "--pe", "int4,int8", "--array", "1x2",
            "--dataflow", "os", "--clock-mhz", "100", "--no-cache", "--json"]
    rc, local, err = run_cli(base + ["--workers", "2", "--out", str(tmp_path / "a")])
    assert rc == 0, err
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        rc, remote, err = run_cli(base + ["--scheduler", cluster.scheduler_address,
                                          "--out", str(tmp_path / "b")])
    assert rc == 0, err
    a, b = json.loads(local)["rows"], json.loads(remote)["rows"]
    assert a == b and all(isinstance(r["transistors"], int) for r in a)
