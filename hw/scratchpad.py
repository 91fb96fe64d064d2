"""``Scratchpad``: a simple dual-port RAM (one write port, one synchronous read port).

::

    w_en, w_addr, w_data --> [ mem: depth x width bits ] --> r_data (registered)
                   r_addr --^

Timing: a write with ``w_en`` lands at the clock edge; ``r_data`` is the word at ``r_addr``
one edge later, the *old* word when the same address is written in the same cycle
(non-transparent, as :meth:`amaranth.lib.memory.Memory.read_port` gives by default).  The
words start at zero.

Two implementations of the same behaviour (``backend``):

* ``"amaranth"``: :class:`amaranth.lib.memory.Memory` (Amaranth's simulator runs it);
* ``"verilog"``: an instance of the Verilog module :data:`SCRATCHPAD_MODULE`, whose text
  :data:`SCRATCHPAD_VERILOG` goes after the converted design (the native Verilator and cocotb
  builds).  Amaranth 0.5 writes every memory's initial contents bit by bit into RTLIL
  (``$meminit_v2``, depth x width constants; it has no uninitialised memories), and Yosys
  then writes one ``initial`` assignment per word: for the 1 MiB scratchpads of a 16x16
  int16 streaming top that took most of the ~40 minutes its Verilog took.  The module zeroes
  its words with one loop instead, so the design's conversion no longer grows with the
  scratchpad depth.
"""

from amaranth.hdl import ClockSignal, Instance, Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from nybble.sw.formats import check_integral
from nybble.sw.errors import ParameterError

__all__ = ["Scratchpad", "SCRATCHPAD_MODULE", "SCRATCHPAD_VERILOG", "BACKENDS"]

BACKENDS = ("amaranth", "verilog")
SCRATCHPAD_MODULE = "nybble_scratchpad"

#: The ``"verilog"`` backend's module (Verilog-2001; Verilator, Icarus and Yosys read it).
SCRATCHPAD_VERILOG = f"""
module {SCRATCHPAD_MODULE} #(parameter WIDTH = 8, parameter DEPTH = 2, parameter ABITS = 1) (
    input clk,
    input w_en,
    input [ABITS-1:0] w_addr,
    input [WIDTH-1:0] w_data,
    input [ABITS-1:0] r_addr,
    output reg [WIDTH-1:0] r_data
);
  reg [WIDTH-1:0] mem [0:DEPTH-1];
  integer i;
  initial begin
    for (i = 0; i < DEPTH; i = i + 1) mem[i] = {{WIDTH{{1'b0}}}};
    r_data = {{WIDTH{{1'b0}}}};
  end
  always @(posedge clk) begin
    if (w_en) mem[w_addr] <= w_data;
    r_data <= mem[r_addr];
  end
endmodule
"""


class Scratchpad(wiring.Component):
    """``depth`` words of ``width`` bits, one write and one registered read port (module
    docstring); ``backend`` one of :data:`BACKENDS`."""

    def __init__(self, width, depth, *, backend="amaranth"):
        self._width = check_integral("Scratchpad width", width, 1, 1 << 20)
        self._depth = check_integral("Scratchpad depth", depth, 2, 1 << 24)
        if backend not in BACKENDS:
            raise ParameterError(f"Scratchpad backend must be one of {', '.join(BACKENDS)}, "
                                 f"not {backend!r}")
        self._backend = backend
        abits = max(1, (self._depth - 1).bit_length())
        super().__init__({"w_en": In(1), "w_addr": In(abits), "w_data": In(self._width),
                          "r_addr": In(abits), "r_data": Out(self._width)})

    width = property(lambda self: self._width)
    depth = property(lambda self: self._depth)
    backend = property(lambda self: self._backend)

    def elaborate(self, platform):
        m = Module()
        if self._backend == "verilog":
            m.submodules.ram = Instance(
                SCRATCHPAD_MODULE, p_WIDTH=self._width, p_DEPTH=self._depth,
                p_ABITS=len(self.w_addr), i_clk=ClockSignal(), i_w_en=self.w_en,
                i_w_addr=self.w_addr, i_w_data=self.w_data, i_r_addr=self.r_addr,
                o_r_data=self.r_data)
            return m
        m.submodules.mem = mem = Memory(shape=unsigned(self._width), depth=self._depth,
                                        init=[])
        wp, rp = mem.write_port(), mem.read_port()
        m.d.comb += [wp.en.eq(self.w_en), wp.addr.eq(self.w_addr), wp.data.eq(self.w_data),
                     rp.addr.eq(self.r_addr), self.r_data.eq(rp.data)]
        return m
