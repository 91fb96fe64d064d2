"""Run a GEMM on the RTL of an :class:`~nybble.hw.top.ArrayTop` and collect the exact result.

One schedule (:mod:`.schedule`) lays out the operands, one host protocol (:mod:`.host`) runs
the job, on one of four simulators:

* ``verilator`` -- the native C++ harness of :mod:`.native` (fast path, cached builds);
* ``amaranth`` -- Amaranth's Python simulator (slow; small cases and unit tests);
* ``cocotb`` / ``icarus`` -- the cocotb testbench ``tests/tb/tb_array.py`` on Verilator or
  Icarus (the verification path; see :mod:`.cocotb_array`).

Operands: element codes (``(M, K)`` and ``(K, N)`` integer arrays) for plain PE kinds;
activation codes and :class:`nybble.hw.spec.TypedWeights` (codes plus a data type per weight)
for the bit-serial kind;
:class:`nybble.sw.QuantizedTensor` s (``a`` quantized along K with ``axis=-1``, ``b`` with
``axis=0``) for block-scaled kinds, whose scales travel in the operand words.
"""

from dataclasses import dataclass, field
import os
import sys

import numpy as np
from amaranth.sim import Simulator

from nybble.hw.spec import scale_codes
from nybble.hw.top import ArrayTop
from nybble.synth.verilog import top_verilog
from nybble.sw.quantize import QuantizedTensor
from .cocotb_array import run_array_cocotb
from .host import AmaranthPorts, ArrayHost, run_job
from .native import build_native, run_native
from .schedule import schedule_for
from .words import chunks_to_ints
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["GemmRun", "run_gemm", "host_gemm", "prepare_job", "check_operands",
           "operand_words", "SIMULATORS"]

SIMULATORS = ("verilator", "amaranth", "cocotb", "icarus")


@dataclass
class GemmRun:
    """What one RTL run gives: the accumulators (M x N ints on the grid ``2**-frac_bits``),
    the RTL's cycle count and overflow flag, and the time spent."""

    result: np.ndarray
    cycles: int
    overflow: bool
    sim_seconds: float
    build_seconds: float
    cached_build: bool
    simulator: str
    schedule: object = field(repr=False)
    frac_bits: int = 0


def check_operands(config, a, b):
    """Raise a ``ValueError`` / ``TypeError`` naming the operand unless ``a`` (M x K) and
    ``b`` (K x N) fit ``config``'s PE kind (codes, or QuantizedTensors for block-scaled
    kinds); returns ``(m, n, k)``."""
    spec = config.pe_spec
    if spec.family == "bitserial":
        spec.check_weights("b", b)
        _check_codes("a", a, spec.fmt_a)
    elif spec.family == "block":
        for name, t in (("a", a), ("b", b)):
            spec.check_operand(name, t)
        if len(a.shape) != 2 or len(b.shape) != 2 or a.axis != 1 or b.axis != 0:
            raise ParameterError("a must be M x K quantized along K (axis=-1) and b K x N along K "
                             "(axis=0)")
    else:
        for name, t in (("a", a), ("b", b)):
            if isinstance(t, QuantizedTensor):
                raise ParameterTypeError(f"{name}: the {config.pe} PE takes element codes, not a "
                                "QuantizedTensor (block-scaled kinds take those)")
        for name, c, f in (("a", a, spec.fmt_a), ("b", b, spec.fmt_b)):
            _check_codes(name, c, f)
    if a.shape[1] != b.shape[0]:
        raise ParameterError(f"K mismatch: a is {a.shape[0]} x {a.shape[1]}, b is "
                         f"{b.shape[0]} x {b.shape[1]}")
    return a.shape[0], b.shape[1], a.shape[1]


def _check_codes(name, c, f):
    c = np.asarray(c)
    if c.ndim != 2 or not np.issubdtype(c.dtype, np.integer):
        raise ParameterError(f"{name}_codes must be a 2-D integer array of codes, not "
                             f"{c.ndim}-D {c.dtype}")
    if c.size and (c.min() < 0 or c.max() >= f.n_codes):
        raise ParameterError(f"{name}_codes must hold {f.name} codes 0..{f.n_codes - 1}")


def operand_words(config, sched, a, b):
    """The A and B buffer words (uint32 chunks) of ``a @ b`` under ``sched``."""
    fa, fb = config.pe_spec.formats
    if config.pe_spec.family == "block":
        return (sched.a_words(a.codes, fa, scale_codes(a)),
                sched.b_words(b.codes, fb, scale_codes(b)))
    if config.pe_spec.family == "bitserial":
        return sched.a_words(np.asarray(a), fa), sched.b_words(b.codes, config.pe_spec.fmt_b, b.sel)
    return sched.a_words(np.asarray(a), fa), sched.b_words(np.asarray(b), fb)


