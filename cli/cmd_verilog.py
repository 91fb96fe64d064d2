"""``nybble verilog``: Verilog for one PE, an array top, or the array behind its UART wrapper.

``--pe KIND`` alone writes the PE (``nybble.hw.pe``); with ``--array RxC`` the
:class:`~nybble.hw.top.ArrayTop` of that ``ArrayConfig`` (array, operand and result buffers,
sequencer, host ports); ``--wrapper uart`` puts it behind :class:`~nybble.hw.fpga_top.UartHost`
(two pins).  ``--lint`` runs ``verilator --lint-only`` on the result with only the width
warnings Amaranth's output always produces waived (``WIDTHEXPAND``, ``WIDTHTRUNC``);
``--lint-all`` runs ``-Wall`` with the waivers of ``nybble.synth.verilog.WAIVED_WARNINGS`` (each
with its reason).  Either exits 1 when a warning remains.

JSON (``--json``): ``path``, ``top``, ``what`` (``pe``, ``array`` or ``uart``), ``pe``,
``array``, ``dataflow``, ``acc_bits``, ``lines``, ``bytes``, ``ports`` (name, direction,
width), ``lint`` (null, or ``mode`` "default" / "all", ``clean``, ``warnings``, ``waived``)
and ``seconds``.
"""

import re
import sys
import time
from pathlib import Path

__all__ = ["register", "verilog_ports"]


def register(sub):
    p = sub.add_parser("verilog", help="write Verilog for a PE or an array (optionally lint it)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--pe", required=True, metavar="KIND",
                   help="PE kind (nybble.hw.kinds.PE_KINDS, or <mac kind>_dp<k>)")
    p.add_argument("--array", metavar="RxC", help="an array of this size (ArrayTop)")
    p.add_argument("--dataflow", default="os", metavar="D",
                   help="array dataflow: os or ws (default os)")
    p.add_argument("--acc-bits", type=int, metavar="N",
                   help="accumulator width (default: the PE kind's own; 32 for arrays)")
    p.add_argument("--overflow", default=None, metavar="MODE",
                   help="accumulator overflow: wrap or saturate (default wrap; the "
                        "IEEE-style FP PEs take only ieee, their default)")
    p.add_argument("--depth", type=int, metavar="WORDS",
                   help="A, B and C buffer depth of an array (default: ArrayConfig's 4096)")
    p.add_argument("--wrapper", default="none", metavar="W",
                   help="none (default) or uart: the array behind a UART (two pins)")
    p.add_argument("--divisor", type=int, default=104, metavar="N",
                   help="UART clock cycles per bit with --wrapper uart (default 104: "
                        "115200 baud at 12 MHz)")
    p.add_argument("--name", default="top", help="top-level module name (default top)")
    p.add_argument("--lint", action="store_true",
                   help="run verilator --lint-only on the result (width warnings waived)")
    p.add_argument("--lint-all", action="store_true",
                   help="run verilator --lint-only -Wall (documented waivers)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.v", help="file to write")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_run)


_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
                   r"(?:\[(\d+):(\d+)\]\s*)?([A-Za-z_\\][^\s;]*)\s*;", re.M)


def verilog_ports(text, top="top"):
    """Ports of module ``top`` in Amaranth's Verilog: ``[{name, direction, width}]``."""
    match = re.search(rf"^module {re.escape(top)}\(.*?^endmodule", text, re.M | re.S)
    body = match.group(0) if match else ""
    return [{"name": name, "direction": direction,
             "width": 1 if not hi else abs(int(hi) - int(lo)) + 1}
            for direction, hi, lo, name in _PORT.findall(body)]


