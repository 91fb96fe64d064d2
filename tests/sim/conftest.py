"""What the simulation tests share: several GEMMs back to back on one simulated top."""
# amaranth: UnusedElaboratable=no
import pytest
from amaranth.sim import Simulator

from nybble.hw.top import ArrayTop
from nybble.sim.host import AmaranthPorts, ArrayHost
from nybble.sim.run import host_gemm


@pytest.fixture
def back_to_back():
    """``back_to_back(config, [(a, b), ...])``: every job in one Amaranth simulation of one
    top, no reset between them; returns :func:`nybble.sim.run.host_gemm`'s tuples."""
    def run(cfg, jobs):
        top = ArrayTop(cfg)
        sim = Simulator(top)
        sim.add_clock(1e-8)
        got = []

        async def bench(ctx):
            host = ArrayHost(AmaranthPorts(ctx, top), cfg.acc_bits)
            await host.idle()
            for a, b in jobs:
                got.append(await host_gemm(host, cfg, a, b))

        sim.add_testbench(bench)
        sim.run()
        return got
    return run
