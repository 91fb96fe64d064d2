"""The one run-and-check: lay out operands, run on a simulator, compare with the golden model.

:func:`check_gemm` is the path from a GEMM to its verdict that every command, benchmark, demo
and test takes: it runs ``a @ b`` on the RTL (:func:`nybble.sim.run.run_gemm`), computes the
golden accumulators (:func:`golden_for`: the PE spec's ``model``, i.e.
:func:`nybble.sw.gemm_codes` or :func:`nybble.sw.gemm_block_acc` with the spec's keyword
arguments), counts the mismatches and reports cycles against the cycle model and the ideal
(lanes counted).  A :class:`GemmCheck` with ``mismatches > 0`` is a failed check.
"""

from dataclasses import dataclass, field
import sys

import numpy as np

from nybble.sw.golden import acc_to_float
from .run import run_gemm, check_operands

__all__ = ["GemmCheck", "check_gemm", "golden_for", "result_values", "compare_results"]


def golden_for(config, a, b):
    """The golden accumulators of ``a @ b`` on ``config``'s PE (operands as for
    :func:`nybble.sim.run.run_gemm`): integers on the grid ``2**-frac_bits``."""
    check_operands(config, a, b)
    spec = config.pe_spec
    if spec.family == "block":
        return spec.model(a, b)
    if spec.family == "bitserial":
        return spec.model(np.asarray(a), np.asarray(b.codes), np.asarray(b.sel))
    return spec.model(np.asarray(a), np.asarray(b))


def result_values(config, acc, a=None, b=None):
    """The real values of accumulators ``acc``: ``acc * 2**-frac_bits``, times the per-tensor
    scales of block-scaled operands (NVFP4's; applied on the host, after the array)."""
    x = acc_to_float(acc, config.pe_spec.frac_bits)
    scale = 1.0
    for t in (a, b):
        ts = getattr(t, "tensor_scale", None)
        if ts is not None:
            scale *= np.float64(ts)
    return x * scale if scale != 1.0 else x


@dataclass
class GemmCheck:
    """The verdict of one GEMM on the RTL.

    ``result`` / ``golden``: M x N accumulators (RTL / golden model); ``mismatches``: how
    many differ (the check passes at 0); ``first_mismatch``: ``(i, j, got, want)`` or None;
    ``cycles``: the RTL's count, ``model_cycles``: the cycle model's (equal by design),
    ``ideal_cycles``: ``M*N*K / (rows * cols * lanes)``; ``utilization``: ideal / cycles.
    """

    config: object
    m: int
    n: int
    k: int
    result: np.ndarray = field(repr=False)
    golden: np.ndarray = field(repr=False)
    mismatches: int
    first_mismatch: tuple | None
    cycles: int
    model_cycles: int
    ideal_cycles: float
    overflow: bool
    simulator: str
    sim_seconds: float
    build_seconds: float
    cached_build: bool
    schedule: object = field(repr=False)

    @property
    def passed(self):
        return self.mismatches == 0

    @property
    def utilization(self):
        return self.ideal_cycles / self.cycles if self.cycles else None

    @property
    def macs_per_second(self):
        """Simulated MACs per wall-clock second of the clocked run."""
        return self.m * self.n * self.k / self.sim_seconds if self.sim_seconds > 0 else None

    def summary(self):
        """The JSON-ready figures of the check."""
        cfg = self.config
        return {
            "array": f"{cfg.rows}x{cfg.cols}", "pe": cfg.pe, "dataflow": cfg.dataflow,
            "acc_bits": cfg.acc_bits, "overflow_mode": cfg.overflow,
            "m": self.m, "n": self.n, "k": self.k, "simulator": self.simulator,
            "cycles": self.cycles, "model_cycles": self.model_cycles,
            "ideal_cycles": self.ideal_cycles, "utilization": self.utilization,
            "lanes": cfg.pe_spec.lanes, "mismatches": self.mismatches,
            "first_mismatch": (None if self.first_mismatch is None else
                               dict(zip(("row", "col", "got", "want"),
                                        (int(v) for v in self.first_mismatch)))),
            "overflow": self.overflow, "sim_seconds": self.sim_seconds,
            "build_seconds": self.build_seconds, "cached_build": self.cached_build,
            "macs_per_second": self.macs_per_second,
        }


def compare_results(result, golden):
    """``(mismatches, first)``: how many accumulators of ``result`` differ from ``golden``
    (M x N each) and the first difference ``(i, j, got, want)`` or None."""
    got, want = np.asarray(result, dtype=object), np.asarray(golden, dtype=object)
    bad = np.argwhere(got != want)
    if not len(bad):
        return 0, None
    i, j = bad[0]
    return len(bad), (i, j, got[i, j], want[i, j])


def check_gemm(config, a, b, *, sim="verilator", waves=None, build_dir="build",
               log=sys.stderr, schedule=None):
    """Run ``a @ b`` on ``config``'s RTL and check it bit for bit against the golden model;
    returns a :class:`GemmCheck` (operands and options as for
    :func:`nybble.sim.run.run_gemm`)."""
    golden = golden_for(config, a, b)
    run = run_gemm(config, a, b, sim=sim, waves=waves, build_dir=build_dir, log=log,
                   schedule=schedule)
    mismatches, first = compare_results(run.result, golden)
    s = run.schedule
    return GemmCheck(config=config, m=s.m, n=s.n, k=s.k, result=run.result, golden=golden,
                     mismatches=mismatches, first_mismatch=first, cycles=run.cycles,
                     model_cycles=s.cycles, ideal_cycles=s.ideal_cycles,
                     overflow=run.overflow, simulator=sim, sim_seconds=run.sim_seconds,
                     build_seconds=run.build_seconds, cached_build=run.cached_build,
                     schedule=s)
