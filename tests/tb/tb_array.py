"""cocotb testbench for an ``ArrayTop``: one job through the host driver of
:mod:`nybble.sim.host` (load A and B, run, read), over cocotb's handles.

The job (``NYBBLE_ARRAY_JOB``: an .npz from :func:`nybble.sim.cocotb_array.run_array_cocotb`)
holds the buffer words, the job size and the result addresses; the results, the RTL's cycle
count and overflow flag go to ``NYBBLE_ARRAY_OUT``.  Python touches ports only to load and
read, never while the array runs.
"""
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from nybble.hw.layout import JOB_FIELDS
from nybble.sim.host import ArrayHost, run_job
from nybble.sim.words import chunks_to_ints


class CocotbPorts:
    """Port access (:mod:`nybble.sim.host`) to a cocotb DUT: inputs change after the falling
    edge, so the rising edge samples them stable."""

    def __init__(self, dut):
        self.dut = dut

    def set(self, name, value):
        getattr(self.dut, name).value = int(value)

    def get(self, name):
        return int(getattr(self.dut, name).value)

    async def tick(self):
        await FallingEdge(self.dut.clk)

    async def settle(self):
        await Timer(1, unit="ns")

    async def wait_high(self, name, max_cycles):
        # one trigger for the whole run: no Python wake-up per cycle
        signal = getattr(self.dut, name)
        if not signal.value:
            await RisingEdge(signal)
        await FallingEdge(self.dut.clk)


@cocotb.test()
async def run_job_file(dut):
    job = dict(np.load(os.environ["NYBBLE_ARRAY_JOB"]))
    Clock(dut.clk, 10, unit="ns").start()
    ports = CocotbPorts(dut)
    host = ArrayHost(ports, int(job["acc_bits"]))
    await host.idle()
    ports.set("rst", 1)
    for _ in range(2):
        await ports.tick()
    ports.set("rst", 0)
    r = await run_job(host, chunks_to_ints(job["a_words"]), chunks_to_ints(job["b_words"]),
                      {name: int(job[name]) for name in JOB_FIELDS},
                      [int(a) for a in job["addrs"]])
    np.savez(os.environ["NYBBLE_ARRAY_OUT"], values=np.array(r.values, dtype=object),
             cycles=r.cycles, overflow=r.overflow, seconds=r.seconds)
