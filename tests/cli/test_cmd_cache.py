"""``nybble cache info`` / ``nybble cache clean`` on a build directory of fake entries."""
import fcntl
import json

import pytest

from nybble.__main__ import main

H20, H16, H64 = "0123456789abcdef0123", "0123456789abcdef", "ab" * 32


@pytest.fixture(autouse=True)
def _no_cache_env(monkeypatch):
    monkeypatch.delenv("NYBBLE_CACHE", raising=False)


def _file(path, n):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * n)


@pytest.fixture
def build(tmp_path):
    """A build dir with entries of every area, scratch files, and things that are no cache."""
    b = tmp_path / "build"
    _file(b / "verilog" / f"top_{H20}.v", 1000)
    _file(b / "verilog" / f"top_{H20}.v.sha256", 65)
    _file(b / "verilog" / f"pe_ooc_int4_{H20[::-1]}.v", 500)
    _file(b / "verilog" / f".top_{H20}.v.abc123.tmp", 7)          # a torn atomic write
    _file(b / "verilator" / H20 / "obj_dir" / "Vtop", 4000)
    _file(b / "verilator" / H20 / "top.v", 300)
    _file(b / "verilator" / H20[::-1] / "obj_dir" / "Vtop", 2000)
    _file(b / "verilator" / "jobs" / "job_1_2.bin", 11)           # scratch, not an entry
    _file(b / "cocotb" / f"verilator-{H16}" / "Vtop.mk", 50)
    _file(b / "cocotb" / "jobs" / "x.npz", 3)
    _file(b / "cache" / "yosys" / f"{H64}.json", 40)
    _file(b / "cache" / "yosys" / f"{H64[::-1]}.json", 60)
    _file(b / "cache" / "yosys" / "work" / f"{H16}-x1y2" / "design.v", 9)
    _file(b / "cache" / "mytool" / f"{H64}.json", 5)              # any tool's result cache
    _file(b / "fpga" / "icebreaker_2x2_int4" / "top.bin", 100)
    # not caches: left alone, not counted
    _file(b / "cost" / "cost_summary.json", 123)
    _file(b / "verilog" / "notes.txt", 17)
    _file(b / "cache" / "other" / "readme.txt", 4)
    return b


EXPECTED = {  # name: (entries, bytes)
    "verilog": (2, 1000 + 65 + 500 + 7),
    "verilator": (2, 4000 + 300 + 2000 + 11),
    "cocotb": (1, 53),
    "cache/yosys": (2, 109),
    "cache/fpga": (0, 0),
    "cache/mytool": (1, 5),
    "fpga": (1, 100),
}


def _json(run_cli, argv, status=0):
    rc, out, err = run_cli(argv)
    assert rc == status, err
    return json.loads(out), err


def _areas(doc):
    return {a["name"]: (a["entries"], a["bytes"]) for a in doc["areas"]}


def test_info_counts_every_area(run_cli, build):
    doc, err = _json(run_cli, ["cache", "info", "--build-dir", str(build), "--json"])
    assert _areas(doc) == EXPECTED and err == ""
    assert [a["name"] for a in doc["areas"]] == ["verilog", "verilator", "cocotb", "cache/yosys",
                                                 "cache/fpga", "cache/mytool", "fpga"]
    assert doc["total"] == {"entries": 9, "bytes": sum(b for _, b in EXPECTED.values())}
    assert doc["exists"] and doc["build_dir"] == str(build)
    assert doc["cache_root"] == str(build / "cache")
    assert {a["name"]: a["path"] for a in doc["areas"]}["cache/yosys"] == str(
        build / "cache" / "yosys")


def test_info_text(run_cli, build):
    rc, out, err = run_cli(["cache", "info", "--build-dir", str(build)])
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == f"caches under {build} (tool results under {build / 'cache'}):"
    assert any(line.split()[:3] == ["verilator", "2", "entries"] for line in lines)
    assert lines[-1].split()[:3] == ["total", "9", "entries"]


def test_clean_one_area(run_cli, build):
    doc, err = _json(run_cli, ["cache", "clean", "--build-dir", str(build), "--what",
                               "verilator", "--json"])
    assert doc["what"] == ["verilator"] and doc["skipped"] == []
    assert _areas(doc) == {"verilator": EXPECTED["verilator"]}
    assert doc["total"] == {"entries": 2, "bytes": EXPECTED["verilator"][1]}
    assert "cache clean: verilator: removed 2 entries" in err
    assert not (build / "verilator").exists()
    after, _ = _json(run_cli, ["cache", "info", "--build-dir", str(build), "--json"])
    assert _areas(after) == {**EXPECTED, "verilator": (0, 0)}


