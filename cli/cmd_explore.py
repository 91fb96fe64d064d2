"""``nybble explore``: which PE, array and format for this workload -- area x speed x accuracy.

    nybble explore --workload llama-7b --phase decode --pe int4,fp4_e2m1,e3m0,mxfp4,int8,int16 \\
        --array 4x4,8x8 --dataflow os,ws --clock-mhz 500 --constraint "area<=2e6,cosine>=0.95"

The cross product of the axes (or ``--points FILE`` with a CSV / JSON list) is evaluated by
:func:`nybble.explore.explore` on a local process pool (``--workers``) or a Dask cluster
(``--scheduler tcp://HOST:8786``), cached by content under ``$NYBBLE_CACHE`` (default
``build/cache``) and resumable.  Writes ``pareto_throughput.png`` (``pareto_energy.png``,
``pareto_energy_area.png`` when points have energies), ``explore.html``, ``explore.csv`` and
``explore.json`` to ``--out``.  Area is ``nybble cost --array``'s (exact-k
accumulators, 256-word SRAM buffers), the clock its ASIC estimate unless ``--clock-mhz``;
with ``--dram-bw`` (GB/s, converted to bytes per cycle at each point's clock) the cycles
include the streaming top's stalls.  Columns a model cannot give for a point (stalls of
weight-stationary, block-scaled and bit-serial arrays; energy of weight-stationary points and
of PE kinds the energy model refuses) say ``"missing: <why>"``.  Energy (``energy_j`` per
inference, ``layer_energy`` per layer, ``inferences_per_j``): the PE's netlist energy per MAC
on the workload's operands x MACs, idle PE-cycles, SRAM and DRAM traffic
(:mod:`nybble.explore.energy`).
``--no-area`` skips synthesis (no area columns; needs ``--clock-mhz``); ``--no-energy`` the
energy runs.

JSON (``--json``): ``{"workload", "rows", "skipped", "missing", "stats", "constraint",
"files"}``; each row has the point (``pe``, ``rows``, ``cols``, ``dataflow``,
``dram_bw_gbps``, ``clock_mhz``), ``label``, ``transistors``, ``area_um2``, ``acc_bits``,
``area_policy``, ``clock_source``, ``cycles``, ``macs_per_cycle``, ``dram_bytes_per_cycle``,
``stalled_cycles``, ``stall_cycles``, ``bytes_read``, ``bytes_written``, ``latency_s``,
``macs_per_s``, ``energy_j``, ``energy_j_dram_high``, ``energy_pe_j``, ``energy_idle_j``,
``energy_sram_j``, ``energy_dram_j``, ``pe_pj_per_mac``, ``pe_idle_pj_per_cycle``,
``pj_per_mac``, ``inferences_per_j``, ``macs_per_j``, ``energy_scope``, ``cosine_layer_min``,
``cosine_predicted``, ``sqnr_db_mean``, the figures of merit and per-layer lists
``layer_cycles``, ``layer_stream``, ``layer_energy`` and ``layer_accuracy``.  With
``--constraint``, exit status 1 when no point meets it.
"""

import os
import sys

from .common import UsageError, check_cache_dirs, check_output_dir, emit

__all__ = ["register"]

DEFAULT_PES = "int4,fp4_e2m1,e3m0,mxfp4,nvfp4,int8,int16"


