"""Dynamic energy of a gate-level netlist from its switching activity: sum of toggles x CV^2/2.

Every transition of a net charges or discharges its capacitance ``C`` once and dissipates
``C V^2 / 2``; so a run's dynamic energy is ``sum over nets of transitions(net) x C(net) x
V^2 / 2``. The transitions come from simulating the netlist
(:func:`nybble.sim.toggles.run_netlist`); this module gives each net a capacitance and sums.

**The generic capacitance model** (no Liberty file; Yosys's generic gates). A net's
capacitance is counted in *gate units* ``u`` -- the input capacitance of one transistor gate,
wire share included -- and converted with one constant, :attr:`EnergyModel.unit_ff`::

    C(net) = driver's own output load         (GENERIC_DRIVER_LOAD: 2 for an inverting gate,
                                                4 for a gate with an internal stage, XOR /
                                                XNOR / MUX 6, a flip-flop's Q 8)
           + sum of the input pins it drives   (GENERIC_PIN_LOAD: 2 per pin = one n- and one
                                                p-transistor gate; 4 for an XOR / XNOR input
                                                and a MUX select, which also feed an
                                                inverter; 8 for a flip-flop clock pin)
           + WIRE_LOAD per pin driven          (1 u of wire per fan-out)
           + OUTPUT_PORT_LOAD if it leaves the design (the next stage's input, 2 u)

The internal nodes of compound gates and flip-flops switch with their outputs and are folded
into the driver's load; the clock net carries every flip-flop's clock pin and switches twice
per cycle. Node and voltage: 45 nm, 0.9 V (Horowitz, ISSCC 2014). ``unit_ff`` was calibrated
once (:data:`GENERIC_45NM`): the geometric mean of published / modelled energy over the
Horowitz integer and fp16 multiply and integer add anchors, each operator synthesised and
simulated on uniform random operands (``nybble energy --calibrate`` repeats it). Ratios
between circuits do not depend on ``unit_ff``.

Leakage is omitted (the generic model has no leakage data).

**With a Liberty file** (:mod:`.liberty_energy`) the capacitances are the input pin
capacitances of the library cells matched to each generic gate, at the library's voltage, and
leakage is the matched cells' ``cell_leakage_power``.

Breakdown categories, by the module and role of each net's driver (:func:`categorise`):
``multiplier`` (product units, LUT tables), ``adder_tree`` (a PE's own logic: the dot
product's adder tree), ``accumulator`` (adder, register, overflow flag), ``registers``
(operand forwarding and pipeline flip-flops with their enable / reset muxes), ``clock`` (the
clock net), ``inputs`` (the design's input port bits, i.e. the load the upstream registers
drive), ``control`` (anything else, in arrays).
"""

import dataclasses

from nybble.sw.errors import ParameterError, ParameterTypeError
from .liberty_energy import LibertyModel

__all__ = ["EnergyModel", "GENERIC_45NM", "GENERIC_PIN_LOAD", "GENERIC_DRIVER_LOAD",
           "WIRE_LOAD", "OUTPUT_PORT_LOAD", "ENERGY_CATEGORIES", "net_capacitance",
           "categorise", "netlist_energy"]

#: Input pin load in gate units, per cell type and pin (default 2 per pin).
GENERIC_PIN_LOAD = {
    "$_XOR_": {"A": 4, "B": 4},
    "$_XNOR_": {"A": 4, "B": 4},
    "$_MUX_": {"A": 2, "B": 2, "S": 4},
    "$_NMUX_": {"A": 2, "B": 2, "S": 4},
    "$_DFF_P_": {"C": 8, "D": 2},
    "$_DFF_N_": {"C": 8, "D": 2},
}
_DEFAULT_PIN_LOAD = 2

#: A driver's own output load in gate units (drain diffusion and internal nodes).
GENERIC_DRIVER_LOAD = {
    "input": 0, "$_NOT_": 2, "$_NAND_": 2, "$_NOR_": 2, "$_AOI3_": 2, "$_OAI3_": 2,
    "$_AOI4_": 2, "$_OAI4_": 2, "$_BUF_": 4, "$_AND_": 4, "$_OR_": 4, "$_ANDNOT_": 4,
    "$_ORNOT_": 4, "$_XOR_": 6, "$_XNOR_": 6, "$_MUX_": 6, "$_NMUX_": 6,
    "$_DFF_P_": 8, "$_DFF_N_": 8,
}

#: Wire load per input pin driven, in gate units.
WIRE_LOAD = 1
#: Load of a net that leaves the design through an output port, in gate units.
OUTPUT_PORT_LOAD = 2

#: Breakdown categories, in the order plots stack them.
ENERGY_CATEGORIES = ("multiplier", "adder_tree", "accumulator", "registers", "clock",
                     "inputs", "control")


