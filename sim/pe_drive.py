"""What the PE checks share: the Amaranth testbench runner, one-step-per-cycle driving of a
pipelined PE, operand-word packing and the result record."""

from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from .words import pack_ints

__all__ = ["run_testbench", "drive_pipelined", "operand_words", "CheckResult"]


def operand_words(codes, bits, extra=None, extra_bits=0):
    """PE operand words: row ``i`` of ``codes`` (``(n, lanes)``), lane ``l`` at bits
    ``[l * bits, (l + 1) * bits)``, then ``extra[i]`` (a scale code) above them."""
    codes = np.asarray(codes, dtype=np.int64)
    if extra is None:
        return pack_ints(codes, bits)
    fields = np.concatenate([codes, np.asarray(extra, np.int64).reshape(-1, 1)], axis=1)
    return pack_ints(fields, [bits] * codes.shape[1] + [extra_bits])


async def drive_pipelined(ctx, pe, a_words, b_words, first, acc, ovf):
    """One step per cycle into a pipelined PE; ``acc[i]`` / ``ovf[i]`` get the PE's outputs
    once step i has landed (``pe.latency`` edges later)."""
    n, lat = len(a_words), pe.latency
    for c in range(n + lat - 1):
        if c < n:
            ctx.set(pe.a, a_words[c])
            ctx.set(pe.b, b_words[c])
            ctx.set(pe.first, int(first[c]))
            ctx.set(pe.valid, 1)
        else:
            ctx.set(pe.valid, 0)
            ctx.set(pe.first, 0)
        await ctx.tick()
        j = c - lat + 1
        if j >= 0:
            acc[j] = ctx.get(pe.acc)
            ovf[j] = ctx.get(pe.overflow)


def run_testbench(dut, bench, vcd=None):
    """Amaranth-simulate ``dut`` with the async testbench ``bench`` (10 ns clock)."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()


@dataclass
class CheckResult:
    """Outcome of :func:`check_pairs` (``mismatches`` counts steps whose ``acc`` or
    ``overflow`` differed; ``first_mismatch`` describes the first)."""
    pe: str
    formats: tuple
    latency: object
    cycles_per_mac: object
    pairs_checked: int
    steps: int
    mismatches: int
    exhaustive: bool
    seconds: float
    first_mismatch: str = ""
    extra: dict = field(default_factory=dict)
