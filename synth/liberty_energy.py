"""Net capacitances and leakage of a generic netlist from a Liberty library's cells.

The netlist keeps Yosys's generic gates (the same netlist is simulated either way); each gate
type is matched, by its Boolean function, to the smallest cell of the library that computes
it -- with inverters on some inputs or the output when no single cell does (OSU 0.18 um has
no AND-NOT; its MUX2X1 is inverting). Then::

    C(net)   = sum of the matched cells' input pin capacitances it drives   (Liberty, fF)
    leakage  = sum over gates of the matched cells' cell_leakage_power      (Liberty, nW)

at the library's ``nom_voltage``. Not modelled, and so missing from the energy: the cells'
internal power tables (short-circuit and internal-node energy), output pin and wire
capacitance (the library has no wire-load model of its own here), the inverters' own output
nodes. Liberty files are read with the ``liberty-parser`` package, Boolean functions with its
``parse_boolean_function``.
"""

import dataclasses
import itertools
import os

import sympy
from liberty.boolean_functions import parse_boolean_function
from liberty.parser import parse_liberty

from nybble.sw.errors import InputFileError, ParameterError
from .netlist import CELL_PINS

__all__ = ["LibertyModel", "read_liberty_model", "GENERIC_FUNCTIONS"]

#: Generic combinational gate -> its function of its input pins (0/1 ints).
GENERIC_FUNCTIONS = {
    "$_BUF_": lambda A: A,
    "$_NOT_": lambda A: 1 - A,
    "$_AND_": lambda A, B: A & B,
    "$_NAND_": lambda A, B: 1 - (A & B),
    "$_OR_": lambda A, B: A | B,
    "$_NOR_": lambda A, B: 1 - (A | B),
    "$_XOR_": lambda A, B: A ^ B,
    "$_XNOR_": lambda A, B: 1 - (A ^ B),
    "$_ANDNOT_": lambda A, B: A & (1 - B),
    "$_ORNOT_": lambda A, B: A | (1 - B),
    "$_MUX_": lambda A, B, S: B if S else A,
    "$_NMUX_": lambda A, B, S: 1 - (B if S else A),
    "$_AOI3_": lambda A, B, C: 1 - ((A & B) | C),
    "$_OAI3_": lambda A, B, C: 1 - ((A | B) & C),
    "$_AOI4_": lambda A, B, C, D: 1 - ((A & B) | (C & D)),
    "$_OAI4_": lambda A, B, C, D: 1 - ((A | B) & (C | D)),
}

_FLIP_FLOP_EDGES = {"$_DFF_P_": False, "$_DFF_N_": True}  # type -> clocked on the inverse


@dataclasses.dataclass(frozen=True)
class LibertyModel:
    """A Liberty library as seen by the energy model: ``path``, ``volts`` (``nom_voltage``),
    and per generic gate type its ``cells`` entry: ``{"cells": [names], "pins": {generic
    pin: fF}, "leakage_nw": nW}``."""
    path: str
    volts: float
    cells: dict

    @property
    def node(self):
        return os.path.basename(self.path)

    def describe(self):
        return (f"Liberty {self.node}, {self.volts:g} V: input pin capacitances of the "
                f"matched cells; internal power and wire load not modelled; leakage from "
                f"cell_leakage_power")

    def pin_ff(self, cell_type, pin):
        return self.cells[cell_type]["pins"][pin]

    def leakage_nw(self, cell_types):
        """Leakage power in nW of a netlist with ``cell_types`` (type -> count)."""
        return sum(self.cells[t]["leakage_nw"] * n for t, n in cell_types.items())


def _unit_ff(lib):
    value, unit = lib["capacitive_load_unit"]
    scale = {"ff": 1.0, "pf": 1e3, "nf": 1e6}.get(str(unit).strip('"').lower())
    if scale is None:
        raise ParameterError(f"Liberty capacitive_load_unit {unit!r} is not ff, pf or nf")
    return float(value) * scale


def _leakage_unit_nw(lib):
    text = str(lib["leakage_power_unit"]).strip('"').lower()
    for suffix, scale in (("nw", 1.0), ("uw", 1e3), ("mw", 1e6), ("pw", 1e-3)):
        if text.endswith(suffix):
            return float(text[:-len(suffix)] or 1) * scale
    raise ParameterError(f"Liberty leakage_power_unit {text!r} is not pW, nW, uW or mW")


