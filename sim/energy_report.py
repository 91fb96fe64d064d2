"""The energy sweep behind ``nybble energy``: PE kinds x data sets, ratios, anchors, memory.

:func:`energy_sweep` runs :func:`nybble.sim.energy.pe_energy` for every (kind, data set),
adds each PE's synthesised area (:func:`nybble.synth.area.pe_area`, transistors) so energy
ratios stand beside area ratios, the Horowitz anchor table of the reference operators
(:func:`nybble.sim.energy.operator_energy`) and the per-byte memory energies
(:mod:`.memory_energy`), and returns one JSON-ready dict.

A data set is a function ``(spec, steps) -> (a_steps, b_steps, first)``:
:func:`synthetic_data` makes the seeded ones of :mod:`.energy_data`, :func:`float_data` the
ones from real float matrices (each quantized to the PE's formats with one absmax scale).
"""

import dataclasses
import math
import time

import numpy as np

from nybble.hw.kinds import pe_kind
from nybble.hw.reference_ops import REFERENCE_OPERATORS
from nybble.synth.area import pe_area
from nybble.synth.energy import GENERIC_45NM
from nybble.synth.liberty_energy import LibertyModel
from .energy import anchor_table, calibrate, operator_energy, pe_energy
from .array_energy import array_energy, tiles_for
from .energy_data import DEFAULT_K, gemm_steps, quantize_absmax, synthetic_codes
from .memory_energy import SRAM_ANCHORS, dram_pj_per_byte, sram_pj_per_byte
from nybble.sw.errors import ParameterError

__all__ = ["DataSet", "synthetic_data", "float_data", "energy_sweep", "ratio_pairs", "MAC_RATIO_PAIRS",
           "OPERAND_SRAM_BYTES"]

#: (numerator, denominator) MAC kinds whose energy and area ratios the report shows; their
#: 4-lane dot products (``<kind>_dp4``) are compared the same way when both are in the sweep.
MAC_RATIO_PAIRS = (("int8", "int4"), ("int16", "int4"), ("fp8_e4m3", "fp4_e2m1"),
                   ("fp16", "fp4_e2m1"), ("bf16", "fp4_e2m1"), ("fp4_e2m1", "int4"),
                   ("e3m0", "int4"), ("int8_e3m0", "int8"))

#: The SRAM the operand-feed energy is quoted for (Horowitz's smallest anchor, 8 KiB).
OPERAND_SRAM_BYTES = 8 << 10


@dataclasses.dataclass(frozen=True)
class DataSet:
    """Operands of one data set for a PE kind's spec: ``steps(spec, n)`` -> the PE stream
    ``(a_steps, b_steps, first)`` of ``n`` steps; ``matrices(spec, rows, cols, macs)`` ->
    code matrices ``(A, B)`` for an R x C array (M, N multiples of it), about ``macs`` MACs."""
    steps: object
    matrices: object


def synthetic_data(name, *, seed=0, k=DEFAULT_K):
    """The data set ``name`` of :func:`nybble.sim.energy_data.synthetic_codes`, with K = ``k``
    and square enough matrices that the stream does not repeat."""
    def steps(spec, n):
        outputs = max(1, math.ceil(n * spec.lanes / k))
        side = math.isqrt(outputs - 1) + 1
        a, b = synthetic_codes(name, spec.fmt_a, spec.fmt_b, side, k, side, seed=seed)
        return gemm_steps(a, b, spec.lanes, n)

    def matrices(spec, rows, cols, macs):
        m, n = tiles_for(macs, rows, cols, k)
        return synthetic_codes(name, spec.fmt_a, spec.fmt_b, m, k, n, seed=seed)
    return DataSet(steps, matrices)


