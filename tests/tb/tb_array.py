"""cocotb testbench for an ``ArrayTop``: load the buffers, start, wait for done, read results.

The job (``NYBBLE_ARRAY_JOB``: an .npz from :func:`nybble.sim.cocotb_array.write_job`) holds
the buffer words, the job size and the result addresses; the results and the RTL's cycle
count go to ``NYBBLE_ARRAY_OUT``.  Python touches ports only to load and read, never while
the array runs: the test awaits ``done`` once.
"""
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


class TB:
    """Owns clock and reset; loads words through the write port and reads the result banks."""

    def __init__(self, dut):
        self.dut = dut

    async def reset(self):
        d = self.dut
        Clock(d.clk, 10, unit="ns").start()
        d.rst.value = 1
        for name in ("wr_en", "start", "wr_sel", "wr_addr", "wr_data", "rd_addr"):
            getattr(d, name).value = 0
        for _ in range(2):
            await FallingEdge(d.clk)
        d.rst.value = 0

    async def load(self, sel, words):
        d = self.dut
        d.wr_en.value = 1
        d.wr_sel.value = sel
        for addr, w in enumerate(words):
            d.wr_addr.value = addr
            d.wr_data.value = int(w)
            await FallingEdge(d.clk)
        d.wr_en.value = 0

    async def run(self, job):
        d = self.dut
        for name in ("m_tiles", "n_tiles", "k_len", "m_len"):
            getattr(d, name).value = int(job[name])
        await FallingEdge(d.clk)
        d.start.value = 1
        await FallingEdge(d.clk)
        d.start.value = 0
        if not d.done.value:
            await RisingEdge(d.done)
        await FallingEdge(d.clk)
        return int(d.cycles.value)

    async def read(self, addrs):
        d = self.dut
        out = []
        for a in addrs:
            d.rd_addr.value = int(a)
            await FallingEdge(d.clk)  # the read port is combinational; let it settle
            out.append(int(d.rd_data.value))
        return out


def _ints(chunks):
    return [sum(int(c) << (32 * i) for i, c in enumerate(row)) for row in chunks]


@cocotb.test()
async def run_job(dut):
    job = dict(np.load(os.environ["NYBBLE_ARRAY_JOB"]))
    tb = TB(dut)
    await tb.reset()
    await tb.load(0, _ints(job["a_words"]))
    await tb.load(1, _ints(job["b_words"]))
    t0 = time.perf_counter()
    cycles = await tb.run(job)
    secs = time.perf_counter() - t0
    values = await tb.read(job["addrs"])
    np.savez(os.environ["NYBBLE_ARRAY_OUT"], values=np.array(values, dtype=object),
             cycles=cycles, seconds=secs)
