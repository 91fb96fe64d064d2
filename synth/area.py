"""ASIC-style area of PEs and arrays, split into what the area is spent on.

Every number comes from :func:`nybble.synth.yosys.synth_area` (Yosys ``synth -booth`` into
generic gates): ``cells``, the ``stat -tech cmos`` transistor estimate ``transistors`` and, with
a Liberty file, ``area_um2``.  The hierarchy-preserving run's per-module breakdown is mapped to
categories by instance path::

    PE (prefix "top" alone, "top.array.pe_<i>_<j>" in an array)
      product_<i>/... , table/...   -> multiplier   (product units; the LUT PE's table)
      accumulator/...               -> accumulator  (adder, register, overflow flag)
      the PE's own flip-flops       -> registers    (operand forwarding, pipeline stage)
      the PE's own logic            -> adder_tree   (dot-product PEs; empty for a MAC PE)
                                       (bit-serial PE: its decode ROM and shift-add datapath
                                        is its multiplier)
    array (ArrayTop)
      top.array's own flip-flops    -> registers    (input skew, shadow drain chain)
      top.array's own logic         -> control      (drain capture muxes, overflow OR)
      top's memories                -> buffers      (A, B and the C banks)
      the rest of top               -> control      (sequencer, pointers, result read mux)

Buffers: Amaranth writes memories inline into the ``top`` module, so they have no module of
their own.  Each memory (``reg [W-1:0] name [D-1:0]``) is synthesised alone in a probe with the
same ports (one write port; a synchronous read port, or a combinational one for the C banks)
and its area is taken out of ``top``'s own; generic synthesis builds memories from flip-flops
and muxes, which is what a register-file buffer costs, not what an SRAM macro would.

Accumulator convention (:func:`convention_acc_bits`): PEs are compared at equal accumulator
width: 32 bits whenever a 32-bit accumulator holds one accumulation step; kinds whose step does
not fit in 32 bits keep their own accumulator (fp8 e4m3 and fp16: exact Kulisch accumulators
that cannot overflow in 256 steps; bf16: its 64-bit window with 32 fraction bits; int16 dot
products: 256 steps without overflow).

Verilog is elaborated once per (kind, options, generator sources) and kept under
``build/verilog``; Yosys results are cached by :mod:`nybble.synth.cache` under a hash of the
Verilog text and the flow, so a second report is instant.
"""

import dataclasses
import re

from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import pe_kind
from nybble.sw.formats import check_integral
from .verilog import cached_verilog, top_verilog
from .yosys import synth_area
from nybble.sw.errors import ParameterTypeError

__all__ = [
    "CATEGORIES", "EQUAL_ACC_BITS", "ACC_CONVENTION", "AreaResult", "convention_acc_bits",
    "pe_verilog", "pe_area", "array_area", "pe_categories", "array_categories",
    "memories_in", "memory_gate_area",
]

#: Area categories, in the order plots stack them.
CATEGORIES = ("multiplier", "adder_tree", "accumulator", "registers", "buffers", "control")

#: The accumulator width PEs are compared at when one step fits in it.
EQUAL_ACC_BITS = 32

#: The convention, in words, for reports.
ACC_CONVENTION = (
    f"accumulators at equal width: {EQUAL_ACC_BITS} bits wherever one accumulation step fits "
    f"in {EQUAL_ACC_BITS} bits (all 4- and 8-bit integer, fp4, e3m0, LUT and bit-serial "
    "kinds, int16 MAC); fp8 e4m3 and fp16 keep their exact Kulisch accumulators (no overflow "
    "in 256 steps), bf16 its 64-bit window with 32 fraction bits, int16 dot products 256 "
    "steps without overflow")


def _kind(kind):
    return pe_kind(kind)


