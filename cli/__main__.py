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
from .common import UsageError, to_json

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
    "cmd_energy",
    "cmd_cache",
    "cmd_example",
    "cmd_explore",
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


class _Parser(argparse.ArgumentParser):
    """argparse's own usage errors take the one error path too: one line (with the usage) on
    stderr, exit status 2, and with ``--json`` one JSON document on stdout."""

    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        if "--json" in _ARGV:
            sys.stdout.write(to_json({"error": message, "exit_status": 2}) + "\n")
        sys.exit(2)


_ARGV = []  # the argv main() parses (argparse's error() does not see it)


def build_parser(argv=None):
    """The argument parser; with ``argv``, only the requested command's module is imported
    (each command group pulls in its own dependencies: scipy, Amaranth, ...)."""
    parser = _Parser(
        prog="nybble", description="Nybble: 4-bit MAC array co-design simulator")
    parser.add_argument("--version", action="version", version=f"nybble {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    only = _module_for(argv) if argv is not None else None
    for name in ([only] if only else COMMAND_MODULES):
        importlib.import_module(f"nybble.{name}").register(sub)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    _ARGV[:] = argv
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
        return _fail(args, str(e), 1 if isinstance(e, ToolError) else 2)
    except KeyboardInterrupt:
        # child processes (compilers, simulators) were started with subprocess.run, which
        # kills them on the way out; scratch files are removed by their `finally` blocks
        return _fail(args, "interrupted", 130, prefix="")


def _fail(args, message, status, prefix="error: "):
    """The one error path: one line on stderr and, with ``--json``, one JSON document on
    stdout (``{"error": message, "exit_status": status}``) so that a script always parses."""
    print(f"nybble {args.command}: {prefix}{message}", file=sys.stderr)
    if getattr(args, "json", False):
        sys.stdout.write(to_json({"error": message, "exit_status": status}) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
