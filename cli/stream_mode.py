"""The streaming top in ``nybble gemm`` and ``nybble cycles``: finite memory bandwidth, fixed
scratchpads, stalls.

Any of ``--dram-bw BYTES_PER_CYCLE``, ``--dram-latency CYCLES``, ``--a-words``, ``--b-words``,
``--beat-words``, ``--acc-rows`` (and for ``cycles`` ``--phase``, ``--formats``,
``--roofline``) selects the streaming top instead of the whole-GEMM-buffer top: the
output-stationary :mod:`nybble.hw.stream_top` (``--dataflow os``) or the weight-stationary
:mod:`nybble.hw.stream_ws_top` (``--dataflow ws``; ``is`` runs the transposed GEMM on it):

* ``nybble gemm``: runs the GEMM on the RTL with the memory model
  (:func:`nybble.sim.stream_run.check_stream_gemm`), checks it bit for bit against the golden
  model and its cycle / stall / byte counters against the cycle model; exit 1 on any
  difference;
* ``nybble cycles``: the exact cycle model per layer (:mod:`nybble.sim.stream_report`), one
  report per ``--formats`` entry; ``--workload llama-7b --phase decode|prefill`` (32 decoder
  layers per pass; decode makes ``batch`` tokens a pass, prefill ``seq_len * batch``);
  ``--roofline FILE.png``.

Scratchpad sizes come from the flags, else from a SCALE-Sim ``--config`` (IfmapSramSzkB /
FilterSramSzkB as the A / B scratchpads, both halves, in KiB; its Bandwidth, in SCALE-Sim's
one-byte words per cycle, as ``--dram-bw``), else :class:`~nybble.hw.stream_config.StreamConfig`'s
defaults.
"""

import sys

import numpy as np

from nybble.hw.config import ArrayConfig
from nybble.hw.stream_config import StreamConfig, word_bytes
from nybble.hw.stream_top import StreamLayout
from nybble.sim.check import check_gemm, result_values
from nybble.sim.schedule import fit_config, schedule_for
from nybble.sim.memory_model import MemoryModel, parse_bandwidth
from nybble.sim.stream_report import roofline_png, stream_workload
from nybble.sim.stream_run import check_stream_gemm
from nybble.sim.stream_trace import write_traces
from nybble.sim.workloads import LLAMA_7B_LAYERS, llama_7b, llama_7b_decode
from nybble.sw.errors import ParameterError
from nybble.sw.formats import get_format
from .common import UsageError, check_output_dir, check_output_file, emit, parse_array

__all__ = ["add_stream_args", "wants_stream", "stream_gemm", "stream_cycles_command",
           "add_stream_bench", "bench_stream",
           "DEFAULT_DRAM_BW", "DEFAULT_DRAM_LATENCY"]

DEFAULT_DRAM_BW = 16
DEFAULT_DRAM_LATENCY = 10
_FLAGS = ("dram_bw", "dram_latency", "a_words", "b_words", "beat_words", "acc_rows", "trace")
_WORKLOAD_FLAGS = ("phase", "formats", "roofline", "trace_layer")


