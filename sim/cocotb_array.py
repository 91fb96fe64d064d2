"""Run an ArrayTop job through the cocotb testbench ``tests/tb/tb_array.py`` (the verification
path: Verilator or Icarus through cocotb; slower than :mod:`.native`, same schedule and the
same host driver, :class:`nybble.sim.host.ArrayHost`)."""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from nybble.synth.verilog import top_verilog
from .cocotb_runner import run_cocotb
from .native import compact_memory_init
from nybble.sw.errors import ToolError

__all__ = ["run_array_cocotb", "TB_DIR"]

TB_DIR = Path(__file__).resolve().parents[1] / "tests" / "tb"


def run_array_cocotb(config, a_w, b_w, addrs, job, *, simulator="verilator", waves=None,
                     build_dir="build", log=sys.stderr):
    """Returns ``(values, cycles, overflow, sim_seconds, build_seconds, cached)`` like the
    native run."""
    if not (TB_DIR / "tb_array.py").exists():
        raise ToolError(f"the cocotb testbench {TB_DIR / 'tb_array.py'} is not there "
                           "(it ships with the source tree, not the wheel)")
    verilog, _ = top_verilog(config, build_dir=build_dir, log=log)
    verilog = compact_memory_init(verilog)
    work = Path(build_dir).resolve() / "cocotb" / "jobs"
    work.mkdir(parents=True, exist_ok=True)
    fd, job_path = tempfile.mkstemp(suffix=".npz", dir=work)
    os.close(fd)
    out_path = job_path.replace(".npz", "_out.npz")
    np.savez(job_path, a_words=a_w, b_words=b_w, addrs=np.asarray(addrs, np.int64),
             acc_bits=np.int64(config.acc_bits), **{k: np.int64(v) for k, v in job.items()})
    print(f"cocotb ({simulator}): running the array testbench ...", file=log)
    try:
        res = run_cocotb(verilog, toplevel="top", test_module="tb_array", test_dir=TB_DIR,
                         simulator=simulator, build_root=os.path.join(build_dir, "cocotb"),
                         extra_env={"NYBBLE_ARRAY_JOB": job_path,
                                    "NYBBLE_ARRAY_OUT": out_path},
                         waves=bool(waves), run_name=f"array{os.getpid()}")
        if not res.passed:
            raise ToolError(f"cocotb array testbench failed; see {res.results_xml}")
        out = np.load(out_path, allow_pickle=True)
        values, cycles, secs = out["values"], int(out["cycles"]), float(out["seconds"])
        overflow = bool(out["overflow"])
    finally:
        for p in (job_path, out_path):
            if os.path.exists(p):
                os.remove(p)
    build_s = res.seconds - secs if res.built else 0.0
    return values, cycles, overflow, secs, build_s, not res.built
