"""Run a block-scaled GEMM (MXFP4, MXINT8, NVFP4, Q4_0) on the RTL and get the exact result.

The array, the top level and the host protocol are those of every other PE
(:mod:`nybble.sim.run`); only the operands differ: :class:`~nybble.sw.QuantizedTensor` s
whose element codes and block scale codes are laid out by :mod:`.block_schedule`.

Hook: ``nybble.sim.run.run_gemm`` / ``golden_for`` hand block-scaled configs to
:func:`run_block_gemm` / :func:`block_golden_for` (``a_codes`` / ``b_codes`` are then
QuantizedTensors).
"""

import sys

import numpy as np

from .block_schedule import block_schedule_for, is_block_config, block_pe

__all__ = ["run_block_gemm", "block_golden_for", "block_result_values", "is_block_config"]


def _operands(config, a, b):
    pe = block_pe(config)
    pe.check_operand("a", a)
    pe.check_operand("b", b)
    if len(a.shape) != 2 or len(b.shape) != 2 or a.axis != 1 or b.axis != 0:
        raise ValueError("a must be M x K quantized along K (axis=-1) and b K x N along K "
                         "(axis=0)")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"K mismatch: a is {a.shape[0]} x {a.shape[1]}, b is "
                         f"{b.shape[0]} x {b.shape[1]}")
    return pe


def _check_build_pe(config, pe):
    """The array's PEs must be built with the config's block options (``build_pe`` hook)."""
    from nybble.hw.array import build_pe
    built = build_pe(config, prototype=True)
    if (built.block_size, built.frac_bits) != (pe.block_size, pe.frac_bits):
        raise RuntimeError(
            f"nybble.hw.array.build_pe built a {config.pe} PE with block_size "
            f"{built.block_size} and acc_frac_bits {built.frac_bits}, but the ArrayConfig asks "
            f"for {pe.block_size} and {pe.frac_bits}: build_pe must pass config.pe_options "
            "to PEKind.build (until then only the kind's defaults run on the array)")


def block_golden_for(config, a, b):
    """The golden accumulators (:func:`nybble.sw.gemm_block_acc`) of ``config``'s PE for the
    quantized tensors ``a`` (M x K) and ``b`` (K x N)."""
    return _operands(config, a, b).model(a, b)


def block_result_values(config, acc, a, b):
    """The real result: ``acc * 2**-acc_frac_bits``, times the per-tensor scales (NVFP4) --
    :func:`nybble.sw.gemm` with ``block_acc``, applied to the RTL's accumulators."""
    from nybble.sw.golden import _ints_to_float
    pe = block_pe(config)
    x = np.ldexp(_ints_to_float(np.asarray(acc)), -pe.frac_bits)
    ta = a.tensor_scale if a.tensor_scale is not None else 1.0
    tb = b.tensor_scale if b.tensor_scale is not None else 1.0
    return x * (np.float64(ta) * np.float64(tb)) if (ta != 1.0 or tb != 1.0) else x


def run_block_gemm(config, a, b, *, sim="verilator", waves=None, build_dir="build",
                   log=sys.stderr):
    """Run ``a @ b`` (QuantizedTensors of the PE kind's scheme) on ``config``'s RTL.

    Returns a :class:`nybble.sim.run.GemmRun` whose ``result`` holds the cross-block
    accumulators (M x N ints on the grid ``2**-frac_bits``) and whose ``schedule`` is the
    :class:`~.block_schedule.BlockOsSchedule`.
    """
    from nybble.hw.block_pe import scale_codes
    from .run import SIMULATORS, _build_top, run_words
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if not is_block_config(config):
        raise ValueError(f"ArrayConfig.pe {config.pe!r} is not block-scaled; use "
                         "nybble.sim.run.run_gemm")
    pe = _operands(config, a, b)
    _check_build_pe(config, pe)
    m, k = a.shape
    n = b.shape[1]
    sched = block_schedule_for(config, m, n, k)
    sched.check_fits(config)
    top = _build_top(config)
    fa, fb = config.formats[:2]
    a_w = sched.a_words(a.codes, fa, scale_codes(a))
    b_w = sched.b_words(b.codes, fb, scale_codes(b))
    return run_words(config, top, sched, a_w, b_w, sim=sim, waves=waves, build_dir=build_dir,
                     log=log)
