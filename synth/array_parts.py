"""Whole-array area in seconds: one PE, the rest of the top without its PEs, the buffers.

A flat synthesis of a 16 x 16 array top spends minutes (int4: ~100-225 s, dp4 kinds longer)
synthesising the same PE 256 times.  :func:`array_area_parts` instead adds up three parts,
each synthesised or modelled on its own and cached on its own:

``pes``
    ``R * C`` times one PE of the array's kind and options
    (:func:`nybble.synth.area.pe_area`, flattened; the sweep's PE result when warm);
``rest``
    :class:`~nybble.hw.top.ArrayTop` with every ``pe_<i>_<j>`` and every memory a black box
    (:func:`nybble.synth.yosys.synth_area` ``blackbox=``, ``memories="blackbox"``): input
    skew, shadow drain chain, sequencer, pointers, result read multiplexer and the logic
    around each memory port.  Read from Amaranth's RTLIL (no Verilog made or parsed) and
    mapped by one ABC run over all its logic (``abc_scope="design"``) instead of one per
    flip-flop enable domain: each PE's drain flag has its own enable, so ``synth``'s ABC step
    would run ~260 times on a 16 x 16 top.  The rest of a 16 x 16 int4 top (256-word
    buffers, with the Liberty): 31.0 s of Yosys CPU from Verilog with ``synth``'s ABC step,
    23.8 s from RTLIL, 18.3 s with one ABC run, 10.5 s with both; 0.6% fewer transistors
    than the first;
``buffers``
    the A, B and C-bank memories: SRAM macros (:func:`nybble.synth.sram.sram_area`, the
    default) or, with ``buffers="ff"``, flip-flop register files synthesised alone
    (:func:`nybble.synth.area.memory_gate_area`).

What the sum leaves out is what a flat synthesis optimises across the PE boundary (e.g. the
last column's unused forwarding registers); with flip-flop buffers the sum is checked against
one flat synthesis in ``tests/synth/test_array_parts.py`` (16 x 16 int4, depth 16: +0.61%;
8 x 8 int8: +0.10%).
"""

import dataclasses
import time

from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import pe_kind
from nybble.sw.errors import ParameterError, ParameterTypeError
from .area import memories_in, memory_gate_area, pe_area
from .sram import liberty_node, sram_area
from .verilog import cached_verilog, top_rtlil
from .yosys import synth_area

__all__ = ["BUFFER_MODELS", "PE_BLACKBOX", "ArrayParts", "array_area_parts"]

#: How the buffers are costed: SRAM macros (default) or flip-flop register files.
BUFFER_MODELS = ("sram", "ff")

#: Yosys pattern of the PE modules in Amaranth's Verilog of an ArrayTop.
PE_BLACKBOX = "top.array.pe_*"


@dataclasses.dataclass(frozen=True)
class ArrayParts:
    """Area of one array top as the sum of its parts (module docstring).

    ``pe``: the PE's :class:`~nybble.synth.area.AreaResult`; ``rest``: the
    :class:`~nybble.synth.yosys.AreaReport` of the top without PEs and memories;
    ``memories``: one dict per memory (``name``, ``width``, ``depth``, ``transistors``,
    ``area_um2``; SRAM also ``cell``, ``kib``, ``efficiency``); ``parts``: ``pes`` / ``rest``
    / ``buffers`` -> ``transistors``, ``area_um2`` (None without Liberty); ``cells``: gate
    cells of PEs and rest (and flip-flop buffers), SRAM macros not counted; ``seconds``: wall
    time of this call."""
    name: str
    rows: int
    cols: int
    acc_bits: int
    depth: int
    buffer_model: str
    pe: object
    rest: object
    memories: tuple
    parts: dict
    cells: int
    seconds: float
    cached: bool

    scope = "array"

    @property
    def transistors(self):
        return sum(p["transistors"] for p in self.parts.values())

    @property
    def area_um2(self):
        areas = [p["area_um2"] for p in self.parts.values()]
        return None if None in areas else sum(areas)


