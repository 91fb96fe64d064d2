"""cocotb testbench for a ``StreamTop``: one job with its external memory, through the same
memory driver as the Amaranth path (:class:`nybble.sim.stream_host.StreamHost`) over cocotb's
handles (``CocotbPorts`` of ``tb_array``).

The job (``NYBBLE_STREAM_JOB``: an .npz from :func:`nybble.sim.stream_run.run_stream`) holds
the memory image, the job inputs and the memory model; the C region of the memory after the
run, the top's counters and the bytes each channel moved go to ``NYBBLE_STREAM_OUT``.
"""
import os
from fractions import Fraction

import cocotb
import numpy as np
from cocotb.clock import Clock

from nybble.hw.stream_top import STREAM_JOB_FIELDS
from nybble.sim.memory_model import MemoryModel
from nybble.sim.stream_host import StreamHost
from tb_array import CocotbPorts


@cocotb.test()
async def run_stream_job(dut):
    job = dict(np.load(os.environ["NYBBLE_STREAM_JOB"]))
    Clock(dut.clk, 10, unit="ns").start()
    ports = CocotbPorts(dut)
    ports.set("start", 0)
    ports.set("rst", 1)
    for _ in range(2):
        await ports.tick()
    ports.set("rst", 0)
    memory = MemoryModel(Fraction(int(job["bw_num"]), int(job["bw_den"])), int(job["latency"]))
    store = bytearray(job["store"].tobytes())
    r = await StreamHost(ports, memory).run({k: int(job[k]) for k in STREAM_JOB_FIELDS}, store)
    np.savez(os.environ["NYBBLE_STREAM_OUT"],
             c_bytes=np.frombuffer(bytes(store[int(job["c_addr"]):]), np.uint8),
             counters=np.array(r[:5], dtype=np.int64), seconds=r[5])
