"""The columns of one design point, one small function per metric.

Each metric is ``fn(point, ctx, row) -> dict`` of new columns; :data:`METRICS` runs them in
order, each seeing the columns of the ones before (``row``).  A value the tree cannot compute
yet is the string ``"missing: <what>"`` (:func:`missing`), never a stand-in number; later
metrics that need it say missing too.  To plug in a model after it lands (the memory system's
stalls, the energy model, bit-serial arrays, a clock estimate) replace its function here.

``ctx`` (:class:`Context`): the workload, the accuracy of each numerics
(:func:`nybble.explore.accuracy.workload_accuracy`, computed once per PE numerics), the
Liberty file, cache and build directories.

Columns and units
-----------------
area (:func:`area`): the whole ``R x C`` array as ``nybble cost --array`` synthesises it
(:func:`nybble.synth.area.array_area`: PEs, skew, drain, buffers ``ARRAY_DEPTH`` words deep as
flip-flops, sequencer; accumulators at :func:`nybble.synth.area.convention_acc_bits`) --
``transistors`` (Yosys ``stat -tech cmos``), ``cells``, ``area_um2`` / ``area_mm2`` (with a
Liberty file); Yosys results are cached by content.
clock (:func:`clock`): ``clock_mhz``, the point's fixed clock.
time (:func:`cycles`, :func:`time`): ``cycles`` of the whole workload from the cycle model
(:func:`nybble.sim.cycles.gemm_cycles`, equal to the RTL's counter), ``utilization``,
``macs_per_cycle``; ``latency_s`` and ``macs_per_s`` at ``clock_mhz``.
figures of merit (:func:`merit`): ``macs_per_cycle_per_mtransistor``,
``macs_per_s_per_mtransistor``, ``macs_per_s_per_mm2``, ``inferences_per_j``.
"""

import dataclasses

from nybble.hw.kinds import pe_kind
from nybble.sim.cycles import gemm_cycles
from nybble.synth.area import array_area
from .accuracy import numerics_of

__all__ = ["Context", "METRICS", "ARRAY_DEPTH", "missing", "is_missing", "area", "clock",
           "cycles", "stalls", "time", "energy", "accuracy", "merit", "point_config",
           "evaluate_point"]

#: buffer depth (words) of the synthesised arrays, as ``nybble cost --array-depth`` defaults
ARRAY_DEPTH = 16


def missing(what):
    """The value of a column the tree cannot compute yet."""
    return f"missing: {what}"


def is_missing(value):
    return isinstance(value, str) and value.startswith("missing:")


def _number(row, key):
    value = row.get(key)
    return None if value is None or is_missing(value) else value


def _why(row, key):
    """Why ``row[key]`` is not a number: its own "missing" text, or that it was not run."""
    value = row.get(key)
    return value if is_missing(value) else missing(f"{key} (its metric was not run)")


@dataclasses.dataclass(frozen=True)
class Context:
    """What every metric of one sweep shares (module docstring)."""
    workload: object
    accuracy: dict          # numerics key -> workload_accuracy(...) result
    liberty: str | None = None
    cache_dir: str | None = None
    build_dir: str = "build"
    metrics: tuple = ()     # the metric functions to run (empty: METRICS)


def point_config(point):
    """The :class:`~nybble.hw.config.ArrayConfig` the point is synthesised and timed as."""
    return point.config(a_depth=ARRAY_DEPTH, b_depth=ARRAY_DEPTH, c_depth=ARRAY_DEPTH)


_BITSERIAL = "bit-serial arrays (issue bitserial; the systolic array hosts single-cycle PEs)"


def area(point, ctx, row):
    if point.bitserial:
        return {"transistors": missing(_BITSERIAL), "cells": missing(_BITSERIAL),
                "area_um2": missing(_BITSERIAL), "area_mm2": missing(_BITSERIAL)}
    result = array_area(point_config(point), liberty=ctx.liberty, cache_dir=ctx.cache_dir,
                        build_dir=ctx.build_dir)
    um2 = result.area_um2
    no_lib = missing("a Liberty file (--liberty) for um^2")
    return {"transistors": result.transistors, "cells": result.cells,
            "area_um2": um2 if um2 is not None else no_lib,
            "area_mm2": um2 * 1e-6 if um2 is not None else no_lib}


