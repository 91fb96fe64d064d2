"""``nybble gemm``: run a GEMM on the RTL array and check it against the golden model."""

import os
import sys

import numpy as np

from .__main__ import emit, UsageError

SIM_CHOICES = ("verilator", "amaranth", "icarus")


def register(sub):
    p = sub.add_parser("gemm", help="run a GEMM on the RTL array, check it against nybble.sw")
    add_array_args(p)
    from .gemm_block import add_block_args
    add_block_args(p)
    p.add_argument("--m", type=int, default=64, help="rows of A (default 64)")
    p.add_argument("--n", type=int, default=64, help="columns of B (default 64)")
    p.add_argument("--k", type=int, default=64, help="reduction length (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random codes")
    p.add_argument("--a", help="A (M x K): .npy of floats (quantized with --scheme) or codes")
    p.add_argument("--b", help="B (K x N): .npy of floats (quantized with --scheme) or codes")
    p.add_argument("--scheme", help="scheme for float inputs (one scale along K: "
                                    "int4_tensor, int4_channel, ...)")
    p.add_argument("--out", help="write the exact result (float64 .npy) here")
    p.add_argument("--sim", default="verilator", choices=SIM_CHOICES,
                   help="simulator (default verilator: the native C++ harness)")
    p.add_argument("--cocotb", action="store_true",
                   help="run through the cocotb testbench instead (slower; verification path)")
    p.add_argument("--waves", help="dump waveforms to FILE.vcd or FILE.fst")
    p.add_argument("--build-dir", default="build", help="builds and caches (default build/)")
    p.add_argument("--area", action="store_true",
                   help="also report the PEs' synthesized area (Yosys, cached): one PE x "
                        "rows x cols")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def add_array_args(p):
    p.add_argument("--array", default="16x16", help="ROWSxCOLS (default 16x16)")
    p.add_argument("--pe", default="int4", help="PE kind (see `nybble pe-report`)")
    p.add_argument("--dataflow", default="os", help="os or ws")
    p.add_argument("--acc-bits", type=int, default=32, help="accumulator bits (default 32)")
    p.add_argument("--overflow", default="wrap", help="wrap or saturate")
    p.add_argument("--depth", type=int, default=None,
                   help="buffer depth in words (default: enough for the GEMM, at least 4096)")


def config_from_args(args, need=None):
    """An ArrayConfig from the common array flags (``need``: minimal buffer depths)."""
    from nybble.hw.config import ArrayConfig
    rows, cols = ArrayConfig.parse_array(args.array)
    depth = args.depth or max(4096, *(need or (0,)))
    return ArrayConfig(rows=rows, cols=cols, pe=args.pe, acc_bits=args.acc_bits,
                       overflow=args.overflow, dataflow=args.dataflow, a_depth=depth,
                       b_depth=depth, c_depth=depth)


def _load(path, name):
    from .cmd_quantize import load_npy
    x = load_npy(path, name)
    if x.ndim != 2:
        raise UsageError(f"--{name} must be a 2-D array, not shape {x.shape}")
    return x


def _operands(args, fmt_a, fmt_b):
    """(a_codes, b_codes, a_scale (M,), b_scale (N,)) from the flags."""
    from nybble.sw import get_format, quantize, get_scheme
    if (args.a is None) != (args.b is None):
        raise UsageError("--a and --b go together")
    if args.a is None:
        rng = np.random.default_rng(args.seed)
        fa, fb = get_format(fmt_a), get_format(fmt_b)
        a = rng.choice(np.flatnonzero(fa.finite), size=(args.m, args.k))
        b = rng.choice(np.flatnonzero(fb.finite), size=(args.k, args.n))
        return a, b, None, None
    a, b = _load(args.a, "a"), _load(args.b, "b")
    if a.shape[1] != b.shape[0]:
        raise UsageError(f"K mismatch: --a is {a.shape[0]} x {a.shape[1]}, --b is "
                         f"{b.shape[0]} x {b.shape[1]}")
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        if args.scheme:
            raise UsageError("--scheme quantizes float inputs; --a/--b hold integer codes")
        return a, b, None, None
    if not args.scheme:
        raise UsageError("float --a/--b need --scheme (e.g. int4_channel)")
    sch = get_scheme(args.scheme)
    if sch.block not in (0, None):
        raise UsageError(f"--scheme {sch.name} scales blocks of {sch.block} along K; the "
                         "plain arrays take one scale per row / column (int4_tensor, "
                         "int4_channel, ...)")
    if sch.element not in (fmt_a, get_format(fmt_a).name) or \
            sch.element not in (fmt_b, get_format(fmt_b).name):
        raise UsageError(f"--scheme {sch.name} has {sch.element} elements but --pe "
                         f"{args.pe} takes {fmt_a} x {fmt_b}")
    qa, qb = quantize(a, sch, axis=-1), quantize(b, sch, axis=0)
    sa = np.broadcast_to(qa.block_scale_values(), (a.shape[0], 1))[:, 0]
    sb = np.broadcast_to(qb.block_scale_values(), (1, b.shape[1]))[0, :]
    args._float_ref = a.astype(np.float64) @ b.astype(np.float64)
    return qa.codes, qb.codes, sa, sb


