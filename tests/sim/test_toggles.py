"""Toggle counting on gate-level netlists: hand-countable circuits, counted exactly."""
import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.sim.toggles import build_toggle_model, read_coverage, run_netlist
from nybble.sw.errors import ParameterError
from nybble.synth.netlist import gate_netlist
from nybble.synth.verilog import to_verilog


class Counter(wiring.Component):
    """An 8-bit counter, reset to 0, +1 every cycle with ``en``."""

    def __init__(self):
        super().__init__({"en": In(1), "count": Out(8)})

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.count.eq(self.count + 1)
        return m


class Register(wiring.Component):
    """``q`` is ``d`` one clock edge later."""

    def __init__(self):
        super().__init__({"d": In(1), "q": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.q.eq(self.d)
        return m


@pytest.fixture(scope="module")
def counter():
    return build_toggle_model(gate_netlist(to_verilog(Counter())), log=None)


@pytest.fixture(scope="module")
def register():
    return build_toggle_model(gate_netlist(to_verilog(Register())), log=None)


def test_counter_bits_toggle_exactly(counter):
    # 256 edges from 0 back to 0: bit i changes 256 / 2**i times (bit 7: up once, down once)
    run = run_netlist(counter, {"en": np.ones(256, np.int64)})
    nets = counter.netlist.port_nets["count"]
    assert [run.toggles[n] for n in nets] == [256 >> i for i in range(8)]
    assert run.outputs["count"].tolist() == [(i + 1) % 256 for i in range(256)]
    (clock,) = counter.netlist.clock_nets
    assert run.toggles[clock] == 2 * 256


def test_counter_held_counts_nothing_but_the_clock(counter):
    run = run_netlist(counter, {"en": np.zeros(100, np.int64)})
    (clock,) = counter.netlist.clock_nets
    assert {n: t for n, t in run.toggles.items() if t} == {clock: 200}


def test_register_fed_alternating_pattern(register):
    # d = 1, 0, 1, 0, ... after reset (d = 0): d and q change on every one of the n cycles
    n = 1001
    d = np.arange(n) % 2 == 0
    run = run_netlist(register, {"d": d.astype(np.int64)})
    (d_net,) = register.netlist.port_nets["d"]
    (q_net,) = register.netlist.port_nets["q"]
    assert run.toggles[d_net] == n
    assert run.toggles[q_net] == n
    assert run.outputs["q"].tolist() == d.astype(int).tolist()


def test_register_fed_runs_of_ones(register):
    # runs of 3 ones and 2 zeros: d changes twice per period of 5 (and never at the start)
    n = 500
    d = (np.arange(n) % 5 >= 2).astype(np.int64)
    run = run_netlist(register, {"d": d})
    (q_net,) = register.netlist.port_nets["q"]
    assert run.toggles[q_net] == 2 * (n // 5) - 1  # the last period's fall comes after n


def test_stream_errors(register):
    with pytest.raises(ParameterError, match=r"stream ports must be among the netlist's "
                                             r"inputs \(d\), not \['x'\]"):
        run_netlist(register, {"x": [0, 1]})
    with pytest.raises(ParameterError, match="at least one cycle"):
        run_netlist(register, {"d": []})


def test_read_coverage_sums_both_directions(tmp_path):
    path = tmp_path / "cov.dat"
    entry = "C '\x01t\x02toggle\x01page\x02v_toggle/top\x01o\x02{name}:{dir}\x01h\x02top' {n}\n"
    path.write_text("# SystemC::Coverage-3\n"
                    + entry.format(name="n5", dir="0->1", n=3)
                    + entry.format(name="n5", dir="1->0", n=2)
                    + entry.format(name="n6", dir="0->1", n=0)
                    + "C '\x01t\x02line\x01page\x02v_line/top\x01o\x02x\x01h\x02top' 7\n")
    assert read_coverage(path) == {"n5": 5, "n6": 0}
