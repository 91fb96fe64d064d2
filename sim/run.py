"""Run a GEMM on the RTL of an :class:`~nybble.hw.top.ArrayTop` and collect the exact result.

Three simulators, one schedule (:mod:`.schedule`), one host protocol (load buffers, start,
wait for ``done``, read results):

* ``verilator`` -- the native C++ harness of :mod:`.native` (fast path, cached builds);
* ``amaranth`` -- Amaranth's Python simulator (slow; small cases and unit tests);
* ``cocotb`` / ``icarus`` -- the cocotb testbench ``tests/tb/tb_array.py`` on Verilator or
  Icarus (the verification path; see :mod:`.cocotb_runner`).
"""

from dataclasses import dataclass, field
import os
import sys
import time

import numpy as np

from .schedule import schedule_for, chunks_to_ints

__all__ = ["GemmRun", "run_gemm", "SIMULATORS", "golden_for"]

SIMULATORS = ("verilator", "amaranth", "cocotb", "icarus")


@dataclass
class GemmRun:
    """What one RTL run gives: the accumulators (M x N ints on the PE's grid), the RTL's
    cycle count and the time spent."""

    result: np.ndarray
    cycles: int
    sim_seconds: float
    build_seconds: float
    cached_build: bool
    simulator: str
    schedule: object = field(repr=False)
    frac_bits: int = 0


def golden_for(config, a_codes, b_codes):
    """The golden accumulators (``nybble.sw.gemm_codes``) of ``config``'s PE."""
    if config.block_scaled:
        from .block_run import block_golden_for
        return block_golden_for(config, a_codes, b_codes)
    from nybble.hw.array import build_pe
    return build_pe(config, prototype=True).model(np.asarray(a_codes), np.asarray(b_codes))


def _build_top(config):
    from nybble.hw.top import ArrayTop
    top = ArrayTop(config)
    # drivers may take the Verilog from the cache instead of elaborating this instance
    top._MustUse__silence = True
    top._array._MustUse__silence = True
    return top


def run_gemm(config, a_codes, b_codes, *, sim="verilator", waves=None, build_dir="build",
             log=sys.stderr):
    """Run ``a_codes @ b_codes`` (codes of the PE kind's formats) on ``config``'s RTL.

    ``waves``: a ``.vcd`` or ``.fst`` path to dump (Verilator and Amaranth: ``.vcd``/``.fst``
    and ``.vcd`` respectively).  Returns a :class:`GemmRun`.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if config.block_scaled:  # a_codes / b_codes are QuantizedTensors (sim/block_run.py)
        from .block_run import run_block_gemm
        return run_block_gemm(config, a_codes, b_codes, sim=sim, waves=waves,
                              build_dir=build_dir, log=log)
    a_codes, b_codes = np.asarray(a_codes), np.asarray(b_codes)
    for name, c in (("a_codes", a_codes), ("b_codes", b_codes)):
        if c.ndim != 2 or not np.issubdtype(c.dtype, np.integer):
            raise ValueError(f"{name} must be a 2-D integer array of codes, not "
                             f"{c.ndim}-D {c.dtype}")
    if a_codes.shape[1] != b_codes.shape[0]:
        raise ValueError(f"K mismatch: a_codes is {a_codes.shape[0]} x {a_codes.shape[1]}, "
                         f"b_codes is {b_codes.shape[0]} x {b_codes.shape[1]}")
    fmt_a, fmt_b = config.formats[:2]
    for name, c, f in (("a_codes", a_codes, fmt_a), ("b_codes", b_codes, fmt_b)):
        from nybble.sw import get_format
        n = get_format(f).n_codes
        if c.size and (c.min() < 0 or c.max() >= n):
            raise ValueError(f"{name} must hold {f} codes 0..{n - 1}")
    m, k = a_codes.shape
    n = b_codes.shape[1]
    sched = schedule_for(config, m, n, k)
    sched.check_fits(config)
    top = _build_top(config)
    return run_words(config, top, sched, sched.a_words(a_codes, fmt_a),
                     sched.b_words(b_codes, fmt_b), sim=sim, waves=waves,
                     build_dir=build_dir, log=log)


def run_words(config, top, sched, a_w, b_w, *, sim, waves, build_dir, log):
    """Load buffer words ``a_w`` / ``b_w`` into ``top``, run ``sched``'s job on ``sim``, read
    and unpack the results: the part every GEMM driver shares."""
    addrs = sched.result_addresses(top.col_bits)
    job = sched.job
    if sim == "verilator":
        run = _run_verilator(top, a_w, b_w, addrs, job, waves, build_dir, log)
    elif sim == "amaranth":
        run = _run_amaranth(top, a_w, b_w, addrs, job, waves, log)
    else:
        from .cocotb_array import run_array_cocotb
        run = run_array_cocotb(top, a_w, b_w, addrs, job, simulator="icarus" if sim == "icarus"
                               else "verilator", waves=waves, build_dir=build_dir, log=log)
    values, cycles, secs, build_s, cached = run
    result = sched.unpack_results(values, config.acc_bits)
    return GemmRun(result, cycles, secs, build_s, cached, sim, sched, top.frac_bits)


def _source_digest():
    """A digest of the hardware generators' sources (hw/ and the sw/ they read)."""
    import hashlib
    import nybble.hw
    import nybble.sw
    h = hashlib.sha256()
    for pkg in (nybble.hw, nybble.sw):
        d = os.path.dirname(pkg.__file__)
        for name in sorted(os.listdir(d)):
            if name.endswith(".py"):
                with open(os.path.join(d, name), "rb") as f:
                    h.update(name.encode() + f.read())
    return h.hexdigest()


