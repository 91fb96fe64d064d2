"""``nybble bench ...``: benchmarks that measure ratios side by side in one run."""

import sys
import time

import numpy as np

from nybble.sw import quantize, gemm, get_scheme, scheme_names, scheme_acc_bits

from . import bitserial
from .common import UsageError, emit, parse_array
from .stream_mode import add_stream_bench


def register(sub):
    p = sub.add_parser("bench", help="benchmarks (ratios measured side by side)")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")
    g = bsub.add_parser("golden", help="golden GEMM vs numpy float32 matmul")
    g.add_argument("--size", type=int, default=1024, help="M = N = K (default 1024)")
    g.add_argument("--repeats", type=int, default=5,
                   help="timed runs of each, interleaved; the fastest is kept (default 5)")
    g.add_argument("--schemes", nargs="+", default=None, metavar="SCHEME",
                   help="quantization schemes to time (default: every scheme gemm takes: "
                        f"{', '.join(_gemm_schemes())})")
    g.add_argument("--acc-bits", type=int, default=None, metavar="N",
                   help="block accumulator width of every scheme (default: each scheme's "
                        "narrowest that never wraps, nybble.sw.scheme_acc_bits; a narrower "
                        "one is reported as wrapping)")
    g.add_argument("--json", action="store_true", help="print one JSON document")
    g.set_defaults(func=bench_golden)
    sm = bsub.add_parser("sim", help="RTL utilization and simulation speed (Verilator vs "
                                     "Amaranth simulator, side by side)")
    sm.add_argument("--array", default="16x16", help="ROWSxCOLS (default 16x16)")
    sm.add_argument("--pe", default="int4", help="PE kind (default int4)")
    sm.add_argument("--size", type=int, default=64,
                    help="M = N = K of the utilization runs (default 64)")
    sm.add_argument("--speed-size", type=int, default=256,
                    help="M = N = K of the speed run (default 256)")
    sm.add_argument("--dataflows", nargs="+", default=["os", "ws"], metavar="DF",
                    help="dataflows of the utilization runs (default os ws)")
    sm.add_argument("--repeats", type=int, default=5,
                    help="runs of the speed GEMM; the fastest is reported (default 5)")
    sm.add_argument("--no-amaranth", action="store_true",
                    help="skip the Amaranth-simulator comparison run")
    sm.add_argument("--build-dir", default="build", help="builds and caches (default build/)")
    sm.add_argument("--json", action="store_true", help="print one JSON document")
    sm.set_defaults(func=bench_sim)
    bitserial.add_bench(bsub)
    er = bsub.add_parser("errors", help="bad inputs by class (nybble.bad_inputs), each run as "
                                        "a user runs it: how many get a clean one-line error")
    er.add_argument("--json", action="store_true", help="print one JSON document")
    er.set_defaults(func=bench_errors)
    ex = bsub.add_parser("explore", help="a cold nybble explore sweep on 1 and 2 Dask workers "
                                         "(LocalCluster), side by side: the speed-up")
    ex.add_argument("--pe", default="int4,int8,fp4_e2m1", metavar="KIND,...",
                    help="PE kinds (default int4,int8,fp4_e2m1)")
    ex.add_argument("--array", default="1x2,2x2", metavar="RxC,...",
                    help="array shapes (default 1x2,2x2: 12 syntheses with both dataflows)")
    ex.add_argument("--dataflow", default="os,ws", metavar="os,ws", help="default os,ws")
    ex.add_argument("--workload", default="llama-7b", help="as nybble explore (default "
                                                         "llama-7b, decode)")
    ex.add_argument("--workers", default="1,2", metavar="N,...",
                    help="worker counts, run in turn (default 1,2)")
    ex.add_argument("--json", action="store_true", help="print one JSON document")
    ex.set_defaults(func=bench_explore)
    add_stream_bench(bsub)
    p.set_defaults(func=lambda args: p.print_help())


def _best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _gemm_schemes():
    """The scheme names gemm takes: every listed scheme without zero points."""
    return [s for s in scheme_names() if get_scheme(s).symmetric]


#: seconds to wait after the numpy matmul before timing gemm: OpenBLAS's worker threads
#: spin for ~0.1 s after a threaded call and would compete with gemm for the cores
_SETTLE = 0.15


