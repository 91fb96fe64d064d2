"""Liberty cells matched to the generic gates by function; capacitance and leakage from them."""
import pytest

from nybble.synth.energy import netlist_energy
from nybble.synth.liberty_energy import GENERIC_FUNCTIONS, read_liberty_model
from nybble.sw.errors import InputFileError, ParameterError

# (name, area, leakage nW, {pin: capacitance pF}, function); no AND-NOT / OR-NOT cell and an
# inverting mux, so those gates need inverters, as in OSU 0.18 um
CELLS = [
    ("INV", 1, 0.1, {"A": 0.002}, "(!A)"),
    ("BUF", 2, 0.2, {"A": 0.002}, "A"),
    ("NAND2", 2, 0.2, {"A": 0.003, "B": 0.003}, "(!(A B))"),
    ("NOR2", 2, 0.2, {"A": 0.004, "B": 0.005}, "(!(A+B))"),
    ("AND2", 3, 0.3, {"A": 0.003, "B": 0.003}, "(A&B)"),
    ("OR2", 3, 0.3, {"A": 0.003, "B": 0.003}, "(A|B)"),
    ("XOR2", 5, 0.5, {"A": 0.006, "B": 0.007}, "(A^B)"),
    ("XNOR2", 5, 0.5, {"A": 0.006, "B": 0.007}, "(!(A^B))"),
    ("MUXI2", 5, 0.5, {"A": 0.004, "B": 0.004, "S": 0.005}, "(!((S A) + (!S B)))"),
    ("AOI21", 3, 0.3, {"A": 0.004, "B": 0.004, "C": 0.004}, "(!((A B)+C))"),
    ("OAI21", 3, 0.3, {"A": 0.004, "B": 0.004, "C": 0.004}, "(!((A+B) C))"),
    ("AOI22", 4, 0.4, {"A": 0.004, "B": 0.004, "C": 0.004, "D": 0.004}, "(!((A B)+(C D)))"),
    ("OAI22", 4, 0.4, {"A": 0.004, "B": 0.004, "C": 0.004, "D": 0.004}, "(!((A+B) (C+D)))"),
]


def _liberty(flops=True):
    text = ['library (test) {', '  nom_voltage : 1.2;', '  capacitive_load_unit (1,pf);',
            '  leakage_power_unit : "1nW";']
    for name, area, leak, pins, function in CELLS:
        text += [f"  cell ({name}) {{", f"    area : {area};",
                 f"    cell_leakage_power : {leak};"]
        text += [f"    pin ({p}) {{ direction : input; capacitance : {c}; }}"
                 for p, c in pins.items()]
        text += [f'    pin (Y) {{ direction : output; function : "{function}"; }}', "  }"]
    if flops:
        for name, clock in (("DFFP", "CLK"), ("DFFN", "(!CLK)")):
            text += [f"  cell ({name}) {{", "    area : 8;", "    cell_leakage_power : 1.5;",
                     "    ff (IQ,IQN) {", '      next_state : "D";',
                     f'      clocked_on : "{clock}";', "    }",
                     "    pin (D) { direction : input; capacitance : 0.002; }",
                     "    pin (CLK) { direction : input; capacitance : 0.009; }",
                     '    pin (Q) { direction : output; function : "IQ"; }', "  }"]
    return "\n".join(text + ["}"]) + "\n"


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "test.lib"
    path.write_text(_liberty())
    return read_liberty_model(path)


def test_every_generic_gate_is_matched(model):
    assert set(GENERIC_FUNCTIONS) | {"$_DFF_P_", "$_DFF_N_"} == set(model.cells)
    assert model.volts == 1.2
    assert model.cells["$_NAND_"] == {"cells": ["NAND2"], "pins": {"A": 3.0, "B": 3.0},
                                      "leakage_nw": 0.2}
    # A & ~B = NOR(~A, B): the inverter's input is the A pin
    assert model.cells["$_ANDNOT_"]["cells"] == ["NOR2", "INV"]
    assert model.cells["$_ANDNOT_"]["pins"] == {"A": 2.0, "B": pytest.approx(5.0)}
    # S ? B : A from an inverting mux whose S selects its A: inputs swapped, output inverted
    assert model.cells["$_MUX_"]["cells"] == ["MUXI2", "INV"]
    assert model.cells["$_DFF_P_"] == {"cells": ["DFFP"], "pins": {"D": 2.0, "C": 9.0},
                                       "leakage_nw": 1.5}
    assert model.cells["$_DFF_N_"]["cells"] == ["DFFN"]


def test_energy_and_leakage(model, inverter_register):
    e = netlist_energy(inverter_register, {"n1": 4, "n2": 4, "n3": 3, "n4": 10}, model=model)
    # fF x transitions: n1 2 x 4, n2 2 x 4, n3 0 (drives only the port), clock 9 x 10
    assert e["total"] == pytest.approx((8 + 8 + 90) * 1e-3 * 1.2 ** 2 / 2)
    assert e["leakage_nw"] == pytest.approx(0.1 + 1.5)
    assert "Liberty test.lib, 1.2 V" in model.describe()


def test_errors(tmp_path):
    with pytest.raises(InputFileError, match="cannot be read"):
        read_liberty_model(tmp_path / "missing.lib")
    path = tmp_path / "noflop.lib"
    path.write_text(_liberty(flops=False))
    with pytest.raises(ParameterError, match=r"has no plain D flip-flop for \$_DFF_P_"):
        read_liberty_model(path)