def top_verilog(config, top=None, *, build_dir="build", log=sys.stderr, resetless=False):
    """Verilog of ``ArrayTop(config)`` (wrapped in a :class:`~nybble.hw.top.ResetlessTop`
    with ``resetless``), cached under ``build_dir/verilog`` by the config and a digest of the
    generator sources (elaborating a 16x16 array takes tens of seconds)."""
    import hashlib
    from nybble.synth.verilog import to_verilog
    from nybble.hw.top import ResetlessTop
    key = hashlib.sha256((repr(config) + _source_digest() + str(resetless))
                         .encode()).hexdigest()[:20]
    path = os.path.join(build_dir, "verilog", f"top_{key}.v")
    if os.path.exists(path):
        with open(path) as f:
            return f.read(), 0.0
    t = time.perf_counter()
    print(f"generating Verilog for {config.rows}x{config.cols} {config.pe} ...", file=log)
    top = top if top is not None else _build_top(config)
    verilog = to_verilog(ResetlessTop(top) if resetless else top, name="top")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + f".{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(verilog)
    os.replace(tmp, path)
    return verilog, time.perf_counter() - t


def _run_verilator(top, a_w, b_w, addrs, job, waves, build_dir, log):
    from .native import build_native, run_native
    kind = None
    if waves:
        kind = "fst" if str(waves).endswith(".fst") else "vcd"
    verilog, gen_s = top_verilog(top.config, top, build_dir=build_dir, log=log,
                                 resetless=True)
    b = build_native(verilog, wr_width=top.wr_bits, rd_width=top.config.acc_bits,
                     cache_dir=os.path.join(build_dir, "verilator"), waves=kind, log=log,
                     has_rst=False)
    a_list = a_w
    values, cycles, secs = run_native(
        b, a_words=a_list, b_words=b_w, n_out=len(addrs), read_addresses=addrs,
        workdir=os.path.join(build_dir, "verilator", "jobs"), waves_path=waves, **job)
    return values, cycles, secs, b.build_seconds + (0 if b.cached else gen_s), b.cached


def _run_amaranth(top, a_w, b_w, addrs, job, waves, log):
    from amaranth.sim import Simulator
    from nybble.hw.top import WR_A, WR_B
    sim = Simulator(top)
    sim.add_clock(1e-8)
    out = {}
    a_ints, b_ints = chunks_to_ints(a_w), chunks_to_ints(b_w)

    async def bench(ctx):
        for sel, words in ((WR_A, a_ints), (WR_B, b_ints)):
            for addr, w in enumerate(words):
                ctx.set(top.wr_en, 1)
                ctx.set(top.wr_sel, sel)
                ctx.set(top.wr_addr, addr)
                ctx.set(top.wr_data, w)
                await ctx.tick()
        ctx.set(top.wr_en, 0)
        for name, v in job.items():
            ctx.set(getattr(top, name), v)
        await ctx.tick()
        t0 = time.perf_counter()
        ctx.set(top.start, 1)
        await ctx.tick()
        ctx.set(top.start, 0)
        while not ctx.get(top.done):
            await ctx.tick()
        out["secs"] = time.perf_counter() - t0
        out["cycles"] = ctx.get(top.cycles)
        vals = []
        mask = (1 << top.config.acc_bits) - 1
        for a in addrs:
            ctx.set(top.rd_addr, int(a))
            vals.append(ctx.get(top.rd_data) & mask)
        out["values"] = vals

    sim.add_testbench(bench)
    if waves:
        with sim.write_vcd(str(waves)):
            sim.run()
    else:
        sim.run()
    return np.array(out["values"], dtype=object), out["cycles"], out["secs"], 0.0, True
