"""Run a GEMM on a :class:`~nybble.hw.stream_top.StreamTop` with its external memory, and check it.

:func:`check_stream_gemm` is the streaming top's run-and-check: lay the operands out in an
external memory image (:func:`memory_image`: packed words of the OS schedule, 4-bit codes two
per byte), run the job on Amaranth's simulator (the memory model in Python, one cycle at a
time) or on the native Verilator harness (:mod:`.stream_native`), read the results back from
the memory image, and compare them bit for bit with :func:`~.check.golden_for`, and the RTL's
cycle and stall counters and port bytes with :func:`~.stream_cycles.stream_cycles`.  The top
is the config's dataflow's (:func:`stream_top`): output-stationary, weight-stationary, or
input-stationary as the transposed GEMM on the weight-stationary build (``A^T`` laid out as
the weight tiles, ``B^T`` as the streamed rows, ``C^T`` read back and transposed).
"""

from dataclasses import dataclass, field, replace
import os
from pathlib import Path
import sys
import tempfile

import numpy as np
from amaranth.sim import Simulator

from nybble.hw.scratchpad import SCRATCHPAD_VERILOG
from nybble.hw.spec import scale_codes
from nybble.hw.stream_config import StreamConfig
from nybble.hw.stream_top import ResetlessStreamTop, StreamLayout, StreamTop
from nybble.hw.stream_ws_top import WsStreamTop, ws_hardware
from nybble.synth.verilog import cached_verilog
from nybble.sw.errors import ParameterError, ToolError
from nybble.sw.formats import get_format
from .check import compare_results, golden_for
from .cocotb_array import TB_DIR
from .cocotb_runner import run_cocotb
from .host import AmaranthPorts
from .memory_model import MemoryModel
from .run import check_operands
from .stream_cycles import WsStreamPlan, plan, stream_cycles
from .stream_host import StreamHost
from .words import pack_fields
from .native import compact_memory_init
from .stream_native import build_stream_native, run_stream_native

__all__ = ["stream_top", "StreamRun", "StreamCheck", "memory_image", "read_results", "run_stream",
           "check_stream_gemm", "stream_verilog", "run_stream_amaranth",
           "run_stream_cocotb", "STREAM_SIMULATORS"]

STREAM_SIMULATORS = ("verilator", "amaranth", "cocotb")


def _word_bytes(chunks, nbytes):
    """uint32 chunk words -> ``(n, nbytes)`` little-endian bytes."""
    c = np.ascontiguousarray(np.asarray(chunks, dtype=np.uint32))
    b = c.view(np.uint8).reshape(c.shape[0], -1)
    if b.shape[1] < nbytes:
        b = np.pad(b, ((0, 0), (0, nbytes - b.shape[1])))
    return b[:, :nbytes]


def _block_records(config, p, t, side):
    """The block records (:class:`~nybble.hw.stream_top.StreamLayout`) of the block-scaled
    operand ``t`` (a QuantizedTensor; ``side`` ``"a"``: M x K, ``"b"``: K x N) as uint32
    chunks, record ``(tile, block)`` at row ``tile * blocks + block``.  K is padded to whole
    blocks and rows / columns to whole tiles with the element format's zero code, scale
    code 0 past M / N (as :class:`~nybble.sim.schedule.BlockOsSchedule` pads)."""
    s, spec = p.schedule, config.pe_spec
    fmt = get_format(spec.formats[0 if side == "a" else 1])
    L, W, B = s.lanes, p.steps_per_word, s.blocks
    if side == "a":
        codes, zero = s._padded(t.codes, (s.m, s.k), fmt, "a_codes")
        scales = s._check_scales(scale_codes(t), (s.m, B), "a_scales")
        n, tiles = s.rows, s.m_tiles
    else:
        codes, zero = s._padded(t.codes.T, (s.n, s.k), fmt, "b_codes")
        scales = s._check_scales(scale_codes(t).T, (s.n, B), "b_scales")
        n, tiles = s.cols, s.n_tiles
    el = np.full((tiles * n, B * W * L), zero, np.int64)
    el[:codes.shape[0], :s.k] = codes
    sc = np.zeros((tiles * n, B), np.int64)
    sc[:scales.shape[0]] = scales
    # (tile, i, block, t, l) -> record (tile, block): fields (t, i, l), then scales (i)
    el = el.reshape(tiles, n, B, W, L).transpose(0, 2, 3, 1, 4).reshape(tiles * B, -1)
    sc = sc.reshape(tiles, n, B).transpose(0, 2, 1).reshape(tiles * B, n)
    return pack_fields(np.concatenate([el, sc], axis=1),
                       [fmt.bits] * (W * n * L) + [spec.scale_bits] * n)