def _cells(lib, cap_ff, leak_nw):
    """``[(name, area, leakage nW, {input pin: fF}, output function or None, ff or None)]``
    of the library's single-output cells."""
    out = []
    for cell in lib.get_groups("cell"):
        pins = {p.args[0]: p for p in cell.get_groups("pin")}
        inputs = {n: float(p["capacitance"] or 0) * cap_ff for n, p in pins.items()
                  if p["direction"] == "input"}
        outputs = [p for p in pins.values() if p["direction"] == "output"]
        if len(outputs) != 1:
            continue
        leakage = float(cell["cell_leakage_power"] or 0) * leak_nw
        area = float(cell["area"] or 0)
        ffs = cell.get_groups("ff")
        if ffs:
            ff = ffs[0]
            out.append((cell.args[0], area, leakage, inputs, None,
                        (str(ff["next_state"]).strip('"'), str(ff["clocked_on"]).strip('"'))))
            continue
        function = outputs[0]["function"]
        if function is not None and not cell.get_groups("latch"):
            out.append((cell.args[0], area, leakage, inputs,
                        parse_boolean_function(str(function).strip('"')), None))
    return out


def _truth(expr, names):
    symbols = [sympy.Symbol(n) for n in names]
    return tuple(int(bool(expr.subs(dict(zip(symbols, bits)))))
                 for bits in itertools.product((False, True), repeat=len(names)))


def _match_combinational(kind, cells, inverter):
    """Cheapest ``(cells, pins fF, leakage)`` computing generic ``kind``, allowing inverters
    on inputs and the output."""
    pins = CELL_PINS[kind]
    fn = GENERIC_FUNCTIONS[kind]
    best = None
    for name, area, leakage, inputs, expr, ff in cells:
        if expr is None or len(inputs) != len(pins) or set(map(str, expr.free_symbols)) - set(inputs):
            continue
        table = _truth(expr, list(inputs))
        for order in itertools.permutations(pins):  # cell input i <- generic pin order[i]
            for inv_in in itertools.product((0, 1), repeat=len(pins)):
                for inv_out in (0, 1):
                    want = tuple(
                        fn(**{p: bits[order.index(p)] ^ inv_in[order.index(p)]
                              for p in pins}) ^ inv_out
                        for bits in itertools.product((0, 1), repeat=len(pins)))
                    if want != table:
                        continue
                    inverters = sum(inv_in) + inv_out
                    cost = area + inverters * (inverter[1] if inverter else 0)
                    if best is None or cost < best[0]:
                        caps = {p: (inverter[3]["A"] if inv_in[order.index(p)]
                                    else inputs[list(inputs)[order.index(p)]])
                                for p in pins}
                        names = [name] + [inverter[0]] * inverters
                        best = (cost, names, caps,
                                leakage + inverters * (inverter[2] if inverter else 0))
    return best


def read_liberty_model(path):
    """The :class:`LibertyModel` of the Liberty file ``path``. Raises
    :exc:`InputFileError` when it is missing, :exc:`ParameterError` when it cannot be read or
    some generic gate has no matching cell."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise InputFileError(f"Liberty file {path!r} cannot be read ({e.strerror})") from None
    try:
        lib = parse_liberty(text)
    except Exception as e:  # the parser's own error types vary by version
        raise ParameterError(f"Liberty file {path!r} is not valid Liberty: {e}") from None
    cells = _cells(lib, _unit_ff(lib), _leakage_unit_nw(lib))
    inverters = sorted((c for c in cells if c[4] is not None and len(c[3]) == 1
                        and _truth(c[4], list(c[3])) == (1, 0)), key=lambda c: c[1])
    inverter = inverters[0] if inverters else None
    if inverter is not None:
        inverter = (inverter[0], inverter[1], inverter[2], {"A": next(iter(inverter[3].values()))})
    table = {}
    for kind in GENERIC_FUNCTIONS:
        best = _match_combinational(kind, cells, inverter)
        if best is None:
            raise ParameterError(f"Liberty file {path!r} has no cell for {kind} "
                                 f"(nor with inverters)")
        _, names, caps, leakage = best
        table[kind] = {"cells": names, "pins": caps, "leakage_nw": leakage}
    for kind, inverted in _FLIP_FLOP_EDGES.items():
        found = []
        for name, area, leakage, inputs, expr, ff in cells:
            if ff is None or len(inputs) != 2:
                continue
            data, clock = ff
            clock_pin = clock.strip("()").lstrip("!")
            if clock.strip("()").startswith("!") == inverted and {data, clock_pin} == set(inputs):
                found.append((area, name, {"D": inputs[data], "C": inputs[clock_pin]}, leakage))
        if not found:
            raise ParameterError(f"Liberty file {path!r} has no plain D flip-flop for {kind}")
        area, name, caps, leakage = min(found, key=lambda f: f[0])
        table[kind] = {"cells": [name], "pins": caps, "leakage_nw": leakage}
    return LibertyModel(path=str(path), volts=float(lib["nom_voltage"]), cells=table)
