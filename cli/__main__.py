"""The ``nybble`` command line: one module per command group, each with ``register(sub)``.

Every command accepts ``--json``: it then prints exactly one JSON document on stdout; progress
and logs go to stderr.  Errors in user input (:class:`~nybble.common.UsageError`, the
library's :class:`~nybble.sw.errors.NybbleError`) print ``nybble <cmd>: error: ...`` and exit
2; a failed tool exits 1, as does a check that finds mismatches.
"""

import argparse
import importlib
import os
import sys

from nybble.sw.errors import NybbleError, ToolError
from . import __version__
from .common import UsageError

# command-group modules (in ``cli/``), each defining ``register(subparsers)``
COMMAND_MODULES = [
    "cmd_formats",
    "cmd_quantize",
    "cmd_bench",
    "cmd_cycles",
    "cmd_gemm",
    "cmd_pe",
    "cmd_stability",
    "cmd_rd",
    "cmd_format_search",
    "cmd_demo",
    "cmd_verilog",
    "cmd_fpga",
    "cmd_cost",
    "cmd_cache",
]


# commands whose module is not ``cmd_<command>``
_MODULE_OF = {"pe-report": "cmd_pe"}


def _module_for(argv):
    """The one command module ``argv`` needs (None: load them all, e.g. for --help)."""
    cmd = next((a for a in argv if not a.startswith("-")), None)
    if cmd is None:
        return None
    name = _MODULE_OF.get(cmd, "cmd_" + cmd.replace("-", "_"))
    return name if name in COMMAND_MODULES else None


def build_parser(argv=None):
    """The argument parser; with ``argv``, only the requested command's module is imported
    (each command group pulls in its own dependencies: scipy, Amaranth, ...)."""
    parser = argparse.ArgumentParser(
        prog="nybble", description="Nybble: 4-bit MAC array co-design simulator")
    parser.add_argument("--version", action="version", version=f"nybble {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    only = _module_for(argv) if argv is not None else None
    for name in ([only] if only else COMMAND_MODULES):
        importlib.import_module(f"nybble.{name}").register(sub)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except (UsageError, NybbleError) as e:
        # user-facing errors: a clear line, no traceback (set NYBBLE_DEBUG=1 for one); any
        # other exception is a bug and keeps its traceback
        if os.environ.get("NYBBLE_DEBUG"):
            raise
        print(f"nybble {args.command}: error: {e}", file=sys.stderr)
        return 1 if isinstance(e, ToolError) else 2
    except KeyboardInterrupt:
        # child processes (compilers, simulators) were started with subprocess.run, which
        # kills them on the way out; scratch files are removed by their `finally` blocks
        print(f"nybble {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