def _pe_result(config, *, liberty, cache_dir, build_dir, timeout):
    if config.pe_options:
        kind = pe_kind(config.pe)
        options = {"acc_bits": config.acc_bits, "overflow": config.overflow,
                   **config.pe_options}
        text, _ = cached_verilog(f"pe_{kind.name}", repr((kind, options)),
                                 lambda: config.build_pe(), build_dir=build_dir)
        return pe_area(kind, acc_bits=config.acc_bits, overflow=config.overflow,
                       liberty=liberty, cache_dir=cache_dir, build_dir=build_dir,
                       timeout=timeout, verilog=text)
    return pe_area(config.pe, acc_bits=config.acc_bits, overflow=config.overflow,
                   liberty=liberty, cache_dir=cache_dir, build_dir=build_dir, timeout=timeout)


def array_area_parts(config, *, buffers="sram", liberty=None, cache_dir=None,
                     build_dir="build", timeout=None, rtlil=None, pe=None):
    """:class:`ArrayParts` of ``ArrayTop(config)``.

    ``buffers``: ``"sram"`` (SRAM macros, um^2 at the Liberty's node when
    :data:`nybble.synth.sram.LIBERTY_NODES` knows it) or ``"ff"`` (flip-flop register
    files, synthesised); ``rtlil``: the top's RTLIL when already made
    (:func:`nybble.synth.verilog.top_rtlil`); ``pe``: the PE's
    :class:`~nybble.synth.area.AreaResult` when already synthesised (at ``config``'s
    accumulator width and options)."""
    if not isinstance(config, ArrayConfig):
        raise ParameterTypeError(f"config must be an ArrayConfig, not {config!r}")
    if buffers not in BUFFER_MODELS:
        raise ParameterError(f"buffers must be one of {', '.join(map(repr, BUFFER_MODELS))}, "
                             f"not {buffers!r}")
    start = time.perf_counter()
    if rtlil is None:
        rtlil, _ = top_rtlil(config, build_dir=build_dir, log=None)
    if pe is None:
        pe = _pe_result(config, liberty=liberty, cache_dir=cache_dir, build_dir=build_dir,
                        timeout=timeout)
    elif (pe.name, pe.acc_bits) != (pe_kind(config.pe).name, config.acc_bits):
        raise ParameterError(f"pe must be a {config.pe} PE with a {config.acc_bits}-bit "
                             f"accumulator, not {pe.name} with {pe.acc_bits} bits")
    rest = synth_area(rtlil, "top", liberty=liberty or None, hierarchy=False,
                      cache_dir=cache_dir, timeout=timeout, blackbox=(PE_BLACKBOX,),
                      memories="blackbox", depth=True, frontend="rtlil", abc_scope="design")
    memories, cells = [], rest.cells + config.rows * config.cols * pe.cells
    cached = pe.cached and rest.cached
    if buffers == "sram":
        node = liberty_node(liberty)
        for name, width, depth in memories_in(rtlil):
            macro = sram_area(depth, width, node=node)
            memories.append({"name": name, "width": width, "depth": depth,
                             **macro.as_dict()})
        buf_tr = sum(m["transistors"] for m in memories)
        buf_um2 = (None if not liberty or node is None else
                   sum(m["area_um2"] for m in memories))
    else:
        (buf_cells, buf_tr, buf_um2), _, buf_cached = memory_gate_area(
            rtlil, liberty=liberty or None, cache_dir=cache_dir, build_dir=build_dir,
            timeout=timeout)
        memories = [{"name": n, "width": w, "depth": d} for n, w, d in memories_in(rtlil)]
        cells += buf_cells
        cached = cached and buf_cached
    n = config.rows * config.cols
    parts = {
        "pes": {"transistors": n * pe.transistors,
                "area_um2": None if pe.area_um2 is None else n * pe.area_um2},
        "rest": {"transistors": rest.transistors, "area_um2": rest.area_um2},
        "buffers": {"transistors": buf_tr, "area_um2": buf_um2},
    }
    return ArrayParts(pe_kind(config.pe).name, config.rows, config.cols, config.acc_bits,
                      max(config.a_depth, config.b_depth, config.c_depth), buffers, pe, rest,
                      tuple(memories), parts, cells, time.perf_counter() - start, cached)
