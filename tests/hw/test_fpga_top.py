# amaranth: UnusedElaboratable=no
"""The FPGA wrapper's host protocol in Amaranth's simulator, against the golden model."""

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from nybble.hw.config import ArrayConfig
from nybble.hw.fpga_top import BoardTop, HostBridge, PeProbeTop, UartHost, REPLY_ERROR
from nybble.sim.check import golden_for
from nybble.sim.fpga_host import SerialHost, decode_info, encode_read
from nybble.sim.run import host_gemm
from nybble.sw import get_format


def _codes(rng, fmt, shape):
    return rng.integers(0, get_format(fmt).n_codes, size=shape)


class StreamHost:
    """Drives a HostBridge's byte streams: send a request, collect its reply. ``stall``:
    cycles of ``tx_ready`` low before each reply byte is taken (back-pressure)."""

    def __init__(self, bridge, ctx, *, stall=0):
        self.bridge, self.ctx, self.stall = bridge, ctx, stall

    async def exchange(self, request, length, timeout=100_000):
        b, ctx = self.bridge, self.ctx
        for byte in request:
            ctx.set(b.rx_data, byte)
            ctx.set(b.rx_valid, 1)
            while not ctx.get(b.rx_ready):
                await ctx.tick()
            await ctx.tick()
        ctx.set(b.rx_valid, 0)
        reply = bytearray()
        for _ in range(timeout):
            if len(reply) == length:
                break
            if self.stall:
                ctx.set(b.tx_ready, 0)
                for _ in range(self.stall):
                    await ctx.tick()
            ctx.set(b.tx_ready, 1)
            if ctx.get(b.tx_valid):
                reply.append(ctx.get(b.tx_data))
            await ctx.tick()
        ctx.set(b.tx_ready, 0)
        assert len(reply) == length, f"reply {reply.hex()} after {timeout} cycles, " \
                                     f"{length} bytes expected"
        return bytes(reply)


def _simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _jobs(config, rng, shapes):
    jobs = []
    for m, n, k in shapes:
        a = _codes(rng, config.formats[0], (m, k))
        b = _codes(rng, config.formats[1], (k, n))
        jobs.append((a, b, golden_for(config, a, b)))
    return jobs


@pytest.mark.parametrize("pe, rows, cols, stall", [
    ("int4", 2, 2, 0),
    ("fp4_e2m1", 2, 3, 1),
    ("int4_dp4", 2, 2, 0),
])
def test_bridge_runs_gemms_back_to_back(pe, rows, cols, stall, rng):
    config = ArrayConfig(rows=rows, cols=cols, pe=pe, a_depth=32, b_depth=32, c_depth=32)
    bridge = HostBridge(config)
    # back-to-back jobs without reset, edge tiles, K not a multiple of the lanes
    jobs = _jobs(config, rng, [(3, 2, 5), (rows, cols, 1), (4, 5, 9)])
    out = {}

    async def bench(ctx):
        stream = StreamHost(bridge, ctx, stall=stall)
        host = await SerialHost.connect(stream)
        out["info"] = host.info
        out["results"] = []
        for a, b, _ in jobs:
            got, cycles, overflow, _, sched = await host_gemm(host, config, a, b,
                                                              col_bits=host.info["col_bits"])
            out["results"].append(((got, cycles, overflow), sched.cycles))
        out["error"] = await stream.exchange(b"\x7e", 1)

    _simulate(bridge, bench)
    assert out["info"] == {"version": 1, "rows": rows, "cols": cols,
                           "lanes": bridge.layout.lanes, "wr_bytes": bridge.wr_bytes,
                           "acc_bytes": 4, "col_bits": bridge.layout.col_bits}
    for n, ((a, b, want), ((got, cycles, overflow), model_cycles)) in \
            enumerate(zip(jobs, out["results"])):
        bad = np.argwhere(got != want)
        assert not len(bad), f"job {n}: first mismatch at {tuple(bad[0])}: " \
                             f"{got[tuple(bad[0])]} != {want[tuple(bad[0])]}"
        assert cycles == model_cycles and overflow is False, (n, cycles, model_cycles)
    assert out["error"] == bytes([REPLY_ERROR])