def convention_acc_bits(kind, acc_bits=EQUAL_ACC_BITS):
    """Accumulator width ``kind`` is compared at (module docstring): ``acc_bits`` when one
    step of the PE fits in it, else the kind's own accumulator (its ``acc_bits`` option or
    its no-overflow-in-256-steps default)."""
    kind = _kind(kind)
    acc_bits = check_integral("Accumulator width", acc_bits, 2, 4096)
    if "acc_bits" in kind.options:
        return int(kind.options["acc_bits"])
    spec = kind.spec()
    return acc_bits if spec.min_acc_bits <= acc_bits else spec.acc_bits


# --- Verilog, cached by generator sources (nybble.synth.verilog.cached_verilog) ----------

def pe_verilog(kind, *, acc_bits=None, overflow="wrap", build_dir="build"):
    """Verilog (top module ``top``) of one PE of ``kind`` with ``acc_bits`` (default:
    :func:`convention_acc_bits`); returns ``(text, seconds)``, cached under ``build_dir``."""
    kind = _kind(kind)
    acc_bits = convention_acc_bits(kind) if acc_bits is None else acc_bits
    options = {"acc_bits": acc_bits, "overflow": overflow}
    if kind.pe == "ieee":   # IEEE-style FP PEs have one overflow behaviour: IEEE 754's
        del options["overflow"]
    kind.spec(**options)  # parameter errors before any caching
    return cached_verilog(f"pe_{kind.name}", repr((kind, options)),
                          lambda: kind.build(**options), build_dir=build_dir)


