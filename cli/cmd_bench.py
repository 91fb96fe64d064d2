"""``nybble bench ...``: benchmarks that measure ratios side by side in one run."""

import sys
import time

import numpy as np

from nybble.sw import quantize, gemm

from .__main__ import emit


def register(sub):
    p = sub.add_parser("bench", help="benchmarks (ratios measured side by side)")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")
    g = bsub.add_parser("golden", help="golden GEMM vs numpy float32 matmul")
    g.add_argument("--size", type=int, default=1024, help="M = N = K (default 1024)")
    g.add_argument("--repeats", type=int, default=5, help="timed repetitions (best is kept)")
    g.add_argument("--schemes", nargs="+", default=["int4_tensor", "mxfp4"])
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=bench_golden)
    p.set_defaults(func=lambda args: p.print_help())


def _best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_golden(args):
    n = args.size
    if n < 1:
        raise ValueError(f"--size must be at least 1, not {n}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n)).astype(np.float32)
    y = rng.standard_normal((n, n)).astype(np.float32)
    rows = []
    for scheme in args.schemes:
        a = quantize(x, scheme, axis=-1)
        b = quantize(y, scheme, axis=0)
        print(f"bench golden: {scheme} {n}^3 ...", file=sys.stderr)
        # interleave the two so that machine load affects both alike
        t_ref, t_gemm = float("inf"), float("inf")
        for _ in range(args.repeats):
            t_ref = min(t_ref, _best_time(lambda: x @ y, 1))
            t_gemm = min(t_gemm, _best_time(lambda: gemm(a, b), 1))
        rows.append({"scheme": scheme, "m": n, "n": n, "k": n,
                     "gemm_seconds": t_gemm, "numpy_float32_seconds": t_ref,
                     "ratio": t_gemm / t_ref})
    text = "\n".join(f"{r['scheme']:>12} {n}x{n}x{n}: golden gemm {r['gemm_seconds'] * 1e3:8.1f} ms,"
                     f" numpy float32 {r['numpy_float32_seconds'] * 1e3:8.1f} ms,"
                     f" ratio {r['ratio']:.2f}x" for r in rows)
    emit(args, rows, text)
