"""``nybble fpga``: build an array for an FPGA board and report its resources and Fmax.

The array (``ArrayTop``: array, A/B operand buffers, C result banks, sequencer) sits behind a
UART (``nybble.hw.fpga_top``: two pins, a byte protocol ``nybble.sim.fpga_host`` speaks) and
goes through the board's amaranth-boards platform with the YoWASP tools from PyPI (Yosys,
nextpnr-ice40 / nextpnr-ecp5, icepack / ecppack).  Reports LUTs, flip-flops, carry cells,
DSPs and block RAMs (Yosys), device utilisation and post-route Fmax (nextpnr) and the
bitstream.  Beside it, one PE of the array alone on the same device through the same flow
(registered inputs and outputs, :func:`nybble.synth.fpga.board_pe_fmax`): its Fmax is the
ceiling of the array top, and the ratio says how close the top comes to it.  Build products
go to ``build/fpga/<board>_<R>x<C>_<pe>/`` (the PE's to ``<board>_pe_<pe>_<hash>/``); an
unchanged build is reported from there at once.  A design that does not fit fails with the
resource that overflowed.

JSON (``--json``): ``board``, ``device``, ``family``, ``pe``, ``rows``, ``cols``,
``acc_bits``, ``depths``, ``baud``, ``dsp``, ``luts``, ``ffs``, ``carries``, ``dsps``,
``brams``, ``utilisation`` ({resource: {used, available}}), ``fmax_mhz``, ``clock_mhz``,
``timing_met``, ``bitstream``, ``bitstream_bytes``, ``build_dir``, ``seconds``, ``cached``;
``pe_fmax_mhz`` (the lone PE on the same device), ``fmax_ratio`` (``fmax_mhz /
pe_fmax_mhz``) and ``lone_pe`` (that build: ``device``, ``luts``, ``ffs``, ``carries``,
``dsps``, ``fmax_mhz``, ``build_dir``, ``seconds``, ``cached``, ...).
"""

import os
import sys

__all__ = ["register"]


def register(sub):
    from nybble.synth.fpga import BOARDS, DEFAULT_DEPTHS
    p = sub.add_parser("fpga", help="build an array for an FPGA board (YoWASP tools)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--board", required=True, metavar="NAME",
                   help=f"one of: {', '.join(BOARDS)}")
    p.add_argument("--array", required=True, metavar="RxC", help="array size, e.g. 4x4")
    p.add_argument("--pe", required=True, metavar="KIND", help="PE kind, e.g. int4")
    p.add_argument("--acc-bits", type=int, default=32, metavar="N",
                   help="accumulator width (default 32)")
    p.add_argument("--depth", type=int, default=DEFAULT_DEPTHS[0], metavar="WORDS",
                   help=f"A, B and C buffer depth in words (default {DEFAULT_DEPTHS[0]})")
    p.add_argument("--baud", type=int, default=None,
                   help="UART baud rate (default 115200)")
    p.add_argument("--dsp", default="auto", metavar="auto|on|off",
                   help="multipliers in DSP blocks (auto: only for operands wider than "
                        "4 bits)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    p.add_argument("--build-dir", default="build/fpga", metavar="DIR",
                   help="where builds go (default build/fpga)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_run)


def _progress(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _run(args):
    from . import common as cli
    from nybble.hw.config import ArrayConfig
    from nybble.hw.kinds import pe_kind
    from nybble.synth.fpga import BOARDS, board_pe_fmax, build_board
    if args.board not in BOARDS:
        raise cli.UsageError(f"--board must be one of {', '.join(BOARDS)}, not {args.board!r}")
    cli.check_cache_dirs(args.build_dir)
    kind = pe_kind(args.pe)
    if kind.pe == "bitserial":
        raise cli.UsageError(f"--pe {args.pe!r} is bit-serial; the board build hosts MAC and "
                             "dot-product PEs (the bit-serial array runs in simulation: "
                             "nybble gemm --pe bitserial)")
    dsp = {"auto": None, "on": True, "off": False}.get(args.dsp, "?")
    if dsp == "?":
        raise cli.UsageError(f"--dsp must be one of auto, on, off, not {args.dsp!r}")
    rows, cols = cli.parse_array(args.array)
    config = ArrayConfig(rows=rows, cols=cols, pe=args.pe, acc_bits=args.acc_bits,
                         a_depth=args.depth, b_depth=args.depth, c_depth=args.depth)
    result = build_board(args.board, config, baud=args.baud, dsp=dsp,
                         build_dir=args.build_dir, seed=args.seed, progress=_progress)
    lone = board_pe_fmax(args.board, config, dsp=dsp, build_dir=args.build_dir,
                         seed=args.seed, progress=_progress)
    payload = result.as_dict()
    payload["bitstream_bytes"] = os.path.getsize(result.bitstream)
    ratio = (None if result.fmax_mhz is None or not lone.fmax_mhz
             else round(result.fmax_mhz / lone.fmax_mhz, 3))
    payload.update(pe_fmax_mhz=lone.fmax_mhz, fmax_ratio=ratio, lone_pe=lone.as_dict())
    util = ", ".join(f"{name} {u['used']}/{u['available']}"
                     for name, u in result.utilisation.items())
    text = "\n".join([
        f"{rows}x{cols} {args.pe} array on {result.board} ({result.device}), "
        f"{args.acc_bits}-bit accumulators, buffers {args.depth} words, UART {result.baud} "
        f"baud" + (" (cached)" if result.cached else f" ({result.seconds:.0f} s)"),
        f"  Yosys:   {result.luts} LUT4, {result.ffs} flip-flops, {result.carries} carry "
        f"cells, {result.dsps} DSP, {result.brams} block RAM",
        f"  nextpnr: {util}",
        f"  Fmax:    {result.fmax_mhz:.1f} MHz post-route (board clock {result.clock_mhz:g} "
        f"MHz: {'met' if result.timing_met else 'NOT met'})",
        f"  lone PE: {lone.fmax_mhz:.1f} MHz on the same device and flow ({lone.luts} LUT4, "
        f"{lone.ffs} flip-flops with its harness); array top / PE = {ratio:.2f}"
        + (" (cached)" if lone.cached else f" ({lone.seconds:.0f} s)"),
        f"  bitstream: {result.bitstream} ({payload['bitstream_bytes']} bytes)",
    ])
    cli.emit(args, payload, text)
    return 0
