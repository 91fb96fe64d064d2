"""What every ``nybble`` command shares: output, errors, and the flags that describe an array.

* :func:`emit` prints the one JSON document of ``--json`` (non-finite numbers become
  ``null``) or the text for people; logs and progress go to stderr, never here.
* :class:`UsageError` is bad user input found by a command; :func:`nybble.__main__.main` prints
  it as one line and exits 2, as it does the library's :class:`nybble.sw.errors.NybbleError`
  (input errors exit 2, failures of a tool exit 1).
* :func:`add_array_args` / :func:`config_from_args`: ``--array``, ``--pe``, ``--dataflow``,
  ``--acc-bits``, ``--overflow``, ``--depth`` -> an :class:`~nybble.hw.config.ArrayConfig`.
"""

import json
import math
import os
import sys

import numpy as np

__all__ = ["UsageError", "emit", "to_json", "add_array_args", "config_from_args", "load_npy"]


class UsageError(Exception):
    """Bad user input detected by a command (reported without a traceback, exit status 2)."""


def _clean(o):
    """``o`` with numpy scalars / arrays as Python values and non-finite floats as None."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    return o


def to_json(payload):
    """``payload`` as strict JSON text (``allow_nan=False``: NaN / Inf are ``null``)."""
    return json.dumps(_clean(payload), indent=2, allow_nan=False)


def emit(args, payload, text):
    """Print ``payload`` as one JSON document (``--json``) or ``text`` for people."""
    if getattr(args, "json", False):
        sys.stdout.write(to_json(payload) + "\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def add_array_args(p, *, pe="int4", array="16x16"):
    """The flags of one array configuration."""
    p.add_argument("--array", default=array, help=f"ROWSxCOLS (default {array})")
    p.add_argument("--pe", default=pe, help="PE kind (see `nybble pe-report`)")
    p.add_argument("--dataflow", default="os", help="os or ws")
    p.add_argument("--acc-bits", type=int, default=32, help="accumulator bits (default 32)")
    p.add_argument("--overflow", default="wrap", help="wrap or saturate")
    p.add_argument("--depth", type=int, default=None,
                   help="buffer depth in words (default: enough for the GEMM, at least 4096)")


def parse_array(text):
    """``--array`` -> (rows, cols), a UsageError naming the flag otherwise."""
    from nybble.hw.config import ArrayConfig
    try:
        return ArrayConfig.parse_array(text)
    except ValueError as e:
        raise UsageError(f"--{e}") from None


def config_from_args(args, **changes):
    """An ArrayConfig from the array flags (``changes`` override fields); depths from
    ``--depth`` when given (otherwise the caller fits them to its GEMM)."""
    from nybble.hw.config import ArrayConfig
    rows, cols = parse_array(args.array)
    depth = {} if args.depth is None else dict(a_depth=args.depth, b_depth=args.depth,
                                                c_depth=args.depth)
    fields = dict(rows=rows, cols=cols, pe=args.pe, acc_bits=args.acc_bits,
                  overflow=args.overflow, dataflow=args.dataflow, **depth)
    fields.update(changes)
    return ArrayConfig(**fields)


def load_npy(path, name="input"):
    """Load a .npy array with errors that name the file and the problem."""
    if not os.path.exists(path):
        raise UsageError(f"{name} file {path!r} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UsageError(f"{name} file {path!r} is not a readable .npy array ({e})") from None