def memory_image(config, p, a, b):
    """The external memory of plan ``p`` (a :class:`~.stream_cycles.StreamPlan`) with the
    operands in place and the C region zero, as a bytearray: element codes (plain kinds) or
    QuantizedTensors (block-scaled kinds: block records, the scale once per block)."""
    s = p.schedule
    if getattr(p, "transposed", False):     # input-stationary: B^T streams, A^T stays
        return memory_image(ws_hardware(config), replace(p, transposed=False),
                            np.asarray(b).T, np.asarray(a).T)
    if config.pe_spec.family == "block":
        a_w, b_w = _block_records(config, p, a, "a"), _block_records(config, p, b, "b")
    else:
        fa, fb = config.pe_spec.formats
        a_w, b_w = s.a_words(np.asarray(a), fa), s.b_words(np.asarray(b), fb)
    store = bytearray(p.memory_bytes)
    a_bytes = _word_bytes(a_w, p.a_word_bytes).ravel()
    b_bytes = _word_bytes(b_w, p.b_word_bytes).ravel()
    store[p.a_addr:p.a_addr + a_bytes.size] = a_bytes.tobytes()
    store[p.b_addr:p.b_addr + b_bytes.size] = b_bytes.tobytes()
    return store


def stream_top(config, stream, *, scratchpads="amaranth"):
    """The streaming top of ``config``'s dataflow: :class:`StreamTop` (output-stationary) or
    :class:`WsStreamTop` (weight-stationary, and input-stationary as the transposed GEMM)."""
    if config.dataflow == "os":
        return StreamTop(config, stream, scratchpads=scratchpads)
    return WsStreamTop(ws_hardware(config), stream, scratchpads=scratchpads)


def _row_values(c_bytes, nrows, row_bytes, cols, acc):
    """``nrows`` packed rows of ``cols`` accumulators -> their unsigned values in order."""
    rows = np.frombuffer(bytes(c_bytes), np.uint8)[:nrows * row_bytes].reshape(nrows, row_bytes)
    mask = (1 << acc) - 1
    values = []
    for r in rows:
        v = int.from_bytes(r.tobytes(), "little")
        values.extend((v >> (j * acc)) & mask for j in range(cols))
    return values


def read_results(config, p, c_bytes):
    """The M x N accumulators from the C region's bytes (``p.c_addr`` on)."""
    s = p.schedule
    R, C, acc = s.rows, s.cols, config.acc_bits
    if isinstance(p, WsStreamPlan) and p.transposed:
        return read_results(config, replace(p, transposed=False), c_bytes).T
    if isinstance(p, WsStreamPlan):
        # groups (mc, nt) in order, each its m-chunk's rows -> WsSchedule's (nt, m) order
        v = np.array(_row_values(c_bytes, s.m * s.n_tiles, p.row_bytes, C, acc),
                     dtype=object).reshape(-1, C)
        order, at = [], 0
        for mc in range(p.m_chunks):
            n = min(p.k_chunk, s.m - mc * p.k_chunk)
            for nt in range(s.n_tiles):
                order.extend((nt, mc * p.k_chunk + r, at + r) for r in range(n))
                at += n
        order.sort()
        return s.unpack_results(list(v[[o[2] for o in order]].ravel()), acc)
    return s.unpack_results(_row_values(c_bytes, s.tiles * R, p.row_bytes, C, acc), acc)


