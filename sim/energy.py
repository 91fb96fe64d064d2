"""Energy per MAC of a PE, measured on its synthesised netlist switching on real operands.

::

    PE kind --pe_verilog--> Verilog --gate_netlist (Yosys)--> netlist (one wire per net)
    A, B codes --gemm_steps--> a, b, first per cycle --run_netlist (Verilator)-->
        acc, overflow per cycle  == golden model, step by step (else ToolError)
        transitions per net      --netlist_energy--> pJ, per category

:func:`pe_energy` runs one PE kind (MAC and dot-product families) on a stream of steps and
returns a :class:`PEEnergy`: pJ per MAC and its breakdown (multiplier / adder tree /
accumulator / registers / clock / inputs). The netlist's ``acc`` and ``overflow`` after every
step are compared with :func:`golden_accumulators` (``nybble.sw.gemm_codes`` per step, the
accumulator's wrap and sticky overflow in between); one differing step is an error, never a
reported number. PEs are synthesised as :func:`nybble.synth.area.pe_verilog` makes them
(accumulators at :func:`~nybble.synth.area.convention_acc_bits`, as ``nybble cost`` compares
them).

:func:`operator_energy` does the same for the reference operators of
:mod:`nybble.hw.reference_ops` (checked against their models), :func:`calibrate` fits the
generic model's one constant to the Horowitz anchors, and :func:`anchor_table` sets the
model's energies and ratios beside the published ones.
"""

import dataclasses
import math
import time

import numpy as np

from nybble.hw.kinds import pe_kind
from nybble.hw.reference_ops import reference_operator
from nybble.synth.area import convention_acc_bits, pe_verilog
from nybble.synth.cost import HOROWITZ_45NM
from nybble.synth.energy import GENERIC_45NM, EnergyModel, netlist_energy
from nybble.synth.netlist import gate_netlist
from nybble.synth.verilog import cached_verilog
from .pe_drive import operand_words
from .toggles import build_toggle_model, run_netlist
from .words import to_signed
from nybble.sw.errors import ParameterError, ToolError

__all__ = ["PEEnergy", "ENERGY_FAMILIES", "pe_energy", "golden_accumulators",
           "operator_energy", "calibrate", "anchor_table", "ANCHOR_RATIOS"]

#: PE families the energy run drives (one step per cycle, plain operand words).
ENERGY_FAMILIES = ("mac", "dp")

#: (numerator, denominator) Horowitz operations whose energy ratio the report checks.
ANCHOR_RATIOS = (("8b int mult", "32b int add"), ("32b int mult", "8b int mult"),
                 ("16b fp mult", "8b int mult"))

# Steps per golden-model call (a CHUNK x CHUNK product whose diagonal is used): 16 balances
# the call overhead against the CHUNK-fold waste, which dominates for wide exact products
# (bf16: 2.6x faster than 64, measured).
_CHUNK = 16


@dataclasses.dataclass(frozen=True)
class PEEnergy:
    """One PE kind on one operand stream.

    ``pj_per_mac``: dynamic energy per MAC in pJ (a dot-product step of ``lanes`` MACs
    counts ``lanes``); ``categories``: the same per category (pJ per MAC); ``macs``,
    ``steps``, ``cycles`` (steps plus the latency tail); ``toggles_per_cycle``: net
    transitions per clock cycle; ``nets``, ``cells``, ``flip_flops`` of the netlist;
    ``acc_bits``; ``checked_steps``: steps whose ``acc`` and ``overflow`` equalled the golden
    model (all of them, or the run raised); ``model``: the energy model's description;
    ``leakage_nw``: static power with a Liberty model (None for the generic one); ``seconds``: wall time of the whole call,
    ``sim_seconds`` of the netlist simulation, ``check_seconds`` of the golden check,
    ``build_seconds`` of the Verilator build (0 when cached), ``synth_seconds`` of Yosys
    (of the run that filled the cache when ``synth_cached``)."""
    kind: str
    data: str
    lanes: int
    acc_bits: int
    macs: int
    steps: int
    cycles: int
    pj_per_mac: float
    categories: dict
    toggles_per_cycle: float
    nets: int
    cells: int
    flip_flops: int
    checked_steps: int
    model: str
    leakage_nw: float | None
    seconds: float
    sim_seconds: float
    check_seconds: float
    build_seconds: float
    synth_seconds: float
    synth_cached: bool
    build_cached: bool


