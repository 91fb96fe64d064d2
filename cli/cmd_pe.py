"""``nybble pe-report``: run every PE of the library against the golden model and report it.

For each PE kind (``nybble.hw.kinds.PE_KINDS``, or ``--kinds``) this runs every input pair (a
seeded random sample for 16-bit formats) through the PE in Amaranth's simulator, one pair per
lane per step, and compares ``acc`` / ``overflow`` with ``nybble.sw`` (``nybble.sim.pe_check``);
then it synthesises the PE's Verilog with Yosys (``nybble.synth.yosys.synth_area``, generic
gates; results cached under ``build/cache``) for its cell count.  Progress goes to stderr.

JSON (``--json``): a list of objects with the keys ``pe``, ``formats``, ``latency``,
``cycles_per_mac``, ``pairs_checked``, ``mismatches``, ``cells``, plus ``exhaustive``,
``acc_bits``, ``frac_bits``, ``transistors``, ``rtl_multipliers``, ``simulator``,
``seconds`` and, for L-Mul rows, ``lmul_max_rel_error``, ``lmul_mean_rel_error``,
``lmul_normal_max_rel_error`` (error of the approximate product against the exact one over
every finite pair).  The exit status is 1 when any PE mismatches.
"""

import sys
import time

__all__ = ["register", "pe_report"]


def register(sub):
    p = sub.add_parser(
        "pe-report", help="check every PE against the golden model; latency, cells",
        description=__doc__.split("\n\n")[1])
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--kinds", nargs="+", metavar="KIND",
                   help="PE kinds to report (default: all of nybble.hw.kinds.PE_KINDS)")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="pairs sampled for 16-bit formats (default 4096)")
    p.add_argument("--no-synth", action="store_true",
                   help="skip Yosys (cells reported as null)")
    p.set_defaults(func=_run)


def _progress(msg):
    print(msg, file=sys.stderr, flush=True)


def pe_report(kinds=None, *, sample=None, synth=True, progress=_progress):
    """Rows of the report (dicts), one per PE kind."""
    from nybble.hw.kinds import PE_KINDS, pe_kind
    from nybble.sim.pe_check import check_pairs, SAMPLE_PAIRS
    from nybble.sw.lmul import lmul_error

    names = list(kinds) if kinds else list(PE_KINDS)
    for n in names:
        pe_kind(n)  # ValueError naming the valid kinds, before any work
    rows = []
    for n in names:
        t0 = time.perf_counter()
        r = check_pairs(n, sample=sample or SAMPLE_PAIRS, progress=progress)
        kind = pe_kind(n)
        formats = list(kind.formats) if kind.pe != "bitserial" else \
            [kind.formats[0], "|".join(kind.formats[1:])]
        row = {
            "pe": n, "formats": formats, "latency": r.latency,
            "cycles_per_mac": r.cycles_per_mac, "pairs_checked": r.pairs_checked,
            "mismatches": r.mismatches, "cells": None, "exhaustive": r.exhaustive,
            "simulator": "amaranth",
        }
        spec = kind.spec()
        row["acc_bits"], row["frac_bits"] = spec.acc_bits, spec.frac_bits
        if r.mismatches:
            row["first_mismatch"] = r.first_mismatch
        if getattr(spec, "product", "exact") == "lmul":
            e = lmul_error(spec.fmt_a)
            row["lmul_max_rel_error"] = e["max_rel_error"]
            row["lmul_mean_rel_error"] = e["mean_rel_error"]
            row["lmul_normal_max_rel_error"] = e["normal_max_rel_error"]
        if synth:
            from nybble.synth.verilog import to_verilog
            from nybble.synth.yosys import synth_area
            progress(f"{n}: Yosys generic synthesis")
            area = synth_area(to_verilog(kind.build(), name="top"), "top", hierarchy=False)
            row["cells"] = area.cells
            row["transistors"] = area.transistors
            row["rtl_multipliers"] = area.rtl_multipliers
        row["seconds"] = round(time.perf_counter() - t0, 2)
        progress(f"{n}: {r.pairs_checked} pairs, {r.mismatches} mismatches, "
                 f"cells {row['cells']} ({row['seconds']:.1f} s)")
        rows.append(row)
    return rows


def _fmt_cycles(c):
    if isinstance(c, dict):
        short = {"float4_e2m1fn": "fp4", "fp4_e2m1": "fp4", "bitmod_er_pos": "er+", "bitmod_er_neg": "er-",
                 "bitmod_ea_pos": "ea+", "bitmod_ea_neg": "ea-"}
        return " ".join(f"{short.get(k, k)}:{v}" for k, v in c.items())
    return f"{c:g}" if isinstance(c, float) else str(c)


def _fmt_formats(f):
    a, b = f
    if "|" in b:
        b = "{" + ",".join(x.replace("bitmod_", "bm_") for x in b.split("|")) + "}"
    return f"{a} x {b}"


def _table(rows, seconds):
    head = ["pe", "formats", "acc", "latency", "cycles/MAC", "pairs", "mismatches", "cells",
            "note"]
    body = []
    for r in rows:
        note = "" if r["exhaustive"] else "random sample"
        if "lmul_max_rel_error" in r:
            note = (f"L-Mul rel. error max {r['lmul_max_rel_error']:.3f} "
                    f"(normals {r['lmul_normal_max_rel_error']:.3f}), "
                    f"mean {r['lmul_mean_rel_error']:.3f}")
        acc = "fp32" if r["frac_bits"] is None else f"{r['acc_bits']}.{r['frac_bits']}"
        body.append([r["pe"], _fmt_formats(r["formats"]), acc,
                     str(r["latency"]),
                     _fmt_cycles(r["cycles_per_mac"]), str(r["pairs_checked"]),
                     str(r["mismatches"]), "-" if r["cells"] is None else str(r["cells"]), note])
    w = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w[i]) for i, h in enumerate(head)).rstrip(),
             "  ".join("-" * w[i] for i in range(len(head)))]
    lines += ["  ".join(c.ljust(w[i]) for i, c in enumerate(row)).rstrip() for row in body]
    total = sum(r["mismatches"] for r in rows)
    lines.append("")
    lines.append(f"{len(rows)} PEs, {sum(r['pairs_checked'] for r in rows)} input pairs "
                 f"checked in the Amaranth simulator against nybble.sw, {total} mismatches; "
                 f"acc: accumulator bits.fraction bits (fp32: an IEEE FP32 register, "
                 f"frac_bits null in JSON); cells: Yosys generic gates "
                 f"(synth -booth, flattened, PE with its accumulator and forwarding registers); "
                 f"{seconds:.0f} s")
    return "\n".join(lines)


def _run(args):
    from . import common as cli
    if args.sample is not None and args.sample < 16:
        raise cli.UsageError(f"--sample must be at least 16, not {args.sample}")
    t0 = time.perf_counter()
    rows = pe_report(args.kinds, sample=args.sample, synth=not args.no_synth)
    cli.emit(args, rows, _table(rows, time.perf_counter() - t0))
    return 1 if any(r["mismatches"] for r in rows) else 0
