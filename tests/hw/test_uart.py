# amaranth: UnusedElaboratable=no
"""The UART: transmitter into receiver, bit timing, glitches, overrun."""

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from nybble.hw.uart import UartRx, UartTx


def _loopback(divisor):
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    return m, tx, rx


@pytest.mark.parametrize("divisor", [4, 5, 13])
def test_loopback_back_to_back(divisor):
    m, tx, rx = _loopback(divisor)
    data = [0x00, 0xFF, 0x55, 0xA5, 0x01, 0x80, 0x3C]
    got, starts = [], []

    async def sender(ctx):
        for byte in data:
            ctx.set(tx.data, byte)
            ctx.set(tx.valid, 1)
            while not ctx.get(tx.ready):
                await ctx.tick()
            await ctx.tick()
        ctx.set(tx.valid, 0)

    async def receiver(ctx):
        ctx.set(rx.ready, 1)
        for _ in range(12 * divisor * len(data)):
            if ctx.get(rx.valid):
                got.append(ctx.get(rx.data))
            await ctx.tick()

    async def line(ctx):
        # every frame: start bit low for exactly `divisor` cycles, frames back to back
        previous, t = 1, 0
        for _ in range(11 * divisor * len(data)):
            now = ctx.get(tx.tx)
            if previous == 1 and now == 0 and (not starts or t - starts[-1] >= 10 * divisor):
                starts.append(t)
            previous = now
            t += 1
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(sender)
    sim.add_testbench(receiver)
    sim.add_testbench(line)
    sim.run()
    assert got == data
    assert not any(d != 10 * divisor for d in (b - a for a, b in zip(starts, starts[1:]))), \
        f"frame starts {starts} are not {10 * divisor} cycles apart"


def _drive(rx, divisor, frames):
    """Testbench that drives raw bit sequences into ``rx.rx`` (LSB-first lists of bits)."""

    async def bench(ctx):
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(divisor)
        for bits in frames:
            for bit in bits:
                ctx.set(rx.rx, bit)
                await ctx.tick().repeat(divisor)
            ctx.set(rx.rx, 1)
            await ctx.tick().repeat(2 * divisor)

    return bench


def _frame(byte, stop=1):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def test_glitch_and_framing_error_are_dropped():
    divisor = 8
    rx = UartRx(divisor)
    got = []

    async def collect(ctx):
        ctx.set(rx.ready, 1)
        for _ in range(60 * divisor):
            if ctx.get(rx.valid):
                got.append(ctx.get(rx.data))
            await ctx.tick()

    async def glitch(ctx):
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(divisor)
        ctx.set(rx.rx, 0)        # a 2-cycle low pulse: no start bit at mid-bit
        await ctx.tick().repeat(2)
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        for bits in (_frame(0x42, stop=0), [1] * 12, _frame(0x99)):
            for bit in bits:
                ctx.set(rx.rx, bit)
                await ctx.tick().repeat(divisor)
        ctx.set(rx.rx, 1)

    sim = Simulator(rx)
    sim.add_clock(1e-8)
    sim.add_testbench(glitch)
    sim.add_testbench(collect)
    sim.run()
    assert got == [0x99]


def test_overrun_keeps_the_first_byte():
    divisor = 4
    rx = UartRx(divisor)
    out = {}

    async def bench(ctx):
        await _drive(rx, divisor, [_frame(0x11), _frame(0x22)])(ctx)
        out["valid"], out["data"], out["overrun"] = (ctx.get(rx.valid), ctx.get(rx.data),
                                                    ctx.get(rx.overrun))

    sim = Simulator(rx)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert out == {"valid": 1, "data": 0x11, "overrun": 1}


def test_wrong_divisor():
    with pytest.raises(ValueError, match=r"^UART divisor \(clock cycles per bit\) must be in "
                                         r"4\.\.16777216, not 3$"):
        UartTx(3)
    with pytest.raises(TypeError, match=r"^UART divisor \(clock cycles per bit\) must be an "
                                        r"integer, not 4\.0$"):
        UartRx(4.0)
