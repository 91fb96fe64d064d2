"""``nybble cost``: area and throughput of every PE kind against the 8/16-bit baselines.

Synthesises one PE of each kind with Yosys (generic gates, ``stat -tech cmos`` transistors;
um^2 too when a Liberty file is found or given), accumulators sized by ``--acc-policy``
(default exact-k: the narrowest that cannot overflow a ``--k`` = 4096-product dot product;
equal: ``--acc-bits`` wherever one step fits), splits the area into multiplier / adder tree /
accumulator / registers, fits the analytic model (``nybble.synth.cost``) and prints the
table, the headline ratios (int8/int4, int16/int4 as MAC, dp4, dp16 and arrays) under both
policies, the measured area ratios, the model with its fit error beside the published
Horowitz 45 nm anchor, and the equal-size / equal-area comparison.  ``--pe`` alone sweeps
exactly the kinds named.  ``--fmax`` adds post-route Fmax (ECP5, out of context);
``--array RxC`` adds whole array tops (``nybble.synth.array_parts``: one PE x R*C, the top
without PEs and memories synthesised apart, buffers as SRAM macros or ``--buffers ff``).
Writes ``cost.csv``, ``cost.json`` (the rows), ``cost_summary.json``, PNG plots and, as
results arrive, ``cost_partial.json`` to ``--out``.  ``--timeout`` leaves out a synthesis
that does not finish in time (``left_out`` in the summary).  Every synthesis is cached
(``build/cache``): a second run takes seconds, an interrupted one resumes.

JSON (``--json``): the list of rows, each with ``pe``, ``formats``, ``bits``, ``acc_bits``,
``cells``, ``transistors``, ``area_um2`` (null without Liberty), ``fmax_mhz`` (null unless
``--fmax``), ``macs_per_cycle``, ``model_area``, ``model_error`` and more (``scope`` "pe" or
"array"; arrays: ``parts`` {pes, rest, buffers}, ``buffer_model``, ``depth``, ``buffer_kib``).
The summary (headline ratios per policy, conventions) is in ``cost_summary.json``.
"""

import csv
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["register"]


def register(sub):
    p = sub.add_parser("cost", help="area / throughput cost model of every PE kind",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--formats", nargs="+", metavar="FMT",
                   help="only PE kinds whose operand formats are all among these")
    p.add_argument("--pe", nargs="+", metavar="KIND", dest="pes",
                   help="exactly these PE kinds (any kind, e.g. int4 int8 int4_dp16); with "
                        "--formats: added to the kinds it selects")
    p.add_argument("--acc-policy", default="exact-k", metavar="exact-k|equal",
                   help="accumulator widths: exact-k (default: the narrowest that cannot "
                        "overflow a K-product dot product) or equal (--acc-bits wherever "
                        "one step fits); the headline ratios are printed under both")
    p.add_argument("--k", type=int, default=4096, metavar="K",
                   help="dot-product length of --acc-policy exact-k (default 4096)")
    p.add_argument("--one-policy", action="store_true",
                   help="skip the headline kinds' syntheses under the other policy")
    p.add_argument("--array", metavar="RxC",
                   help="also the area of whole RxC array tops (PE synthesised once, the rest "
                        "of the top apart, buffers modelled; compare at that size; default "
                        "comparison size 16x16, PEs only)")
    p.add_argument("--array-depth", type=int, default=256, metavar="WORDS",
                   help="buffer depth of the arrays in words (default 256)")
    p.add_argument("--buffers", default="sram", metavar="sram|ff",
                   help="array buffers as SRAM macros (default; nybble.synth.sram) or "
                        "flip-flop register files (synthesised: keep --array-depth small)")
    p.add_argument("--acc-bits", type=int, default=32, metavar="N",
                   help="the accumulator width of --acc-policy equal (default 32)")
    p.add_argument("--block", action="store_true",
                   help="instead of the sweep: the block-scaled PEs (mxfp4, mxint8, nvfp4, "
                        "q4_0, or the block kinds of --pe) against plain dot products of the "
                        "same lanes (nybble.synth.block_cost)")
    p.add_argument("--fit-model", action="store_true",
                   help="fit the area model on this sweep (it must be the full default "
                        "sweep) and store it in the package (nybble/synth/area_model.json)")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="per Yosys run: a synthesis that does not finish in time is left out "
                        "(named in the report and, with --fit-model, in the stored model) "
                        "and the sweep goes on (default: no limit)")
    p.add_argument("--fmax", action="store_true",
                   help="place and route each PE on an ECP5 for its Fmax (slower)")
    p.add_argument("--liberty", default="auto", metavar="PATH|auto|none",
                   help="Liberty file for um^2 (auto: $NYBBLE_LIBERTY or Debian's "
                        "qflow-tech-osu018 when installed)")
    p.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                   metavar="N", help="synthesis runs in parallel (default: cores, max 4)")
    p.add_argument("--out", default="build/cost", metavar="DIR",
                   help="where CSV, JSON and PNGs go (default build/cost)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON document")
    p.set_defaults(func=_run)


