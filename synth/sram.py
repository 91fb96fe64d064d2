"""SRAM scratchpad area: transistors and um^2 of a macro from its words, width and ports.

Generic synthesis builds a memory from flip-flops and multiplexers (~30 transistors a bit);
accelerators use SRAM macros.  This model costs the A / B / C buffers of a whole-array figure
as SRAM macros, CACTI-style: a bitcell array plus periphery per row (decoder, wordline
driver) and per column (precharge, sense amplifier or write driver, I/O latch), per port.

Cells (:data:`BITCELLS`): one read-or-write port: the 6T cell; one read port and one write
port (every buffer of :class:`nybble.hw.top.ArrayTop`): the 8T two-port cell (a 6T cell plus
a 2-transistor read stack; Chang et al., "An 8T-SRAM for variability tolerance and
low-voltage operation in high-performance caches", IEEE JSSC 43(4), 2008), taken as
:data:`EIGHT_T_AREA` = 1.3 x the 6T cell's area.

Transistors (same unit as Yosys's ``stat -tech cmos`` for logic): bitcell transistors, plus
per row and port a static NAND decoder (``2 * address bits``) and a 2-inverter wordline driver
(4), per column and port 21 (read: 3 precharge / equalise, 10 latch-type sense amplifier,
8 output latch) or 14 (write: 6 write driver, 8 input latch), plus :data:`CONTROL_TRANSISTORS`
for timing control.  These are textbook circuit counts (Weste & Harris, "CMOS VLSI Design",
4th ed., ch. 12), not a foundry macro's netlist.

um^2 (with a process node): ``bits * cell area`` plus the periphery expressed in bitcell
areas, :data:`ROW_PERIPHERY_CELLS` per row and port, :data:`COLUMN_PERIPHERY_CELLS` per
column and port and :data:`CONTROL_CELLS` -- the CACTI decomposition (Muralimanohar,
Balasubramonian, Jouppi, "CACTI 6.0", HP Labs HPL-2009-85) with our assumed sizes, which give
an array efficiency (cell area / macro area) of ~25% for a 16 x 64-bit buffer and ~70% for a
2048 x 64-bit one; published 6T cell areas per node (:data:`CELL_UM2`):

=====  ========  ============================================================================
node   um^2      source (6T cell of a logic process)
=====  ========  ============================================================================
180    5.59      Yang et al., "A high performance 180 nm generation logic technology", IEDM 1998
130    2.45      Tyagi et al., "A 130 nm generation logic technology ...", IEDM 2000
90     1.0       Thompson et al., "A 90 nm logic technology ...", IEDM 2002
65     0.57      Bai et al., "A 65 nm logic technology ...", IEDM 2004
45     0.346     Mistry et al., "A 45 nm logic technology ...", IEDM 2007
=====  ========  ============================================================================

(90 and 65 nm as also given in Intel's announcements of its 52 Mbit and 70 Mbit SRAM test
chips: 1.0 and 0.57 um^2 six-transistor cells.)

:data:`LIBERTY_NODES` maps known Liberty files to their node (OSU 0.18 um: 180 nm), so um^2
of SRAM and of synthesised logic are of one technology.
"""

import dataclasses
import math
import os

from nybble.sw.formats import check_integral
from nybble.sw.errors import ParameterError

__all__ = ["CELL_UM2", "LIBERTY_NODES", "BITCELLS", "EIGHT_T_AREA", "ROW_PERIPHERY_CELLS",
           "COLUMN_PERIPHERY_CELLS", "CONTROL_CELLS", "CONTROL_TRANSISTORS", "SramArea",
           "sram_area", "liberty_node"]

#: Published 6T SRAM cell area (um^2) per logic node (nm); module docstring for sources.
CELL_UM2 = {180: 5.59, 130: 2.45, 90: 1.0, 65: 0.57, 45: 0.346}

#: Liberty file name -> node (nm) for um^2 of SRAM beside that library's logic.
LIBERTY_NODES = {"osu018_stdcells.lib": 180}

#: (read ports, write ports) -> (cell name, transistors per bit, area relative to 6T).
EIGHT_T_AREA = 1.3
BITCELLS = {(1, 1): ("8T two-port", 8, EIGHT_T_AREA), (0, 0): ("6T single-port", 6, 1.0)}

ROW_PERIPHERY_CELLS = 16      # decoder + wordline driver, per row and port (bitcell areas)
COLUMN_PERIPHERY_CELLS = 24   # precharge, sense amp / write driver, I/O latch, per column, port
CONTROL_CELLS = 500           # timing control, address latches
CONTROL_TRANSISTORS = 200

_READ_COLUMN_T = 3 + 10 + 8
_WRITE_COLUMN_T = 6 + 8
_WORDLINE_DRIVER_T = 4


@dataclasses.dataclass(frozen=True)
class SramArea:
    """One macro: ``words`` x ``width`` bits, ``cell`` type, ``transistors``, ``area_um2``
    (None without a node), ``efficiency`` (bitcell area / macro area, None without a node),
    ``kib`` (capacity in KiB)."""
    words: int
    width: int
    read_ports: int
    write_ports: int
    cell: str
    transistors: int
    area_um2: "float | None"
    efficiency: "float | None"

    @property
    def kib(self):
        return self.words * self.width / 8192

    def as_dict(self):
        return {**dataclasses.asdict(self), "kib": self.kib}


def liberty_node(liberty):
    """The process node (nm) of a Liberty file :data:`LIBERTY_NODES` knows, else None."""
    if liberty is None:
        return None
    return LIBERTY_NODES.get(os.path.basename(str(liberty)))


def sram_area(words, width, *, read_ports=1, write_ports=1, node=None):
    """:class:`SramArea` of a ``words`` x ``width``-bit macro (module docstring).

    Ports: one read and one write port (8T two-port cell) or ``read_ports=0,
    write_ports=0`` meaning one shared read/write port (6T).  ``node``: a key of
    :data:`CELL_UM2` for um^2, or None (transistors only)."""
    words = check_integral("SRAM words", words, 1, 1 << 24)
    width = check_integral("SRAM width", width, 1, 1 << 16)
    ports = (read_ports, write_ports)
    if ports not in BITCELLS:
        raise ParameterError(f"SRAM ports (read_ports, write_ports) must be (1, 1) (two-port) "
                             f"or (0, 0) (one shared port), not {ports}")
    if node is not None and node not in CELL_UM2:
        raise ParameterError(f"SRAM node must be one of {', '.join(map(str, CELL_UM2))} (nm) "
                             f"or None, not {node!r}")
    cell, cell_t, cell_area = BITCELLS[ports]
    n_ports = max(1, read_ports + write_ports)
    abits = max(1, math.ceil(math.log2(words)))
    column_t = (_READ_COLUMN_T + _WRITE_COLUMN_T) if ports == (0, 0) else (
        read_ports * _READ_COLUMN_T + write_ports * _WRITE_COLUMN_T)
    transistors = (words * width * cell_t
                   + words * n_ports * (2 * abits + _WORDLINE_DRIVER_T)
                   + width * column_t + CONTROL_TRANSISTORS)
    area = efficiency = None
    if node is not None:
        cells = words * width * cell_area
        macro = (cells + words * n_ports * ROW_PERIPHERY_CELLS
                 + width * n_ports * COLUMN_PERIPHERY_CELLS + CONTROL_CELLS)
        area = macro * CELL_UM2[node]
        efficiency = cells / macro
    return SramArea(words, width, read_ports, write_ports, cell, transistors, area,
                    efficiency)
