"""A flat gate-level netlist of a design, every net a named wire, for switching activity.

:func:`gate_netlist` synthesises Verilog text with Yosys the way :func:`nybble.synth.yosys.synth_area`
does (``synth -booth`` into Yosys's generic gates, flip-flop enables and synchronous resets
unmapped into muxes by ``dffunmap``), but keeps the hierarchy through synthesis and flattens
afterwards, so that every gate still says which module it came from (``accumulator``,
``product_0``, ... or ``""`` for the top's own logic). It reads Yosys's JSON netlist and
re-emits it as plain Verilog in which every net bit is a one-bit wire ``n<id>``::

    Yosys (synth -booth, hierarchical) -> dffunmap -> flatten -> write_json
        -> Netlist: nets n<id>, their driver (cell type, module), their loads (cell type, pin)
        -> Verilog: assign n7 = n3 & ~n5;  always @(posedge n2) n9 <= n8;  ...

One wire per bit matters twice: Verilator's toggle coverage counts every net (it skips names
that start with ``_``, which Yosys's private ``_NNN_`` wires do), and a net's capacitance
(its fan-out) is known by name. Yosys results are cached with :mod:`nybble.synth.cache`
under the Verilog text, the script and the Yosys version.
"""

import dataclasses
import json
import re

from .cache import cache_key
from .toolchain import yosys_version
from .yosys import _cache_for, _cached_run, _check_design, _check_timeout
from nybble.sw.errors import ToolError

__all__ = ["Netlist", "gate_netlist", "CELL_PINS", "CELL_EXPRESSIONS"]

_SCHEMA = "nybble.synth.netlist/4"

#: Yosys generic cell type -> Verilog expression of its output over its input pins.
CELL_EXPRESSIONS = {
    "$_BUF_": "{A}",
    "$_NOT_": "~{A}",
    "$_AND_": "{A} & {B}",
    "$_NAND_": "~({A} & {B})",
    "$_OR_": "{A} | {B}",
    "$_NOR_": "~({A} | {B})",
    "$_XOR_": "{A} ^ {B}",
    "$_XNOR_": "~({A} ^ {B})",
    "$_ANDNOT_": "{A} & ~{B}",
    "$_ORNOT_": "{A} | ~{B}",
    "$_MUX_": "{S} ? {B} : {A}",
    "$_NMUX_": "~({S} ? {B} : {A})",
    "$_AOI3_": "~(({A} & {B}) | {C})",
    "$_OAI3_": "~(({A} | {B}) & {C})",
    "$_AOI4_": "~(({A} & {B}) | ({C} & {D}))",
    "$_OAI4_": "~(({A} | {B}) & ({C} | {D}))",
}

#: Flip-flop cell types -> clock edge keyword.
_FLIP_FLOPS = {"$_DFF_P_": "posedge", "$_DFF_N_": "negedge"}

#: Input pins of every cell type the netlist may hold.
CELL_PINS = {**{t: tuple(sorted(set(re.findall(r"\{(\w)\}", e))))
                for t, e in CELL_EXPRESSIONS.items()},
             **{t: ("C", "D") for t in _FLIP_FLOPS}}


def _script(top):
    return "\n".join([
        "read_verilog design.v",
        f"hierarchy -check -top {top}",
        "proc",
        "opt",
        # Hierarchical, as synth_area's breakdown run: each module keeps its own gates, and
        # after `flatten` their names still start with the instance path.
        f"synth -booth -top {top}",
        "dffunmap",
        "flatten",
        "opt_clean",
        "delete t:$scopeinfo",
        "write_json netlist.json",
    ]) + "\n"


# `flatten` names a cell of instance `a` `$flatten\a.<name>`; of `a`'s instance `b`
# `$flatten\a.\b.<name>`
_PATH_STEP = re.compile(r"^(?:\$flatten)?\\([^.$\\]+)\.")