def _build(args, cli):
    from nybble.hw.kinds import pe_kind
    kind = pe_kind(args.pe)
    if args.wrapper not in ("none", "uart"):
        raise cli.UsageError(f"--wrapper must be one of none, uart, not {args.wrapper!r}")
    if args.array is None:
        for flag, given in (("--depth", args.depth is not None),
                            ("--wrapper", args.wrapper != "none"),
                            ("--dataflow", args.dataflow != "os")):
            if given:
                raise cli.UsageError(f"{flag} applies to arrays only: add --array RxC")
        options = {} if args.overflow is None else {"overflow": args.overflow}
        if args.acc_bits is not None:
            options["acc_bits"] = args.acc_bits
        return lambda: kind.build(**options), "pe", None, kind.spec(**options).acc_bits
    from nybble.hw.config import ArrayConfig
    if args.dataflow == "is":
        raise cli.UsageError("--dataflow is runs on the streaming top (nybble gemm / cycles "
                             "with --dram-bw ...); nybble verilog builds the whole-buffer "
                             "top: use --dataflow os or ws")
    rows, cols = cli.parse_array(args.array)
    fields = dict(rows=rows, cols=cols, pe=args.pe, dataflow=args.dataflow,
                  overflow=args.overflow or "wrap")
    if args.acc_bits is not None:
        fields["acc_bits"] = args.acc_bits
    if args.depth is not None:
        fields.update(a_depth=args.depth, b_depth=args.depth, c_depth=args.depth)
    config = ArrayConfig(**fields)
    if args.wrapper == "uart":
        from nybble.hw.fpga_top import UartHost
        from nybble.sw.formats import check_integral
        check_integral("--divisor", args.divisor, 4, 1 << 24)
        return lambda: UartHost(config, args.divisor), "uart", config, config.acc_bits
    from nybble.hw.top import ArrayTop
    return lambda: ArrayTop(config), "array", config, config.acc_bits


def _run(args):
    from . import common as cli
    from nybble.synth.verilog import (WAIVED_WARNINGS, WIDTH_WARNINGS, check_identifier, lint,
                                      write_verilog)
    start = time.perf_counter()
    check_identifier(args.name, "--name")
    cli.check_output_file("-o", args.output)
    make, what, config, acc_bits = _build(args, cli)
    print(f"elaborating {what} {args.pe}" + (f" {args.array}" if args.array else "") + " ...",
          file=sys.stderr, flush=True)
    path = write_verilog(make(), args.output, name=args.name)
    text = Path(path).read_text(encoding="utf-8")
    lint_result = None
    if args.lint or args.lint_all:
        wall = args.lint_all
        command = "verilator --lint-only" + (" -Wall" if wall else "")
        print(f"linting with {command} ...", file=sys.stderr, flush=True)
        warnings = lint(text, args.name, wall=wall)
        lint_result = {"mode": "all" if wall else "default", "command": command,
                       "clean": not warnings, "warnings": warnings,
                       "waived": sorted(WAIVED_WARNINGS if wall else WIDTH_WARNINGS)}
    payload = {
        "path": str(path), "top": args.name, "what": what, "pe": args.pe,
        "array": args.array, "dataflow": config.dataflow if config else None,
        "acc_bits": acc_bits, "lines": text.count("\n"), "bytes": len(text.encode()),
        "ports": verilog_ports(text, args.name), "lint": lint_result,
        "seconds": round(time.perf_counter() - start, 2),
    }
    ports = payload["ports"]
    pins = sum(p["width"] for p in ports)
    lines = [f"wrote {path}: {what} {args.pe}" + (f" {args.array}" if args.array else "")
             + f", {payload['lines']} lines, {len(ports)} ports ({pins} bits)"]
    if lint_result is not None:
        if lint_result["clean"]:
            lines.append(f"{lint_result['command']}: clean (waived: "
                         f"{', '.join(lint_result['waived'])})")
        else:
            lines.append(f"{lint_result['command']}: {len(warnings)} warnings")
            lines += [f"  {w}" for w in warnings]
    cli.emit(args, payload, "\n".join(lines))
    return 1 if lint_result is not None and not lint_result["clean"] else 0
