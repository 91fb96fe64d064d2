"""cocotb testbench for any PE of nybble.hw.pe, driven from a vector file.

The vectors (``NYBBLE_PE_VECTORS``: JSON from :func:`nybble.sim.pe_check.write_vectors`) hold
every step's packed operands, ``first`` and ``sel``, and the golden ``acc`` / ``overflow`` after
it (from nybble.sw).  The driver applies one step per cycle (bit-serial PEs: one step per
``cycles[sel]`` cycles), the monitor samples ``acc`` / ``overflow`` once each step has landed,
and the checker compares them, reporting the first mismatch with its coordinates.
"""
import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


class TB:
    """Owns the clock and reset of the PE ``dut``; drives steps and samples results."""

    def __init__(self, dut, vectors):
        self.dut = dut
        self.v = vectors
        self.serial = vectors["serial_cycles"] is not None
        self.has_lut = self._has(dut, "lut_we")

    @staticmethod
    def _has(dut, name):
        try:
            getattr(dut, name)
            return True
        except AttributeError:
            return False

    async def start(self):
        d = self.dut
        Clock(d.clk, 10, unit="ns").start()
        d.rst.value = 1
        d.valid.value = 0
        d.first.value = 0
        d.a.value = 0
        d.b.value = 0
        if self.serial:
            d.sel.value = 0
        if self.has_lut:
            d.lut_we.value = 0
        for _ in range(2):
            await FallingEdge(d.clk)
        d.rst.value = 0

    async def load_table(self, table):
        d = self.dut
        d.lut_we.value = 1
        for i, v in enumerate(table):
            d.lut_addr.value = i
            d.lut_data.value = v & ((1 << len(d.lut_data)) - 1)
            await FallingEdge(d.clk)
        d.lut_we.value = 0

    def _sample(self):
        return self.dut.acc.value.to_signed(), int(self.dut.overflow.value)

    async def run(self):
        d, steps = self.dut, self.v["steps"]
        got = [None] * len(steps)
        if self.serial:
            cycles = self.v["serial_cycles"]
            for i, (a, b, first, sel) in enumerate(steps):
                d.a.value, d.b.value, d.first.value, d.sel.value = a, b, first, sel
                d.valid.value = 1
                await FallingEdge(d.clk)
                d.valid.value = 0
                for _ in range((cycles[sel] if sel < len(cycles) else 1) - 1):
                    await FallingEdge(d.clk)
                got[i] = self._sample()
            return got
        lat = self.v["latency"]
        for c in range(len(steps) + lat - 1):
            if c < len(steps):
                a, b, first, _ = steps[c]
                d.a.value, d.b.value, d.first.value = a, b, first
                d.valid.value = 1
            else:
                d.valid.value = 0
            await FallingEdge(d.clk)
            if c - lat + 1 >= 0:
                got[c - lat + 1] = self._sample()
        return got


@cocotb.test()
async def pe_matches_golden(dut):
    """Every step of the vector file, back to back, without reset between jobs."""
    with open(os.environ["NYBBLE_PE_VECTORS"]) as f:
        vectors = json.load(f)
    tb = TB(dut, vectors)
    await tb.start()
    if vectors["table"] is not None:
        await tb.load_table(vectors["table"])
    got = await tb.run()
    want = [tuple(e) for e in vectors["expected"]]
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    if bad:
        i = bad[0]
        a, b, first, sel = vectors["steps"][i]
        raise AssertionError(
            f"{len(bad)} of {len(want)} steps differ; first: step {i} (a={a:#x}, b={b:#x}, "
            f"first={first}, sel={sel}): (acc, overflow) = {got[i]}, expected {want[i]}")