@dataclasses.dataclass(frozen=True)
class EnergyModel:
    """Technology of the generic model: ``node`` (label), supply ``volts``, and ``unit_ff``,
    the capacitance of one gate unit in femtofarads (module docstring)."""
    node: str
    volts: float
    unit_ff: float

    def __post_init__(self):
        for name in ("volts", "unit_ff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ParameterError(f"{name} must be a positive number, not {value!r}")

    @property
    def pj_per_unit_toggle(self):
        """Energy of one transition of one gate unit, in pJ: ``unit_ff * V^2 / 2``."""
        return self.unit_ff * 1e-3 * self.volts ** 2 / 2

    def describe(self):
        return (f"generic gates, {self.node}, {self.volts:g} V, {self.unit_ff:.3g} fF per "
                f"gate unit (calibrated on Horowitz ISSCC 2014); leakage omitted")


#: The calibrated generic model (module docstring). ``unit_ff`` is the geometric-mean fit of
#: ``nybble energy --calibrate`` over the six reference operators (8b / 32b int add and mult,
#: fp16 / fp32 mult; 20,000 random operand pairs each): 0.4085 fF per gate unit, a plausible
#: 45 nm gate-plus-wire capacitance. Published / model after the fit: 0.88 (8b add), 0.67
#: (32b add), 0.76 (8b mult), 0.76 (32b mult), 1.96 (fp16 mult), 1.49 (fp32 mult).
GENERIC_45NM = EnergyModel(node="45 nm", volts=0.9, unit_ff=0.4085)


def liberty_capacitance_ff(netlist, liberty):
    """Capacitance of every net in fF from a :class:`~nybble.synth.liberty_energy.LibertyModel`:
    the input pin capacitances of the matched cells the net drives."""
    return {net: sum(liberty.pin_ff(kind, pin) for kind, pin in netlist.loads.get(net, ()))
            for net in netlist.nets}


def net_capacitance(netlist):
    """Capacitance of every net of ``netlist`` in gate units (module docstring)."""
    outputs = set(netlist.output_nets)
    cap = {}
    for net in netlist.nets:
        kind = netlist.driver.get(net, ["input"])[0]
        units = GENERIC_DRIVER_LOAD.get(kind)
        if units is None:
            raise ParameterError(f"no generic load for cell type {kind!r}")
        for load_kind, pin in netlist.loads.get(net, ()):
            units += GENERIC_PIN_LOAD.get(load_kind, {}).get(pin, _DEFAULT_PIN_LOAD)
            units += WIRE_LOAD
        if net in outputs:
            units += OUTPUT_PORT_LOAD
        cap[net] = units
    return cap


def categorise(netlist, *, array=False):
    """Net -> energy category (module docstring), from its driver's module path and role.
    ``array``: the netlist is an array of PEs (instances ``pe_<i>_<j>``); the top's own logic
    (skew, drain) is then ``control``, each PE's own logic its adder tree."""
    clocks = set(netlist.clock_nets)
    out = {}
    for net in netlist.nets:
        kind, path, role = netlist.driver.get(net, ["input", "", "input"])
        parts = path.split(".") if path else []
        if net in clocks:
            cat = "clock"
        elif role == "input":
            cat = "inputs"
        elif any(p.startswith("product_") or p == "table" for p in parts):
            cat = "multiplier"
        elif "accumulator" in parts:
            cat = "accumulator"
        elif role in ("ff", "ff_mux"):
            cat = "registers"
        elif (not parts and not array) or (parts and parts[-1].startswith("pe_")):
            cat = "adder_tree"
        else:
            cat = "control"
        out[net] = cat
    return out


def netlist_energy(netlist, toggles, *, model=GENERIC_45NM, array=False):
    """Dynamic energy of a run in pJ: ``{"total": pJ, "categories": {category: pJ},
    "toggles": transitions, "leakage_nw": static power (None for the generic model)}``.

    ``model``: the generic :class:`EnergyModel`, or a
    :class:`~nybble.synth.liberty_energy.LibertyModel` (capacitances in fF from its cells,
    its ``volts``).

    ``toggles``: net -> transitions (:attr:`nybble.sim.toggles.ToggleRun.toggles`); every
    net of ``netlist`` must be there; ``array``: as :func:`categorise`.
    """
    if isinstance(model, EnergyModel):
        units = net_capacitance(netlist)
        cap = {net: u * model.unit_ff for net, u in units.items()}
        leakage = None
    elif isinstance(model, LibertyModel):
        cap = liberty_capacitance_ff(netlist, model)
        leakage = model.leakage_nw(netlist.cell_types)
    else:
        raise ParameterTypeError(f"model must be an EnergyModel or a LibertyModel, not "
                                 f"{model!r}")
    pj_per_ff = 1e-3 * model.volts ** 2 / 2
    cats = categorise(netlist, array=array)
    missing = [n for n in netlist.nets if n not in toggles]
    if missing:
        raise ParameterError(f"toggles must cover every net of the netlist; missing "
                             f"{len(missing)} (first: {missing[:5]})")
    per_cat = dict.fromkeys(ENERGY_CATEGORIES, 0.0)
    total_toggles = 0
    for net in netlist.nets:
        t = int(toggles[net])
        total_toggles += t
        per_cat[cats[net]] += t * cap[net] * pj_per_ff
    return {"total": sum(per_cat.values()), "categories": per_cat, "toggles": total_toggles,
            "leakage_nw": leakage}