def module_path(cell_name):
    """Instance path of the module a flattened cell came from (``"accumulator"``,
    ``"array.pe_0_1"``), ``""`` for the top's own cells."""
    path = []
    name = cell_name
    while True:
        match = _PATH_STEP.match(name)
        if match is None:
            break
        path.append(match.group(1))
        name = name[match.end():]
    return ".".join(path)


@dataclasses.dataclass(frozen=True)
class Netlist:
    """A flat gate-level netlist (module docstring).

    Attributes
    ----------
    top : str
        Module name of the emitted Verilog.
    verilog : str
        The netlist as Verilog: one wire ``n<id>`` per net bit, one ``assign`` per gate, one
        ``always`` per flip-flop; ports as in the source design.
    inputs, outputs : dict of str to int
        Port name -> width in bits, in the design's order.
    port_nets : dict of str to list
        Port name -> its bits' nets, least significant first (a constant bit is ``"0"`` /
        ``"1"``).
    nets : list of str
        Every net's wire name (``n<id>``).
    driver : dict of str to list
        Net -> ``[cell type, module path, role]`` of the gate that drives it; role is
        ``"ff"`` (a flip-flop), ``"ff_mux"`` (an enable / reset mux ``dffunmap`` put in front
        of one), ``"logic"`` or ``"input"`` (an input port bit, cell type ``"input"``).
    loads : dict of str to list
        Net -> ``[[cell type, pin], ...]`` of the gate inputs it drives.
    output_nets : list of str
        Nets that also leave the design through an output port (they drive the outside).
    cell_types : dict of str to int
        Gates per cell type.
    seconds : float
        Yosys wall time (of the run that filled the cache, when ``cached``).
    cached : bool
    """
    top: str
    verilog: str
    inputs: dict
    outputs: dict
    port_nets: dict
    nets: list
    driver: dict
    loads: dict
    output_nets: list
    cell_types: dict
    seconds: float
    cached: bool = False

    @property
    def clock_nets(self):
        """Nets that drive a flip-flop clock pin."""
        return sorted({n for n, loads in self.loads.items()
                       if any(t in _FLIP_FLOPS and pin == "C" for t, pin in loads)})

    @property
    def flip_flops(self):
        return sum(n for t, n in self.cell_types.items() if t in _FLIP_FLOPS)


def _bit(bit):
    """A JSON netlist bit as a Verilog expression: a net wire or a constant."""
    if isinstance(bit, int):
        return f"n{bit}"
    return "1'b1" if bit == "1" else "1'b0"  # "x" and "z" tie low