def register(sub):
    p = sub.add_parser("explore", help="co-design explorer: design points x workload -> "
                                       "area, cycles, accuracy, Pareto fronts",
                       description=__doc__.split("\n\n")[2])
    p.add_argument("--workload", required=True, metavar="llama-7b|resnet50|FILE.csv",
                   help="built-in workload or a SCALE-Sim topology CSV")
    p.add_argument("--phase", choices=["prefill", "decode"],
                   help="llama-7b: prefill (default) or decode (one new token)")
    p.add_argument("--seq-len", type=int, help="llama-7b: tokens (default 2048)")
    p.add_argument("--batch", type=int, help="batch size (default 1)")
    p.add_argument("--pe", default=DEFAULT_PES, metavar="KIND,...",
                   help=f"PE kinds (default {DEFAULT_PES})")
    p.add_argument("--array", default="8x8", metavar="RxC,...", help="array shapes (default 8x8)")
    p.add_argument("--dataflow", default="os", metavar="os,ws", help="dataflows (default os)")
    p.add_argument("--dram-bw", metavar="GBPS,...",
                   help="external bandwidths in GB/s (an axis; bytes per cycle at each "
                        "point's clock for the streaming top's stall model; default: "
                        "unlimited)")
    p.add_argument("--clock-mhz", metavar="MHZ,...",
                   help="fixed clocks (an axis); default: each array's ASIC estimate")
    p.add_argument("--no-area", action="store_true",
                   help="skip synthesis: no area columns (needs --clock-mhz, or clocks in "
                        "--points)")
    p.add_argument("--no-energy", action="store_true",
                   help="skip the PE energy runs (Yosys + Verilator per PE kind): the energy "
                        "columns are then absent")
    p.add_argument("--points", metavar="FILE.csv|FILE.json",
                   help="design points from a file instead of the axes")
    p.add_argument("--weights", metavar="FILE.gguf|DIR",
                   help="user weights (GGUF, or <layer>.npy files) for the accuracy columns")
    p.add_argument("--liberty", default="auto", metavar="PATH|auto|none",
                   help="Liberty file for um^2 (as nybble cost)")
    p.add_argument("--constraint", metavar="EXPR",
                   help='e.g. "area<=2e6,cosine>=0.99": print the best point and why the '
                        "others lost")
    p.add_argument("--objective", metavar="COLUMN",
                   help="what the best point maximises (default MAC/s per mm^2, else "
                        "MAC/cycle per 10^6 transistors)")
    p.add_argument("--out", default="build/explore", metavar="DIR",
                   help="where PNG, HTML, CSV and JSON go (default build/explore)")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="run every task on this Dask distributed scheduler")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local process pool size (default: CPU count)")
    p.add_argument("--no-cache", action="store_true", help="recompute every row")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def _list(flag, text, cast=str):
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UsageError(f"{flag} must list at least one value")
    try:
        return [cast(t) for t in items]
    except ValueError:
        raise UsageError(f"{flag} must be a comma-separated list of numbers, not {text!r}") \
            from None


def _points(args):
    from nybble.explore import cross_product, read_points
    if args.points:
        given = [f for f in ("dram_bw", "clock_mhz") if getattr(args, f) is not None]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} is an axis of the cross "
                             "product; with --points put it in the file")
        return read_points(args.points), []
    bws = _list("--dram-bw", args.dram_bw, float) if args.dram_bw else [None]
    clocks = _list("--clock-mhz", args.clock_mhz, float) if args.clock_mhz else [None]
    dataflows = _list("--dataflow", args.dataflow)
    bad = [d for d in dataflows if d not in ("os", "ws")]
    if bad:
        raise UsageError(f"--dataflow must list os and/or ws, not {bad[0]!r}")
    return cross_product(_list("--pe", args.pe), _list("--array", args.array), dataflows,
                         bws, clocks)


def _fmt(v, spec=".3g"):
    if v is None:
        return "-"
    if isinstance(v, str):
        return "missing" if v.startswith("missing:") else v
    return format(v, spec) if isinstance(v, float) else str(v)


