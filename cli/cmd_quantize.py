"""``nybble quantize IN.npy --scheme S -o OUT.npz``: quantize a tensor and report its error."""

import sys

import numpy as np

from nybble.sw import ROUNDING_MODES, quantize, scheme_names

from .common import check_output_file, emit, load_npy, write_npz


def register(sub):
    p = sub.add_parser("quantize", help="quantize a .npy tensor with a block scheme")
    p.add_argument("input", help="input .npy file (float array)")
    p.add_argument("--scheme", required=True,
                   help=f"quantization scheme: {', '.join(scheme_names())}, ...")
    p.add_argument("-o", "--out", help="write codes and scales to this .npz file")
    p.add_argument("--axis", type=int, default=-1, help="axis the blocks run along (default -1)")
    p.add_argument("--rounding", default="nearest_even",
                   help=f"element rounding: {', '.join(ROUNDING_MODES)} (default nearest_even)")
    p.add_argument("--seed", type=int, default=None, help="seed for stochastic rounding")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def error_metrics(x, xq):
    """MSE, SQNR (dB), cosine similarity and max abs error between ``x`` and ``xq``."""
    x, xq = np.asarray(x, np.float64).ravel(), np.asarray(xq, np.float64).ravel()
    err = x - xq
    mse = float(np.mean(err ** 2)) if x.size else 0.0
    sig = float(np.mean(x ** 2)) if x.size else 0.0
    nx, nq = np.linalg.norm(x), np.linalg.norm(xq)
    return {
        "mse": mse,
        "sqnr_db": float(10 * np.log10(sig / mse)) if mse > 0 and sig > 0 else None,
        "cosine": float(x @ xq / (nx * nq)) if nx > 0 and nq > 0 else None,
        "max_abs_error": float(np.max(np.abs(err))) if x.size else 0.0,
    }


def run(args):
    check_output_file("--out", args.out)
    x = load_npy(args.input)
    qt = quantize(x, args.scheme, axis=args.axis, rounding=args.rounding, seed=args.seed)
    metrics = error_metrics(x, qt.dequantize())
    out = {"scheme": qt.scheme.name, "shape": list(qt.shape), "axis": qt.axis,
           "block": qt.block, **metrics}
    if args.out:
        arrays = {"codes": qt.codes, "scales": qt.scales, "dequantized": qt.dequantize()}
        if qt.tensor_scale is not None:
            arrays["tensor_scale"] = np.float32(qt.tensor_scale)
        for k, v in qt.extra.items():
            arrays[f"extra_{k}"] = v
        write_npz("--out", args.out, arrays)
        out["out"] = args.out
        print(f"wrote {args.out}", file=sys.stderr)
    text = (f"{qt.scheme.name} on {args.input} {tuple(qt.shape)} (blocks of {qt.block} along "
            f"axis {qt.axis})\n  MSE {out['mse']:.6g}  SQNR {out['sqnr_db'] or float('nan'):.2f} dB"
            f"  cosine {out['cosine'] or float('nan'):.6f}  max|err| {out['max_abs_error']:.6g}")
    emit(args, out, text)
