# amaranth: UnusedElaboratable=no
"""The host driver (:mod:`nybble.sim.host`) on a simulated top: the protocol is the same
object whatever the simulator; here it runs on Amaranth's and is held to the golden model."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from nybble.hw.config import ArrayConfig
from nybble.hw.layout import WR_A, WR_B
from nybble.hw.top import ArrayTop
from nybble.sim.check import golden_for
from nybble.sim.host import AmaranthPorts, ArrayHost, run_job
from nybble.sim.run import host_gemm, prepare_job
from nybble.sim.words import chunks_to_ints


def _simulate(top, bench):
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


class RecordingPorts(AmaranthPorts):
    """Records every write so the protocol itself can be checked."""

    def __init__(self, ctx, dut):
        super().__init__(ctx, dut)
        self.writes = []

    def set(self, name, value):
        self.writes.append((name, int(value)))
        super().set(name, value)


def test_protocol_order_and_result(rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", a_depth=16, b_depth=16, c_depth=16)
    top = ArrayTop(cfg)
    a, b = rng.integers(0, 16, (3, 4)), rng.integers(0, 16, (4, 3))
    out = {}

    async def bench(ctx):
        ports = RecordingPorts(ctx, top)
        host = ArrayHost(ports, cfg.acc_bits)
        await host.idle()
        ports.writes.clear()
        out["run"] = await host_gemm(host, cfg, a, b)
        out["writes"] = ports.writes

    _simulate(top, bench)
    result, cycles, overflow, seconds, sched = out["run"]
    assert np.array_equal(result, golden_for(cfg, a, b))
    assert cycles == sched.cycles and overflow is False and seconds >= 0
    names = [n for n, _ in out["writes"]]
    # load A, load B, the job, start pulse, then reads -- in that order
    first = {n: names.index(n) for n in ("wr_data", "m_tiles", "start", "rd_addr")}
    assert first["wr_data"] < first["m_tiles"] < first["start"] < first["rd_addr"]
    assert out["writes"].count(("start", 1)) == 1
    assert ("wr_sel", WR_A) in out["writes"]


def test_done_that_never_rises_is_an_error():
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", a_depth=16, b_depth=16, c_depth=16)
    top = ArrayTop(cfg)
    p = prepare_job(cfg, np.ones((2, 2), int), np.ones((2, 2), int))
    errors = []

    async def bench(ctx):
        host = ArrayHost(AmaranthPorts(ctx, top), cfg.acc_bits)
        await host.idle()
        try:
            await host.run(p.job, max_cycles=5)
        except RuntimeError as e:
            errors.append(str(e))

    _simulate(top, bench)
    assert errors == ["done did not rise within 5 cycles"]


def test_run_job_loads_both_buffers(rng):
    cfg = ArrayConfig(rows=2, cols=3, pe="fp4_e2m1", dataflow="ws", a_depth=32, b_depth=32,
                      c_depth=32)
    top = ArrayTop(cfg)
    a, b = rng.integers(0, 16, (5, 7)), rng.integers(0, 16, (7, 4))
    p = prepare_job(cfg, a, b)
    out = {}

    async def bench(ctx):
        host = ArrayHost(AmaranthPorts(ctx, top), cfg.acc_bits)
        await host.idle()
        out["r"] = await run_job(host, chunks_to_ints(p.a_words), chunks_to_ints(p.b_words),
                                 p.job, [int(x) for x in p.addresses])

    _simulate(top, bench)
    got = p.schedule.unpack_results(out["r"].values, cfg.acc_bits)
    assert np.array_equal(got, golden_for(cfg, a, b)) and out["r"].cycles == p.schedule.cycles


def test_read_latency_two_streams_results_two_edges_behind(rng):
    """``read_latency=2`` (the FPGA build): a new ``rd_addr`` every cycle, each word two clock
    edges after its address, the same results as the golden model."""
    cfg = ArrayConfig(rows=2, cols=3, pe="int4", a_depth=16, b_depth=16, c_depth=16)
    top = ArrayTop(cfg, read_latency=2)
    a, b = rng.integers(0, 16, (3, 5)), rng.integers(0, 16, (5, 4))
    p = prepare_job(cfg, a, b)
    addresses = [int(x) for x in p.addresses]
    mask = (1 << cfg.acc_bits) - 1
    out = []

    async def bench(ctx):
        host = ArrayHost(AmaranthPorts(ctx, top), cfg.acc_bits)
        await host.idle()
        await host.load(WR_A, chunks_to_ints(p.a_words))
        await host.load(WR_B, chunks_to_ints(p.b_words))
        await host.run(p.job)
        for cycle in range(len(addresses) + 2):
            if cycle < len(addresses):
                ctx.set(top.rd_addr, addresses[cycle])
            await ctx.tick()
            if cycle >= 1:  # the word of the address set one cycle before the last edge
                out.append(ctx.get(top.rd_data) & mask)

    _simulate(top, bench)
    assert top.read_latency == 2 and ArrayTop(cfg).read_latency == 1
    got = p.schedule.unpack_results(out[:len(addresses)], cfg.acc_bits)
    assert np.array_equal(got, golden_for(cfg, a, b))


def test_read_latency_wrong_value():
    cfg = ArrayConfig(rows=2, cols=2, pe="int4")
    for bad in (0, 3, True, "2"):
        with pytest.raises(ValueError, match=r"^read_latency must be 1 or 2, not "):
            ArrayTop(cfg, read_latency=bad)
