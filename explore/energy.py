"""Energy of a design point on its workload, per layer and per inference.

What is counted (pJ, summed over the layers, each ``count`` times):

* **PE steps**: pJ per MAC of the point's PE kind at its accumulator width
  (:func:`pe_workload_energy`, once per kind: :func:`nybble.sim.energy.pe_energy` -- the PE's
  Yosys netlist switching under Verilator, every step's accumulator equal to the golden
  model) on the workload's own operands: the codes whose error the accuracy columns report
  (activations per token, weights per output channel in the PE's formats;
  :func:`nybble.explore.accuracy.layer_operands`, the user's weights when given),
  :data:`SAMPLE_MACS` MACs split over the distinct layers by their MACs, dot products drawn
  at random (seeded) -- times the layer's MACs.
* **Idle PE-cycles**: every PE-cycle of the run that is not a useful step (padding of
  partial tiles, the gaps of fill and drain between tiles, memory stalls) costs what a step
  of zero operands costs on the same netlist (the clock and the registers holding; the RTL
  has no clock gating): ``rows x cols x cycles - MACs / lanes`` of them.
* **On-chip memory**: the words the run writes into and reads from its buffers, in bytes,
  each buffer an SRAM of its own size (:func:`nybble.sim.memory_energy.sram_pj_per_byte`).
  With a bandwidth: the streaming top's scratchpads (the traffic of
  :func:`nybble.sim.stream_cycles.stream_cycles`, sizes of its default
  :class:`~nybble.hw.stream_config.StreamConfig`); without: the whole-buffer top's buffers
  (:data:`nybble.explore.metrics.ARRAY_DEPTH` words) with the schedule's traffic
  (:func:`nybble.sim.gemm_energy.buffer_traffic`).
* **DRAM**: the bytes the stream model moves through the memory port (with a bandwidth), or
  the operands in and results out once (without); pJ per byte at the low end of Horowitz's
  range (1.3 nJ per 64-bit access) in ``energy_j``, at the high end (2.6 nJ) in
  ``energy_j_dram_high``.

Not counted: the array's skew and drain registers, the sequencer and control logic, leakage
(the generic gate model has none), DRAM refresh and I/O.  Technology: the generic 45 nm gate
model (:data:`nybble.synth.energy.GENERIC_45NM`, calibrated on Horowitz's operators), the
node of the memory energies.  Kinds the energy model refuses (LUT, bit-serial,
block-scaled, IEEE-style) and weight-stationary points (their PE takes a partial sum
in, and has no energy run) get ``"missing: <reason>"``.
"""

import hashlib
import sys
from pathlib import Path

import numpy as np

from nybble.hw.kinds import pe_kind
from nybble.hw.stream_config import StreamConfig
from nybble.hw.stream_top import StreamLayout
from nybble.sim import energy as sim_energy, toggles
from nybble.sim.energy import ENERGY_FAMILIES, pe_energy
from nybble.sim.energy_data import zero_code
from nybble.sim.gemm_energy import TRAFFIC_KEYS, buffer_traffic
from nybble.sim.memory_energy import dram_pj_per_byte, sram_pj_per_byte
from nybble.sw.quantize import quantize
from nybble.synth.acc_policy import policy_acc_bits
from nybble.synth import energy as synth_energy, netlist
from nybble.synth.area import pe_verilog
from nybble.synth.cache import ResultCache, cache_key, default_cache_dir
from nybble.synth.energy import GENERIC_45NM
from .accuracy import layer_operands, per_channel_scheme

__all__ = ["SAMPLE_MACS", "IDLE_STEPS", "SCOPE", "energy_steps", "pe_workload_energy",
           "stream_traffic", "layer_energy", "words_of"]

_CACHE_SCHEMA = "nybble.explore.energy/1"

#: MACs of the workload's operands each PE kind's netlist is run on
SAMPLE_MACS = 32768
#: zero-operand steps the idle energy per PE-cycle is measured on
IDLE_STEPS = 512

#: what ``energy_j`` counts, in words (the module docstring in short)
SCOPE = ("PE steps (pJ/MAC of the PE netlist on the workload's codes) + idle PE-cycles "
         "(zero-operand steps: clock, holding registers) + buffer/scratchpad SRAM + DRAM "
         "(Horowitz 2014, low end; energy_j_dram_high: high end); generic 45 nm gates; not "
         "counted: skew/drain registers, sequencer, leakage")