def test_clean_yosys_and_cache(run_cli, build):
    doc, _ = _json(run_cli, ["cache", "clean", "--build-dir", str(build), "--what", "yosys",
                             "--json"])
    assert _areas(doc) == {"cache/yosys": EXPECTED["cache/yosys"]}
    assert not (build / "cache" / "yosys").exists()
    doc, _ = _json(run_cli, ["cache", "clean", "--build-dir", str(build), "--what",
                             "cache,verilog", "--json"])
    assert doc["what"] == ["verilog", "cache/yosys", "cache/fpga", "cache/mytool"]
    assert doc["total"] == {"entries": 3, "bytes": EXPECTED["verilog"][1] + 5}
    assert (build / "verilog" / "notes.txt").exists()      # not a cache entry: stays


def test_clean_all(run_cli, build):
    doc, err = _json(run_cli, ["cache", "clean", "--build-dir", str(build), "--json"])
    assert doc["what"] == list(EXPECTED) and _areas(doc) == EXPECTED
    assert doc["total"] == {"entries": 9, "bytes": sum(b for _, b in EXPECTED.values())}
    after, _ = _json(run_cli, ["cache", "info", "--build-dir", str(build), "--json"])
    assert after["total"] == {"entries": 0, "bytes": 0}
    # only what is not a cache is left
    left = sorted(str(p.relative_to(build)) for p in build.rglob("*") if p.is_file())
    assert left == ["cache/other/readme.txt", "cost/cost_summary.json", "verilog/notes.txt"]
    doc, _ = _json(run_cli, ["cache", "clean", "--build-dir", str(build), "--json"])
    assert doc["total"] == {"entries": 0, "bytes": 0}      # again: nothing to do
    rc, out, _ = run_cli(["cache", "clean", "--build-dir", str(build)])
    assert rc == 0 and out.splitlines()[-1].split()[:3] == ["total", "0", "entries"]


def test_clean_skips_an_entry_being_built(run_cli, build):
    entry = build / "verilator" / H20
    with open(entry / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # another process building this entry
        doc, err = _json(run_cli, ["cache", "clean", "--build-dir", str(build), "--what",
                                   "verilator", "--json"])
    assert doc["skipped"] == [str(entry)] and f"skipping {entry}" in err
    assert _areas(doc) == {"verilator": (1, 2000 + 11)}
    assert (entry / "obj_dir" / "Vtop").exists()


def test_missing_build_dir_is_empty(run_cli, tmp_path):
    missing = tmp_path / "nothing"
    doc, err = _json(run_cli, ["cache", "info", "--build-dir", str(missing), "--json"])
    assert not doc["exists"] and doc["total"] == {"entries": 0, "bytes": 0}
    assert all(a["entries"] == 0 and a["bytes"] == 0 for a in doc["areas"])
    assert "does not exist" in err
    doc, _ = _json(run_cli, ["cache", "clean", "--build-dir", str(missing), "--json"])
    assert doc["total"] == {"entries": 0, "bytes": 0} and not missing.exists()


@pytest.mark.parametrize("action", ["info", "clean"])
def test_build_dir_that_is_a_file(run_cli, tmp_path, action):
    f = tmp_path / "file"
    f.write_text("x")
    doc, err = _json(run_cli, ["cache", action, "--build-dir", str(f), "--json"], status=2)
    assert doc == {"error": f"--build-dir {str(f)!r} is not a directory", "exit_status": 2}
    assert err == f"nybble cache: error: --build-dir {str(f)!r} is not a directory\n"
    rc, out, _ = run_cli(["cache", action, "--build-dir", str(f)])
    assert rc == 2 and out == ""                  # without --json: the stderr line only


def test_unknown_area(run_cli, build):
    doc, err = _json(run_cli, ["cache", "clean", "--build-dir", str(build), "--what", "bogus",
                               "--json"], status=2)
    assert doc["error"].startswith("--what must be") and doc["error"].endswith("not 'bogus'")
    assert (build / "verilator").exists()         # nothing removed


def test_result_caches_follow_nybble_cache(run_cli, build, tmp_path, monkeypatch):
    root = tmp_path / "elsewhere"
    _file(root / "yosys" / f"{H64}.json", 33)
    monkeypatch.setenv("NYBBLE_CACHE", str(root))
    doc, _ = _json(run_cli, ["cache", "info", "--build-dir", str(build), "--json"])
    assert doc["cache_root"] == str(root)
    assert _areas(doc)["cache/yosys"] == (1, 33) and "cache/mytool" not in _areas(doc)
    doc, _ = _json(run_cli, ["cache", "clean", "--build-dir", str(build), "--what", "yosys",
                             "--json"])
    assert doc["total"] == {"entries": 1, "bytes": 33}
    assert (build / "cache" / "yosys" / f"{H64}.json").exists()   # not the cache in use


def test_help_points_at_the_size(capsys):
    with pytest.raises(SystemExit) as e:
        main(["cache", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Caches live under build/" in out and "`nybble cache info` for their size" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "see `nybble cache info` for their size" in " ".join(capsys.readouterr().out.split())