def float_data(layers):
    """A data set of real products: ``layers`` is a list of ``(A, B)`` float matrices
    (activations M x K, weights K x N), each quantized to the PE's formats with one absmax
    scale per matrix. A PE's steps are split evenly between the layers; an array runs the
    first layer, cropped to whole tiles and to about ``macs`` MACs."""
    if not layers:
        raise ParameterError("float data needs at least one (A, B) pair")

    def steps(spec, n):
        parts = np.array_split(np.arange(n), len(layers))
        out = [gemm_steps(quantize_absmax(a, spec.fmt_a), quantize_absmax(b, spec.fmt_b),
                          spec.lanes, len(p))
               for (a, b), p in zip(layers, parts) if len(p)]
        return tuple(np.concatenate([o[i] for o in out]) for i in range(3))

    def matrices(spec, rows, cols, macs):
        a, b = layers[0]
        m, n = tiles_for(macs, rows, cols, a.shape[1])
        m = min(m, a.shape[0] // rows * rows)
        n = min(n, b.shape[1] // cols * cols)
        if not m or not n:
            raise ParameterError(f"the data's first product ({a.shape[0]} x {a.shape[1]} "
                                 f"times {b.shape[0]} x {b.shape[1]}) has no whole "
                                 f"{rows} x {cols} tile")
        return (quantize_absmax(a, spec.fmt_a)[:m], quantize_absmax(b, spec.fmt_b)[:, :n])
    return DataSet(steps, matrices)


def ratio_pairs(kinds):
    """The :data:`MAC_RATIO_PAIRS` (and their ``_dp4`` versions) with both kinds in
    ``kinds``."""
    pairs = [p for base in MAC_RATIO_PAIRS for p in (base, tuple(f"{k}_dp4" for k in base))]
    return [(a, b) for a, b in pairs if a in kinds and b in kinds]


def _memory():
    low, high = dram_pj_per_byte()
    return {"source": "Horowitz ISSCC 2014, 45 nm; SRAM power law between the anchors",
            "sram_pj_per_byte": {f"{s >> 10} KiB": sram_pj_per_byte(s)
                                 for s, _ in SRAM_ANCHORS},
            "dram_pj_per_byte": [low, high]}


def energy_sweep(kinds, datasets, *, macs=100_000, array=None, area=True, anchors=True,
                 do_calibrate=False, anchor_samples=20_000, model=GENERIC_45NM,
                 build_dir="build", cache_dir=None, progress=None, log=None):
    """Energy of every kind of ``kinds`` on every data set of ``datasets`` (name ->
    :class:`DataSet`) over ``macs`` MACs each, and with ``array = (R, C)`` of an R x C
    output-stationary array of each kind too; returns the report dict (``rows``,
    ``arrays``, ``ratios``, ``anchors``, ``calibration``, ``memory``, ``model``)."""
    say = progress or (lambda line: None)
    kinds = [pe_kind(k).name for k in kinds]
    rows, areas, arrays = [], {}, []
    for name in kinds:
        kind = pe_kind(name)
        spec = kind.spec()
        steps = max(1, macs // spec.lanes)
        for data, make in datasets.items():
            a, b, first = make.steps(spec, steps)
            r = pe_energy(name, a, b, first, data=data, model=model, build_dir=build_dir,
                          cache_dir=cache_dir, log=log)
            operand_bytes = (spec.fmt_a.bits + spec.fmt_b.bits) / 8
            row = {
                "pe": name, "data": data, "formats": list(spec.formats), "lanes": r.lanes,
                "acc_bits": r.acc_bits, "macs": r.macs, "pj_per_mac": r.pj_per_mac,
                "breakdown_pj_per_mac": r.categories,
                "toggles_per_cycle": r.toggles_per_cycle, "nets": r.nets, "cells": r.cells,
                "flip_flops": r.flip_flops, "checked_steps": r.checked_steps,
                "leakage_nw": r.leakage_nw,
                "leakage_pj_per_mac_at_100mhz": (None if r.leakage_nw is None else
                                                 r.leakage_nw * 1e-5 / r.lanes),
                "netlist_equals_golden": True,
                "operand_bytes_per_mac": operand_bytes,
                "operand_sram_pj_per_mac": operand_bytes * sram_pj_per_byte(OPERAND_SRAM_BYTES),
                "seconds": r.seconds, "sim_seconds": r.sim_seconds,
                "check_seconds": r.check_seconds, "build_seconds": r.build_seconds,
                "synth_seconds": r.synth_seconds, "cached": r.synth_cached and r.build_cached,
            }
            rows.append(row)
            say(f"{name} on {data}: {r.pj_per_mac:.4f} pJ/MAC, {r.macs} MACs checked "
                f"against the golden model ({r.seconds:.1f} s)")
        if area:
            areas[name] = pe_area(name, cache_dir=cache_dir, build_dir=build_dir).transistors
        if array is not None:
            for data, make in datasets.items():
                a, b = make.matrices(spec, *array, macs)
                r = array_energy(name, *array, a, b, data=data, model=model,
                                 build_dir=build_dir, cache_dir=cache_dir, log=log)
                arrays.append({
                    "pe": name, "data": data, "array": f"{r.rows}x{r.cols}", "macs": r.macs,
                    "tiles": r.tiles, "cycles": r.cycles, "pj_per_mac": r.pj_per_mac,
                    "breakdown_pj_per_mac": r.categories, "nets": r.nets, "cells": r.cells,
                    "checked_results": r.checked_results, "netlist_equals_golden": True,
                    "seconds": r.seconds, "sim_seconds": r.sim_seconds})
                say(f"{r.rows}x{r.cols} {name} array on {data}: {r.pj_per_mac:.4f} pJ/MAC, "
                    f"{r.checked_results} results checked ({r.seconds:.1f} s)")
    for row in rows:
        row["transistors"] = areas.get(row["pe"])
    ratios = []
    for num, den in ratio_pairs(kinds):
        for data in datasets:
            e = {r["pe"]: r["pj_per_mac"] for r in rows if r["data"] == data}
            ratios.append({"pair": f"{num} / {den}", "data": data,
                           "energy_ratio": e[num] / e[den],
                           "area_ratio": (areas[num] / areas[den]) if area else None})
    liberty = isinstance(model, LibertyModel)
    report = {"model": {"description": model.describe(), "node": model.node,
                        "volts": model.volts, "unit_ff": None if liberty else model.unit_ff,
                        "liberty": model.path if liberty else None,
                        "leakage": ("cell_leakage_power of the matched cells (leakage_nw)"
                                    if liberty else
                                    "omitted (generic gates carry no leakage data)")},
              "macs": macs, "rows": rows, "arrays": arrays, "ratios": ratios,
              "anchors": None,
              "calibration": None, "memory": _memory()}
    if anchors or do_calibrate:
        measured = {}
        for name in REFERENCE_OPERATORS:
            t = time.perf_counter()
            measured[name] = operator_energy(name, samples=anchor_samples, model=model,
                                             build_dir=build_dir, cache_dir=cache_dir,
                                             log=log)["pj"]
            say(f"anchor {name}: {measured[name]:.4f} pJ ({time.perf_counter() - t:.1f} s)")
        report["anchors"] = anchor_table(measured)
        if do_calibrate and not liberty:
            fitted = calibrate(measured, base=model)
            report["calibration"] = {
                "unit_ff": fitted.unit_ff, "current_unit_ff": model.unit_ff,
                "anchors": list(measured),
                "rule": "geometric mean of published / modelled energy over the anchors"}
    return report