def _codes(x, fmt, axis):
    return quantize(x, per_channel_scheme(fmt), axis=axis).codes.astype(np.int64)


def _padded(codes, axis, lanes, fmt):
    extra = -codes.shape[axis] % lanes
    if not extra:
        return codes
    pad = [(0, 0), (0, 0)]
    pad[axis] = (0, extra)
    return np.pad(codes, pad, constant_values=zero_code(fmt))


def energy_steps(spec, workload, weights=None, *, macs=SAMPLE_MACS, seed=0):
    """PE steps ``(a_steps, b_steps, first)`` of about ``macs`` MACs of ``workload``'s
    operands in the formats of ``spec`` (module docstring): each distinct layer gets a
    share of the steps by its MACs (at least one dot product), whole dot products of K
    (padded with zero codes to a multiple of the lanes) at random (row, column) pairs."""
    layers = {}
    for layer in workload.layers:
        key = (layer.name, layer.m, layer.n, layer.k)
        layers[key] = (layers[key][0] + layer.macs, layer) if key in layers else (layer.macs,
                                                                                   layer)
    total = sum(m for m, _ in layers.values())
    rng = np.random.default_rng([seed, 0xE7])
    a_parts, b_parts, first_parts = [], [], []
    for share, layer in layers.values():
        user = weights.get(layer.name) if weights else None
        a, b, _ = layer_operands(layer, weight_layer=workload.weight_layer(layer),
                                 weights=user)
        k = a.shape[1] + -a.shape[1] % spec.lanes
        dots = max(1, round(macs * share / total / k))
        rows = rng.integers(0, a.shape[0], dots)
        cols = rng.integers(0, b.shape[1], dots)
        # scales are per row of A and per column of B: quantizing only the drawn ones gives
        # their codes at a fraction of the cost
        a = _padded(_codes(a[rows], spec.fmt_a.name, -1), 1, spec.lanes, spec.fmt_a.name)
        b = _padded(_codes(b[:, cols], spec.fmt_b.name, 0), 0, spec.lanes, spec.fmt_b.name)
        steps = k // spec.lanes
        a_parts.append(a.reshape(dots * steps, spec.lanes))
        b_parts.append(b.T.reshape(dots * steps, spec.lanes))
        first = np.zeros(dots * steps, dtype=bool)
        first[::steps] = True
        first_parts.append(first)
    return (np.concatenate(a_parts), np.concatenate(b_parts), np.concatenate(first_parts))