def add_stream_args(p, *, workload=False):
    """The streaming-top flags (``workload``: also ``--phase``, ``--formats``,
    ``--roofline`` of ``nybble cycles``)."""
    g = p.add_argument_group("streaming top: fixed scratchpads, external memory "
                             "(any of these selects it)")
    g.add_argument("--dram-bw", metavar="BYTES_PER_CYCLE",
                   help=f"external memory bandwidth per channel (read, write), e.g. 4, 0.5, "
                        f"3/2 (default {DEFAULT_DRAM_BW})")
    g.add_argument("--dram-latency", type=int, metavar="CYCLES",
                   help=f"cycles from a request to its first beat (default "
                        f"{DEFAULT_DRAM_LATENCY})")
    g.add_argument("--a-words", type=int, help="A scratchpad: words (k-steps of every row; "
                                               "block-scaled kinds: blocks) per half "
                                               "(default 16384)")
    g.add_argument("--b-words", type=int, help="B scratchpad: words per half (default 16384)")
    g.add_argument("--beat-words", type=int, help="scratchpad words per memory beat: 1, 2, 4 "
                                                  "or 8 (default 2)")
    g.add_argument("--acc-rows", type=int,
                   help="--dataflow ws / is: accumulator rows (of cols accumulators) per half, "
                        "the most rows of A one weight tile streams (default 1024)")
    g.add_argument("--trace", metavar="DIR",
                   help="write SCALE-Sim-style per-cycle address traces (scratchpad reads, "
                        "DRAM reads / writes) of " + ("one layer (--trace-layer)" if workload
                                                       else "the GEMM") + " into DIR")
    if workload:
        g.add_argument("--phase", choices=("decode", "prefill"),
                       help="llama-7b: decode (one token per sequence, M = batch) or "
                            "prefill (the whole prompt)")
        g.add_argument("--formats", metavar="PE,PE,...",
                       help="one report per PE kind, same array and memory (e.g. "
                            "int16,int8,int4,fp4_e2m1; default --pe)")
        g.add_argument("--roofline", metavar="FILE.png",
                       help="write the roofline plot (MAC per byte vs MAC per cycle)")
        g.add_argument("--trace-layer", metavar="NAME",
                       help="the layer --trace traces (default the first), on the first "
                            "--formats entry")


def wants_stream(args):
    """True when a streaming-top flag is given."""
    return any(getattr(args, f, None) is not None for f in _FLAGS + _WORKLOAD_FLAGS)


def _stream_config(args, config, cfg_file):
    kw = {}
    lay = StreamLayout(config, StreamConfig())     # the word sizes: beat_words aside
    beat = args.beat_words if args.beat_words is not None else StreamConfig.beat_words
    if cfg_file is not None:
        # input-stationary runs B^T @ A^T: the ifmap (A) sits in the B scratchpad
        ifmap, filt = ("b_words", "a_words") if config.dataflow == "is" else ("a_words",
                                                                             "b_words")
        bits_of = {"a_words": lay.a_word_bits, "b_words": lay.b_word_bits}
        for key, name in (("ifmap_sram_kb", ifmap), ("filter_sram_kb", filt)):
            bits = bits_of[name]
            kb = cfg_file.get(key)
            if kb is not None:
                words = kb * 1024 // (2 * word_bytes(bits)) // beat * beat
                if words < beat:
                    raise UsageError(f"{key} = {kb} kB cannot hold two halves of {beat} "
                                     f"words of {word_bytes(bits)} bytes")
                kw[name] = words
    for name in ("a_words", "b_words", "beat_words", "acc_rows"):
        if getattr(args, name, None) is not None:
            kw[name] = getattr(args, name)
    try:
        return StreamConfig(**kw)
    except (ParameterError, TypeError) as e:
        flag = str(e).split(" ")[0].replace("StreamConfig.", "--").replace("_", "-")
        raise UsageError(f"{flag}{str(e)[len(str(e).split(' ')[0]):]}") from None


def _memory(args, cfg_file):
    bw = args.dram_bw
    if bw is None and cfg_file is not None and cfg_file.get("bandwidth"):
        bw = cfg_file["bandwidth"][0]     # SCALE-Sim words are one byte
    bw = DEFAULT_DRAM_BW if bw is None else bw
    lat = DEFAULT_DRAM_LATENCY if args.dram_latency is None else args.dram_latency
    try:
        return MemoryModel(parse_bandwidth(bw, "--dram-bw"), lat)
    except ParameterError as e:
        raise UsageError(str(e).replace("MemoryModel.latency", "--dram-latency")) from None