def stream_verilog(config, stream, *, build_dir="build", log=sys.stderr, resetless=True):
    """Verilog of the (reset-less) ``StreamTop(config, stream)`` with its scratchpads as
    Verilog modules (:mod:`nybble.hw.scratchpad`: their depth costs no elaboration time),
    cached; ``(text, seconds)``."""
    def build():
        top = stream_top(config, stream, scratchpads="verilog")
        return ResetlessStreamTop(top) if resetless else top
    if config.dataflow == "is":          # the weight-stationary top: one build for both
        config = ws_hardware(config)
    text, seconds = cached_verilog("stream_top" if resetless else "stream_top_rst",
                                   f"{config!r} {stream!r} verilog scratchpads", build,
                                   build_dir=build_dir, log=log)
    return text + SCRATCHPAD_VERILOG, seconds


@dataclass
class StreamRun:
    """One job on the RTL: accumulators, the top's counters, bytes each memory channel moved,
    and the time spent."""

    result: np.ndarray
    cycles: int
    stall_cycles: int
    overflow: bool
    bytes_read: int
    bytes_written: int
    sim_seconds: float
    build_seconds: float
    cached_build: bool
    simulator: str
    plan: object = field(repr=False)


def run_stream_amaranth(config, stream, memory, jobs, *, beat_logs=None):
    """Several jobs back to back on one simulated ``StreamTop(config, stream)``, no reset
    between them: ``jobs`` is a list of ``(plan, store)`` (a :class:`StreamPlan` and its
    memory image, updated in place); returns per job ``(c_bytes, cycles, stall_cycles,
    overflow, bytes_read, bytes_written, seconds)``.  ``beat_logs``: a list that gets, per
    job, ``{"rd": [...], "wr": [...]}`` of ``(cycle, address, bytes)`` per beat."""
    top = stream_top(config, stream)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    out = []

    async def bench(ctx):
        host = StreamHost(AmaranthPorts(ctx, top), memory)
        for p, store in jobs:
            logs = {"rd": [], "wr": []} if beat_logs is not None else None
            if beat_logs is not None:
                beat_logs.append(logs)
            counters = await host.run(p.job, store, logs=logs)
            out.append((store[p.c_addr:], *counters))     # the slice copies: after the run

    sim.add_testbench(bench)
    sim.run()
    return out


def run_stream_cocotb(config, stream, memory, p, store, *, build_dir="build", log=sys.stderr):
    """One job through the cocotb testbench ``tests/tb/tb_stream.py`` on Verilator (the
    verification path); returns what :func:`run_stream_amaranth` returns per job, plus
    whether the build was cached."""
    if not (TB_DIR / "tb_stream.py").exists():
        raise ToolError(f"the cocotb testbench {TB_DIR / 'tb_stream.py'} is not there "
                        "(it ships with the source tree, not the wheel)")
    verilog, _ = stream_verilog(config, stream, build_dir=build_dir, log=log, resetless=False)
    work = Path(build_dir).resolve() / "cocotb" / "jobs"
    work.mkdir(parents=True, exist_ok=True)
    fd, job_path = tempfile.mkstemp(suffix=".npz", dir=work)
    os.close(fd)
    out_path = job_path.replace(".npz", "_out.npz")
    bw = memory.bandwidth
    np.savez(job_path, store=np.frombuffer(bytes(store), np.uint8), bw_num=bw.numerator,
             bw_den=bw.denominator, latency=memory.latency, **p.job)
    try:
        res = run_cocotb(compact_memory_init(verilog), toplevel="top", test_module="tb_stream",
                         test_dir=TB_DIR, build_root=os.path.join(build_dir, "cocotb"),
                         extra_env={"NYBBLE_STREAM_JOB": job_path,
                                    "NYBBLE_STREAM_OUT": out_path},
                         run_name=f"stream{os.getpid()}")
        if not res.passed:
            raise ToolError(f"cocotb stream testbench failed; see {res.results_xml}")
        out = np.load(out_path)
        cycles, stalls, overflow, nread, nwritten = (int(x) for x in out["counters"])
        run = (out["c_bytes"].tobytes(), cycles, stalls, bool(overflow), nread, nwritten,
               float(out["seconds"]))
    finally:
        for path in (job_path, out_path):
            if os.path.exists(path):
                os.remove(path)
    return run, not res.built


