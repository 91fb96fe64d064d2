"""The native Verilator harness (:mod:`nybble.sim.native`) on its own: the job file, the
result file, the overflow flag, the timeout, the build cache (and its healing of corrupt entries)
and the memory-init compaction."""
import hashlib
import io
import json
import os
import shutil

import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.sim.native import (STAMP_SUFFIX, _verified, _write_stamp, build_native,
                               compact_memory_init, run_native)
from nybble.sim.run import prepare_job
from nybble.synth.verilog import top_verilog

CFG = ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=8, overflow="saturate", a_depth=16,
                  b_depth=16, c_depth=16)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("native")
    verilog, _ = top_verilog(CFG, build_dir=str(root), log=None, resetless=True)
    return build_native(verilog, wr_width=CFG.top_layout.wr_bits, rd_width=CFG.acc_bits,
                        cache_dir=str(root / "verilator"), has_rst=False, log=None)


def test_a_job_and_its_overflow_flag(build, tmp_path):
    a = np.full((2, 3), 7)          # int4 7 x 7 three times: 147 saturates 8 bits
    b = np.full((3, 2), 7)
    p = prepare_job(CFG, a, b)
    values, cycles, overflow, secs = run_native(
        build, a_words=p.a_words, b_words=p.b_words, n_out=len(p.addresses),
        read_addresses=p.addresses, workdir=str(tmp_path), **p.job)
    got = p.schedule.unpack_results(values, CFG.acc_bits)
    assert np.array_equal(got, np.full((2, 2), 127)) and overflow
    assert cycles == p.schedule.cycles and secs >= 0
    p = prepare_job(CFG, np.ones((2, 3), int), np.ones((3, 2), int))
    values, _, overflow, _ = run_native(
        build, a_words=p.a_words, b_words=p.b_words, n_out=len(p.addresses),
        read_addresses=p.addresses, workdir=str(tmp_path), **p.job)
    assert not overflow and np.array_equal(p.schedule.unpack_results(values, 8),
                                           np.full((2, 2), 3))
    assert list(tmp_path.iterdir()) == []      # job and result files are removed


def test_timeout_is_an_error(build, tmp_path):
    p = prepare_job(CFG, np.ones((2, 3), int), np.ones((3, 2), int))
    with pytest.raises(RuntimeError, match=r"^native simulation did not finish within 3 "
                                           r"cycles$"):
        run_native(build, a_words=p.a_words, b_words=p.b_words, n_out=len(p.addresses),
                   read_addresses=p.addresses, workdir=str(tmp_path), max_cycles=3, **p.job)


def test_second_build_is_cached(build):
    verilog = (build.exe and open(build.exe.replace("obj_dir/Vtop", "top.v")).read())
    again = build_native(verilog, wr_width=build.wr_width, rd_width=build.rd_width,
                         cache_dir=build.exe.split("/verilator/")[0] + "/verilator",
                         has_rst=False, log=None)
    assert again.cached and again.exe == build.exe and again.build_seconds == 0


def test_compact_memory_init():
    text = ("module m;\n  reg [3:0] mem [2:0];\n  initial begin\n    mem[0] = 4'h0;\n"
            "    mem[1] = 4'h0;\n    mem[2] = 4'h0;\n  end\nendmodule\n")
    out = compact_memory_init(text)
    assert "for (i = 0; i < 3; i = i + 1) mem[i] = 0;" in out and "mem[1] = 4'h0" not in out


def test_bad_waves_kind():
    with pytest.raises(ValueError, match=r"^waves must be None, 'vcd' or 'fst', not 'png'$"):
        build_native("module top; endmodule", wr_width=8, rd_width=8, waves="png")


# --- the build cache heals itself: a stamp (size + SHA-256 of obj_dir/Vtop) vouches for an entry

def _run_ones(build, tmp_path):
    p = prepare_job(CFG, np.ones((2, 3), int), np.ones((3, 2), int))
    values, _, overflow, _ = run_native(
        build, a_words=p.a_words, b_words=p.b_words, n_out=len(p.addresses),
        read_addresses=p.addresses, workdir=str(tmp_path / "jobs"), **p.job)
    return p.schedule.unpack_results(values, CFG.acc_bits), overflow


def test_a_build_is_stamped(build):
    stamp = json.loads(open(build.exe + STAMP_SUFFIX).read())
    data = open(build.exe, "rb").read()
    assert stamp == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert not [n for n in os.listdir(os.path.dirname(build.exe)) if n.endswith(".tmp")]


def test_a_truncated_cached_executable_is_rebuilt(build, tmp_path):
    # a copy of the fixture's entry (same key), its executable cut to 100 bytes
    entry = os.path.dirname(os.path.dirname(build.exe))
    cache = tmp_path / "verilator"
    copy = cache / os.path.basename(entry)
    shutil.copytree(entry, copy)
    exe = copy / "obj_dir" / "Vtop"
    with open(exe, "r+b") as f:
        f.truncate(100)
    verilog = (copy / "top.v").read_text()
    log = io.StringIO()
    again = build_native(verilog, wr_width=build.wr_width, rd_width=build.rd_width,
                         cache_dir=str(cache), has_rst=False, log=log)
    assert not again.cached and again.exe == str(exe) and again.build_seconds > 0
    lines = log.getvalue().splitlines()
    assert lines[0] == f"verilator: rebuilding corrupt cache entry {copy}"
    assert sum("corrupt" in line for line in lines) == 1
    assert os.path.getsize(exe) > 100
    got, overflow = _run_ones(again, tmp_path)
    assert not overflow and np.array_equal(got, np.full((2, 2), 3))
    # healed: the next call trusts the entry and says nothing
    log = io.StringIO()
    third = build_native(verilog, wr_width=build.wr_width, rd_width=build.rd_width,
                         cache_dir=str(cache), has_rst=False, log=log)
    assert third.cached and third.exe == str(exe) and log.getvalue() == ""


def test_stamp_verification(tmp_path):
    exe = tmp_path / "obj_dir" / "Vtop"
    exe.parent.mkdir()
    exe.write_bytes(b"\x7fELF" + bytes(range(256)) * 8)
    assert not _verified(str(exe))                    # no stamp: an entry from before stamps
    _write_stamp(str(exe))
    assert _verified(str(exe))
    assert sorted(p.name for p in exe.parent.iterdir()) == ["Vtop", "Vtop.stamp"]
    data = exe.read_bytes()
    exe.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit flipped
    assert not _verified(str(exe))
    exe.write_bytes(data[:100])                         # truncated
    assert not _verified(str(exe))
    exe.write_bytes(data)
    assert _verified(str(exe))
    (tmp_path / "obj_dir" / "Vtop.stamp").write_text('{"size": ')  # a torn stamp
    assert not _verified(str(exe))
    (tmp_path / "obj_dir" / "Vtop.stamp").write_text("[]")
    assert not _verified(str(exe))
    exe.unlink()
    assert not _verified(str(exe))
