"""``nybble cycles``: cycle counts of a whole workload on one array, per layer and in total.

    nybble cycles --array 16x16 --dataflow os --pe int4 --workload llama-7b --seq-len 2048
    nybble cycles --config google.cfg --topology Resnet50.csv --csv out.csv --json

The array comes from, in order of precedence: explicit flags, a SCALE-Sim ``.cfg`` given with
``--config`` (ArrayHeight/ArrayWidth, Dataflow, and the SRAM sizes as buffer depths), then the
defaults (16x16, os, int4, 32-bit accumulators).  ``--json`` prints one document
``{"config", "workload", "layers", "totals"}``.
"""

import sys

from . import bitserial
from .common import UsageError, emit, parse_array
from .stream_mode import add_stream_args, stream_cycles_command, wants_stream

DEFAULT_ARRAY = "16x16"
DEFAULT_DATAFLOW = "os"


def register(sub):
    from nybble.sim.workloads import WORKLOADS
    p = sub.add_parser(
        "cycles", help="cycle counts of a workload (built-in or SCALE-Sim topology) on an array",
        description="Cycle counts of every GEMM of a workload on one array, with totals. "
                    "Flags override a SCALE-Sim --config file, which overrides the defaults.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--workload", choices=list(WORKLOADS),
                     help="built-in workload: one LLaMA-7B decoder layer, or ResNet-50")
    src.add_argument("--topology", metavar="FILE.csv",
                     help="SCALE-Sim topology CSV (GEMM 'Layer, M, N, K' or conv format)")
    p.add_argument("--topology-format", choices=["auto", "gemm", "conv"], default="auto",
                   help="format of --topology (default: from its header)")
    p.add_argument("--config", metavar="FILE.cfg",
                   help="SCALE-Sim .cfg: array size, dataflow and SRAM sizes")
    p.add_argument("--array", metavar="ROWSxCOLS", help=f"PE grid (default {DEFAULT_ARRAY})")
    p.add_argument("--dataflow", choices=["os", "ws", "is"],
                   help=f"output-, weight- or input-stationary (is: streaming top only; "
                        f"default {DEFAULT_DATAFLOW})")
    p.add_argument("--pe", default="int4", help="PE kind (default int4)")
    p.add_argument("--acc-bits", type=int, default=32, help="accumulator width (default 32)")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="clock for the time column (default: ArrayConfig's)")
    p.add_argument("--seq-len", type=int, default=None,
                   help="llama-7b: prompt length in tokens (default 2048)")
    p.add_argument("--batch", type=int, default=None,
                   help="llama-7b / resnet50: batch size (default 1)")
    p.add_argument("--image", type=int, default=None,
                   help="resnet50: input image side in pixels (default 224)")
    add_stream_args(p, workload=True)
    bitserial.add_cycles_args(p, src)
    p.add_argument("--csv", metavar="OUT.csv", help="also write the per-layer rows as CSV")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def _workload(args):
    from nybble.sim import workloads
    allowed = {"llama-7b": ("seq_len", "batch"), "resnet50": ("batch", "image")}
    given = {k: getattr(args, k) for k in ("seq_len", "batch", "image")
             if getattr(args, k) is not None}
    if args.topology is not None:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise UsageError(f"{flags} only appl{'ies' if len(given) == 1 else 'y'} to "
                             f"--workload, not to --topology")
        layers = workloads.read_topology(args.topology, fmt=args.topology_format)
        return layers, {"name": args.topology, "source": "scalesim-topology"}
    for k in given:
        if k not in allowed[args.workload]:
            raise UsageError(f"--{k.replace('_', '-')} does not apply to --workload "
                             f"{args.workload} (it takes "
                             f"{', '.join('--' + a.replace('_', '-') for a in allowed[args.workload])})")
    layers = workloads.get_workload(args.workload, **given)
    return layers, {"name": args.workload, **given}


def _array_config(args):
    from nybble.hw.config import ArrayConfig
    from nybble.sim.workloads import read_scalesim_cfg, scalesim_sram_depths
    cfg = read_scalesim_cfg(args.config) if args.config else None
    if args.array is not None:
        rows, cols = parse_array(args.array)
    elif cfg is not None:
        rows, cols = cfg["rows"], cfg["cols"]
    else:
        rows, cols = ArrayConfig.parse_array(DEFAULT_ARRAY)
    dataflow = args.dataflow or (cfg["dataflow"] if cfg else DEFAULT_DATAFLOW)
    kw = {"rows": rows, "cols": cols, "pe": args.pe, "acc_bits": args.acc_bits,
          "dataflow": dataflow}
    if args.clock_mhz is not None:
        kw["clock_mhz"] = args.clock_mhz
    try:
        config = ArrayConfig(**kw)
        if cfg is not None:
            from nybble.sw.formats import get_format
            a_fmt, b_fmt = config.formats
            depths = scalesim_sram_depths(cfg, rows=rows, cols=cols,
                                          a_bits=get_format(a_fmt).bits,
                                          b_bits=get_format(b_fmt).bits, acc_bits=config.acc_bits)
            if depths:
                config = config.replace(**depths)
    except ValueError as e:
        if cfg is None:
            raise
        # the value may have come from the file: say which file
        raise UsageError(f"{e} (array from {args.config} and the command line)") from None
    return config


def run(args):
    from nybble.sim.report import run_workload
    if args.weights is None:
        layers, workload = _workload(args)
    config = _array_config(args)
    if args.weights is not None:   # bit-serial: one GEMM with a weight file's data types
        layers, workload, cycle_fn = bitserial.weights_workload(args, config.pe_spec)
    else:
        cycle_fn, info = bitserial.cycle_function(args, config.pe_spec)
        workload.update(info)
    if args.config:
        workload["config_file"] = args.config
    if wants_stream(args):
        from nybble.sim.workloads import read_scalesim_cfg
        if args.csv:
            raise UsageError("--csv writes the whole-buffer model's rows; the streaming "
                             "model's are in --json")
        cfg_file = read_scalesim_cfg(args.config) if args.config else None
        payload, text = stream_cycles_command(args, config, layers, workload, cfg_file)
        emit(args, payload, text)
        return 0
    print(f"cycles: {len(layers)} layers of {workload['name']} on a {config.rows}x{config.cols} "
          f"{config.dataflow} {config.pe} array", file=sys.stderr)
    report = run_workload(config, layers, workload=workload, cycle_fn=cycle_fn)
    if args.csv:
        report.write_csv(args.csv)
        print(f"cycles: wrote {args.csv}", file=sys.stderr)
    emit(args, report.as_dict(), report.format_table())