def test_uart_host_runs_a_gemm(rng):
    """The whole wrapper, bit by bit over rx / tx (4 clock cycles per bit)."""
    config = ArrayConfig(rows=2, cols=2, pe="int4", a_depth=16, b_depth=16, c_depth=16)
    divisor = 4
    dut = UartHost(config, divisor)
    (a, b, want), = _jobs(config, rng, [(2, 3, 3)])
    out = {}

    async def send(ctx, byte):
        for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
            ctx.set(dut.rx, bit)
            await ctx.tick().repeat(divisor)

    async def receive(ctx, length, timeout=20_000):
        data = bytearray()
        for _ in range(length):
            for _ in range(timeout):
                if not ctx.get(dut.tx):
                    break
                await ctx.tick()
            else:
                raise AssertionError(f"no start bit; received {data.hex()}")
            await ctx.tick().repeat(divisor // 2)   # middle of the start bit
            byte = 0
            for i in range(8):
                await ctx.tick().repeat(divisor)
                byte |= ctx.get(dut.tx) << i
            await ctx.tick().repeat(divisor)
            assert ctx.get(dut.tx) == 1, "stop bit"
            data.append(byte)
        return bytes(data)

    class UartLine:
        """The transport: request bytes out on rx, reply bytes in from tx."""

        async def exchange(self, request, length):
            for byte in request:
                await send(ctx_[0], byte)
            return await receive(ctx_[0], length)

    ctx_ = []

    async def bench(ctx):
        ctx_.append(ctx)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        host = await SerialHost.connect(UartLine())
        out["result"] = await host_gemm(host, config, a, b, col_bits=host.info["col_bits"])

    _simulate(dut, bench)
    got, cycles, overflow, _, _ = out["result"]
    np.testing.assert_array_equal(got, want)
    assert not overflow


def test_read_count_zero_has_no_reply_and_read_is_sign_extended(rng):
    config = ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=12, a_depth=8, b_depth=8,
                         c_depth=8)
    bridge = HostBridge(config)
    assert bridge.acc_bytes == 2
    a = np.full((2, 2), 8)    # int4 code 8 = -8
    b = np.full((2, 2), 7)    # 7: every result -8 * 7 * 2 = -112
    out = {}

    async def bench(ctx):
        stream = StreamHost(bridge, ctx)
        host = SerialHost(stream, decode_info(bridge.info_bytes()), acc_bits=config.acc_bits)
        out["result"] = await host_gemm(host, config, a, b, col_bits=bridge.layout.col_bits)
        out["empty"] = await stream.exchange(encode_read(0, 0), 0)
        out["raw"] = await stream.exchange(encode_read(0, 1), 2)

    _simulate(bridge, bench)
    np.testing.assert_array_equal(out["result"][0], np.full((2, 2), -112))
    assert out["empty"] == b""
    assert int.from_bytes(out["raw"], "little", signed=True) == -112


def test_wrong_arguments():
    config = ArrayConfig(rows=2, cols=2)  # default depths 4096: 12-bit buffer addresses
    with pytest.raises(ValueError, match=r"^The host protocol's result address \(c_depth x "
                                         r"columns\) must fit in 16 bits, not 17; lower the "
                                         r"depths$"):
        HostBridge(config.replace(c_depth=1 << 16))
    with pytest.raises(TypeError, match=r"^config must be an ArrayConfig, not 'int4'$"):
        HostBridge("int4")
    with pytest.raises(ValueError, match=r"^UART divisor \(clock cycles per bit\) must be in "
                                         r"4\.\.16777216, not 2$"):
        UartHost(config, 2)
    with pytest.raises(ValueError, match=r"^Baud rate 6000000 is too fast for a 12 MHz clock "
                                         r"\(at least 4 clock cycles per bit are needed\)$"):
        BoardTop(config, baud=6_000_000).divisor(12e6)
    assert BoardTop(config).divisor(12e6) == 104


def test_pe_probe_top_wrong_arguments():
    with pytest.raises(TypeError, match=r"^config must be an ArrayConfig, not 'int4'$"):
        PeProbeTop("int4")
    probe = PeProbeTop(ArrayConfig(rows=2, cols=2, pe="int4"))
    assert probe.config.pe == "int4"
    with pytest.raises(ValueError, match=r"^PeProbeTop needs a platform \(an amaranth-boards "
                                         r"board\) to find its UART pins$"):
        Fragment.get(probe, None)
