"""The fast cycle model: the RTL's exact cycle count for any config and GEMM shape.

It evaluates the schedule of :mod:`.schedule` (the one the RTL sequencer implements) in closed
form, so a whole network costs microseconds per layer.  Tests run the RTL on a sweep of configs
and shapes and hold ``gemm_cycles(...).cycles`` equal to the RTL's own cycle counter.
"""

from dataclasses import dataclass
from functools import lru_cache

from .schedule import OsSchedule, schedule_for
from nybble.sw.errors import ParameterError

__all__ = ["GemmCycles", "gemm_cycles", "block_cycle_overhead"]


@dataclass(frozen=True)
class GemmCycles:
    """Cycles and buffer traffic of one GEMM.

    ``cycles``: first operand read to last result written, inclusive.  ``ideal_cycles``:
    ``M*N*K / (rows * cols * lanes)``; ``mean_cycles_per_mac``: bit-serial arrays only.  Reads / writes are buffer words (A word: one k-step of
    every PE row; B word: of every column; C: one accumulator).
    """

    m: int
    n: int
    k: int
    cycles: int
    ideal_cycles: float
    utilization: float
    tiles: int
    a_reads: int
    a_writes: int
    b_reads: int
    b_writes: int
    c_reads: int
    c_writes: int
    mean_cycles_per_mac: float | None = None


def _record(s):
    extra = {}
    if hasattr(s, "mean_cycles_per_mac"):
        extra["mean_cycles_per_mac"] = s.mean_cycles_per_mac
    return GemmCycles(m=s.m, n=s.n, k=s.k, cycles=s.cycles, ideal_cycles=s.ideal_cycles,
                      utilization=s.ideal_cycles / s.cycles, tiles=s.tiles,
                      a_reads=s.a_reads, a_writes=s.a_writes, b_reads=s.b_reads,
                      b_writes=s.b_writes, c_reads=s.c_reads, c_writes=s.c_writes, **extra)


@lru_cache(maxsize=4096)
def _cached(config, m, n, k):
    return _record(schedule_for(config, m, n, k))


def gemm_cycles(config, m, n, k, *, sel=None):
    """:class:`GemmCycles` of an ``m x k @ k x n`` GEMM on ``config`` (an ArrayConfig).

    A bit-serial array's cycles depend on its weights' data types: ``sel`` (K x N
    selectors, required there) -- its ``ideal_cycles`` is the bit-parallel ideal
    ``M*N*K / (rows * cols)`` and ``mean_cycles_per_mac`` the types' mean MAC length."""
    if config.bit_serial:
        if sel is None:
            raise ParameterError(f"ArrayConfig.pe {config.pe!r} is bit-serial: its cycles need "
                                 "sel, the data type of every weight (K x N)")
        return _record(schedule_for(config, m, n, k, sel=sel))
    if sel is not None:
        raise ParameterError(f"sel applies to bit-serial arrays, not ArrayConfig.pe "
                             f"{config.pe!r}")
    return _cached(config, int(m), int(n), int(k))


def block_cycle_overhead(config, m, n, k):
    """``(block cycles, plain cycles, ratio)`` of an ``m x k @ k x n`` GEMM on the
    block-scaled ``config`` against a plain array of the same geometry and lanes (a
    dot-product PE of latency 1, K padded to whole k-steps only)."""
    if not config.block_scaled:
        raise ParameterError(f"ArrayConfig.pe {config.pe!r} is not block-scaled")
    s = schedule_for(config, m, n, k)
    plain = OsSchedule(s.rows, s.cols, s.lanes, 1, s.m, s.n, s.k)
    return s.cycles, plain.cycles, s.cycles / plain.cycles
