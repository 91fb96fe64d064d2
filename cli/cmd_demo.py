"""``nybble demo digits``: a trained MLP on scikit-learn's digits, run through the 4-bit
golden GEMM (integer-exact) with every scheme, against float32.  Model: :mod:`nybble.sw.digits`.
"""

import sys
import time

from nybble.sw.digits import run_digits
from nybble.sw.stability import DEFAULT_SCHEMES

from .__main__ import emit


def register(sub):
    p = sub.add_parser("demo", help="end-to-end demos on the golden GEMM")
    dsub = p.add_subparsers(dest="demo", metavar="DEMO")
    d = dsub.add_parser("digits", help="digits MLP: accuracy per 4-bit scheme vs float32")
    d.add_argument("--scheme", nargs="+", default=None,
                   help=f"schemes to run (default: {', '.join(DEFAULT_SCHEMES)})")
    d.add_argument("--hidden", type=int, default=64, help="hidden units (default 64)")
    d.add_argument("--seed", type=int, default=0, help="seed of the split and the training")
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
    emit(args, res, "\n".join(lines))
