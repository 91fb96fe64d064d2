# amaranth: UnusedElaboratable=no
"""The scratchpad RAM: registered, non-transparent reads in Amaranth's simulator; the Verilog
backend converts to an instance of the module it ships (whose behaviour the streaming top's
native Verilator runs hold to the golden model), in time that does not grow with its depth;
parameter errors."""
import time

import pytest
from amaranth.sim import Simulator

from nybble.hw.scratchpad import SCRATCHPAD_MODULE, SCRATCHPAD_VERILOG, Scratchpad
from nybble.synth.verilog import to_verilog
from nybble.sw.errors import ParameterError, ParameterTypeError


def test_reads_are_registered_and_not_transparent():
    pad = Scratchpad(12, 8)
    sim = Simulator(pad)
    sim.add_clock(1e-8)
    seen = []

    async def bench(ctx):
        ctx.set(pad.r_addr, 3)
        await ctx.tick()
        seen.append(ctx.get(pad.r_data))            # words start at zero
        ctx.set(pad.w_en, 1)
        ctx.set(pad.w_addr, 3)
        ctx.set(pad.w_data, 0xABC)
        await ctx.tick()
        seen.append(ctx.get(pad.r_data))            # written this edge: the old word
        ctx.set(pad.w_en, 0)
        await ctx.tick()
        seen.append(ctx.get(pad.r_data))
        ctx.set(pad.r_addr, 4)
        seen.append(ctx.get(pad.r_data))            # the address change shows one edge later
        await ctx.tick()
        seen.append(ctx.get(pad.r_data))

    sim.add_testbench(bench)
    sim.run()
    assert seen == [0, 0, 0xABC, 0xABC, 0]


def test_verilog_backend_is_an_instance_whatever_the_depth():
    times = []
    for depth in (16, 1 << 16):
        t = time.perf_counter()
        text = to_verilog(Scratchpad(512, depth, backend="verilog"))
        times.append(time.perf_counter() - t)
        assert f"{SCRATCHPAD_MODULE} #(" in text and "$meminit" not in text
        assert f".DEPTH(32'd{depth})" in text
    # 65,536 words of 512 bits: Amaranth's Memory would write 33.5 Mbit of initial contents
    assert times[1] < 5 * times[0] + 2
    assert f"module {SCRATCHPAD_MODULE} #(parameter WIDTH" in SCRATCHPAD_VERILOG


def test_parameter_errors():
    with pytest.raises(ParameterError, match=r"^Scratchpad backend must be one of amaranth, "
                                             r"verilog, not 'vhdl'$"):
        Scratchpad(8, 4, backend="vhdl")
    with pytest.raises(ParameterError, match=r"^Scratchpad depth must be in 2\.\.16777216, "
                                             r"not 1$"):
        Scratchpad(8, 1)
    with pytest.raises(ParameterTypeError, match=r"^Scratchpad width must be an integer, "
                                                 r"not 8\.0$"):
        Scratchpad(8.0, 4)
