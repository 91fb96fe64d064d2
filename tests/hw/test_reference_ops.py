# amaranth: UnusedElaboratable=no
"""Reference operators against their bit-exact models, in Amaranth's simulator."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from nybble.hw.reference_ops import (REFERENCE_OPERATORS, FloatMultiplier, IntAdder,
                                     reference_operator)
from nybble.sw.errors import ParameterError


def _simulate(component, a, b):
    out = []

    async def bench(ctx):
        for x, y in zip(a, b):
            ctx.set(component.a, int(x))
            ctx.set(component.b, int(y))
            await ctx.delay(1e-9)
            out.append(ctx.get(component.y))

    sim = Simulator(component)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("name", list(REFERENCE_OPERATORS))
def test_operator_matches_model(name, rng):
    op = reference_operator(name)
    a, b = op.stimulus(rng, 300)
    got = _simulate(op.build(), a, b)
    want = op.model(a, b)
    bad = [(hex(int(x)), hex(int(y)), hex(g), hex(int(w)))
           for x, y, g, w in zip(a, b, got, want) if g != int(w)]
    assert not bad, f"{name}: {len(bad)} mismatches, first {bad[:3]}"


def test_fp16_rounding_ties_to_even():
    op = reference_operator("16b fp mult")
    # 1.5 * (1 + 2**-10): the exact product 1.5 + 1.5 * 2**-10 sits halfway between
    # two fp16 numbers (after normalisation): ties go to the even significand
    one_and_half = np.float16(1.5).view(np.uint16)
    cases_a = [one_and_half, np.float16(1 + 2**-10).view(np.uint16), 0x3C01, 0x3FFF]
    cases_b = [np.float16(1 + 2**-10).view(np.uint16), one_and_half, 0x3C01, 0x3FFF]
    got = _simulate(op.build(), cases_a, cases_b)
    assert got == op.model(np.array(cases_a), np.array(cases_b)).tolist()


def test_int_adder_exhaustive_4bit():
    adder = IntAdder(4)
    a, b = np.meshgrid(np.arange(16), np.arange(16))
    got = _simulate(adder, a.ravel(), b.ravel())
    sa = np.where(a.ravel() >= 8, a.ravel() - 16, a.ravel())
    sb = np.where(b.ravel() >= 8, b.ravel() - 16, b.ravel())
    assert got == ((sa + sb) & 31).tolist()


def test_bad_name():
    with pytest.raises(ParameterError, match="reference operator must be one of 8b int add"):
        reference_operator("64b int add")


def test_widths():
    assert len(FloatMultiplier(5, 10).y) == 16
    with pytest.raises(ParameterError, match="Adder width"):
        IntAdder(1)