def run(args):
    from nybble.hw.config import ArrayConfig
    from nybble.sim.run import run_gemm, golden_for
    from nybble.hw.pe import pe_kind
    if args.waves and not str(args.waves).endswith((".vcd", ".fst")):
        raise UsageError(f"--waves must name a .vcd or .fst file, not {args.waves!r}")
    from .gemm_block import wants_block, run_block
    if wants_block(args):  # block-scaled schemes and GGUF inputs (cli/gemm_block.py)
        return run_block(args)
    sim = args.sim
    if args.cocotb:
        sim = "icarus" if args.sim == "icarus" else "cocotb"
    elif args.sim == "icarus":
        raise UsageError("--sim icarus runs through cocotb: add --cocotb")
    formats = pe_kind(args.pe).formats
    a, b, sa, sb = _operands(args, formats[0], formats[1])
    from nybble.sim.schedule import OsSchedule
    cfg0 = config_from_args(args)
    from nybble.sim.schedule import schedule_for
    s = schedule_for(cfg0, a.shape[0], b.shape[1], a.shape[1])
    cfg = config_from_args(args, need=(s.a_writes, s.b_writes, s.c_words))
    run_ = run_gemm(cfg, a, b, sim=sim, waves=args.waves, build_dir=args.build_dir)
    gold = golden_for(cfg, a, b)
    mism = int(np.sum(np.asarray(run_.result, dtype=object) != np.asarray(gold, dtype=object)))
    m, k = a.shape
    n = b.shape[1]
    sched = run_.schedule
    out = {
        "array": f"{cfg.rows}x{cfg.cols}", "pe": cfg.pe, "dataflow": cfg.dataflow,
        "m": m, "n": n, "k": k, "simulator": sim,
        "cycles": run_.cycles, "model_cycles": sched.cycles,
        "ideal_cycles": m * n * k / (cfg.rows * cfg.cols),
        "utilization": m * n * k / (cfg.rows * cfg.cols) / run_.cycles,
        "mismatches": mism, "sim_seconds": run_.sim_seconds,
        "build_seconds": run_.build_seconds, "cached_build": run_.cached_build,
        "macs_per_second": m * n * k / run_.sim_seconds if run_.sim_seconds > 0 else None,
    }
    c = np.asarray(run_.result, dtype=np.float64) * 2.0 ** -run_.frac_bits
    if sa is not None:
        c = c * (sa[:, None] * sb[None, :])
    ref = getattr(args, "_float_ref", None)
    if ref is not None:  # the 4-bit result against the float64 product of the inputs
        out["rel_error"] = float(np.linalg.norm(c - ref) / max(np.linalg.norm(ref), 1e-300))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
        np.save(args.out, c)
        out["out"] = args.out
    if args.waves:
        out["waves"] = args.waves
    if args.area:
        out["area"] = _pe_array_area(cfg, args.build_dir)
    text = (f"{m}x{k} @ {k}x{n} on a {out['array']} {cfg.pe} {cfg.dataflow} array ({sim})\n"
            f"  cycles {out['cycles']} (ideal {out['ideal_cycles']:.0f}, utilization "
            f"{out['utilization']:.1%}; cycle model {sched.cycles})\n"
            f"  mismatches vs nybble.sw golden: {mism} of {m * n}\n"
            + (f"  relative error vs the float64 product: {out['rel_error']:.4g}\n"
               if "rel_error" in out else "")
            +
            f"  simulated {out['macs_per_second'] or 0:.3g} MAC/s ({out['sim_seconds']:.3f} s), "
            f"build {out['build_seconds']:.1f} s{' (cached)' if run_.cached_build else ''}")
    if args.area:
        ar = out["area"]
        text += (f"\n  area (Yosys generic, PEs only): {ar['pe_transistors']} transistors / "
                 f"{ar['pe_cells']} cells per PE x {cfg.rows * cfg.cols} = "
                 f"{ar['array_transistors']} transistors")
    emit(args, out, text)


def _pe_array_area(cfg, build_dir):
    """Synthesized area of one PE of ``cfg`` (cached) times the PE count."""
    import sys
    from nybble.synth.area import pe_area
    print(f"synthesizing one {cfg.pe} PE with Yosys (cached) ...", file=sys.stderr)
    r = pe_area(cfg.pe, acc_bits=cfg.acc_bits, overflow=cfg.overflow, build_dir=build_dir)
    n = cfg.rows * cfg.cols
    return {"pe_cells": r.cells, "pe_transistors": r.transistors,
            "array_cells": r.cells * n, "array_transistors": r.transistors * n,
            "scope": "PEs only (buffers, sequencer, skew and drain excluded: nybble cost "
                     "--array synthesizes whole arrays)"}
    return 1 if mism else 0
