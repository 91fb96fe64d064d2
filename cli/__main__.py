"""The ``nybble`` command line: one module per command group, each with ``register(sub)``.

Every command accepts ``--json``: it then prints exactly one JSON document on stdout; progress
and logs go to stderr.  Errors in user input print ``nybble <cmd>: error: ...`` and exit 2.
"""

import argparse
import importlib
import json
import sys

from . import __version__

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
]


class UsageError(Exception):
    """Bad user input detected by a command (reported without a traceback)."""


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
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as e:  # a command module not written yet is simply absent
            if e.name == f"{__package__}.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def emit(args, payload, text):
    """Print ``payload`` as one JSON document (``--json``) or ``text`` for people."""
    if getattr(args, "json", False):
        json.dump(payload, sys.stdout, indent=2, default=_json_default)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _json_default(o):
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except (UsageError, ValueError, TypeError, FileNotFoundError) as e:
        # user-facing errors: a clear line, no traceback (set NYBBLE_DEBUG=1 for one)
        import os
        if os.environ.get("NYBBLE_DEBUG"):
            raise
        print(f"nybble {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
