"""Compute and memory energy of one GEMM run on the array (``nybble gemm --energy``).

* **Compute**: one PE's netlist (:func:`nybble.sim.energy.pe_energy`) on the run's own
  operands -- its dot products one after the other, up to ``sample_macs`` MACs, every step
  checked against the golden model -- gives pJ per MAC; times the GEMM's M x N x K MACs. The
  PEs' datapath and registers only: the array's skew and drain, buffers and sequencer are not
  in it (``nybble energy --array`` measures skew and drain).
* **Memory**: the buffer traffic of the schedule the RTL runs (:mod:`nybble.sim.schedule`:
  words written and read per buffer, whose cycle model equals the RTL's cycle counter) in
  bytes of the buffers' word widths, each buffer an SRAM of its own size, and the external
  traffic of the job -- A and B loaded once, C read once -- as DRAM
  (:mod:`nybble.sim.memory_energy`, Horowitz 2014).
"""

import numpy as np

from nybble.synth.energy import GENERIC_45NM
from .energy import pe_energy
from .energy_data import gemm_steps, zero_code
from .memory_energy import dram_pj_per_byte, sram_pj_per_byte

__all__ = ["gemm_energy", "buffer_traffic", "TRAFFIC_KEYS"]

#: buffer word counts a schedule (or :class:`nybble.sim.cycles.GemmCycles`) reports
TRAFFIC_KEYS = ("a_reads", "a_writes", "b_reads", "b_writes", "c_reads", "c_writes")


def _padded_k(codes, axis, lanes, fmt):
    k = codes.shape[axis]
    extra = -k % lanes
    if not extra:
        return codes
    pad = [(0, 0), (0, 0)]
    pad[axis] = (0, extra)
    return np.pad(codes, pad, constant_values=zero_code(fmt))


def buffer_traffic(config, words):
    """Memory traffic of a run on the whole-buffer top of ``config``: ``words`` maps the
    :data:`TRAFFIC_KEYS` to buffer words (A word: one k-step of every PE row; B: of every
    column; C: one accumulator).  Returns ``{"sram_bytes": {buffer: bytes written + read},
    "sram_pj": pJ (each buffer an SRAM of its own size), "dram_bytes": operands in and
    results out once}`` (module docstring)."""
    spec = config.pe_spec
    a_word = config.rows * spec.a_bits / 8
    b_word = config.cols * spec.b_bits / 8
    c_word = config.acc_bits / 8
    buffers = {  # name: (bytes written + read, SRAM size in bytes)
        "a": ((words["a_writes"] + words["a_reads"]) * a_word, config.a_depth * a_word),
        "b": ((words["b_writes"] + words["b_reads"]) * b_word, config.b_depth * b_word),
        "c": ((words["c_writes"] + words["c_reads"]) * c_word,
              config.c_depth * config.cols * c_word),
    }
    return {"sram_bytes": {name: traffic for name, (traffic, _) in buffers.items()},
            "sram_pj": sum(traffic * sram_pj_per_byte(size)
                           for traffic, size in buffers.values()),
            "dram_bytes": (words["a_writes"] * a_word + words["b_writes"] * b_word
                           + words["c_reads"] * c_word)}


def gemm_energy(config, schedule, a_codes, b_codes, *, sample_macs=100_000,
                model=GENERIC_45NM, build_dir="build", cache_dir=None, log=None):
    """Energy of ``a_codes @ b_codes`` (M x K and K x N codes) run on ``config`` with
    ``schedule`` (module docstring), in pJ: ``compute_pj``, ``sram_pj``, ``dram_pj``
    (``[low, high]``), their shares, ``pj_per_mac`` and the traffic in bytes."""
    spec = config.pe_spec
    a = _padded_k(np.asarray(a_codes, np.int64), 1, spec.lanes, spec.fmt_a)
    b = _padded_k(np.asarray(b_codes, np.int64), 0, spec.lanes, spec.fmt_b)
    m, k = a.shape
    n = b.shape[1]
    macs = m * n * np.asarray(a_codes).shape[1]
    steps = max(1, min(m * n * k // spec.lanes, sample_macs // spec.lanes))
    pe = pe_energy(config.pe, *gemm_steps(a, b, spec.lanes, steps), data="gemm",
                   acc_bits=config.acc_bits, model=model, build_dir=build_dir,
                   cache_dir=cache_dir, log=log)
    compute = pe.pj_per_mac * macs
    traffic = buffer_traffic(config, {key: getattr(schedule, key) for key in TRAFFIC_KEYS})
    sram, dram_bytes = traffic["sram_pj"], traffic["dram_bytes"]
    low, high = (dram_bytes * e for e in dram_pj_per_byte())
    total = [compute + sram + low, compute + sram + high]
    return {
        "macs": int(macs), "pe_pj_per_mac": pe.pj_per_mac, "sampled_macs": pe.macs,
        "compute_pj": compute, "sram_pj": sram, "dram_pj": [low, high],
        "total_pj": total, "pj_per_mac": [t / macs for t in total],
        "compute_share": [compute / t for t in total],
        "sram_bytes": traffic["sram_bytes"],
        "dram_bytes": dram_bytes, "model": model.describe(),
        "scope": "compute: PE datapaths and registers (no skew, drain, buffers or "
                 "sequencer); memory: buffer words of the run's schedule as SRAM, operands "
                 "in and results out once as DRAM (Horowitz 2014)"}