def _describe(config, stream, memory):
    return {"array": f"{config.rows}x{config.cols}", "pe": config.pe,
            "dataflow": config.dataflow, "acc_bits": config.acc_bits,
            "a_words": stream.a_words, "b_words": stream.b_words,
            "beat_words": stream.beat_words, "acc_rows": stream.acc_rows,
            "scratchpad_bytes": stream.scratchpad_bytes(StreamLayout(config, stream)),
            "dram_bw_bytes_per_cycle": float(memory.bandwidth),
            "dram_latency_cycles": memory.latency}


def stream_gemm(args, config, a, b, sim, cfg_file=None):
    """``nybble gemm`` on the streaming top; returns ``(payload, text, exit status)``."""
    if sim not in ("verilator", "amaranth"):
        raise UsageError(f"the streaming top runs on --sim verilator or amaranth, not {sim}")
    for flag, value in (("--waves", args.waves), ("--depth", args.depth)):
        if value is not None:
            raise UsageError(f"{flag} applies to the whole-GEMM-buffer top, not to the "
                             "streaming top (--dram-bw, ...)")
    if args.trace:
        check_output_dir("--trace", args.trace)
    stream = _stream_config(args, config, cfg_file)
    memory = _memory(args, cfg_file)
    chk = check_stream_gemm(config, stream, memory, a, b, sim=sim, build_dir=args.build_dir)
    out = {**_describe(config, stream, memory), **chk.summary(), "passed": chk.passed}
    m, n, k = chk.model.m, chk.model.n, chk.model.k
    if config.pe_spec.family == "block":
        # block scales applied in the array, NVFP4's tensor scales here on the host
        value = result_values(config, chk.run.result, a, b)
        out["max_abs_error_vs_dequantized"] = float(np.max(np.abs(
            value - a.dequantize() @ b.dequantize())))
    if args.trace:
        out["trace"] = {"dir": args.trace,
                        "rows": write_traces(config, stream, memory, m, n, k, args.trace)}
    lines = [
        f"{m}x{k} @ {k}x{n} on a streaming {config.rows}x{config.cols} {config.pe} "
        f"{config.dataflow} array "
        f"({sim}); memory {float(memory.bandwidth):g} B/cycle, latency {memory.latency}",
        f"  cycles {chk.run.cycles} (model {chk.model.cycles}), stalls {chk.run.stall_cycles} "
        f"(model {chk.model.stall_cycles}), utilization {chk.model.utilization:.1%}, "
        f"{chk.model.bound}-bound",
        f"  bytes read {chk.run.bytes_read}, written {chk.run.bytes_written} "
        f"({chk.model.bytes_per_cycle:.3g} B/cycle)",
        f"  mismatches vs nybble.sw golden: {chk.mismatches} of {m * n}; model "
        f"{'exact' if not chk.model_mismatch else 'differs: ' + str(chk.model_mismatch)}",
    ]
    return out, "\n".join(lines), 0 if chk.passed else 1


def _phase_layers(args, layers, workload):
    if args.phase is None:
        return layers, None, 1
    if workload.get("name") != "llama-7b":
        raise UsageError("--phase applies to --workload llama-7b")
    seq = args.seq_len if args.seq_len is not None else 2048
    batch = args.batch if args.batch is not None else 1
    if args.phase == "decode":
        return llama_7b_decode(seq_len=seq, batch=batch), batch, LLAMA_7B_LAYERS
    return llama_7b(seq_len=seq, batch=batch), seq * batch, LLAMA_7B_LAYERS