@dataclass(frozen=True)
class PreparedJob:
    """One GEMM laid out for a top: ``schedule``, buffer words ``a_words`` / ``b_words``
    (uint32 chunks), ``job`` inputs and result ``addresses``."""

    schedule: object
    a_words: np.ndarray
    b_words: np.ndarray
    job: dict
    addresses: np.ndarray


def prepare_job(config, a, b, *, col_bits=None, schedule=None):
    """Check the operands against ``config`` and lay them out (a :class:`PreparedJob`);
    ``col_bits``: the top's (default: ``config.top_layout.col_bits``); ``schedule``: the
    GEMM's schedule when the caller has it already."""
    m, n, k = check_operands(config, a, b)
    sel = b.sel if config.pe_spec.family == "bitserial" else None
    sched = schedule_for(config, m, n, k, sel=sel) if schedule is None else schedule
    if (sched.m, sched.n, sched.k) != (m, n, k):
        raise ParameterError(f"schedule is for {sched.m}x{sched.k} @ {sched.k}x{sched.n}, "
                             f"the operands are {m}x{k} @ {k}x{n}")
    sched.check_fits(config)
    a_w, b_w = operand_words(config, sched, a, b)
    col_bits = config.top_layout.col_bits if col_bits is None else col_bits
    return PreparedJob(sched, a_w, b_w, sched.job, sched.result_addresses(col_bits))


async def host_gemm(host, config, a, b, *, col_bits=None):
    """``a @ b`` on any host driver (:class:`nybble.sim.host.ArrayHost` on a simulated top,
    :class:`nybble.sim.fpga_host.SerialHost` on a board); returns ``(result, cycles,
    overflow, seconds, schedule)`` with the M x N accumulators."""
    return await _run_prepared(host, config, prepare_job(config, a, b, col_bits=col_bits))


async def _run_prepared(host, config, p):
    r = await run_job(host, chunks_to_ints(p.a_words), chunks_to_ints(p.b_words), p.job,
                      [int(x) for x in p.addresses])
    result = p.schedule.unpack_results(r.values, config.acc_bits)
    return result, r.cycles, r.overflow, r.seconds, p.schedule


def run_gemm(config, a, b, *, sim="verilator", waves=None, build_dir="build",
             log=sys.stderr, schedule=None):
    """Run ``a @ b`` on ``config``'s RTL (operands: module docstring).

    ``waves``: a ``.vcd`` or ``.fst`` path to dump (Amaranth: ``.vcd`` only); ``schedule``:
    the GEMM's schedule when the caller has it (:func:`prepare_job`).  Returns a
    :class:`GemmRun`; raises ``ValueError`` when the operands do not fit the config or its
    buffers.
    """
    if sim not in SIMULATORS:
        raise ParameterError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    frac_bits = config.pe_spec.frac_bits
    p = prepare_job(config, a, b, schedule=schedule)
    if sim == "amaranth":
        result, cycles, overflow, secs, sched = _run_amaranth(config, p, waves)
        return GemmRun(result, cycles, overflow, secs, 0.0, True, sim, sched, frac_bits)
    if sim == "verilator":
        run = _run_verilator(config, p, waves, build_dir, log)
    else:
        run = run_array_cocotb(config, p.a_words, p.b_words, p.addresses, p.job,
                               simulator="icarus" if sim == "icarus" else "verilator",
                               waves=waves, build_dir=build_dir, log=log)
    values, cycles, overflow, secs, build_s, cached = run
    result = p.schedule.unpack_results(values, config.acc_bits)
    return GemmRun(result, cycles, overflow, secs, build_s, cached, sim, p.schedule,
                   frac_bits)


def _run_verilator(config, p, waves, build_dir, log):
    kind = None
    if waves:
        kind = "fst" if str(waves).endswith(".fst") else "vcd"
    verilog, gen_s = top_verilog(config, build_dir=build_dir, log=log, resetless=True)
    b = build_native(verilog, wr_width=config.top_layout.wr_bits, rd_width=config.acc_bits,
                     cache_dir=os.path.join(build_dir, "verilator"), waves=kind, log=log,
                     has_rst=False)
    values, cycles, overflow, secs = run_native(
        b, a_words=p.a_words, b_words=p.b_words, n_out=len(p.addresses),
        read_addresses=p.addresses, workdir=os.path.join(build_dir, "verilator", "jobs"),
        waves_path=waves, log=log, **p.job)
    return values, cycles, overflow, secs, b.build_seconds + (0 if b.cached else gen_s), b.cached


def _run_amaranth(config, p, waves):
    top = ArrayTop(config)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    out = {}

    async def bench(ctx):
        host = ArrayHost(AmaranthPorts(ctx, top), config.acc_bits)
        await host.idle()
        out["run"] = await _run_prepared(host, config, p)

    sim.add_testbench(bench)
    if waves:
        with sim.write_vcd(str(waves)):
            sim.run()
    else:
        sim.run()
    return out["run"]