def _text(table, verdict, paths):
    from nybble.explore.pareto import default_objective
    objective = default_objective(table.rows)
    head = ["point", "transistors", "cycles", "MAC/cyc", objective, "inf/J", "pJ/MAC",
            "cos(min layer)", "SQNR dB", "cos(pred)"]
    body = [[r["label"], _fmt(r.get("transistors")), _fmt(r["cycles"]),
             _fmt(r["macs_per_cycle"]), _fmt(r[objective]), _fmt(r.get("inferences_per_j")),
             _fmt(r.get("pj_per_mac")), _fmt(r["cosine_layer_min"], ".4f"),
             _fmt(r["sqnr_db_mean"], ".1f"), _fmt(r["cosine_predicted"], ".4f")]
            for r in table.rows]
    w = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w[i]) for i, c in enumerate(row)).rstrip()
             for row in [head] + body]
    lines.insert(1, "  ".join("-" * x for x in w))
    wl = table.workload
    lines.insert(0, f"{wl['name']}" + (f" ({wl['phase']})" if wl.get("phase") else "")
                 + f": {wl['macs']:,} MACs, {len(wl['layers'])} GEMMs; "
                 f"{table.stats['points']} points ({table.stats['cached']} cached)")
    for s in table.skipped:
        lines.append(f"skipped {s['point']['pe']} {s['point']['rows']}x{s['point']['cols']} "
                     f"{s['point']['dataflow']}: {s['reason']}")
    by_reason = {}
    for col, what in table.missing.items():
        by_reason.setdefault(what, []).append(col)
    for what, cols in by_reason.items():
        lines.append(f"missing {what}: {', '.join(cols)}")
    if verdict is not None:
        lines.append("")
        lines.append(f"constraint {', '.join(verdict['constraints'])}; objective "
                     f"{verdict['objective']}:")
        for r, why in zip(table.rows, verdict["reasons"]):
            lines.append(f"  {r['label']}: {why}")
        lines.append("best: " + (table.rows[verdict["best"]]["label"]
                                 if verdict["best"] is not None else "no point meets it"))
    lines.append("wrote " + ", ".join(str(p) for p in paths))
    return "\n".join(lines)


def run(args):
    from nybble.explore import dask_executor, explore, load_workload
    from nybble.explore.metrics import METRICS, area, energy
    from nybble.explore.pareto import best_point, parse_constraints
    from nybble.explore.report import write_report
    from nybble.explore.weights import load_weights
    from nybble.synth.cost import find_liberty
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    if args.scheduler and args.workers is not None:
        raise UsageError("--workers sizes the local pool; with --scheduler the cluster's "
                         "workers run the tasks")
    constraints = parse_constraints(args.constraint)
    if args.objective:
        best_point([], [], args.objective)  # unknown column: the error names the columns
    check_output_dir("--out", args.out)
    check_cache_dirs()
    workload = load_workload(args.workload, phase=args.phase, seq_len=args.seq_len,
                             batch=args.batch)
    points, skipped = _points(args)
    if args.no_area and any(p.clock_mhz is None for p in points):
        raise UsageError("--no-area needs --clock-mhz (or clock_mhz in every --points "
                         "row): the clock estimate comes from synthesis")
    skip = {area} if args.no_area else set()
    skip |= {energy} if args.no_energy else set()
    metrics = tuple(m for m in METRICS if m not in skip) if skip else None
    weights = load_weights(args.weights, workload) if args.weights else None
    liberty = find_liberty(args.liberty)
    executor = dask_executor(args.scheduler) if args.scheduler else None
    print(f"explore: {len(points)} points on {workload.name}"
          + (f" via {args.scheduler}" if args.scheduler else "")
          + (f", Liberty {liberty}" if liberty else ", no Liberty"), file=sys.stderr)
    try:
        table = explore(points, workload, weights=weights, executor=executor,
                        workers=args.workers, liberty=liberty, use_cache=not args.no_cache,
                        skipped=skipped, metrics=metrics)
    finally:
        if executor is not None:
            executor.close()
    verdict = best_point(table.rows, constraints, args.objective) if constraints else None
    paths = write_report(table, args.out, verdict=verdict)
    doc = table.as_dict()
    doc["constraint"] = verdict
    doc["files"] = [os.fspath(p) for p in paths]
    emit(args, doc, _text(table, verdict, paths))
    return 1 if verdict is not None and verdict["best"] is None else 0
