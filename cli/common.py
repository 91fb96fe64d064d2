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

from nybble.sw.errors import ToolError

__all__ = ["UsageError", "emit", "to_json", "add_array_args", "config_from_args", "load_npy",
           "check_output_file", "check_output_dir", "write_npy", "parse_array",
           "check_positive", "check_cache_dirs"]


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
    p.add_argument("--dataflow", default="os",
                   help="os, ws or is (is: the streaming top only, --dram-bw ...)")
    p.add_argument("--acc-bits", type=int, default=32, help="accumulator bits (default 32)")
    p.add_argument("--overflow", default="wrap",
                   help="wrap or saturate (the accumulator's rule); error: refuse to run "
                        "when the accumulator is narrower than the GEMM can need")
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
    # "error" is a check before the run (the hardware wraps or saturates); the array wraps
    overflow = "wrap" if args.overflow == "error" else args.overflow
    fields = dict(rows=rows, cols=cols, pe=args.pe, acc_bits=args.acc_bits,
                  overflow=overflow, dataflow=args.dataflow, **depth)
    fields.update(changes)
    return ArrayConfig(**fields)


def load_npy(path, name="input"):
    """The one loader of user arrays: a numeric ``.npy`` array, with errors in our words that
    name the flag and the file (never numpy's own advice about pickles or dtypes)."""
    if not os.path.exists(path):
        raise UsageError(f"{name} file {path!r} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{name} file {path!r} is a directory, not a .npy array")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise UsageError(f"{name} file {path!r} cannot be read ({e.strerror})") from None
    if head[:4] == b"PK\x03\x04":
        raise UsageError(f"{name} file {path!r} is a .npz archive; save one array with "
                         "numpy.save as .npy")
    if head != b"\x93NUMPY":
        raise UsageError(f"{name} file {path!r} is not a .npy array (numpy.save writes "
                         "them)")
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise UsageError(f"{name} file {path!r} holds Python objects, not numbers") \
                from None
        raise UsageError(f"{name} file {path!r} is not a readable .npy array ({e})") from None
    except (OSError, EOFError) as e:
        raise UsageError(f"{name} file {path!r} is truncated or damaged ({e})") from None
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
            or x.dtype == np.bool_):
        raise UsageError(f"{name} file {path!r} must hold integers or floats, not {x.dtype}")
    return x


def check_positive(args, *names, minimum=1):
    """UsageError unless every ``args.<name>`` is at least ``minimum`` (None is allowed)."""
    for name in names:
        v = getattr(args, name, None)
        if v is not None and v < minimum:
            raise UsageError(f"--{name.replace('_', '-')} must be at least {minimum}, not {v}")


def check_output_file(flag, path):
    """Before any work: UsageError unless ``path`` can be written as given (its folder exists
    or can be made, it is not a directory, the folder is writable)."""
    if path is None:
        return None
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is a directory; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{flag} {path!r}: {existing!r} is a file, not a directory")
    if not os.access(existing, os.W_OK) or (os.path.exists(path)
                                              and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path!r} is not writable")
    return path


def check_output_dir(flag, path):
    """Before any work: UsageError unless ``path`` is a writable directory or can be made."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{flag} {path!r} is not a directory")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{flag} {path!r}: {existing!r} is a file, not a directory")
    if not os.access(existing, os.W_OK):
        raise UsageError(f"{flag} {path!r} is not writable")
    return path


def check_cache_dirs(build_dir=None):
    """Before any work: the build directory (``--build-dir``) and the result cache
    (``$NYBBLE_CACHE``, when set) must be writable directories."""
    if build_dir is not None:
        check_output_dir("--build-dir", build_dir)
    if os.environ.get("NYBBLE_CACHE"):
        check_output_dir("$NYBBLE_CACHE", os.environ["NYBBLE_CACHE"])


def write_npy(flag, path, array):
    """Write ``array`` to exactly ``path`` (no ``.npy`` added); a failure names the flag."""
    return _write(flag, path, lambda f: np.save(f, array))


def write_npz(flag, path, arrays):
    """Write ``arrays`` (a dict) as an ``.npz`` to exactly ``path``."""
    return _write(flag, path, lambda f: np.savez(f, **arrays))


def _write(flag, path, save):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = None
    try:
        if os.path.exists(path) and not os.path.isfile(path):   # a device, a pipe: as is
            with open(path, "wb") as f:
                save(f)
            return path
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            save(f)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise ToolError(f"could not write {flag} {path!r}: {e.strerror or e}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path
