"""``nybble stability``: how quantization error grows through a chain of matrices.

Measured against predicted (from the matrices alone), per scheme, with a diagnosis and the
cheapest scheme that reaches ``--target-cosine``.  The model: :mod:`nybble.analysis.stability`.
"""

import sys
import time

from nybble.analysis.chains import FAMILIES, synthetic_chain, load_chain
from nybble.analysis.stability import DEFAULT_SCHEMES, STABILITY_ROUNDING, analyze

from .common import emit, check_output_file, UsageError


def register(sub):
    p = sub.add_parser(
        "stability", help="error growth through a chain of quantized matrices",
        description="Propagate random inputs through a chain y = A_d ... A_1 x (each A "
                    "out x in) in float and quantized, and compare with the prediction "
                    "from the matrices alone.  The prediction costs d(d+1)/2 products of "
                    "the matrices (n = 256, d = 16, all schemes: ~5 s).")
    p.add_argument("matrices", nargs="*",
                   help="chain from .npy files (one matrix each) and .npz archives (every "
                        "array in stored order), applied in the order given")
    p.add_argument("--family", help=f"synthetic chain instead: {', '.join(FAMILIES)}")
    p.add_argument("--n", type=int, default=256, help="synthetic matrix size (default 256)")
    p.add_argument("--depth", type=int, default=8, help="synthetic chain depth (default 8)")
    p.add_argument("--condition", type=float, default=1e3,
                   help="condition number of ill_conditioned / inverse_pairs (default 1e3)")
    p.add_argument("--seed", type=int, default=0, help="seed for matrices and inputs")
    p.add_argument("--schemes", nargs="+", default=["all"],
                   help="schemes (space or comma separated; 'all' = "
                        f"{', '.join(DEFAULT_SCHEMES)})")
    p.add_argument("--rotate", default="none", help="none or hadamard (incoherence processing)")
    p.add_argument("--rounding", default="nearest_even",
                   help=f"element rounding: {', '.join(STABILITY_ROUNDING)}")
    p.add_argument("--activations", action="store_true",
                   help="quantize the activations too (not only the weights)")
    p.add_argument("--trials", type=int, default=256, help="random inputs (default 256)")
    p.add_argument("--target-cosine", type=float, default=0.95,
                   help="cosine the cheapest scheme must reach (default 0.95)")
    p.add_argument("--predict-only", action="store_true",
                   help="skip the quantized run (prediction only)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="plot measured and predicted cosine after every layer")
    p.add_argument("--json", action="store_true", help="print one JSON document (a list)")
    p.set_defaults(func=run)


def _schemes(args):
    out = []
    for item in args.schemes:
        out += [s for s in item.split(",") if s]
    if not out:
        raise UsageError("--schemes must name at least one scheme")
    if "all" in out:
        rest = [s for s in out if s != "all"]
        out = list(DEFAULT_SCHEMES) + [s for s in rest if s not in DEFAULT_SCHEMES]
    return out


def _chain(args):
    if args.matrices and args.family:
        raise UsageError("give either matrix files or --family, not both")
    if args.matrices:
        mats, names = load_chain(args.matrices)
        return mats, names, " ".join(args.matrices)
    if not args.family:
        raise UsageError(f"give matrix files (.npy/.npz) or --family "
                         f"({', '.join(FAMILIES)})")
    mats = synthetic_chain(args.family, args.n, args.depth, args.seed,
                           condition=args.condition)
    return mats, None, f"{args.family} n={args.n} depth={args.depth} seed={args.seed}"


def run(args):
    if args.rotate not in ("none", "hadamard"):
        raise UsageError(f"--rotate must be none or hadamard, not {args.rotate!r}")
    check_output_file("--plot", args.plot)
    mats, names, source = _chain(args)
    t0 = time.perf_counter()
    res = analyze(mats, _schemes(args), trials=args.trials, activations=args.activations,
                  rounding=args.rounding, rotate=args.rotate, seed=args.seed,
                  target_cosine=args.target_cosine, names=names,
                  measure=not args.predict_only, source=source,
                  progress=lambda s: print(f"stability: {s} ...", file=sys.stderr))
    print(f"stability: {len(res)} schemes in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.plot:
        plot(res, args.plot, source)
        print(f"wrote {args.plot}", file=sys.stderr)
    emit(args, res, _text(res, source))


def _fmt(v, spec=".4f"):
    return "   -  " if v is None else format(v, spec)


def _text(res, source):
    chain = res[0]["chain"]
    lines = [f"chain: {source}; dims {'x'.join(str(d) for d in chain['dims'])}; "
             f"rotate {chain['rotate']}; rounding {chain['rounding']}; "
             f"{'weights and activations' if chain['activations'] else 'weights only'}; "
             f"{chain['trials']} inputs",
             f"max amplification {chain['max_amplification']:.3g}"
             + ("  -> CANCELLATION: noise is amplified far beyond the signal (unstable)"
                if chain["cancellation"] else ""),
             "",
             f"{'scheme':<14}{'bits':>6} {'cos meas':>9} {'cos pred':>9} {'P(<>0)':>7}"
             f" {'sign':>7} {'top1':>7}  target",
             ]
    for r in res:
        ok = "ok" if r["predicted_stable"] else "MISS"
        lines.append(
            f"{r['scheme']:<14}{r['bits_per_weight']:6.2f} {_fmt(r['measured_cosine']):>9}"
            f" {r['predicted_cosine']:9.4f} {_fmt(r['p_positive_inner'], '.3f'):>7}"
            f" {_fmt(r['sign_agreement'], '.3f'):>7} {_fmt(r['top1_agreement'], '.3f'):>7}"
            f"  {ok}")
    lines.append("")
    lines += [r["diagnosis"] for r in res]
    lines.append("")
    best = res[0]["cheapest_meeting_target"]
    lines.append(f"cheapest scheme with predicted cosine >= {chain['target_cosine']}: "
                 + (best or "none of the schemes"))
    if res[0]["measured_cosine"] is not None:
        lines.append(f"cheapest scheme with measured cosine >= {chain['target_cosine']}: "
                     + (res[0]["cheapest_meeting_target_measured"] or "none of the schemes"))
    return "\n".join(lines)


def plot(res, path, source):
    """Measured (solid) and predicted (dashed) cosine after every layer, one colour per
    scheme; PNG via matplotlib's Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, r in enumerate(res):
        col = f"C{i % 10}"
        layers = [p["layer"] for p in r["per_layer"]]
        ax.plot(layers, [p["predicted_cosine"] for p in r["per_layer"]], "--", color=col)
        if r["per_layer"] and "measured_cosine" in r["per_layer"][0]:
            ax.plot(layers, [p["measured_cosine"] for p in r["per_layer"]], "o-", color=col,
                    ms=3, label=r["scheme"])
        else:
            ax.plot([], [], "--", color=col, label=r["scheme"])
    ax.axhline(res[0]["chain"]["target_cosine"], color="grey", lw=0.8, ls=":")
    ax.set_xlabel("layer")
    ax.set_ylabel("cosine(y, y_q)")
    ax.set_title(f"{source}: measured (solid) vs predicted (dashed)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
