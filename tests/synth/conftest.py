"""Small Amaranth designs shared by the synthesis tests, and their Verilog (made once).

Test modules get the classes through the ``designs`` fixture (test files are not a package,
so they cannot import this file).
"""

import types

import pytest
from amaranth import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.synth.verilog import to_verilog


class SignedMac(wiring.Component):
    """``acc <= acc + a * b`` when ``en``; ``width``-bit signed operands, 16-bit accumulator."""

    def __init__(self, width=4, acc_width=16):
        self._width = width
        super().__init__({
            "a": In(signed(width)),
            "b": In(signed(width)),
            "en": In(1),
            "acc": Out(signed(acc_width)),
        })

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.acc.eq(self.acc + self.a * self.b)
        return m


class ShiftAccumulate(wiring.Component):
    """``acc <= acc + (a << s)``: the same datapath shape with no ``*`` anywhere."""

    def __init__(self):
        super().__init__({"a": In(signed(4)), "s": In(2), "acc": Out(signed(16))})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.acc.eq(self.acc + (self.a << self.s))
        return m


class Multiplier(wiring.Component):
    def __init__(self, width):
        super().__init__({"a": In(signed(width)), "b": In(signed(width)),
                          "p": Out(signed(2 * width))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m


class Accumulator(wiring.Component):
    def __init__(self, width, acc_width):
        super().__init__({"x": In(signed(width)), "acc": Out(signed(acc_width))})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.acc.eq(self.acc + self.x)
        return m


class MacWithSubmodules(wiring.Component):
    """A 4x4 MAC split into submodules ``multiplier`` and ``accumulator``; the top adds a
    16-bit output register of its own."""

    def __init__(self):
        super().__init__({"a": In(signed(4)), "b": In(signed(4)), "out": Out(signed(16))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.multiplier = multiplier = Multiplier(4)
        m.submodules.accumulator = accumulator = Accumulator(8, 16)
        m.d.comb += [
            multiplier.a.eq(self.a),
            multiplier.b.eq(self.b),
            accumulator.x.eq(multiplier.p),
        ]
        m.d.sync += self.out.eq(accumulator.acc)
        return m


@pytest.fixture(scope="session")
def designs():
    return types.SimpleNamespace(SignedMac=SignedMac, ShiftAccumulate=ShiftAccumulate,
                                 MacWithSubmodules=MacWithSubmodules)


@pytest.fixture(scope="session")
def mac4_verilog():
    return to_verilog(SignedMac(4))


@pytest.fixture(scope="session")
def mac8_verilog():
    return to_verilog(SignedMac(8))


@pytest.fixture(scope="session")
def shift_verilog():
    return to_verilog(ShiftAccumulate())


@pytest.fixture(scope="session")
def hier_verilog():
    return to_verilog(MacWithSubmodules())


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One Yosys cache for the session, so each design is synthesised once across tests."""
    return tmp_path_factory.mktemp("yosys-cache")


@pytest.fixture
def inverter_register():
    """A netlist small enough to count by hand: input ``a`` (n1) -> NOT (n2, in module
    ``product_0``) -> flip-flop (n3, output ``q``), clock ``clk`` (n4)."""
    from nybble.synth.netlist import Netlist
    return Netlist(
        top="top", verilog="", inputs={"a": 1, "clk": 1}, outputs={"q": 1},
        port_nets={"a": ["n1"], "clk": ["n4"], "q": ["n3"]}, nets=["n1", "n2", "n3", "n4"],
        driver={"n1": ["input", "", "input"], "n2": ["$_NOT_", "product_0", "logic"],
                "n3": ["$_DFF_P_", "", "ff"], "n4": ["input", "", "input"]},
        loads={"n1": [["$_NOT_", "A"]], "n2": [["$_DFF_P_", "D"]],
               "n4": [["$_DFF_P_", "C"]]},
        output_nets=["n3"], cell_types={"$_NOT_": 1, "$_DFF_P_": 1}, seconds=0.0)