def stream_cycles_command(args, config, layers, workload, cfg_file=None):
    """``nybble cycles`` on the streaming top's cycle model; returns ``(payload, text)``."""
    check_output_file("--roofline", args.roofline)
    if args.trace:
        check_output_dir("--trace", args.trace)
    if args.trace_layer is not None and args.trace is None:
        raise UsageError("--trace-layer goes with --trace DIR")
    layers, tokens, passes = _phase_layers(args, layers, workload)
    stream = _stream_config(args, config, cfg_file)
    memory = _memory(args, cfg_file)
    kinds = [config.pe] if args.formats is None else [
        f.strip() for f in args.formats.split(",") if f.strip()]
    if not kinds:
        raise UsageError("--formats must name at least one PE kind")
    try:
        configs = [config.replace(pe=kind) for kind in kinds]
    except ParameterError as e:
        raise UsageError(f"--formats: {e}") from None
    reports = stream_workload(configs, stream, memory, layers, passes=passes, tokens=tokens,
                              log=sys.stderr)
    payload = {"config": _describe(config, stream, memory),
               "workload": {**workload, "phase": args.phase, "passes": passes},
               "formats": reports}
    if args.roofline:
        roofline_png(reports, memory, args.roofline,
                     title=f"{workload.get('name')} {args.phase or ''} on "
                           f"{config.rows}x{config.cols}, {float(memory.bandwidth):g} B/cycle")
        payload["roofline"] = args.roofline
    if args.trace:
        names = [layer.name for layer in layers]
        name = names[0] if args.trace_layer is None else args.trace_layer
        if name not in names:
            raise UsageError(f"--trace-layer must be one of {', '.join(names)}, not {name!r}")
        layer = layers[names.index(name)]
        payload["trace"] = {"dir": args.trace, "layer": name, "pe": configs[0].pe,
                            "rows": write_traces(configs[0], stream, memory, layer.m,
                                                 layer.n, layer.k, args.trace)}
    return payload, _text(reports, memory)


def _text(reports, memory):
    lines = []
    for rep in reports:
        t = rep["totals"]
        port = "x".join(f"{b:g}" for b in rep["port_bits_per_element"])
        lines.append(f"{rep['pe']} ({'x'.join(map(str, rep['element_bits']))} bits, {port} "
                     f"at the port) on "
                     f"{rep['array']} {rep['dataflow']}, {float(memory.bandwidth):g} B/cycle, "
                     f"latency "
                     f"{memory.latency}; scratchpads A {rep['scratchpad_bytes']['a']} B, "
                     f"B {rep['scratchpad_bytes']['b']} B")
        lines.append(f"  {'layer':<12} {'M':>6} {'N':>6} {'K':>6} {'count':>5} "
                     f"{'cycles':>12} {'stalls':>12} {'util':>6} {'MB read':>9} "
                     f"{'B/cyc':>6} bound")
        for r in rep["layers"]:
            lines.append(f"  {r['name']:<12} {r['m']:>6} {r['n']:>6} {r['k']:>6} "
                         f"{r['count']:>5} {r['cycles']:>12,} {r['stall_cycles']:>12,} "
                         f"{r['utilization']:>6.1%} {r['bytes_read'] / 1e6:>9.3f} "
                         f"{r['bytes_per_cycle']:>6.2f} {r['bound']}")
        line = (f"  total {t['cycles']:,} cycles ({t['stall_cycles']:,} stalled), "
                f"utilization {t['utilization']:.1%}, {t['bytes_per_cycle']:.2f} B/cycle")
        if "cycles_per_token" in t:
            line += (f"; {t['cycles_per_token']:,.0f} cycles per token, "
                     f"{t['tokens_per_second']:,.1f} tokens/s at {rep['clock_mhz']:g} MHz")
        lines.append(line)
    return "\n".join(lines)


def add_stream_bench(bsub):
    """``nybble bench stream``: the streaming top's native speed beside the whole-buffer
    top's, on one compute-bound GEMM."""
    sb = bsub.add_parser("stream", help="streaming top vs whole-buffer top: native simulation "
                                        "speed on one compute-bound GEMM, side by side")
    sb.add_argument("--array", default="16x16", help="ROWSxCOLS (default 16x16)")
    sb.add_argument("--pe", default="int4", help="PE kind (default int4)")
    sb.add_argument("--size", type=int, default=256, help="M = N = K (default 256)")
    sb.add_argument("--dram-bw", default="64", metavar="BYTES_PER_CYCLE",
                    help="external memory bandwidth (default 64: compute-bound)")
    sb.add_argument("--dram-latency", type=int, default=DEFAULT_DRAM_LATENCY, metavar="CYCLES",
                    help=f"memory latency (default {DEFAULT_DRAM_LATENCY})")
    sb.add_argument("--repeats", type=int, default=3,
                    help="runs of each top, interleaved; the fastest is kept (default 3)")
    sb.add_argument("--build-dir", default="build", help="builds and caches (default build/)")
    sb.add_argument("--json", action="store_true", help="print one JSON document")
    sb.set_defaults(func=bench_stream)


