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
area (:func:`area`): the whole ``R x C`` array as ``nybble cost --array RxC`` costs it with
its defaults (:func:`nybble.synth.array_parts.array_area_parts`: one PE x ``R*C`` + the top
without PEs and memories + SRAM-macro buffers ``ARRAY_DEPTH`` = 256 words deep; accumulators
under the ``exact-k`` policy, K = 4096, :func:`nybble.synth.acc_policy.policy_acc_bits`) --
``transistors`` (Yosys ``stat -tech cmos``), ``cells``, ``area_um2`` / ``area_mm2`` (with a
Liberty file), ``acc_bits``, ``area_policy`` (the policy in words); Yosys results are cached
by content.
clock (:func:`clock`): ``clock_mhz``, the point's fixed clock or else the ASIC estimate of
``nybble cost --array`` (:func:`nybble.synth.asic_clock.clock_mhz` of the slower of the PE's
and the rest's logic depth, at the Liberty's node or 180 nm); ``clock_source``.
time (:func:`cycles`, :func:`stalls`, :func:`time`): ``cycles`` of the whole workload from the
cycle model (:func:`nybble.sim.cycles.gemm_cycles`, equal to the RTL's counter; bit-serial
points with weight types drawn per group of 128 from :data:`BITSERIAL_MIX` or the point's
``dtype_mix``, seeded per layer shape, as ``nybble cycles --pe bitserial --dtype-mix``),
``utilization``, ``macs_per_cycle``.  With a bandwidth, ``dram_bytes_per_cycle`` (the
point's GB/s at its clock) and the streaming top's exact model
(:func:`nybble.sim.stream_cycles.stream_cycles`, DRAM latency :data:`DRAM_LATENCY` cycles,
default scratchpads; operands at the PE's packed element bits): ``stalled_cycles`` (total),
``stall_cycles``, ``bytes_read`` / ``bytes_written``, ``memory_bound_layers``.  ``latency_s``
and ``macs_per_s`` at ``clock_mhz`` from ``stalled_cycles`` when a bandwidth is given (missing
when the streaming top cannot run the point), else from ``cycles`` (unlimited bandwidth).
energy (:func:`energy`, :mod:`nybble.explore.energy`): ``energy_j`` per inference and
``layer_energy`` per layer -- the PE's measured pJ per MAC (``ctx.energy``, one netlist run
per kind) x MACs, idle PE-cycles of the (stalled) cycles, SRAM and DRAM bytes of the cycle
or stream model -- with its parts, ``pj_per_mac``, ``macs_per_j``.
figures of merit (:func:`merit`): ``macs_per_cycle_per_mtransistor``,
``macs_per_s_per_mtransistor``, ``macs_per_s_per_mm2``, ``inferences_per_j``.
"""

import dataclasses
from fractions import Fraction

import numpy as np

from nybble.hw.kinds import pe_kind
from nybble.hw.stream_config import StreamConfig
from nybble.sim.bitserial import parse_dtype_mix, random_types
from nybble.sim.cycles import gemm_cycles
from nybble.sim.memory_model import MemoryModel
from nybble.sim.schedule import schedule_for
from nybble.sim.stream_cycles import stream_cycles
from nybble.sw.errors import ParameterError
from nybble.synth.acc_policy import DEFAULT_ACC_POLICY, DEFAULT_K, policy_text
from nybble.synth.array_parts import array_area_parts
from nybble.synth.asic_clock import DEFAULT_NODE_NM, clock_mhz
from nybble.synth.sram import liberty_node
from .accuracy import numerics_of
from .points import POINT_FIELDS
from .energy import SCOPE as ENERGY_SCOPE, layer_energy, words_of

__all__ = ["Context", "METRICS", "ARRAY_DEPTH", "BUFFERS", "BITSERIAL_MIX", "BITSERIAL_GROUP",
           "DRAM_LATENCY", "ENERGY_COLUMNS", "missing", "is_missing", "area", "clock",
           "cycles", "stalls", "time", "energy", "accuracy", "merit", "point_config",
           "dram_bytes_per_cycle", "evaluate_point", "evaluate_points", "METRIC_INPUTS"]

#: buffer depth (words) of the costed arrays, as ``nybble cost --array-depth`` defaults
ARRAY_DEPTH = 256

#: buffer model of the costed arrays, as ``nybble cost --buffers`` defaults
BUFFERS = "sram"

#: weight data-type mix of bit-serial points: BitMoD-like 50/30/20 int4 / fp4 / e3m0, as
#: ``nybble cycles --pe bitserial`` defaults
BITSERIAL_MIX = "int4=0.5,fp4_e2m1=0.3,e3m0=0.2"

#: weights per data-type group of bit-serial points (``nybble cycles --group`` default)
BITSERIAL_GROUP = 128

#: DRAM latency (cycles) of the stall model, ``nybble cycles --dram-latency`` default
DRAM_LATENCY = 10


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
    energy: dict | None = None  # PE kind -> explore.energy.pe_workload_energy(...) result


def point_config(point):
    """The :class:`~nybble.hw.config.ArrayConfig` the point is costed and timed as: buffers
    :data:`ARRAY_DEPTH` words, accumulators under ``nybble cost``'s default policy."""
    return point.config(a_depth=ARRAY_DEPTH, b_depth=ARRAY_DEPTH, c_depth=ARRAY_DEPTH)


def _parts(point, ctx):
    return array_area_parts(point_config(point), buffers=BUFFERS, liberty=ctx.liberty,
                            cache_dir=ctx.cache_dir, build_dir=ctx.build_dir)


def area(point, ctx, row):
    result = _parts(point, ctx)
    um2 = result.area_um2
    no_lib = missing("a Liberty file (--liberty) for um^2")
    return {"transistors": result.transistors, "cells": result.cells,
            "area_um2": um2 if um2 is not None else no_lib,
            "area_mm2": um2 * 1e-6 if um2 is not None else no_lib,
            "acc_bits": result.acc_bits,
            "area_policy": (f"{policy_text(DEFAULT_ACC_POLICY, k=DEFAULT_K)}; {BUFFERS} "
                            f"buffers {ARRAY_DEPTH} words deep (nybble cost --array)")}


def clock(point, ctx, row):
    if point.clock_mhz is not None:
        return {"clock_mhz": point.clock_mhz, "clock_source": "fixed (--clock-mhz)"}
    parts = _parts(point, ctx)
    depths = [parts.pe.report.logic_depth, parts.rest.logic_depth]
    if None in depths:
        return {"clock_mhz": missing("a logic depth from Yosys for the ASIC clock estimate"),
                "clock_source": missing("no clock")}
    node = liberty_node(ctx.liberty) or DEFAULT_NODE_NM
    return {"clock_mhz": round(clock_mhz(max(depths), node), 1),
            "clock_source": f"ASIC estimate, logic depth {max(depths)} at {node} nm "
                            "(nybble cost --array)"}


def _bitserial_sel(point, layer):
    """Weight types of a bit-serial layer, as ``nybble cycles --pe bitserial --dtype-mix``
    draws them (seed 0, then the layer's shape)."""
    spec = pe_kind(point.pe).spec()
    mix = parse_dtype_mix(BITSERIAL_MIX, spec.dtypes)
    rng = np.random.default_rng([0, layer.m, layer.n, layer.k])
    return random_types(spec, layer.k, layer.n, mix, group=BITSERIAL_GROUP, rng=rng)


def cycles(point, ctx, row):
    config = point_config(point)
    layers, total, ideal = [], 0, 0.0
    for layer in ctx.workload.layers:
        if point.bitserial:
            # the schedule itself, not gemm_cycles: its record adds the mean MAC length, a
            # pass over all K x N weight types (0.6 s per LLaMA layer) the explorer never uses
            g = schedule_for(config, layer.m, layer.n, layer.k,
                             sel=_bitserial_sel(point, layer))
        else:
            g = gemm_cycles(config, layer.m, layer.n, layer.k)
        layers.append({"name": layer.name, "cycles": g.cycles, "count": layer.count,
                       "total_cycles": g.cycles * layer.count,
                       "utilization": g.ideal_cycles / g.cycles, "buffer_words": words_of(g)})
        total += g.cycles * layer.count
        ideal += g.ideal_cycles * layer.count
    out = {"cycles": total, "utilization": ideal / total,
           "macs_per_cycle": ctx.workload.macs / total, "layer_cycles": layers}
    if point.bitserial:
        out["dtype_mix"] = f"{BITSERIAL_MIX}, groups of {BITSERIAL_GROUP} weights"
    return out


def dram_bytes_per_cycle(gbps, mhz):
    """Bytes per cycle of ``gbps`` GB/s (10^9 bytes/s) at a ``mhz`` MHz clock, as the
    memory model's rational (denominator <= 1000)."""
    return Fraction(gbps * 1e3 / mhz).limit_denominator(1000)


_STALL_COLUMNS = ("dram_bytes_per_cycle", "stalled_cycles", "stall_cycles", "bytes_read",
                  "bytes_written", "memory_bound_layers")


def stalls(point, ctx, row):
    if point.dram_bw_gbps is None:
        what = missing("a bandwidth (--dram-bw); cycles assume unlimited bandwidth")
        return dict({c: what for c in _STALL_COLUMNS}, layer_stream=[])
    mhz = _number(row, "clock_mhz")
    if mhz is None:
        return dict({c: _why(row, "clock_mhz") for c in _STALL_COLUMNS}, layer_stream=[])
    bw = dram_bytes_per_cycle(point.dram_bw_gbps, mhz)
    memory, stream = MemoryModel(bw, DRAM_LATENCY), StreamConfig()
    config = point_config(point)
    total = stall = nread = nwritten = 0
    bound, per_layer = [], []
    try:
        for layer in ctx.workload.layers:
            s = stream_cycles(config, stream, memory, layer.m, layer.n, layer.k)
            per_layer.append({"name": layer.name, "stalled_cycles": s.cycles,
                              "stall_cycles": s.stall_cycles, "bytes_read": s.bytes_read,
                              "bytes_written": s.bytes_written,
                              "scratchpad_words": words_of(s)})
            total += s.cycles * layer.count
            stall += s.stall_cycles * layer.count
            nread += s.bytes_read * layer.count
            nwritten += s.bytes_written * layer.count
            if s.bound == "memory":
                bound.append(layer.name)
    except ParameterError as e:
        what = missing(f"the streaming top's stall model ({e})")
        return dict({c: what for c in _STALL_COLUMNS}, dram_bytes_per_cycle=float(bw),
                    layer_stream=[])
    return {"dram_bytes_per_cycle": float(bw), "stalled_cycles": total, "stall_cycles": stall,
            "bytes_read": nread, "bytes_written": nwritten, "memory_bound_layers": bound,
            "layer_stream": per_layer}


def time(point, ctx, row):
    # with a bandwidth the time is the stalled one, else (unlimited bandwidth) the array's
    key = "cycles" if point.dram_bw_gbps is None else "stalled_cycles"
    clk, cyc = _number(row, "clock_mhz"), _number(row, key)
    if clk is None or cyc is None:
        why = _why(row, "clock_mhz") if clk is None else _why(row, key)
        return {"latency_s": why, "macs_per_s": why}
    latency = cyc / (clk * 1e6)
    return {"latency_s": latency, "macs_per_s": ctx.workload.macs / latency}


#: the energy columns (:func:`energy`); ``layer_energy`` holds the per-layer ones
ENERGY_COLUMNS = ("energy_j", "energy_j_dram_high", "energy_pe_j", "energy_idle_j",
                  "energy_sram_j", "energy_dram_j", "pe_pj_per_mac", "pe_idle_pj_per_cycle",
                  "pj_per_mac", "inferences_per_j", "macs_per_j", "energy_scope")

_LAYER_PARTS = ("pe_j", "idle_j", "sram_j", "dram_j", "dram_high_j", "energy_j",
                "energy_j_dram_high")


def energy(point, ctx, row):
    """Energy per layer and per inference (:mod:`nybble.explore.energy`)."""
    def absent(what):
        return dict({c: what for c in ENERGY_COLUMNS}, layer_energy=[])
    if point.dataflow != "os":
        return absent(missing("energy runs measure the output-stationary PE; the "
                              "weight-stationary PE (partial sums in) has none"))
    pe = (ctx.energy or {}).get(point.pe)
    if pe is None:
        return absent(missing("the PE's energy run was not made (its task did not run)"))
    if "missing" in pe:
        return absent(missing(pe["missing"]))
    config = point_config(point)
    if point.dram_bw_gbps is None:
        per_layer = row.get("layer_cycles")
        if not per_layer:
            return absent(_why(row, "cycles"))
        runs = [(rec["cycles"], rec["buffer_words"], None) for rec in per_layer]
    else:
        per_layer = row.get("layer_stream")
        if not per_layer:
            return absent(_why(row, "stalled_cycles"))
        runs = [(rec["stalled_cycles"], rec["scratchpad_words"],
                 rec["bytes_read"] + rec["bytes_written"]) for rec in per_layer]
    layers, total = [], dict.fromkeys(_LAYER_PARTS, 0.0)
    for layer, (cyc, words, dram) in zip(ctx.workload.layers, runs):
        one = layer_energy(config, pe, layer, cyc, words, dram)
        layers.append(dict({"name": layer.name, "count": layer.count},
                           **{k: v * layer.count for k, v in one.items()}))
        for k in _LAYER_PARTS:
            total[k] += one[k] * layer.count
    macs = ctx.workload.macs
    return {"energy_j": total["energy_j"], "energy_j_dram_high": total["energy_j_dram_high"],
            "energy_pe_j": total["pe_j"], "energy_idle_j": total["idle_j"],
            "energy_sram_j": total["sram_j"], "energy_dram_j": total["dram_j"],
            "pe_pj_per_mac": pe["pj_per_mac"], "pe_idle_pj_per_cycle": pe["idle_pj_per_cycle"],
            "pj_per_mac": total["energy_j"] / macs * 1e12,
            "inferences_per_j": 1.0 / total["energy_j"], "macs_per_j": macs / total["energy_j"],
            "energy_scope": ENERGY_SCOPE, "layer_energy": layers}


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
    if point is not None and point.dram_bw_gbps is not None:
        stalled = _number(row, "stalled_cycles")
        mpc = None if stalled is None else ctx.workload.macs / stalled
        row = dict(row, macs_per_cycle=mpc if mpc is not None else _why(row,
                                                                        "stalled_cycles"))
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


_ARRAY_FIELDS = ("pe", "rows", "cols", "dataflow")

#: the point fields a metric's columns depend on (through the columns of the metrics before
#: it too); points that agree on them share one evaluation (:func:`evaluate_points`).  A
#: metric not listed depends on every field.
METRIC_INPUTS = {area: _ARRAY_FIELDS, clock: _ARRAY_FIELDS + ("clock_mhz",),
                 cycles: _ARRAY_FIELDS, accuracy: ("pe",)}


def evaluate_points(points, ctx):
    """One row per point (:func:`evaluate_point`), each metric evaluated once per distinct
    value of its :data:`METRIC_INPUTS` among ``points`` (the area, clock, cycles and
    accuracy of an array are shared by all its bandwidths)."""
    done, rows = {}, []
    for point in points:
        kind = pe_kind(point.pe)
        row = dict(point.as_dict(), label=point.label, array=point.array,
                   pe_formats=" x ".join(kind.formats[:2]))
        for fn in ctx.metrics or METRICS:
            key = (fn, tuple(getattr(point, f) for f in METRIC_INPUTS.get(fn, POINT_FIELDS)))
            if key not in done:
                done[key] = fn(point, ctx, row)
            row.update(done[key])
        rows.append(row)
    return rows


def evaluate_point(point, ctx):
    """One row: the point's fields, ``label``, ``pe_formats`` and the columns of every metric
    of ``ctx.metrics`` (default :data:`METRICS`)."""
    return evaluate_points([point], ctx)[0]