def _emit(module, top):
    """``Netlist`` fields from Yosys's JSON module ``module``."""
    ports = module["ports"]
    inputs = {name: len(p["bits"]) for name, p in ports.items() if p["direction"] == "input"}
    outputs = {name: len(p["bits"]) for name, p in ports.items() if p["direction"] == "output"}
    if any(p["direction"] == "inout" for p in ports.values()):
        raise ToolError("gate_netlist: inout ports are not supported")
    driver, loads, regs = {}, {}, set()
    cell_types = {}
    body = []
    for name, p in ports.items():
        if p["direction"] == "input":
            for i, bit in enumerate(p["bits"]):
                if isinstance(bit, int):
                    driver[f"n{bit}"] = ["input", "", "input"]
                    select = "" if len(p["bits"]) == 1 else f"[{i}]"
                    body.append(f"  assign n{bit} = {_verilog_port(name)}{select};")
    for cell_name, cell in module["cells"].items():
        kind = cell["type"]
        conns = cell["connections"]
        if kind not in CELL_PINS:
            raise ToolError(f"gate_netlist: Yosys left a cell of type {kind!r} ({cell_name}); "
                            f"the netlist supports {', '.join(sorted(CELL_PINS))}")
        cell_types[kind] = cell_types.get(kind, 0) + 1
        (out_pin,) = [pin for pin in conns if pin not in CELL_PINS[kind]]
        (out_bit,) = conns[out_pin]
        if not isinstance(out_bit, int):
            continue  # drives a constant: nothing to switch
        out = f"n{out_bit}"
        # dffunmap's enable / reset muxes belong to their flip-flop (as in synth_area's
        # register split)
        role = "ff" if kind in _FLIP_FLOPS else "ff_mux" if "unmap_" in cell_name else "logic"
        driver[out] = [kind, module_path(cell_name), role]
        args = {pin: _bit(conns[pin][0]) for pin in CELL_PINS[kind]}
        for pin in CELL_PINS[kind]:
            bit = conns[pin][0]
            if isinstance(bit, int):
                loads.setdefault(f"n{bit}", []).append([kind, pin])
        if kind in _FLIP_FLOPS:
            regs.add(out)
            body.append(f"  always @({_FLIP_FLOPS[kind]} {args['C']}) {out} <= {args['D']};")
        else:
            body.append(f"  assign {out} = {CELL_EXPRESSIONS[kind].format(**args)};")
    output_nets = []
    for name, p in ports.items():
        if p["direction"] == "output":
            bits = [_bit(b) for b in reversed(p["bits"])]
            body.append(f"  assign {_verilog_port(name)} = {{{', '.join(bits)}}};")
            output_nets += [f"n{b}" for b in p["bits"] if isinstance(b, int)]
    nets = sorted(set(driver) | set(loads), key=lambda n: int(n[1:]))
    undriven = [n for n in nets if n not in driver]
    decls = [f"  {'reg' if n in regs else 'wire'} {n};" for n in nets]
    body += [f"  assign {n} = 1'b0;" for n in undriven]  # undriven (x) bits tie low
    header = [f"module {top}("]
    header.append(",\n".join(f"  {p['direction']} wire {_range(len(p['bits']))}"
                             f"{_verilog_port(name)}" for name, p in ports.items()))
    header.append(");")
    verilog = "\n".join(["// Generated by nybble.synth.netlist: one wire per net bit.",
                         "/* verilator lint_off UNOPTFLAT */", *header, *decls, *body,
                         "endmodule", ""])
    port_nets = {name: [f"n{b}" if isinstance(b, int) else b for b in p["bits"]]
                 for name, p in ports.items()}
    return dict(top=top, verilog=verilog, inputs=inputs, outputs=outputs,
                port_nets=port_nets, nets=nets,
                driver=driver, loads=loads, output_nets=sorted(set(output_nets)),
                cell_types=dict(sorted(cell_types.items())))


def _range(width):
    return "" if width == 1 else f"[{width - 1}:0] "


def _verilog_port(name):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ToolError(f"gate_netlist: port name {name!r} is not a plain Verilog identifier")
    return name


def gate_netlist(verilog_text, top="top", *, cache_dir=None, timeout=None):
    """The flat gate-level :class:`Netlist` of ``verilog_text`` (top module ``top``).

    Cached (``cache_dir``, default ``$NYBBLE_CACHE/yosys`` or ``build/cache/yosys``) under
    the Verilog text, the script and the Yosys version. Raises
    :exc:`~nybble.sw.errors.ToolError` when Yosys fails or leaves a cell the netlist cannot
    express.
    """
    _check_design(verilog_text, top)
    _check_timeout(timeout)
    script = _script(top)
    key = cache_key(_SCHEMA, top, script, verilog_text, yosys_version())
    cache = _cache_for(cache_dir)
    stored = cache.get(key)
    if stored is not None:
        try:
            return Netlist(**stored, cached=True)
        except TypeError:
            pass  # another layout: recompute

    def parse(work):
        with open(work / "netlist.json", encoding="utf-8") as file:
            modules = json.load(file)["modules"]
        if top not in modules:
            raise KeyError(f"top module {top!r} missing from Yosys's netlist")
        return _emit(modules[top], top)

    result, seconds = _cached_run(cache, key, script, {"design.v": verilog_text}, timeout,
                                  parse)
    result["seconds"] = seconds
    cache.put(key, result)
    return Netlist(**result, cached=False)
