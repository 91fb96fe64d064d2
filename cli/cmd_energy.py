"""``nybble energy``: energy per MAC of PE kinds from their synthesised netlists switching on
real operands.

Each PE is synthesised with Yosys (generic gates, as ``nybble cost`` does), its netlist
simulated with Verilator on a stream of MACs, every net's transitions counted (toggle
coverage) and each weighted with its capacitance (generic 45 nm / 0.9 V model, calibrated on
the Horowitz ISSCC 2014 anchors; leakage omitted). The netlist's accumulator must equal the
golden model after every step, or the command fails (exit 1). Prints pJ per MAC per kind and
data set with its breakdown, energy ratios beside area ratios, the Horowitz anchor table
(reference operators synthesised and simulated the same way) and per-byte memory energies;
``--plot`` writes a bar plot.

Data sets: ``uniform`` random codes, ``gaussian`` data quantized to the PE's formats (absmax),
``digits`` (the digits MLP's real inputs, hidden activations and weights), ``zeros50`` (half
of each operand zero), or ``A.npy,B.npy`` (float matrices, M x K and K x N).

``--array RxC`` adds an R x C output-stationary array of each kind (``arrays``).

JSON (``--json``): ``rows`` (``pe``, ``data``, ``pj_per_mac``, ``breakdown_pj_per_mac``,
``toggles_per_cycle``, ``transistors``, ``checked_steps``, ``netlist_equals_golden``,
``operand_sram_pj_per_mac``, ``seconds``, ...), ``arrays`` (the same per array, with
``checked_results``), ``ratios``, ``anchors``, ``calibration``,
``memory``, ``model``.
"""

import os
import sys
import time

# one text-table layout for the cost and energy reports
from .cmd_cost import _table
from .common import UsageError, check_output_file, emit, load_npy, parse_array

__all__ = ["register"]

#: The kinds of the default sweep: 4-bit MACs and the 8/16-bit baselines, and their
#: 4-lane dot products.
DEFAULT_PES = ("int4", "fp4_e2m1", "e3m0", "int8_e3m0", "int8", "int16", "fp8_e4m3", "fp16",
               "bf16")

_DATA_NAMES = ("uniform", "gaussian", "digits", "zeros50")


def register(sub):
    p = sub.add_parser("energy", help="energy per MAC from the netlist's switching activity",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--pe", default=",".join(DEFAULT_PES), metavar="KIND[,KIND...]",
                   help="PE kinds (MAC and dot-product kinds; default: the 4-bit kinds and "
                        "the 8/16-bit baselines)")
    p.add_argument("--dp4", action="store_true",
                   help="add the 4-lane dot product (<kind>_dp4) of every kind given")
    p.add_argument("--data", default="uniform,digits", metavar="SETS",
                   help="comma-separated data sets among uniform, gaussian, digits, zeros50, "
                        "or A.npy,B.npy (default: uniform,digits)")
    p.add_argument("--array", metavar="RxC",
                   help="also run an R x C output-stationary array of each kind (PEs, skew, "
                        "drain; no buffers) on a GEMM of each data set")
    p.add_argument("--macs", type=int, default=100_000, metavar="N",
                   help="MACs simulated per kind and data set (default 100000)")
    p.add_argument("--no-anchors", action="store_true",
                   help="skip the Horowitz anchor table (reference operators)")
    p.add_argument("--no-area", action="store_true",
                   help="skip the area (Yosys) beside the energy ratios")
    p.add_argument("--calibrate", action="store_true",
                   help="also fit the model's capacitance per gate unit to the anchors and "
                        "print it beside the one in use")
    p.add_argument("--liberty", metavar="PATH",
                   help="take capacitances (input pins of the matched cells), voltage and "
                        "leakage from this Liberty file instead of the generic 45 nm model")
    p.add_argument("--plot", metavar="PNG", help="write a bar plot")
    p.add_argument("--build-dir", default="build", metavar="DIR",
                   help="Verilog and Verilator builds (default build)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_run)


def _kinds(args):
    from nybble.hw.kinds import pe_kind
    from nybble.sim.energy import ENERGY_FAMILIES
    names = [k.strip() for k in args.pe.split(",") if k.strip()]
    if not names:
        raise UsageError("--pe needs at least one PE kind")
    if args.dp4:
        names += [f"{k}_dp4" for k in names if not k.endswith("_dp4")]
    for name in names:
        try:
            kind = pe_kind(name)
        except ValueError as e:
            raise UsageError(f"--pe: {e}") from None
        if kind.pe not in ENERGY_FAMILIES or kind.spec().is_lut:
            raise UsageError(f"--pe {name!r}: energy runs take MAC and dot-product kinds "
                             f"without LUT tables (not the {kind.pe} family or LUT PEs)")
    return list(dict.fromkeys(names))


def _digits_layers():
    import numpy as np
    from nybble.analysis.digits import train_digits_mlp
    model = train_digits_mlp()
    x = model.x_test
    hidden = np.maximum(x @ model.w1.T + model.b1, 0.0)
    return [(x, model.w1.T), (hidden, model.w2.T)]


def _datasets(args):
    from nybble.sim.energy_report import float_data, synthetic_data
    text = args.data.strip()
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) == 2 and all(p.endswith(".npy") for p in parts):
        a, b = (load_npy(p, name) for p, name in zip(parts, ("A", "B")))
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            raise UsageError(f"--data A.npy,B.npy must be matrices M x K and K x N, not "
                             f"shapes {a.shape} and {b.shape}")
        return {os.path.basename(parts[0]) + "," + os.path.basename(parts[1]):
                float_data([(a, b)])}
    bad = [p for p in parts if p not in _DATA_NAMES]
    if bad or not parts:
        raise UsageError(f"--data must be a comma-separated list of "
                         f"{', '.join(_DATA_NAMES)}, or A.npy,B.npy, not {text!r}")
    out = {}
    for name in parts:
        out[name] = float_data(_digits_layers()) if name == "digits" else synthetic_data(name)
    return out