def _buffer_probe(width, depth, read):

    class BufferProbe(wiring.Component):
        """One memory with one write port and one read port, nothing else."""

        def __init__(self):
            abits = max(1, (depth - 1).bit_length())
            super().__init__({"wr_en": In(1), "wr_addr": In(abits), "wr_data": In(width),
                              "rd_addr": In(abits), "rd_data": Out(width)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = Memory(shape=unsigned(width), depth=depth, init=[])
            wp = mem.write_port()
            rp = mem.read_port(domain="comb" if read == "comb" else "sync")
            m.d.comb += [wp.en.eq(self.wr_en), wp.addr.eq(self.wr_addr),
                         wp.data.eq(self.wr_data), rp.addr.eq(self.rd_addr),
                         self.rd_data.eq(rp.data)]
            return m

    return BufferProbe()


# Amaranth's RTLIL memory statement (``memory width W size N \\name``, no offset).
_RTLIL_MEMORY = re.compile(r"^\s*memory\s+width\s+(\d+)\s+size\s+(\d+)\s+\\(\S+)\s*$", re.M)

_MEMORY_DECL = re.compile(r"^\s*reg\s*\[(\d+):0\]\s*([A-Za-z_][A-Za-z0-9_$]*)\s*"
                          r"\[(\d+):0\]\s*;", re.M)


def memories_in(verilog_text, module="top"):
    """Memories declared in ``module`` of Amaranth's Verilog or RTLIL
    (:func:`nybble.synth.verilog.to_rtlil`): ``[(name, width, depth)]``."""
    rtlil = re.search(rf"^module \\{re.escape(module)}\n.*?^end$", verilog_text, re.M | re.S)
    if rtlil:
        return [(name, int(width), int(depth))
                for width, depth, name in _RTLIL_MEMORY.findall(rtlil.group(0))]
    match = re.search(rf"^module {re.escape(module)}\(.*?^endmodule", verilog_text,
                      re.M | re.S)
    body = match.group(0) if match else ""
    return [(name, int(hi) + 1, int(depth) + 1)
            for hi, name, depth in _MEMORY_DECL.findall(body)]


# --- categories ------------------------------------------------------------------------------

def _zero():
    return {"cells": 0, "transistors": 0, "area_um2": 0.0}


def _add(total, cells, transistors, area):
    total["cells"] += cells
    total["transistors"] += transistors
    if total["area_um2"] is None or area is None:
        total["area_um2"] = None
    else:
        total["area_um2"] += area


def _split(entry):
    """``(registers, logic)`` parts of one breakdown entry, each (cells, transistors, um^2)."""
    reg = (entry.get("register_cells", 0), entry.get("register_transistors", 0),
           entry.get("register_area_um2", None if entry["area_um2"] is None else 0.0))
    area = entry["area_um2"]
    logic = (entry["cells"] - reg[0], entry["transistors"] - reg[1],
             None if area is None or reg[2] is None else area - reg[2])
    return reg, logic


def _empty_categories(liberty):
    cats = {c: _zero() for c in CATEGORIES}
    if not liberty:
        for c in cats.values():
            c["area_um2"] = None
    return cats


def pe_categories(breakdown, prefix="top", *, serial=False, into=None):
    """Add the PE at instance path ``prefix`` of ``breakdown`` (an
    :attr:`~nybble.synth.yosys.AreaReport.breakdown`) to category totals (module docstring);
    ``serial``: a bit-serial PE, whose own logic is its multiplier. Returns the totals."""
    liberty = any(e["area_um2"] is not None for e in breakdown.values())
    cats = into if into is not None else _empty_categories(liberty)
    for name, entry in breakdown.items():
        if name != prefix and not name.startswith(prefix + "."):
            continue
        child = name[len(prefix) + 1:].split(".")[0] if name != prefix else ""
        if child == "":
            reg, logic = _split(entry)
            _add(cats["registers"], *reg)
            _add(cats["multiplier" if serial else "adder_tree"], *logic)
        elif child.startswith("product_") or child == "table":
            _add(cats["multiplier"], entry["cells"], entry["transistors"], entry["area_um2"])
        elif child == "accumulator":
            _add(cats["accumulator"], entry["cells"], entry["transistors"], entry["area_um2"])
        else:
            _add(cats["adder_tree"], entry["cells"], entry["transistors"], entry["area_um2"])
    return cats


def array_categories(breakdown, buffers, *, top="top", array="top.array"):
    """Category totals of an array top (module docstring): every ``<array>.pe_*`` through
    :func:`pe_categories`; ``buffers`` (cells, transistors, um^2 of the top's memories,
    measured apart) taken out of ``top``'s own area."""
    liberty = any(e["area_um2"] is not None for e in breakdown.values())
    cats = _empty_categories(liberty)
    pe_paths = sorted({name[:len(array) + 1] + name[len(array) + 1:].split(".")[0]
                       for name in breakdown
                       if name.startswith(array + ".pe_")})
    for path in pe_paths:
        pe_categories(breakdown, path, into=cats)
    covered = set(pe_paths)
    for name, entry in breakdown.items():
        if any(name == p or name.startswith(p + ".") for p in covered):
            continue
        if name == array:
            reg, logic = _split(entry)
            _add(cats["registers"], *reg)
            _add(cats["control"], *logic)
        elif name == top:
            b_cells = min(buffers[0], entry["cells"])
            b_tr = min(buffers[1], entry["transistors"])
            b_area = None
            if entry["area_um2"] is not None and buffers[2] is not None:
                b_area = min(buffers[2], entry["area_um2"])
            _add(cats["buffers"], b_cells, b_tr, b_area)
            _add(cats["control"], entry["cells"] - b_cells, entry["transistors"] - b_tr,
                 None if b_area is None else entry["area_um2"] - b_area)
        else:
            _add(cats["control"], entry["cells"], entry["transistors"], entry["area_um2"])
    return cats


# --- results ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AreaResult:
    """Area of one PE or one array.

    ``name``: the PE kind; ``rows`` x ``cols``: 1 x 1 for a PE; ``acc_bits``: the accumulator
    width synthesised; ``report``: the :class:`~nybble.synth.yosys.AreaReport` (flattened
    totals, per-module breakdown); ``categories``: :data:`CATEGORIES` -> ``cells``,
    ``transistors``, ``area_um2`` (None without Liberty), from the hierarchical run (their
    sum can differ from the flattened totals by what flattening optimises across modules);
    ``register_bits``: flip-flops outside the accumulators (forwarding, pipeline, skew,
    drain; buffers excluded); ``seconds``: Yosys wall time (of the run that filled the
    cache, when ``cached``)."""
    name: str
    rows: int
    cols: int
    acc_bits: int
    report: object
    categories: dict
    register_bits: int
    seconds: float
    cached: bool

    @property
    def scope(self):
        return "pe" if (self.rows, self.cols) == (1, 1) else "array"

    @property
    def cells(self):
        return self.report.cells

    @property
    def transistors(self):
        return self.report.transistors

    @property
    def area_um2(self):
        return self.report.area_um2


def _liberty_arg(liberty):
    return None if liberty in (None, "") else liberty


def pe_area(kind, *, acc_bits=None, overflow="wrap", liberty=None, cache_dir=None,
            build_dir="build", timeout=None, verilog=None):
    """:class:`AreaResult` of one PE of ``kind`` (name or :class:`~nybble.hw.pe.PEKind`) at
    ``acc_bits`` (default :func:`convention_acc_bits`). ``verilog``: its text when already
    made (by :func:`pe_verilog`)."""
    kind = _kind(kind)
    acc_bits = convention_acc_bits(kind) if acc_bits is None else acc_bits
    if verilog is None:
        verilog, _ = pe_verilog(kind, acc_bits=acc_bits, overflow=overflow,
                                build_dir=build_dir)
    report = synth_area(verilog, "top", liberty=_liberty_arg(liberty), cache_dir=cache_dir,
                        timeout=timeout, depth=True)
    cats = pe_categories(report.breakdown, "top", serial=kind.pe == "bitserial")
    own = report.breakdown.get("top", {})
    return AreaResult(kind.name, 1, 1, acc_bits, report, cats, own.get("register_bits", 0),
                      report.seconds, report.cached)


def memory_gate_area(verilog_text, *, liberty, cache_dir, build_dir, timeout):
    """``((cells, transistors, um^2), seconds, cached)`` of the memories in ``top`` of
    ``verilog_text``, each synthesised alone as flip-flops and multiplexers."""
    total = [0, 0, 0.0 if liberty else None]
    seconds, cached = 0.0, True
    for name, width, depth in memories_in(verilog_text):
        read = "comb" if name.startswith("c_bank") else "sync"
        text, _ = cached_verilog(f"buffer_{width}x{depth}_{read}", repr((width, depth, read)),
                                 lambda: _buffer_probe(width, depth, read),
                                 build_dir=build_dir)
        rep = synth_area(text, "top", liberty=_liberty_arg(liberty), cache_dir=cache_dir,
                         hierarchy=False, timeout=timeout)
        total[0] += rep.cells
        total[1] += rep.transistors
        if total[2] is not None:
            total[2] += rep.area_um2
        seconds += rep.seconds
        cached = cached and rep.cached
    return tuple(total), seconds, cached


def array_area(config, *, liberty=None, cache_dir=None, build_dir="build", timeout=None,
               verilog=None):
    """:class:`AreaResult` of ``ArrayTop(config)`` (array, buffers, sequencer) with the
    breakdown of the module docstring. Buffers are as deep as ``config`` says: keep the
    depths small (64..256) for synthesis, as generic gates build them from flip-flops."""
    if not isinstance(config, ArrayConfig):
        raise ParameterTypeError(f"config must be an ArrayConfig, not {config!r}")
    if verilog is None:
        verilog, _ = top_verilog(config, build_dir=build_dir, log=None)
    report = synth_area(verilog, "top", liberty=_liberty_arg(liberty), cache_dir=cache_dir,
                        timeout=timeout)
    buffers, buf_seconds, buf_cached = memory_gate_area(verilog, liberty=_liberty_arg(liberty),
                                                    cache_dir=cache_dir,
                                                    build_dir=build_dir, timeout=timeout)
    cats = array_categories(report.breakdown, buffers)
    reg_bits = sum(entry.get("register_bits", 0) for name, entry in report.breakdown.items()
                   if name.startswith("top.array") and not name.split(".")[-1] == "accumulator")
    return AreaResult(config.pe, config.rows, config.cols, config.acc_bits, report, cats,
                      reg_bits, report.seconds + buf_seconds, report.cached and buf_cached)