def clock(point, ctx, row):
    if point.clock_mhz is not None:
        return {"clock_mhz": point.clock_mhz}
    return {"clock_mhz": missing("a clock estimate (give --clock-mhz; no ASIC clock model "
                                 "in the tree yet)")}


def cycles(point, ctx, row):
    if point.bitserial:
        return {"cycles": missing(_BITSERIAL), "utilization": missing(_BITSERIAL),
                "macs_per_cycle": missing(_BITSERIAL), "layer_cycles": []}
    config = point_config(point)
    layers, total, ideal = [], 0, 0.0
    for layer in ctx.workload.layers:
        g = gemm_cycles(config, layer.m, layer.n, layer.k)
        layers.append({"name": layer.name, "cycles": g.cycles, "count": layer.count,
                       "total_cycles": g.cycles * layer.count,
                       "utilization": g.utilization})
        total += g.cycles * layer.count
        ideal += g.ideal_cycles * layer.count
    return {"cycles": total, "utilization": ideal / total,
            "macs_per_cycle": ctx.workload.macs / total, "layer_cycles": layers}


def stalls(point, ctx, row):
    what = ("the memory model (bandwidth stalls; issue memory)" if point.dram_bw_gbps
            is not None else "the memory model (and a --dram-bw)")
    return {"stall_cycles": missing(what)}


def time(point, ctx, row):
    clk, cyc = _number(row, "clock_mhz"), _number(row, "cycles")
    if clk is None or cyc is None:
        why = _why(row, "clock_mhz") if clk is None else _why(row, "cycles")
        return {"latency_s": why, "macs_per_s": why}
    latency = cyc / (clk * 1e6)
    return {"latency_s": latency, "macs_per_s": ctx.workload.macs / latency}


def energy(point, ctx, row):
    what = missing("the energy model (issue energy)")
    return {"energy_j": what, "inferences_per_j": what}


_ACCURACY_COLUMNS = ("numerics", "cosine_predicted", "predicted_scope", "cosine_layer_min",
                     "sqnr_db_layer_min", "sqnr_db_mean")


def accuracy(point, ctx, row):
    numerics = numerics_of(point.pe)
    if numerics is None:
        what = missing("an accuracy model of L-Mul's approximate products")
        return dict({c: what for c in _ACCURACY_COLUMNS}, layer_accuracy=[])
    from_numerics = ctx.accuracy[numerics.key]
    return {"numerics": from_numerics["numerics"],
            "cosine_predicted": from_numerics["cosine"],
            "predicted_scope": from_numerics["predicted_scope"],
            "cosine_layer_min": from_numerics["layer_cosine_min"],
            "sqnr_db_layer_min": from_numerics["layer_sqnr_db_min"],
            "sqnr_db_mean": from_numerics["layer_sqnr_db_mean"],
            "layer_accuracy": from_numerics["layers"]}


def merit(point, ctx, row):
    tr, mpc = _number(row, "transistors"), _number(row, "macs_per_cycle")
    mps, mm2 = _number(row, "macs_per_s"), _number(row, "area_mm2")
    out = {}
    out["macs_per_cycle_per_mtransistor"] = (mpc / (tr / 1e6) if tr and mpc is not None
                                             else _why(row, "transistors") if tr is None
                                             else _why(row, "macs_per_cycle"))
    out["macs_per_s_per_mtransistor"] = (mps / (tr / 1e6) if tr and mps is not None
                                         else _why(row, "transistors") if tr is None
                                         else _why(row, "macs_per_s"))
    out["macs_per_s_per_mm2"] = (mps / mm2 if mm2 and mps is not None
                                 else _why(row, "area_mm2") if mm2 is None
                                 else _why(row, "macs_per_s"))
    ipj = row.get("inferences_per_j")
    out["inferences_per_j"] = ipj if ipj is not None else _why(row, "inferences_per_j")
    return out


#: the metrics, in the order they run
METRICS = (area, clock, cycles, stalls, time, energy, accuracy, merit)


def evaluate_point(point, ctx):
    """One row: the point's fields, ``label``, ``pe_formats`` and the columns of every metric
    of ``ctx.metrics`` (default :data:`METRICS`)."""
    kind = pe_kind(point.pe)
    row = dict(point.as_dict(), label=point.label, array=point.array,
               pe_formats=" x ".join(kind.formats[:2]))
    for fn in ctx.metrics or METRICS:
        row.update(fn(point, ctx, row))
    return row