def golden_accumulators(spec, a_steps, b_steps, first):
    """What a PE of ``spec`` (a :class:`~nybble.hw.spec.DotProductSpec`) holds after each
    step: ``(acc, overflow)`` (object / bool arrays). Each step's exact sum is
    ``nybble.sw.gemm_codes`` of its lanes (``spec.model`` with a 4096-bit accumulator, so
    the window's per-product flooring applies); ``acc`` is the running two's-complement sum
    since the last ``first``, wrapped to ``spec.acc_bits``; ``overflow`` is sticky since
    ``first``: some exact partial sum ``acc + step`` left the accumulator's range."""
    if spec.overflow_mode != "wrap":
        raise ParameterError(f"energy runs use wrapping accumulators, not "
                             f"{spec.overflow_mode!r}")
    a_steps, b_steps = np.asarray(a_steps), np.asarray(b_steps)
    n = len(first)
    if n and not first[0]:
        raise ParameterError("the first step must have first=1")
    exact = np.empty(n, dtype=object)
    for c in range(0, n, _CHUNK):
        r = spec.model(a_steps[c:c + _CHUNK], b_steps[c:c + _CHUNK].T, acc_bits=4096,
                       overflow="wrap")
        exact[c:c + _CHUNK] = [int(x) for x in np.diagonal(r)]
    lim = 1 << (spec.acc_bits - 1)
    acc = np.empty(n, dtype=object)
    ovf = np.zeros(n, dtype=bool)
    prev, flag = 0, False
    for i in range(n):
        if first[i]:
            prev, flag = 0, False
        total = prev + exact[i]
        flag = flag or not -lim <= total < lim
        prev = (total + lim) % (2 * lim) - lim
        acc[i], ovf[i] = prev, flag
    return acc, ovf


def _energy_kind(kind):
    kind = pe_kind(kind)
    if kind.pe not in ENERGY_FAMILIES:
        raise ParameterError(f"energy runs take MAC and dot-product PE kinds (families "
                             f"{', '.join(ENERGY_FAMILIES)}), not {kind.name!r} (family "
                             f"{kind.pe!r})")
    if kind.spec().is_lut:
        raise ParameterError(f"energy runs do not load LUT tables yet; {kind.name!r} is a "
                             f"LUT PE")
    return kind


def pe_netlist(kind, *, acc_bits=None, build_dir="build", cache_dir=None):
    """The gate-level netlist of one PE of ``kind`` at ``acc_bits`` (default
    :func:`~nybble.synth.area.convention_acc_bits`) and its spec."""
    kind = _energy_kind(kind)
    acc_bits = convention_acc_bits(kind) if acc_bits is None else acc_bits
    text, _ = pe_verilog(kind, acc_bits=acc_bits, build_dir=build_dir)
    return gate_netlist(text, "top", cache_dir=cache_dir), kind.spec(acc_bits=acc_bits)


def pe_energy(kind, a_steps, b_steps, first, *, data="", acc_bits=None, model=GENERIC_45NM,
              build_dir="build", cache_dir=None, log=None):
    """:class:`PEEnergy` of ``kind`` on the steps ``a_steps``, ``b_steps`` (``(n, lanes)``
    codes) with ``first`` (``(n,)`` bools; :func:`nybble.sim.energy_data.gemm_steps` makes
    them). ``data`` labels the result. Raises :exc:`ToolError` when the netlist's outputs
    differ from the golden model on any step."""
    t0 = time.perf_counter()
    netlist, spec = pe_netlist(kind, acc_bits=acc_bits, build_dir=build_dir,
                               cache_dir=cache_dir)
    a_steps = np.asarray(a_steps, dtype=np.int64)
    b_steps = np.asarray(b_steps, dtype=np.int64)
    first = np.asarray(first, dtype=bool)
    n = len(first)
    if a_steps.shape != (n, spec.lanes) or b_steps.shape != (n, spec.lanes):
        raise ParameterError(f"a_steps and b_steps must have shape ({n}, {spec.lanes}) for "
                             f"{spec.lanes}-lane {pe_kind(kind).name}, not {a_steps.shape} "
                             f"and {b_steps.shape}")
    tail = spec.latency - 1
    pad = np.zeros((tail, spec.lanes), dtype=np.int64)
    stream = {
        "a": operand_words(np.concatenate([a_steps, pad]), spec.fmt_a.bits),
        "b": operand_words(np.concatenate([b_steps, pad]), spec.fmt_b.bits),
        "valid": np.r_[np.ones(n, np.int64), np.zeros(tail, np.int64)],
        "first": np.r_[first.astype(np.int64), np.zeros(tail, np.int64)],
    }
    toggle_model = build_toggle_model(netlist, cache_dir=f"{build_dir}/verilator/toggles",
                                      log=log)
    run = run_netlist(toggle_model, stream, workdir=f"{build_dir}/verilator/toggle_jobs",
                      log=log)
    t_check = time.perf_counter()
    want_acc, want_ovf = golden_accumulators(spec, a_steps, b_steps, first)
    got_acc = to_signed(run.outputs["acc"][tail:], spec.acc_bits)
    got_ovf = run.outputs["overflow"][tail:].astype(bool)
    bad = np.flatnonzero((got_acc != want_acc) | (got_ovf != want_ovf))
    check_seconds = time.perf_counter() - t_check
    if len(bad):
        i = int(bad[0])
        raise ToolError(
            f"the netlist of {pe_kind(kind).name} differs from the golden model on "
            f"{len(bad)} of {n} steps; first at step {i}: a={a_steps[i].tolist()}, "
            f"b={b_steps[i].tolist()}, first={bool(first[i])}: acc={got_acc[i]} "
            f"overflow={bool(got_ovf[i])}, expected acc={want_acc[i]} "
            f"overflow={bool(want_ovf[i])}")
    energy = netlist_energy(netlist, run.toggles, model=model)
    macs = n * spec.lanes
    return PEEnergy(
        kind=pe_kind(kind).name, data=data, lanes=spec.lanes, acc_bits=spec.acc_bits,
        macs=macs, steps=n, cycles=run.cycles, pj_per_mac=energy["total"] / macs,
        categories={c: e / macs for c, e in energy["categories"].items()},
        toggles_per_cycle=energy["toggles"] / run.cycles, nets=len(netlist.nets),
        cells=sum(netlist.cell_types.values()), flip_flops=netlist.flip_flops,
        checked_steps=n, model=model.describe(), leakage_nw=energy["leakage_nw"], seconds=time.perf_counter() - t0,
        sim_seconds=run.sim_seconds, check_seconds=check_seconds,
        build_seconds=run.build_seconds, synth_seconds=netlist.seconds,
        synth_cached=netlist.cached, build_cached=run.cached)