def _energy_sources():
    """SHA-256 of the modules an energy number depends on beyond the Verilog and the
    operands (the netlist, the toggle harness, the capacitance model, this module)."""
    digest = hashlib.sha256(_CACHE_SCHEMA.encode())
    for module in (sim_energy, toggles, synth_energy, netlist, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def pe_workload_energy(pe, workload, weights=None, *, build_dir="build", cache_dir=None,
                       use_cache=True):
    """The PE side of a kind's energy on ``workload`` (module docstring): ``{"pe",
    "acc_bits", "pj_per_mac", "idle_pj_per_cycle", "sampled_macs", "checked_steps",
    "model"}``, or ``{"pe", "missing": reason}`` when the energy model refuses the kind.

    Cached by content under ``<cache root>/energy`` (like the Yosys runs, whatever the
    explorer's row cache does): the PE's Verilog, the operand steps, the energy model and
    the sources of the netlist / toggle / energy modules.  ``cache_dir``: the Yosys cache."""
    kind = pe_kind(pe)
    acc_bits = policy_acc_bits(kind)
    if kind.pe not in ENERGY_FAMILIES or kind.spec().is_lut:
        return {"pe": kind.name, "missing": (
            f"the energy model refuses it (energy runs take MAC and dot-product PE kinds "
            f"without LUTs, not {kind.name!r} (family {kind.pe!r}))")}
    spec = kind.spec(acc_bits=acc_bits)
    a, b, first = energy_steps(spec, workload, weights)
    verilog, _ = pe_verilog(kind, acc_bits=acc_bits, build_dir=build_dir)
    store = ResultCache(default_cache_dir("energy"))
    key = cache_key(_energy_sources(), verilog, a.tobytes(), b.tobytes(), first.tobytes(),
                    GENERIC_45NM.describe(), str(IDLE_STEPS))
    hit = store.get(key) if use_cache else None
    if hit is not None:
        return hit
    result = _measure(kind, spec, acc_bits, (a, b, first), build_dir, cache_dir)
    store.put(key, result)
    return result


def _measure(kind, spec, acc_bits, steps, build_dir, cache_dir):
    """The two netlist runs: the workload's steps, then :data:`IDLE_STEPS` zero steps."""
    a, b, first = steps
    busy = pe_energy(kind.name, a, b, first, data="workload", acc_bits=acc_bits,
                     model=GENERIC_45NM, build_dir=build_dir, cache_dir=cache_dir)
    zeros = np.full((IDLE_STEPS, spec.lanes), 0, dtype=np.int64)
    idle_first = np.zeros(IDLE_STEPS, dtype=bool)
    idle_first[0] = True
    idle = pe_energy(kind.name, zeros + zero_code(spec.fmt_a.name),
                     zeros + zero_code(spec.fmt_b.name), idle_first, data="zeros",
                     acc_bits=acc_bits, model=GENERIC_45NM, build_dir=build_dir,
                     cache_dir=cache_dir)
    return {"pe": kind.name, "acc_bits": acc_bits, "pj_per_mac": busy.pj_per_mac,
            "idle_pj_per_cycle": idle.pj_per_mac * spec.lanes, "sampled_macs": busy.macs,
            "checked_steps": busy.checked_steps + idle.checked_steps,
            "model": busy.model}


def stream_traffic(config, stream, words):
    """On-chip traffic of a streaming-top run: ``words`` maps the
    :data:`~nybble.sim.gemm_energy.TRAFFIC_KEYS` to its scratchpad words (A / B: words
    written from memory and read by the issuer; C: accumulators written by the drain, rows
    read by the writer).  Returns ``{"sram_bytes": {buffer: bytes}, "sram_pj": pJ}``, each
    scratchpad an SRAM of its size (both halves)."""
    lay = StreamLayout(config, stream)
    sizes = stream.scratchpad_bytes(config.top_layout)
    traffic = {"a": (words["a_writes"] + words["a_reads"]) * lay.a_word_bytes,
               "b": (words["b_writes"] + words["b_reads"]) * lay.b_word_bytes,
               "c": words["c_writes"] * config.acc_bits / 8 + words["c_reads"] * lay.row_bytes}
    return {"sram_bytes": traffic,
            "sram_pj": sum(t * sram_pj_per_byte(sizes[name]) for name, t in traffic.items())}


def layer_energy(config, pe, layer, cycles, words, dram_bytes=None):
    """Energy of one GEMM of ``layer`` (not times its count) on ``config`` in joules:
    ``{"pe_j", "idle_j", "sram_j", "dram_j", "dram_high_j", "energy_j",
    "energy_j_dram_high"}``.  ``pe``: :func:`pe_workload_energy`'s result; ``cycles``: the
    GEMM's cycles (stalls included with a bandwidth); ``words``: its buffer words
    (:data:`~nybble.sim.gemm_energy.TRAFFIC_KEYS`); ``dram_bytes``: the bytes through the
    streaming top's memory port, None for the whole-buffer top (its buffers, operands in
    and results out once)."""
    macs = layer.m * layer.n * layer.k
    lanes = config.pe_spec.lanes
    idle_cycles = max(0.0, config.rows * config.cols * cycles - macs / lanes)
    if dram_bytes is None:
        traffic = buffer_traffic(config, words)
        dram_bytes = traffic["dram_bytes"]
    else:
        traffic = stream_traffic(config, StreamConfig(), words)
    low, high = (dram_bytes * e * 1e-12 for e in dram_pj_per_byte())
    out = {"pe_j": macs * pe["pj_per_mac"] * 1e-12,
           "idle_j": idle_cycles * pe["idle_pj_per_cycle"] * 1e-12,
           "sram_j": traffic["sram_pj"] * 1e-12, "dram_j": low, "dram_high_j": high}
    on_chip = out["pe_j"] + out["idle_j"] + out["sram_j"]
    out["energy_j"] = on_chip + low
    out["energy_j_dram_high"] = on_chip + high
    return out


def words_of(record):
    """The :data:`~nybble.sim.gemm_energy.TRAFFIC_KEYS` of a cycle-model record."""
    return {key: getattr(record, key) for key in TRAFFIC_KEYS}
