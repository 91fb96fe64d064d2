"""The host driver of an :class:`~nybble.hw.top.ArrayTop`: its bus protocol, written once.

The protocol (ports in :class:`~nybble.hw.layout.TopLayout`): write the A and B buffer words
through the write port (one word per clock edge), set the job inputs, pulse ``start`` for one
cycle, wait for ``done``, then read every result through the synchronous read port (the
result one clock edge after its address).  The
host never drives operands while the array runs.

:class:`ArrayHost` speaks it over any *port access*: an object with ``set(name, value)``,
``get(name) -> int``, ``async tick()`` (one clock edge, after which inputs may change),
``async settle()`` (let combinational logic follow an input change, without a clock edge) and
``async wait_high(name, max_cycles)`` (tick until an output is 1; a simulator may do this
without waking Python every cycle).
:class:`AmaranthPorts` adapts Amaranth's simulator context; the cocotb testbench
``tests/tb/tb_array.py`` adapts a cocotb DUT the same way, and the FPGA UART host
(:class:`nybble.sim.fpga_host.SerialHost`) offers the same methods over a byte stream.  The
native Verilator harness (:mod:`.native`) runs the same sequence in C++ so that Python stays
out of the clocked loop.

:func:`run_job` is the whole job: ``load`` A, ``load`` B, ``run``, ``read``.
"""

import time

from nybble.hw.layout import JOB_FIELDS, WR_A, WR_B
from nybble.sw.errors import ToolError

__all__ = ["ArrayHost", "AmaranthPorts", "run_job", "JobResult"]


class AmaranthPorts:
    """Port access to a component in Amaranth's simulator (``ctx`` of an async testbench)."""

    def __init__(self, ctx, dut):
        self._ctx, self._dut = ctx, dut

    def set(self, name, value):
        self._ctx.set(getattr(self._dut, name), int(value))

    def get(self, name):
        return int(self._ctx.get(getattr(self._dut, name)))

    async def tick(self):
        await self._ctx.tick()

    async def settle(self):
        pass  # a testbench's ctx.get already sees the settled value after ctx.set

    async def wait_high(self, name, max_cycles):
        signal = getattr(self._dut, name)
        for _ in range(max_cycles):
            if self._ctx.get(signal):
                return
            await self._ctx.tick()
        raise ToolError(f"{name} did not rise within {max_cycles} cycles")


class ArrayHost:
    """The array top's bus protocol over a port access (module docstring).

    ``acc_bits``: width of ``rd_data`` (results are returned unsigned, ``< 2**acc_bits``).
    """

    def __init__(self, ports, acc_bits):
        self.ports, self.acc_bits = ports, int(acc_bits)

    async def idle(self):
        """Drive every host input to its idle value (before the first command)."""
        for name in ("wr_en", "start", "wr_sel", "wr_addr", "wr_data", "rd_addr"):
            self.ports.set(name, 0)

    async def load(self, sel, words, start=0):
        """Write ``words`` (ints) into buffer ``sel`` (:data:`~nybble.hw.layout.WR_A`, ...)
        from address ``start`` on, one per clock edge."""
        p = self.ports
        p.set("wr_en", 1)
        p.set("wr_sel", sel)
        for addr, w in enumerate(words, start):
            p.set("wr_addr", addr)
            p.set("wr_data", w)
            await p.tick()
        p.set("wr_en", 0)

    async def run(self, job, *, max_cycles=1 << 32):
        """Set the job inputs (``m_tiles``, ``n_tiles``, ``k_len``, ``m_len``), pulse
        ``start``, wait for ``done``; returns ``(cycles, overflow)`` from the top's counters."""
        p = self.ports
        for name in JOB_FIELDS:
            p.set(name, job[name])
        await p.tick()
        p.set("start", 1)
        await p.tick()
        p.set("start", 0)
        await p.wait_high("done", max_cycles)
        return p.get("cycles"), bool(p.get("overflow"))

    async def read(self, addresses):
        """The results at ``addresses`` (``rd_addr`` values), unsigned."""
        p = self.ports
        mask = (1 << self.acc_bits) - 1
        out = []
        for a in addresses:
            p.set("rd_addr", a)
            await p.tick()  # the read port is synchronous
            out.append(p.get("rd_data") & mask)
        return out


class JobResult:
    """``values`` (unsigned result words, in address order), ``cycles`` and ``overflow`` (the
    top's counters) and ``seconds`` (wall time from ``start`` to ``done``)."""

    def __init__(self, values, cycles, overflow, seconds):
        self.values, self.cycles, self.overflow, self.seconds = values, cycles, overflow, seconds


async def run_job(host, a_words, b_words, job, addresses):
    """One GEMM job on ``host`` (any object with ``load``, ``run``, ``read``): load the A and
    B words (ints), run ``job``, read ``addresses``."""
    await host.load(WR_A, a_words)
    await host.load(WR_B, b_words)
    t0 = time.perf_counter()
    cycles, overflow = await host.run(job)
    seconds = time.perf_counter() - t0
    return JobResult(await host.read(addresses), cycles, overflow, seconds)