def operator_energy(name, *, samples=20000, seed=0, model=GENERIC_45NM, build_dir="build",
                    cache_dir=None, log=None):
    """Energy of one operation of the reference operator ``name`` (a Horowitz anchor name,
    :data:`nybble.hw.reference_ops.REFERENCE_OPERATORS`) in pJ, on ``samples`` random
    operand pairs (uniform bit patterns; normal floats whose product is normal). Its outputs
    are checked against the operator's model (:exc:`ToolError` on a difference). Returns a
    dict with ``pj``, ``categories`` (pJ per operation), ``cells``, ``nets``."""
    op = reference_operator(name)
    text, _ = cached_verilog(f"refop_{op.component.__name__}_{'_'.join(map(str, op.args))}",
                             repr((op.component.__name__, op.args)), op.build,
                             build_dir=build_dir)
    netlist = gate_netlist(text, "top", cache_dir=cache_dir)
    a, b = op.stimulus(np.random.default_rng([seed, 0xE0]), samples)
    toggle_model = build_toggle_model(netlist, cache_dir=f"{build_dir}/verilator/toggles",
                                      log=log)
    run = run_netlist(toggle_model, {"a": a, "b": b},
                      workdir=f"{build_dir}/verilator/toggle_jobs", log=log)
    want = op.model(a, b)
    got = run.outputs["y"]
    bad = [i for i in range(samples) if int(got[i]) != int(want[i])]
    if bad:
        i = bad[0]
        raise ToolError(f"the netlist of {name} differs from its model on {len(bad)} of "
                        f"{samples} operand pairs; first: a={int(a[i]):#x}, b={int(b[i]):#x}"
                        f": y={int(got[i]):#x}, expected {int(want[i]):#x}")
    energy = netlist_energy(netlist, run.toggles, model=model)
    return {"operator": name, "pj": energy["total"] / samples,
            "categories": {c: e / samples for c, e in energy["categories"].items()},
            "cells": sum(netlist.cell_types.values()), "nets": len(netlist.nets),
            "samples": samples}


def calibrate(measured, *, base=GENERIC_45NM):
    """The :class:`EnergyModel` whose ``unit_ff`` makes the model's energies of the anchor
    operators (``measured``: name -> pJ under ``base``) match Horowitz's published ones in
    the geometric mean; ratios between circuits are unchanged by it."""
    logs = [math.log(HOROWITZ_45NM[name][0] / pj) for name, pj in measured.items()]
    if not logs:
        raise ParameterError("calibrate needs at least one measured anchor operator")
    factor = math.exp(sum(logs) / len(logs))
    return EnergyModel(node=base.node, volts=base.volts, unit_ff=base.unit_ff * factor)


def anchor_table(measured):
    """Rows beside Horowitz (ISSCC 2014, 45 nm): every measured operator (``measured``:
    name -> pJ) with the published pJ and model / published, then the
    :data:`ANCHOR_RATIOS` with published and model ratios and whether they agree within a
    factor of 2."""
    rows = [{"operator": name, "published_pj": HOROWITZ_45NM[name][0], "model_pj": pj,
             "model_over_published": pj / HOROWITZ_45NM[name][0]}
            for name, pj in measured.items()]
    ratios = []
    for num, den in ANCHOR_RATIOS:
        if num not in measured or den not in measured:
            continue
        published = HOROWITZ_45NM[num][0] / HOROWITZ_45NM[den][0]
        ratio = measured[num] / measured[den]
        ratios.append({"ratio": f"{num} : {den}", "published": published, "model": ratio,
                       "within_2x": 0.5 <= ratio / published <= 2.0})
    return {"operators": rows, "ratios": ratios}