def _progress(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _fmt(value, spec=".0f", none="-"):
    return none if value is None else format(value, spec)


def _table(head, body):
    w = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    lines = ["  ".join(str(h).ljust(w[i]) for i, h in enumerate(head)).rstrip(),
             "  ".join("-" * w[i] for i in range(len(head)))]
    lines += ["  ".join(str(c).ljust(w[i]) for i, c in enumerate(row)).rstrip() for row in body]
    return lines


def _short_formats(r):
    a, b = r["formats"]
    if "|" in b:
        b = "{" + str(len(b.split("|"))) + " 4-bit types}"
    short = {"float4_e2m1fn": "fp4", "float8_e4m3fn": "fp8e4m3", "float16": "fp16",
             "bfloat16": "bf16"}
    return f"{short.get(a, a)} x {short.get(b, b)}"


def _report_text(rows, summary, paths, seconds):
    pe_rows = [r for r in rows if r["scope"] == "pe"]
    with_fmax = any(r["fmax_mhz"] is not None for r in pe_rows)
    with_um2 = any(r["area_um2"] is not None for r in pe_rows)
    head = ["pe", "formats", "acc", "MAC/cyc", "cells", "transistors"]
    head += ["um^2"] if with_um2 else []
    head += ["x int4", "mult%", "tree%", "acc%", "regs%"]
    with_asic = any(r["asic_mhz"] is not None for r in pe_rows)
    head += ["depth", "ASIC MHz", "GOPS/Mtr"] if with_asic else ["MAC/cyc/Mtr"]
    head += ["FPGA MHz"] if with_fmax else []
    head += ["model", "err"]
    body = []
    for r in pe_rows:
        total = sum(r["breakdown"].values()) or 1
        pct = lambda c: f"{100 * r['breakdown'][c] / total:.0f}"
        line = [r["pe"], _short_formats(r), r["acc_bits"], f"{r['macs_per_cycle']:g}",
                r["cells"], r["transistors"]]
        line += [_fmt(r["area_um2"])] if with_um2 else []
        line += [_fmt(r["rel_area_vs_int4"], ".2f"), pct("multiplier"), pct("adder_tree"),
                 pct("accumulator"), pct("registers")]
        line += ([_fmt(r["logic_depth"]), _fmt(r["asic_mhz"], ".0f"),
                  _fmt(r["gops_per_s_per_mtransistor"], ".1f")]
                 if with_asic else [_fmt(r["macs_per_cycle_per_mtransistor"], ".1f")])
        line += [_fmt(r["fmax_mhz"], ".0f")] if with_fmax else []
        line += [r["model_area"], f"{100 * r['model_error']:+.1f}%"]
        body.append(line)
    out = _table(head, body)
    out += ["", "acc: accumulator bits (" + summary["convention"] + ")",
            summary["units"],
            "mult/tree/acc/regs: shares of the hierarchical synthesis (multiplier incl. the "
            "LUT table and the bit-serial decode/shift datapath)"]
    out.append("depth, ASIC MHz, GOPS/Mtr: " + summary["asic_clock"])
    if with_fmax:
        out.append("FPGA MHz: " + summary["throughput"].split("fmax_mhz: ")[1])
    arrays = [r for r in rows if r["scope"] == "array"]
    if arrays:
        a = arrays[0]
        out += ["", f"Whole arrays ({a['array']}: R*C x one PE + the top without PEs and "
                    f"memories + {a['buffer_model'].upper()} buffers, {a['depth']} words):"]
        head = ["pe", "acc", "transistors", "um^2", "PEs", "rest", "buffers", "buf KiB",
                "PE share", "model", "err", "depth", "MHz", "PE MHz", "rest s"]
        body = [[r["pe"], r["acc_bits"], r["transistors"], _fmt(r["area_um2"]),
                 r["parts"]["pes"], r["parts"]["rest"], r["parts"]["buffers"],
                 r["buffer_kib"], f"{100 * r['pe_share']:.0f}%", r["model_area"],
                 f"{100 * r['model_error']:+.1f}%",
                 f"{_fmt(r['pe_logic_depth'])}/{_fmt(r['rest_logic_depth'])}",
                 _fmt(r["asic_mhz"]), _fmt(r["pe_asic_mhz"]), r["rest_seconds"]]
                for r in arrays]
        out += _table(head, body)
        out.append("rest: input skew, shadow drain, sequencer, pointers, read multiplexer "
                   "(synthesised with PEs and memories as black boxes); depth: PE / rest "
                   "logic depth, MHz: the array's ASIC clock estimate (the slower of the "
                   "two), PE MHz: the lone PE's")
    if summary["headline"]:
        policies = list(summary["conventions"])
        out += ["", "Headline ratios under each accumulator policy (transistors; um^2; "
                    "accumulator bits):"]
        head = ["pair", "PE"] + policies
        body = []
        for h in summary["headline"]:
            cells = []
            for p in policies:
                x = h.get(p, {})
                t = x.get("transistors")
                cells.append("-" if t is None else
                             f"{t:.2f}x" + ("" if x["area_um2"] is None else
                                            f"; {x['area_um2']:.2f}x")
                             + " ({}/{} b)".format(*x["acc_bits"]))
            body.append([h["pair"], h["pe"], *cells])
        out += _table(head, body)
        out += [f"  {text}" for text in summary["conventions"].values()]
    out += ["", "Measured area ratios (transistors; cells; um^2; multiplier alone):"]
    body = [[x["pair"], x["pe"], f"{x['transistors']:.2f}x", f"{x['cells']:.2f}x",
             _fmt(x["area_um2"], ".2f") + ("x" if x["area_um2"] else ""),
             _fmt(x["multiplier_only"], ".1f") + ("x" if x["multiplier_only"] else "")]
            for x in summary["ratios"]]
    out += _table(["pair", "PE", "transistors", "cells", "um^2", "multiplier"], body)
    model = summary["model"]
    out += ["", f"Analytic model, CMOS transistors -- {model['source']}:"]
    out += [f"  {line}" for line in model["formula"]]
    out.append(f"  error against the flattened totals of this sweep ({model['points']} PEs): "
               f"max {100 * model['max_abs_error']:.1f}% ({model['max_error_pe']}), "
               f"mean {100 * model['mean_abs_error']:.1f}%")
    loo = model["loo"]
    if loo.get("mean_abs") is not None:
        out.append(f"  leave-one-out ({len(model['fitted_on'])} PEs fitted on): "
                   f"mean {100 * loo['mean_abs']:.1f}%, max {100 * loo['max_abs']:.1f}% "
                   f"({loo['max_pe']})")
    held = model.get("held_out") or {}
    if held.get("mean_abs") is not None:
        out.append(f"  held out (predicted, not fitted: {len(held['per_pe'])} PEs): mean "
                   f"{100 * held['mean_abs']:.1f}%, max {100 * held['max_abs']:.1f}% "
                   f"({held['max_pe']})")
    for kind, why in model["excluded"].items():
        out.append(f"  not fitted on {kind}: {why}")
    for f in summary["left_out"]:
        out.append(f"Left out of this sweep: {f['what']} {f['pe']} ({f['policy']}): "
                   f"{f['error']}")
    out += ["", f"Published anchor -- {summary['anchor']['source']}, beside the model:"]
    body = [[a["op"], a["area_um2_45nm"], f"{a['area_vs_8b_mult']:.2f}",
             _fmt(a["model_transistors"]), _fmt(a["model_vs_8b_mult"], ".2f"), a["note"]]
            for a in summary["anchor"]["rows"]]
    out += _table(["op", "um^2 (45 nm)", "x 8b mult", "model tr.", "x 8b mult", "note"], body)
    size = summary["array"]
    key_t, key_m = f"array_{size}_transistors", f"array_{size}_macs_per_cycle"
    out += ["", f"At equal array size ({summary['equal_size']}) and at equal area "
                f"({summary['equal_area']}):"]
    head = ["pe", f"{size} transistors", f"{size} MAC/cyc"]
    head += [f"{size} GMAC/s"] if with_asic else []
    head += ["PEs in equal area", "MAC/cyc"] + (["GMAC/s"] if with_asic else [])
    body = []
    for r in pe_rows:
        line = [r["pe"], r[key_t], r[key_m]]
        if with_asic:
            line.append(_fmt(None if r["gmacs_per_s"] is None else
                             r["gmacs_per_s"] * int(size.split("x")[0]) *
                             int(size.split("x")[1]), ".1f"))
        line += [_fmt(r.get("equal_area_pes")), _fmt(r.get("equal_area_macs_per_cycle"), "g")]
        if with_asic:
            line.append(_fmt(r.get("equal_area_gmacs_per_s"), ".1f"))
        body.append(line)
    out += _table(head, body)
    out += ["", "wrote " + ", ".join(str(p) for p in paths), f"{seconds:.1f} s"]
    return "\n".join(out)


def _csv_rows(rows):
    from nybble.synth.area import CATEGORIES
    out = []
    for r in rows:
        flat = {k: v for k, v in r.items()
                if k not in ("breakdown", "breakdown_um2", "model_breakdown", "formats")}
        flat["formats"] = " x ".join(r["formats"])
        for c in CATEGORIES:
            flat[f"breakdown_{c}"] = r["breakdown"][c]
        for c, v in (r.get("model_breakdown") or {}).items():
            flat[f"model_{c}"] = v
        out.append(flat)
    return out


def _run_block(args, cli, start):
    """``--block``: block_area_overhead of each block kind, one row each."""
    from nybble.hw.kinds import PE_KINDS, pe_kind
    from nybble.synth.block_cost import block_area_overhead, buffer_bits_overhead
    from nybble.synth.cost import find_liberty
    block_kinds = [n for n, k in PE_KINDS.items() if k.pe == "block"]
    kinds = list(dict.fromkeys(args.pes or block_kinds))
    for name in kinds:
        if pe_kind(name).pe != "block":
            raise cli.UsageError(f"--block: --pe must name block-scaled kinds "
                                 f"({', '.join(block_kinds)}), not {name!r}")
    liberty = find_liberty(args.liberty)
    rows = []
    for i, name in enumerate(kinds):
        t = time.perf_counter()
        report = block_area_overhead(name, acc_bits=args.acc_bits, liberty=liberty)
        row = report.as_dict()
        row["buffer_bits_overhead"] = round(buffer_bits_overhead(name), 4)
        row["overhead"] = {k: round(v, 4) for k, v in row["overhead"].items()}
        rows.append(row)
        _progress(f"[{i + 1}/{len(kinds)}] {name}: {report.transistors} transistors "
                  f"({time.perf_counter() - t:.1f} s)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "block_cost.json"
    path.write_text(json.dumps(rows, indent=1))
    head = ["kind", "lanes", "block", "scale", "acc", "transistors", "products", "scaler",
            "accumulator", "rest", "vs plain dot products", "buffer bits"]
    body = [[r["kind"], r["lanes"], r["block_size"], r["scale"], r["acc_bits"],
             r["transistors"], *(r["parts"][p] for p in ("products", "scaler", "accumulator",
                                                          "rest")),
             ", ".join(f"{k} {100 * v:+.0f}%" for k, v in r["overhead"].items()),
             f"x{r['buffer_bits_overhead']:.3g}"] for r in rows]
    text = "\n".join(
        ["Block-scaled PEs against plain dot products of the same lanes and accumulator "
         f"({args.acc_bits} bits); transistors (Yosys stat -tech cmos); parts from the "
         "hierarchical synthesis; buffer bits: operand word width with the scales / without",
         *_table(head, body), "", f"wrote {path}", f"{time.perf_counter() - start:.1f} s"])
    cli.emit(args, rows, text)
    return 0


class _PartialResults:
    """``cost_partial.json``: one record per finished synthesis, rewritten (atomically) as
    each arrives, so an interrupted sweep leaves what it finished."""

    def __init__(self, path):
        self._path = Path(path)
        self._records = []

    def add(self, what, policy, kind, value):
        record = {"what": what, "policy": policy, "pe": kind}
        if what == "fmax":
            record.update(fmax_mhz=value[0], luts=value[1])
        else:
            record.update(acc_bits=value.acc_bits, cells=value.cells,
                          transistors=value.transistors, area_um2=value.area_um2)
            if what == "array":
                record.update(array=f"{value.rows}x{value.cols}",
                              parts={p: v["transistors"] for p, v in value.parts.items()})
        self._records.append(record)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._records, indent=1))
        os.replace(tmp, self._path)


