"""``nybble format-search IN.npy``: the LLM-FP4 search for the best 4-bit format and bias.

Tries every exponent/mantissa split at ``--bits`` (e0m3 = sign-magnitude int, e1m2, e2m1,
e3m0 at 4 bits) with a real-valued exponent bias (the clipping range) per tensor or per
channel, and reports the split with the least MSE.  Model: :mod:`nybble.analysis.format_search`.
"""

import sys
import time

import numpy as np

from nybble.analysis.format_search import format_search, SEARCH_BITS

from .common import emit, load_npy


def register(sub):
    p = sub.add_parser("format-search",
                       help="find the exponent/mantissa split and bias with the least MSE")
    p.add_argument("input", help="tensor to fit (.npy, real numbers)")
    p.add_argument("--bits", type=int, default=4,
                   help=f"format width: {', '.join(map(str, SEARCH_BITS))} (default 4)")
    p.add_argument("--granularity", default="tensor",
                   help="one bias per 'tensor' (default) or per 'channel'")
    p.add_argument("--axis", type=int, default=0,
                   help="channel axis for --granularity channel (default 0: rows of an "
                        "out x in weight)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def run(args):
    x = load_npy(args.input)
    t0 = time.perf_counter()
    res = format_search(x, args.bits, granularity=args.granularity, axis=args.axis)
    print(f"format-search: {len(res['candidates'])} candidates in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    res["input"] = args.input
    emit(args, res, _text(res))


def _bias(c):
    b = c["bias"]
    if isinstance(b, list):
        return f"{np.mean(b):+.3f} (channels {min(b):+.2f}..{max(b):+.2f})"
    return f"{b:+.4f}"


def _text(res):
    lines = [f"{res['input']} {tuple(res['shape'])}: {res['bits']}-bit formats, one bias per "
             f"{res['granularity']}" + (f" (axis {res['axis']})" if res["axis"] is not None
                                         else ""),
             f"  {'format':<26}{'bias':>34} {'MSE':>11} {'rel MSE':>9} {'SQNR dB':>8}"
             f" {'MSE @amax':>11}"]
    for c in res["candidates"]:
        mark = " <- best" if c is res["best"] or c["format"] == res["best"]["format"] else ""
        lines.append(f"  {c['label']:<26}{_bias(c):>34} {c['mse']:11.5g}"
                     f" {c['relative_mse']:9.5f} {c['sqnr_db'] or float('nan'):8.2f}"
                     f" {c['mse_amax']:11.5g}{mark}")
    b = res["best"]
    lines.append(f"best: {b['label']}, exponent bias {_bias(b)}, MSE {b['mse']:.6g}")
    return "\n".join(lines)
