"""``nybble demo digits``: a trained MLP on scikit-learn's digits, run through the 4-bit
golden GEMM (integer-exact) with every scheme, against float32.  Model: :mod:`nybble.analysis.digits`.
"""

import sys
import time

from nybble.analysis.digits import run_digits
from nybble.analysis.stability import DEFAULT_SCHEMES

from .common import emit, parse_array


def register(sub):
    p = sub.add_parser("demo", help="end-to-end demos on the golden GEMM")
    dsub = p.add_subparsers(dest="demo", metavar="DEMO")
    d = dsub.add_parser("digits", help="digits MLP: accuracy per 4-bit scheme vs float32")
    d.add_argument("--scheme", nargs="+", default=None,
                   help=f"schemes to run (default: {', '.join(DEFAULT_SCHEMES)})")
    d.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    d.add_argument("--seed", type=int, default=0, help="seed of the split and the training")
    d.add_argument("--sim", choices=("verilator", "amaranth"), default=None,
                   help="also run every GEMM's block sums on the RTL array with this "
                        "simulator and check its predictions equal the golden model's")
    d.add_argument("--array", default="8x8", help="array for --sim (default 8x8)")
    d.add_argument("--json", action="store_true", help="print one JSON document")
    d.set_defaults(func=run_digits_cmd)
    p.set_defaults(func=lambda args: p.print_help())


def run_digits_cmd(args):
    schemes = []
    for item in args.scheme or DEFAULT_SCHEMES:
        schemes += [s for s in item.split(",") if s]
    t0 = time.perf_counter()
    res = run_digits(schemes, hidden=args.hidden, seed=args.seed)
    print(f"demo digits: trained and evaluated in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    rtl_lines = []
    if args.sim:
        rtl_lines = _run_rtl(args, res, schemes)
    lines = [f"digits MLP 64-{res['hidden']}-10, {res['n_test']} test images, both GEMMs on "
             f"the golden (integer-exact) path",
             f"  {'float32':<14} accuracy {100 * res['float32_accuracy']:6.2f}%"]
    for r in res["schemes"]:
        lines.append(f"  {r['scheme']:<14} accuracy {100 * r['accuracy']:6.2f}%  "
                     f"({-r['delta_points']:+.2f} points; agrees with float32 on "
                     f"{100 * r['agreement_with_float32']:.1f}%)")
    if res["best"]:
        lines.append(f"best 4-bit scheme: {res['best']} ({-res['best_delta_points']:+.2f} "
                     "points vs float32)")
    emit(args, res, "\n".join(lines + rtl_lines))
    bad = any(r["accumulator_mismatches"] or not r["predictions_equal_golden"]
              for r in res.get("rtl", []))
    return 1 if bad else 0


def _run_rtl(args, res, schemes):
    """Run the schemes the plain arrays host on the RTL; compare predictions with golden."""
    import numpy as np
    from nybble.sim.rtl_matmul import RtlMatmul, PE_FOR_ELEMENTS
    from nybble.analysis.digits import train_digits_mlp, quantized_forward
    from nybble.sw import gemm, get_scheme
    rows, cols = parse_array(args.array)
    model = train_digits_mlp(args.hidden, args.seed)
    x = model.x_test
    res["rtl"] = []
    lines = [f"RTL ({args.sim}, {args.array} array), whole test set:"]
    for s in schemes:
        sch = get_scheme(s)
        if sch.elem_fmt.name not in PE_FOR_ELEMENTS or sch.scale_kind not in ("float32", "ggml"):
            lines.append(f"  {s:<14} skipped: no array PE takes {sch.elem_fmt.name} x "
                         f"{sch.elem_fmt.name} with {sch.scale_kind} scales")
            continue
        mm = RtlMatmul(rows, cols, sim=args.sim)
        print(f"demo digits: {s} on the RTL ...", file=sys.stderr)
        pred_rtl = np.argmax(quantized_forward(model, x, s, matmul=mm), axis=1)
        pred_gold = np.argmax(quantized_forward(model, x, s, matmul=gemm), axis=1)
        row = {"scheme": s, "accuracy": float(np.mean(pred_rtl == model.y_test)),
               "predictions_equal_golden": bool(np.array_equal(pred_rtl, pred_gold)),
               "accumulator_mismatches": mm.mismatches, "jobs": mm.jobs, "cycles": mm.cycles}
        res["rtl"].append(row)
        lines.append(f"  {s:<14} accuracy {100 * row['accuracy']:6.2f}%  predictions equal "
                     f"golden: {row['predictions_equal_golden']}  accumulator mismatches "
                     f"{mm.mismatches} ({mm.jobs} jobs, {mm.cycles} cycles)")
    return lines