def _f(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def _text(report):
    rows = report["rows"]
    cats = [c for c in rows[0]["breakdown_pj_per_mac"]
            if any(r["breakdown_pj_per_mac"][c] for r in rows)]
    lines = [f"energy per MAC: {report['model']['description']}",
             f"{report['macs']} MACs per kind and data set; the netlist's acc equalled the "
             "golden model on every step of every run", ""]
    head = ["pe", "data", "pJ/MAC", *cats, "toggles/cyc", "transistors", "SRAM feed pJ/MAC",
            "seconds"]
    body = [[r["pe"], r["data"], _f(r["pj_per_mac"]),
             *[_f(r["breakdown_pj_per_mac"][c]) for c in cats], _f(r["toggles_per_cycle"], ".1f"),
             _f(r["transistors"], "d") if r["transistors"] is not None else "-",
             _f(r["operand_sram_pj_per_mac"], ".3f"), _f(r["seconds"], ".1f")] for r in rows]
    lines += _table(head, body)
    lines.append("(SRAM feed: both operands read from an 8 KiB SRAM once per MAC, no reuse)")
    if rows[0]["leakage_nw"] is not None:
        lines += ["", "leakage (Liberty cell_leakage_power): " + ", ".join(
            f"{r['pe']} {r['leakage_nw']:.1f} nW" for r in rows if r["data"] == rows[0]["data"])]
    if report["arrays"]:
        lines += ["", "arrays (output-stationary: PEs, skew, drain; every result checked "
                      "against the golden model):"]
        lines += _table(["array", "pe", "data", "pJ/MAC", *cats, "MACs", "seconds"],
                        [[r["array"], r["pe"], r["data"], _f(r["pj_per_mac"]),
                          *[_f(r["breakdown_pj_per_mac"][c]) for c in cats], r["macs"],
                          _f(r["seconds"], ".1f")] for r in report["arrays"]])
    if report["ratios"]:
        lines += ["", "ratios (energy per MAC beside area in transistors):"]
        lines += _table(["pair", "data", "energy", "area"],
                        [[r["pair"], r["data"], _f(r["energy_ratio"], ".2f"),
                          _f(r["area_ratio"], ".2f")] for r in report["ratios"]])
    if report["anchors"]:
        a = report["anchors"]
        lines += ["", "Horowitz ISSCC 2014 (45 nm) beside the model:"]
        lines += _table(["operator", "published pJ", "model pJ", "model/published"],
                        [[r["operator"], _f(r["published_pj"], ".3f"), _f(r["model_pj"], ".3f"),
                          _f(r["model_over_published"], ".2f")] for r in a["operators"]])
        lines += [""]
        lines += _table(["ratio", "published", "model", "within 2x"],
                        [[r["ratio"], _f(r["published"], ".2f"), _f(r["model"], ".2f"),
                          "yes" if r["within_2x"] else "NO"] for r in a["ratios"]])
    if report["calibration"]:
        c = report["calibration"]
        lines += ["", f"calibration: {c['unit_ff']:.4g} fF per gate unit fits the anchors "
                      f"({c['rule']}); in use: {c['current_unit_ff']:.4g} fF"]
    mem = report["memory"]
    lines += ["", "memory (" + mem["source"] + "): SRAM "
              + ", ".join(f"{k} {v:.2f}" for k, v in mem["sram_pj_per_byte"].items())
              + f" pJ/byte; DRAM {mem['dram_pj_per_byte'][0]:.0f}-"
                f"{mem['dram_pj_per_byte'][1]:.0f} pJ/byte"]
    return "\n".join(lines)


def _run(args):
    if args.macs < 1:
        raise UsageError(f"--macs must be at least 1, not {args.macs}")
    if args.plot:
        check_output_file("--plot", args.plot)
    if args.liberty and args.calibrate:
        raise UsageError("--calibrate fits the generic model; it does not apply with --liberty")
    array = parse_array(args.array) if args.array else None
    kinds = _kinds(args)
    from nybble.synth.energy import GENERIC_45NM
    from nybble.synth.liberty_energy import read_liberty_model
    if args.liberty and not os.path.isfile(args.liberty):
        raise UsageError(f"--liberty file {args.liberty!r} does not exist")
    model = read_liberty_model(args.liberty) if args.liberty else GENERIC_45NM
    datasets = _datasets(args)
    from nybble.sim.energy_report import energy_sweep
    t0 = time.perf_counter()
    report = energy_sweep(kinds, datasets, macs=args.macs, array=array,
                          area=not args.no_area,
                          anchors=not args.no_anchors, do_calibrate=args.calibrate,
                          model=model,
                          build_dir=args.build_dir,
                          progress=lambda line: print(line, file=sys.stderr, flush=True),
                          log=sys.stderr)
    report["seconds"] = time.perf_counter() - t0
    if args.plot:
        from nybble.sim.energy_plots import plot_energy
        report["plot"] = str(plot_energy(report, args.plot))
    emit(args, report, _text(report) + (f"\nplot: {report['plot']}" if args.plot else ""))
