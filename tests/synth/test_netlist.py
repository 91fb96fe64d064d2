"""The flat gate-level netlist: one wire per net, drivers, loads and module paths."""
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.synth.netlist import CELL_PINS, gate_netlist, module_path
from nybble.synth.verilog import to_verilog
from nybble.sw.errors import ParameterError


class Inner(wiring.Component):
    def __init__(self):
        super().__init__({"x": In(2), "y": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.x[0] ^ self.x[1])
        return m


class Outer(wiring.Component):
    """``q`` registers ``inner``'s XOR of ``a``'s two bits, enabled by ``en``."""

    def __init__(self):
        super().__init__({"a": In(2), "en": In(1), "q": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = Inner()
        m.d.comb += inner.x.eq(self.a)
        with m.If(self.en):
            m.d.sync += self.q.eq(inner.y)
        return m


@pytest.fixture(scope="module")
def outer():
    return gate_netlist(to_verilog(Outer()))


def test_ports_and_nets(outer):
    assert outer.inputs == {"a": 2, "en": 1, "clk": 1, "rst": 1}
    assert outer.outputs == {"q": 1}
    assert all(n.startswith("n") for n in outer.nets)
    assert sorted(sum(outer.port_nets.values(), [])) == sorted(
        n for n in outer.nets if outer.driver[n][2] == "input" or n in outer.output_nets)
    assert outer.flip_flops == 1


def test_driver_module_and_role(outer):
    (y_net,) = [n for n, d in outer.driver.items() if d[0] in ("$_XOR_", "$_XNOR_")]
    assert outer.driver[y_net][1] == "inner"
    (q,) = outer.port_nets["q"]
    assert outer.driver[q] == ["$_DFF_P_", "", "ff"]
    # dffunmap's enable / reset muxes belong to the top's flip-flop
    assert {d[2] for d in outer.driver.values() if d[0] == "$_MUX_"} == {"ff_mux"}
    (clk,) = outer.port_nets["clk"]
    assert outer.clock_nets == [clk]
    assert outer.loads[clk] == [["$_DFF_P_", "C"]]


def test_verilog_has_one_wire_per_net(outer):
    for net in outer.nets:
        assert f" {net};" in outer.verilog
    assert "always @(posedge" in outer.verilog


def test_cached_second_call(outer):
    again = gate_netlist(to_verilog(Outer()))
    assert again.cached and again.verilog == outer.verilog


@pytest.mark.parametrize("name, path", [
    ("$abc$12$auto$1", ""),
    ("$flatten\\accumulator.$abc$1688$blif$1688$110", "accumulator"),
    ("$flatten\\accumulator.$auto$ff.cc:337:slice$446", "accumulator"),
    ("$flatten\\pe_0_1.\\accumulator.$abc$3", "pe_0_1.accumulator"),
    ("$flatten\\pe_0_1.$auto$ff.cc:1:unmap_ce$2", "pe_0_1"),
])
def test_module_path(name, path):
    assert module_path(name) == path


def test_every_cell_type_has_pins():
    assert CELL_PINS["$_MUX_"] == ("A", "B", "S")
    assert CELL_PINS["$_DFF_P_"] == ("C", "D")


def test_bad_top():
    with pytest.raises(ParameterError, match="Top module must be a Verilog identifier"):
        gate_netlist("module x; endmodule", "x y")
