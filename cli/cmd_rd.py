"""``nybble rd``: each format's distortion against the rate-distortion limits (Gaussian data).

Scalar MSE against ``D(R) = 2**(-2R)`` and Lloyd-Max; matmul error against the
inner-product limit of Ordentlich & Polyanskiy; GPTQ (with and without a random rotation)
against round-to-nearest and the water-filling limit.
Model: :mod:`nybble.analysis.rate_distortion`.
"""

import sys
import time

from nybble.analysis.rate_distortion import rd_report

from .common import UsageError, emit


def register(sub):
    p = sub.add_parser("rd", help="distortion of every format against the Gaussian limits")
    p.add_argument("--seed", type=int, default=0, help="seed of the Gaussian data")
    p.add_argument("--quick", action="store_true", help="smaller samples (for smoke tests)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def run(args):
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, not {args.seed}")
    t0 = time.perf_counter()
    rep = rd_report(seed=args.seed, quick=args.quick)
    print(f"rd: computed in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    emit(args, rep, _text(rep))


def _text(rep):
    sc = rep["scalar"]
    out = ["Lloyd-Max (optimal fixed-rate scalar quantizer) for a unit Gaussian:",
           f"  {'bits':>4} {'MSE':>12} {'D(R)':>12} {'gap bits':>9}"]
    for r in sc["lloyd_max"]:
        out.append(f"  {r['bits']:>4} {r['mse']:12.6g} {r['d_r']:12.6g} {r['gap_bits']:9.3f}")
    out.append(f"  (entropy-coded uniform quantizer: {sc['entropy_coded_uniform_gap_bits']:.3f}"
               " bit above D(R) at high rate)")
    out += ["", "Schemes on unit-Gaussian data (rate includes the scales):",
            f"  {'scheme':<13}{'rate':>6} {'MSE':>10} {'D(R)':>10} {'gap bits':>9}"
            f" {'LM MSE':>9} {'vs LM':>7}"]
    for r in sc["schemes"]:
        out.append(f"  {r['scheme']:<13}{r['rate']:6.3f} {r['mse']:10.5g} {r['d_r']:10.4g}"
                   f" {r['gap_bits']:9.3f} {r['lloyd_max_mse']:9.4g}"
                   f" {100 * r['excess_over_lloyd_max']:+6.1f}%")
    out += ["", "4-bit element formats with the best single scale (exact):",
            f"  {'format':<15}{'levels':>6} {'scale':>8} {'MSE':>10} {'gap bits':>9} {'vs LM':>7}"]
    for r in sc["element_formats"]:
        out.append(f"  {r['format']:<15}{r['levels']:6d} {r['scale']:8.4f} {r['mse']:10.5g}"
                   f" {r['gap_bits']:9.3f} {100 * r['excess_over_lloyd_max']:+6.1f}%")
    ip = rep["inner_product"]
    out += ["", f"Matmul A^T B (n={ip['n']}) against the inner-product limit Gamma(R) "
                f"(Ordentlich-Polyanskiy, R* = {ip['critical_rate']:.4f}):",
            f"  {'scheme':<13}{'rate':>6} {'error/n':>10} {'2D+D^2':>10} {'Gamma(R)':>10}"
            f" {'gap bits':>9}"]
    for r in ip["schemes"]:
        out.append(f"  {r['scheme']:<13}{r['rate']:6.3f} {r['distortion']:10.4g}"
                   f" {r['naive_2d_plus_d2']:10.4g} {r['limit']:10.4g} {r['gap_bits']:9.3f}")
    g = rep["gptq"]
    out += ["", f"Weight-only, weighted error tr((W-Wq) H (W-Wq)^T), W {g['rows']}x{g['k']} "
                "Gaussian, synthetic calibration H (gap in bits to water-filling):",
            f"  {'scheme':<13}{'rate':>6} {'RTN':>14} {'RTN+rot':>14} {'GPTQ':>14}"
            f" {'GPTQ+rot':>14} {'limit':>9}"]
    for r in g["schemes"]:
        cells = [f"{r[k]:8.4g} ({r[k + '_gap_bits']:.2f})" for k in
                 ("rtn", "rtn_rotated", "gptq", "gptq_rotated")]
        out.append(f"  {r['scheme']:<13}{r['rate']:6.3f} " + " ".join(f"{c:>14}" for c in cells)
                   + f" {r['limit']:9.4g}")
    return "\n".join(out)