def _run(args):
    from . import common as cli
    from nybble.synth.cost import cost_report, cost_sweep, find_liberty, select_kinds
    from nybble.hw.config import ArrayConfig
    start = time.perf_counter()
    if args.jobs < 1:
        raise cli.UsageError(f"--jobs must be at least 1, not {args.jobs}")
    if args.array_depth < 1:
        raise cli.UsageError(f"--array-depth must be at least 1, not {args.array_depth}")
    if args.acc_policy not in ("exact-k", "equal"):
        raise cli.UsageError(f"--acc-policy must be exact-k or equal, not {args.acc_policy!r}")
    if args.buffers not in ("sram", "ff"):
        raise cli.UsageError(f"--buffers must be sram or ff, not {args.buffers!r}")
    if args.timeout is not None and not args.timeout > 0:
        raise cli.UsageError(f"--timeout must be a positive number of seconds, not "
                             f"{args.timeout:g}")
    if not 1 <= args.k <= 1 << 24:
        raise cli.UsageError(f"--k must be between 1 and {1 << 24} products, not {args.k}")
    cli.check_output_dir("--out", args.out)
    cli.check_cache_dirs()
    if args.block:
        return _run_block(args, cli, start)
    kinds = select_kinds(args.formats, args.pes)
    if args.fit_model:
        from nybble.synth.cost import DEFAULT_KINDS
        missing = [k for k in DEFAULT_KINDS if k not in kinds]
        if missing:
            raise cli.UsageError(f"--fit-model fits on the full default sweep (no --formats / "
                                 f"--pe narrowing it); missing {', '.join(missing)}")
    array = cli.parse_array(args.array) if args.array else None
    if array is not None:
        ArrayConfig(rows=array[0], cols=array[1])  # range checks
    liberty = find_liberty(args.liberty)
    _progress(f"nybble cost: {len(kinds)} PE kinds"
              + (f", {args.array} arrays" if array else "")
              + (", ECP5 Fmax" if args.fmax else "")
              + (f", Liberty {liberty}" if liberty else ", no Liberty (transistors only)")
              + f", {args.jobs} jobs")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    partial = _PartialResults(out / "cost_partial.json")
    sweep = cost_sweep(kinds, acc_policy=args.acc_policy, k=args.k, acc_bits=args.acc_bits,
                       compare_policies=not args.one_policy, liberty=liberty,
                       fmax=args.fmax, array=array, array_depth=args.array_depth,
                       buffers=args.buffers, jobs=args.jobs, progress=_progress,
                       on_result=partial.add, timeout=args.timeout)
    if args.fit_model:
        from nybble.synth.cost import fit_stored_model
        _, about = fit_stored_model(sweep)
        _progress(f"stored the area model: leave-one-out mean "
                  f"{100 * about['loo']['mean_abs']:.1f}%, max "
                  f"{100 * about['loo']['max_abs']:.1f}% ({about['loo']['max_pe']})"
                  + f"; {len(about['excluded'])} kinds not fitted on (excluded)")
    rows, summary = cost_report(sweep, array=array)
    summary["liberty"] = liberty
    summary["kinds"] = kinds
    paths = [out / "cost.csv", out / "cost.json", out / "cost_summary.json"]
    flat = _csv_rows(rows)
    fields = list(dict.fromkeys(k for r in flat for k in r))
    with open(paths[0], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(flat)
    paths[1].write_text(json.dumps(rows, indent=1))
    paths[2].write_text(json.dumps(summary, indent=1))
    if not args.no_plots:
        from nybble.synth.plots import write_plots
        paths += write_plots(rows, out)
    seconds = time.perf_counter() - start
    cli.emit(args, rows, _report_text(rows, summary, paths, seconds))
    return 0
