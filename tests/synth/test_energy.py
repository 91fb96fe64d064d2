"""The generic capacitance model and the energy sum, on a netlist small enough to count
(``inverter_register``, tests/synth/conftest.py)."""
import pytest

from nybble.synth.energy import (ENERGY_CATEGORIES, GENERIC_45NM, EnergyModel, categorise,
                                 net_capacitance, netlist_energy)
from nybble.sw.errors import ParameterError, ParameterTypeError


def test_capacitance_by_hand(inverter_register):
    # input 0 + NOT pin 2 + wire 1; NOT 2 + D pin 2 + wire 1; DFF 8 + port 2; C pin 8 + wire 1
    assert net_capacitance(inverter_register) == {"n1": 3, "n2": 5, "n3": 10, "n4": 9}


def test_categories(inverter_register):
    assert categorise(inverter_register) == {"n1": "inputs", "n2": "multiplier", "n3": "registers",
                                      "n4": "clock"}


def test_energy_by_hand(inverter_register):
    model = EnergyModel("test", volts=1.0, unit_ff=2.0)
    e = netlist_energy(inverter_register, {"n1": 4, "n2": 4, "n3": 3, "n4": 10}, model=model)
    unit_toggles = 4 * 3 + 4 * 5 + 3 * 10 + 10 * 9
    pj = 2.0e-3 * 1.0 ** 2 / 2  # one unit, one transition: C V^2 / 2
    assert e["toggles"] == 21 and e["leakage_nw"] is None
    assert e["total"] == pytest.approx(unit_toggles * pj)
    assert e["categories"]["clock"] == pytest.approx(90 * pj)
    assert e["categories"]["adder_tree"] == 0.0
    assert set(e["categories"]) == set(ENERGY_CATEGORIES)
    assert sum(e["categories"].values()) == pytest.approx(e["total"])


def test_no_toggles_no_energy(inverter_register):
    e = netlist_energy(inverter_register, dict.fromkeys(["n1", "n2", "n3", "n4"], 0))
    assert e["total"] == 0.0


def test_errors(inverter_register):
    with pytest.raises(ParameterError, match="toggles must cover every net of the netlist; "
                                             r"missing 1 \(first: \['n4'\]\)"):
        netlist_energy(inverter_register, {"n1": 1, "n2": 1, "n3": 1})
    with pytest.raises(ParameterTypeError, match="model must be an EnergyModel or a "
                                                 "LibertyModel"):
        netlist_energy(inverter_register, {}, model="45nm")
    with pytest.raises(ParameterError, match="volts must be a positive number, not 0"):
        EnergyModel("x", volts=0, unit_ff=1.0)


def test_generic_model_is_stated():
    assert GENERIC_45NM.node == "45 nm" and GENERIC_45NM.volts == 0.9
    assert "leakage omitted" in GENERIC_45NM.describe()