def run_stream(config, stream, memory, a, b, *, sim="verilator", build_dir="build",
               log=sys.stderr):
    """Run ``a @ b`` (element codes, ``(M, K)`` and ``(K, N)``; QuantizedTensors for
    block-scaled kinds) on ``StreamTop(config, stream)`` with external memory ``memory``;
    returns a :class:`StreamRun`."""
    if sim not in STREAM_SIMULATORS:
        raise ParameterError(f"sim must be one of {', '.join(STREAM_SIMULATORS)}, not {sim!r}")
    stream = StreamConfig() if stream is None else stream
    m, n, k = check_operands(config, a, b)
    p = plan(config, stream, m, n, k)
    store = memory_image(config, p, a, b)
    build_s, cached = 0.0, True
    if sim == "amaranth":
        run = run_stream_amaranth(config, stream, memory, [(p, store)])[0]
    elif sim == "cocotb":
        run, cached = run_stream_cocotb(config, stream, memory, p, store, build_dir=build_dir,
                                        log=log)
    else:
        verilog, gen_s = stream_verilog(config, stream, build_dir=build_dir, log=log)
        build = build_stream_native(verilog, StreamLayout(config, stream),
                                    cache_dir=os.path.join(build_dir, "verilator"), log=log)
        build_s, cached = build.build_seconds + (0 if build.cached else gen_s), build.cached
        run = run_stream_native(build, store, p.job, memory,
                                out_range=(p.c_addr, p.memory_bytes),
                                workdir=os.path.join(build_dir, "verilator", "jobs"), log=log)
    c_bytes, cycles, stalls, overflow, nread, nwritten, secs = run
    return StreamRun(read_results(config, p, c_bytes), cycles, stalls, overflow, nread,
                     nwritten, secs, build_s, cached, sim, p)


@dataclass
class StreamCheck:
    """The verdict of one streaming GEMM: ``mismatches`` against the golden model (passes at
    0), and the RTL's ``run`` beside the cycle ``model`` (:class:`StreamCycles`);
    ``model_mismatch`` lists the counters where they differ (empty when exact)."""

    run: StreamRun
    model: object
    golden: np.ndarray = field(repr=False)
    mismatches: int
    first_mismatch: tuple | None

    @property
    def model_mismatch(self):
        r, mdl = self.run, self.model
        pairs = {"cycles": (r.cycles, mdl.cycles), "stall_cycles": (r.stall_cycles, mdl.stall_cycles),
                 "bytes_read": (r.bytes_read, mdl.bytes_read),
                 "bytes_written": (r.bytes_written, mdl.bytes_written)}
        return {k: v for k, v in pairs.items() if v[0] != v[1]}

    @property
    def passed(self):
        return self.mismatches == 0 and not self.model_mismatch

    def summary(self):
        """The JSON-ready figures: the model's report, the RTL's counters, the verdict."""
        r = self.run
        out = self.model.as_dict()
        out.update(simulator=r.simulator, rtl_cycles=r.cycles, rtl_stall_cycles=r.stall_cycles,
                   rtl_bytes_read=r.bytes_read, rtl_bytes_written=r.bytes_written,
                   mismatches=self.mismatches, model_exact=not self.model_mismatch,
                   overflow=r.overflow, sim_seconds=r.sim_seconds,
                   build_seconds=r.build_seconds, cached_build=r.cached_build,
                   macs_per_second=(self.model.m * self.model.n * self.model.k
                                    / r.sim_seconds if r.sim_seconds > 0 else None))
        if self.first_mismatch is not None:
            out["first_mismatch"] = dict(zip(("row", "col", "got", "want"),
                                             (int(v) for v in self.first_mismatch)))
        return out


def check_stream_gemm(config, stream, memory, a, b, *, sim="verilator", build_dir="build",
                      log=sys.stderr):
    """Run ``a @ b`` on the streaming top and check it: results bit for bit against the
    golden model, cycles / stalls / bytes against the cycle model."""
    golden = golden_for(config, a, b)
    run = run_stream(config, stream, memory, a, b, sim=sim, build_dir=build_dir, log=log)
    mismatches, first = compare_results(run.result, golden)
    m, n, k = check_operands(config, a, b)
    model = stream_cycles(config, stream, memory, m, n, k)
    return StreamCheck(run, model, golden, mismatches, first)
