# amaranth: UnusedElaboratable=no
"""The accumulator against nybble.sw's block accumulator, including products wider than it."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from nybble.sw import gemm_codes
from nybble.hw.accumulator import Accumulator


def run(acc, products, firsts):
    out = []

    async def bench(ctx):
        for p, f in zip(products, firsts):
            ctx.set(acc.p, int(p))
            ctx.set(acc.first, int(f))
            ctx.set(acc.en, 1)
            await ctx.tick()
            out.append((ctx.get(acc.acc), ctx.get(acc.overflow)))

    sim = Simulator(acc)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("p_bits,acc_bits", [(8, 8), (8, 6), (16, 6), (16, 12)])
def test_against_golden(p_bits, acc_bits, overflow):
    """Products as int16 codes times 1: gemm_codes' accumulator, step by step."""
    rng = np.random.default_rng(p_bits * 100 + acc_bits)
    lim = 1 << (p_bits - 1)
    prods = rng.integers(-lim, lim, 200)
    prods[::7] = lim - 1
    firsts = rng.random(200) < 0.1
    firsts[0] = True
    got = run(Accumulator(p_bits, acc_bits, overflow), prods, firsts)
    start, hi = 0, (1 << (acc_bits - 1))
    for i in range(200):
        if firsts[i]:
            start, flag, prev = i, False, 0
        codes = (prods[start:i + 1] & 0xFFFF)[None, :]
        want = gemm_codes(codes, np.ones((i + 1 - start, 1), np.int64), "int16", "int16",
                          acc_bits=acc_bits, overflow=overflow)[0, 0]
        flag = flag or not -hi <= prev + int(prods[i]) < hi
        prev = int(want)
        assert got[i] == (want, flag), f"step {i} (job from {start}): got {got[i]}, " \
                                       f"expected {(int(want), flag)}"


def test_errors():
    with pytest.raises(ValueError, match=r"^Accumulator width must be in 2\.\.4096, not 1$"):
        Accumulator(8, 1)
    with pytest.raises(ValueError, match=r"^Overflow mode must be one of 'wrap', 'saturate', "
                                         r"not 'clip'$"):
        Accumulator(8, 8, "clip")
    assert Accumulator(np.int64(8), np.int16(9)).acc_bits == 9
