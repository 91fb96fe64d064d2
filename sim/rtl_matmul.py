"""A drop-in for :func:`nybble.sw.gemm` that computes the block sums on the RTL array.

``RtlMatmul(...)(a_qt, b_qt)`` runs every K-block of ``a @ b`` (all of K for per-tensor /
per-channel schemes) as a job on the simulated array, checks each block's accumulators
against :func:`nybble.sw.gemm_codes` bit for bit, and combines the block sums with the
golden model's float-scale rule (``sw/golden.py``: ``X = fl(X + fl(S_j 2^-f * fl(sa_j sb_j)))``
in ascending block order), so its result equals ``nybble.sw.gemm`` exactly.  Block-scaled
MX / NVFP4 (exact cross-block sums) need the block-scaled array and are refused here.
"""

import sys

import numpy as np

from nybble.hw.config import ArrayConfig
from nybble.sw.golden import _block_size, _check_operands
from .check import check_gemm, result_values
from .schedule import fit_config, schedule_for
from nybble.sw.errors import ParameterError

__all__ = ["RtlMatmul", "PE_FOR_ELEMENTS"]

# element format of both operands -> PE kind whose formats they are
PE_FOR_ELEMENTS = {"int4": "int4", "float4_e2m1fn": "fp4_e2m1", "e3m0": "e3m0",
                   "int8": "int8"}


class RtlMatmul:
    """Callable ``(a_qt, b_qt) -> float64 (M, N)`` running the block sums on the RTL.

    Attributes after calls: ``jobs``, ``cycles`` (summed RTL cycles), ``mismatches``
    (accumulators that differ from the golden model: must stay 0).
    """

    def __init__(self, rows=8, cols=8, *, sim="verilator", acc_bits=32, build_dir="build",
                 log=sys.stderr):
        self.rows, self.cols, self.sim, self.acc_bits = rows, cols, sim, acc_bits
        self.build_dir, self.log = build_dir, log
        self.jobs = self.cycles = self.mismatches = 0

    def __call__(self, a, b):
        _check_operands(a, b)
        ea, eb = a.scheme.elem_fmt.name, b.scheme.elem_fmt.name
        if ea != eb or ea not in PE_FOR_ELEMENTS:
            raise ParameterError(f"no array PE for {ea} x {eb} elements; the RTL matmul runs "
                             f"{', '.join(PE_FOR_ELEMENTS)} schemes")
        kinds = {a.scheme.scale_kind, b.scheme.scale_kind}
        if not kinds <= {"float32", "ggml"}:
            raise ParameterError(f"{a.scheme.name} x {b.scheme.name} has block scales combined "
                             "exactly (MX / NVFP4): run it on the block-scaled array")
        pe = PE_FOR_ELEMENTS[ea]
        m, k = a.shape
        n = b.shape[1]
        block = _block_size(a, b)
        nb = -(-k // block)
        sa = np.broadcast_to(a.block_scale_values(), (m, nb)) if a.scheme.block != 0 else \
            np.broadcast_to(a.block_scale_values(), (m, 1)).repeat(nb, axis=1)
        sb = np.broadcast_to(b.block_scale_values(), (nb, n)) if b.scheme.block != 0 else \
            np.broadcast_to(b.block_scale_values(), (1, n)).repeat(nb, axis=0)
        x = np.zeros((m, n))
        for j in range(nb):
            ks = slice(j * block, min(k, (j + 1) * block))
            ac, bc = a.codes[:, ks], b.codes[ks, :]
            cfg = ArrayConfig(rows=self.rows, cols=self.cols, pe=pe, acc_bits=self.acc_bits)
            sched = schedule_for(cfg, m, n, ac.shape[1])
            cfg = fit_config(cfg, sched)
            c = check_gemm(cfg, ac, bc, sim=self.sim, build_dir=self.build_dir, log=self.log,
                           schedule=sched)
            self.mismatches += c.mismatches
            self.jobs += 1
            self.cycles += c.cycles
            # the golden model's float-scale rule (sw/golden.py), block by block
            x = x + result_values(cfg, c.result) * (sa[:, j][:, None] * sb[j, :][None, :])
        return x