def bench_golden(args):
    n = args.size
    if n < 1:
        raise UsageError(f"--size must be at least 1, not {n}")
    if args.repeats < 1:
        raise UsageError(f"--repeats must be at least 1, not {args.repeats}")
    if args.acc_bits is not None and not 2 <= args.acc_bits <= 4096:
        raise UsageError(f"--acc-bits must be in 2..4096, not {args.acc_bits}")
    schemes = _gemm_schemes() if args.schemes is None else args.schemes
    for scheme in schemes:  # every scheme checked before any timing
        sch = get_scheme(scheme)
        if not sch.symmetric:
            raise UsageError(f"--schemes: {scheme} has zero points, which gemm does not take; "
                             f"schemes gemm takes: {', '.join(_gemm_schemes())}")
        if sch.scale_kind == "ggml" and n % sch.block:
            raise UsageError(f"--size must be a multiple of {sch.block} for {scheme} (llama.cpp "
                             f"has no partial blocks), not {n}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n)).astype(np.float32)
    y = rng.standard_normal((n, n)).astype(np.float32)
    rows = []
    for scheme in schemes:
        a = quantize(x, scheme, axis=-1)
        b = quantize(y, scheme, axis=0)
        # an accumulator that holds every block sum (the whole sum for one block over K):
        # a wrapping one gives numbers nobody sizes hardware for (e5m2 at 32 bits: all 0)
        no_wrap = scheme_acc_bits(scheme, n)
        acc_bits = no_wrap if args.acc_bits is None else args.acc_bits
        print(f"bench golden: {scheme} {n}^3, acc_bits {acc_bits} ...", file=sys.stderr)
        # interleave the two so that machine load affects both alike
        t_ref, t_gemm = float("inf"), float("inf")
        for _ in range(args.repeats):
            t_ref = min(t_ref, _best_time(lambda: x @ y, 1))
            time.sleep(_SETTLE)
            t_gemm = min(t_gemm, _best_time(lambda: gemm(a, b, acc_bits=acc_bits), 1))
        rows.append({"scheme": scheme, "m": n, "n": n, "k": n, "acc_bits": acc_bits,
                     "wraps": acc_bits < no_wrap, "no_wrap_acc_bits": no_wrap,
                     "gemm_seconds": t_gemm, "numpy_float32_seconds": t_ref,
                     "ratio": t_gemm / t_ref})
    text = "\n".join(f"{r['scheme']:>12} {n}x{n}x{n} acc {r['acc_bits']:>2} bits"
                     f"{' (wraps)' if r['wraps'] else ''}: golden gemm "
                     f"{r['gemm_seconds'] * 1e3:8.1f} ms,"
                     f" numpy float32 {r['numpy_float32_seconds'] * 1e3:8.1f} ms,"
                     f" ratio {r['ratio']:.2f}x" for r in rows)
    text += (f"\n(each gemm timing starts {_SETTLE} s after the numpy one, so that BLAS threads "
             "left spinning do not take its cores)")
    emit(args, rows, text)


def bench_sim(args):
    """Utilization on the RTL (64^3 on 16x16 by default, each dataflow), native Verilator
    speed on a 256^3 GEMM, and the same utilization GEMM on Amaranth's simulator for the
    speed ratio -- all checked bit for bit against the golden model."""
    from nybble.hw.config import ArrayConfig
    from nybble.sim.check import check_gemm
    from nybble.sim.schedule import fit_config, schedule_for
    from nybble.sw import get_format
    rows, cols = parse_array(args.array)
    for name in ("size", "speed_size", "repeats"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, not "
                             f"{getattr(args, name)}")
    rng = np.random.default_rng(0)
    out = {"array": args.array, "pe": args.pe, "runs": []}

    def one(dataflow, size, sim, repeats=1):
        cfg = ArrayConfig(rows=rows, cols=cols, pe=args.pe, dataflow=dataflow)
        sched = schedule_for(cfg, size, size, size)
        cfg = fit_config(cfg, sched)
        fa, fb = (get_format(f) for f in cfg.formats[:2])
        a = rng.choice(np.flatnonzero(fa.finite), size=(size, size))
        b = rng.choice(np.flatnonzero(fb.finite), size=(size, size))
        rows_ = []
        for r in range(repeats):
            print(f"bench sim: {dataflow} {size}^3 on {args.array} {args.pe} ({sim})"
                  + (f", run {r + 1} of {repeats}" if repeats > 1 else "") + " ...",
                  file=sys.stderr)
            rows_.append(check_gemm(cfg, a, b, sim=sim, build_dir=args.build_dir,
                                    schedule=sched).summary())
        # the fastest run: the machine's other load only ever slows a run down
        row = min(rows_, key=lambda r: r["sim_seconds"])
        row["mismatches"] = sum(r["mismatches"] for r in rows_)
        row["runs"] = repeats
        out["runs"].append(row)
        return row

    lines = []
    for df in args.dataflows:
        r = one(df, args.size, "verilator")
        lines.append(f"{df} {args.size}^3: {r['cycles']} cycles (ideal {r['ideal_cycles']:.0f}),"
                     f" utilization {r['utilization']:.1%}, mismatches {r['mismatches']}")
    fast = one(args.dataflows[0], args.speed_size, "verilator", args.repeats)
    lines.append(f"speed {args.speed_size}^3 ({args.dataflows[0]}, Verilator native, best of "
                 f"{args.repeats}): {fast['macs_per_second']:.3g} simulated MAC/s, mismatches "
                 f"{fast['mismatches']}")
    if not args.no_amaranth:
        slow = one(args.dataflows[0], args.size, "amaranth")
        nat = out["runs"][0]
        out["verilator_over_amaranth"] = slow["sim_seconds"] / nat["sim_seconds"]
        lines.append(f"same {args.size}^3 GEMM: Amaranth simulator {slow['sim_seconds']:.2f} s, "
                     f"Verilator {nat['sim_seconds'] * 1e3:.1f} ms: "
                     f"{out['verilator_over_amaranth']:.0f}x")
    out["mismatches"] = sum(r["mismatches"] for r in out["runs"])
    emit(args, out, "\n".join(lines))
    return 1 if out["mismatches"] else 0


def bench_errors(args):
    """Every case of :mod:`nybble.bad_inputs`; exit 1 when any is not met cleanly."""
    from . import bad_inputs
    rows = bad_inputs.run_cases(bad_inputs.CASES,
                                progress=lambda line: print(line, file=sys.stderr))
    s = bad_inputs.summary(rows)
    clean = sum(v[0] for v in s.values())
    lines = [f"{c:<7} {v[0]:>3} of {v[1]:>3} clean  ({bad_inputs.CLASSES[c]})"
             for c, v in s.items()]
    lines.append(f"total   {clean:>3} of {len(rows):>3} clean")
    emit(args, {"classes": {c: {"clean": v[0], "tried": v[1]} for c, v in s.items()},
                "clean": clean, "tried": len(rows), "cases": rows}, "\n".join(lines))
    return 0 if clean == len(rows) else 1


def bench_explore(args):
    """The same cold sweep on each worker count (:func:`nybble.explore.bench.dask_speedup`);
    exit 1 when the tables differ."""
    from nybble.explore import cross_product, load_workload
    from nybble.explore.bench import dask_speedup
    try:
        counts = [int(c) for c in args.workers.split(",")]
    except ValueError:
        raise UsageError(f"--workers must be a comma-separated list of integers, not "
                         f"{args.workers!r}") from None
    if not counts or min(counts) < 1:
        raise UsageError(f"--workers must list positive worker counts, not {args.workers!r}")
    split = lambda text: [t for t in text.split(",") if t]
    points, _ = cross_product(split(args.pe), split(args.array), split(args.dataflow))
    workload = load_workload(args.workload, phase="decode" if args.workload == "llama-7b"
                             else None)
    print(f"bench explore: {len(points)} points, cold, on {counts} Dask workers",
          file=sys.stderr)
    res = dask_speedup(points, workload, worker_counts=counts)
    lines = [f"{r['workers']} worker(s): {r['seconds']:.1f} s  speed-up "
             f"{res['speedup'][str(r['workers'])]:.2f}x" for r in res["runs"]]
    lines.append(f"{res['points']} points; tables equal: {res['tables_equal']}")
    emit(args, res, "\n".join(lines))
    return 0 if res["tables_equal"] else 1