def bench_stream(args):
    """Both tops run the same random GEMM natively, ``--repeats`` times interleaved; each is
    checked bit for bit (and the streaming top's counters against its cycle model)."""
    rows, cols = parse_array(args.array)
    for name in ("size", "repeats"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, not {getattr(args, name)}")
    try:
        memory = MemoryModel(parse_bandwidth(args.dram_bw, "--dram-bw"), args.dram_latency)
        cfg = ArrayConfig(rows=rows, cols=cols, pe=args.pe)
    except ParameterError as e:
        raise UsageError(str(e).replace("MemoryModel.latency", "--dram-latency")) from None
    n = args.size
    fa, fb = (get_format(f) for f in cfg.formats[:2])
    rng = np.random.default_rng(0)
    a = rng.choice(np.flatnonzero(fa.finite), size=(n, n))
    b = rng.choice(np.flatnonzero(fb.finite), size=(n, n))
    sched = schedule_for(cfg, n, n, n)
    plain_cfg = fit_config(cfg, sched)
    stream = StreamConfig()
    best = {"stream": None, "whole_buffer": None}
    bad = 0
    for r in range(args.repeats):
        print(f"bench stream: {n}^3 on {args.array} {args.pe}, run {r + 1} of {args.repeats}",
              file=sys.stderr)
        chk = check_stream_gemm(cfg, stream, memory, a, b, sim="verilator",
                                build_dir=args.build_dir)
        bad += chk.mismatches + len(chk.model_mismatch)
        s = chk.summary()
        if best["stream"] is None or s["sim_seconds"] < best["stream"]["sim_seconds"]:
            best["stream"] = s
        p = check_gemm(plain_cfg, a, b, sim="verilator", build_dir=args.build_dir,
                       schedule=sched).summary()
        bad += p["mismatches"]
        if best["whole_buffer"] is None or p["sim_seconds"] < best["whole_buffer"]["sim_seconds"]:
            best["whole_buffer"] = p
    st, wb = best["stream"], best["whole_buffer"]
    out = {"array": args.array, "pe": args.pe, "size": n, "repeats": args.repeats,
           "dram_bw_bytes_per_cycle": float(memory.bandwidth),
           "dram_latency_cycles": memory.latency,
           "stream": st, "whole_buffer": wb,
           "stream_macs_per_second": st["macs_per_second"],
           "whole_buffer_macs_per_second": wb["macs_per_second"],
           "stream_over_whole_buffer_speed": st["macs_per_second"] / wb["macs_per_second"],
           "stream_cycles_per_second": st["rtl_cycles"] / st["sim_seconds"],
           "failures": bad}
    text = "\n".join([
        f"{n}^3 {args.pe} on {args.array}, memory {float(memory.bandwidth):g} B/cycle, latency "
        f"{memory.latency} (best of {args.repeats}, Verilator native)",
        f"  streaming top:    {st['macs_per_second']:.3g} simulated MAC/s, {st['rtl_cycles']} "
        f"cycles ({st['rtl_stall_cycles']} stalled, utilization {st['utilization']:.1%}), "
        f"{st['bound']}-bound",
        f"  whole-buffer top: {wb['macs_per_second']:.3g} simulated MAC/s, {wb['cycles']} cycles",
        f"  ratio stream / whole-buffer: {out['stream_over_whole_buffer_speed']:.2f}; "
        f"failures {bad}"])
    emit(args, out, text)
    return 1 if bad else 0
