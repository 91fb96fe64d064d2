"""The memory side of a :class:`~nybble.hw.stream_top.StreamTop`'s job, written once.

:class:`StreamHost` sets the job inputs, pulses ``start`` and then, every cycle until
``done``, plays the external memory (:class:`~.memory_model.MemoryChannel` s for the read and
write channels) on the top's port, over any *port access* with ``set(name, value)``,
``get(name)`` and ``async tick()`` (:class:`nybble.sim.host.AmaranthPorts` in Amaranth's
simulator, ``CocotbPorts`` of ``tests/tb/tb_array.py`` under cocotb).  The native harness
(:mod:`.stream_native`) runs the same loop in C++.  No output of the top depends
combinationally on its memory inputs, so reading outputs after setting inputs in a cycle is
safe on every simulator.
"""

import time

from nybble.sw.errors import ToolError

__all__ = ["StreamHost"]


class StreamHost:
    """Runs jobs on a streaming top through ``ports`` with external memory ``memory``."""

    def __init__(self, ports, memory):
        self.ports, self.memory = ports, memory

    async def run(self, job, store, *, logs=None, max_cycles=1 << 32):
        """One job (the top's job inputs) over the memory image ``store`` (a bytearray,
        updated in place); ``logs``: ``{"rd": [], "wr": []}`` to collect every beat.
        Returns ``(cycles, stall_cycles, overflow, bytes_read, bytes_written, seconds)``."""
        p, logs = self.ports, logs or {}
        rd = self.memory.channel(store, logs.get("rd"))
        wr = self.memory.channel(store, logs.get("wr"))
        for name, value in job.items():
            p.set(name, value)
        for name in ("mem_rd_req_ready", "mem_wr_req_ready"):
            p.set(name, 1)
        for name in ("mem_rd_valid", "mem_wr_ready", "mem_rd_data"):
            p.set(name, 0)
        p.set("start", 1)
        t0 = time.perf_counter()
        await p.tick()                       # cycle 0: start taken
        p.set("start", 0)
        for c in range(1, max_cycles + 1):
            rd_idle, wr_idle = rd.req_ready, wr.req_ready
            rv, wready = rd.beat_due(c), wr.beat_due(c)
            p.set("mem_rd_req_ready", rd_idle)
            p.set("mem_rd_valid", rv)
            p.set("mem_rd_data", rd.read_beat() if rv else 0)
            p.set("mem_wr_req_ready", wr_idle)
            p.set("mem_wr_ready", wready)
            if p.get("done"):
                break
            if rv:
                rd.beat(c)
            if rd_idle and p.get("mem_rd_req_valid"):
                rd.accept(c, p.get("mem_rd_addr"), p.get("mem_rd_bytes"),
                          p.get("mem_rd_beat_bytes"))
            if wready and p.get("mem_wr_valid"):
                wr.beat(c, p.get("mem_wr_data"))
            if wr_idle and p.get("mem_wr_req_valid"):
                wr.accept(c, p.get("mem_wr_addr"), p.get("mem_wr_bytes"),
                          p.get("mem_wr_beat_bytes"))
            await p.tick()
        else:
            raise ToolError(f"the streaming top did not finish within {max_cycles} cycles")
        return (p.get("cycles"), p.get("stall_cycles"), bool(p.get("overflow")),
                rd.bytes_moved, wr.bytes_moved, time.perf_counter() - t0)
