"""``nybble cache info`` / ``nybble cache clean``: how much the caches under build/ hold, and
removing them.

Every cache is rebuilt on demand, so removing one only costs time.  The areas (``--build-dir``
DIR, default ``build``):

=============  ===============================  =============================================
area           where                            an entry
=============  ===============================  =============================================
verilog        DIR/verilog/                     ``<stem>_<hash>.v`` (+ its ``.sha256``)
verilator      DIR/verilator/                   ``<hash>/``: one compiled native harness
cocotb         DIR/cocotb/                      ``<simulator>-<hash>/``: one cocotb build
cache/<tool>   $NYBBLE_CACHE/<tool>/, else      ``<sha256>.json``: one tool result (Yosys
               DIR/cache/<tool>/                area, FPGA Fmax, ...)
fpga           DIR/fpga/                        ``<board>_<R>x<C>_<pe>/``: one board build
=============  ===============================  =============================================

Scratch files count towards an area's bytes but are not entries (``jobs/`` of the simulators,
``work/`` and temporary files of the result caches).  Only files and folders of these shapes
are counted or removed; anything else under DIR (``build/cost`` reports, ...) is left alone.
``clean`` skips a verilator or cocotb entry whose build lock another process holds.

JSON (``--json``): ``build_dir``, ``exists``, ``cache_root``, ``areas`` (``name``, ``path``,
``entries``, ``bytes``), ``total`` (``entries``, ``bytes``); ``clean`` adds ``what`` and
``skipped`` and reports what it removed. 
"""

import contextlib
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .common import UsageError, emit

__all__ = ["register", "scan", "clean", "Area"]

_HELP = ("caches live under build/ (see `nybble cache info` for their size, `nybble cache "
         "clean` to free it)")

_AREAS = ("Cache areas under --build-dir DIR: verilog (DIR/verilog), verilator (native "
          "harness builds), cocotb (cocotb builds), cache/<tool> (tool results in "
          "$NYBBLE_CACHE/<tool> or DIR/cache/<tool>: yosys, fpga, ...), fpga (board builds in "
          "DIR/fpga). Only files of a cache's own shape are counted or removed.")

#: the result caches that always get an area (others when their folder holds results)
KNOWN_TOOLS = ("yosys", "fpga")

#: ``--what`` names besides the areas themselves
ALIASES = {"yosys": ["cache/yosys"]}


def register(sub):
    p = sub.add_parser("cache", help=_HELP, description=(
        "Caches live under build/ (Verilog, Verilator and cocotb builds, tool results, FPGA "
        "builds) and grow with every configuration run; see `nybble cache info` for their "
        "size and `nybble cache clean` to free it. Everything in them is rebuilt on demand."))
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION")
    i = csub.add_parser("info", help="entries and bytes of every cache area, and the total",
                        description=_AREAS)
    _common_args(i)
    i.set_defaults(func=_info)
    c = csub.add_parser("clean", help="remove cache areas and report what that freed",
                        description=_AREAS + " Everything in them is rebuilt on demand.")
    _common_args(c)
    c.add_argument("--what", default="all", metavar="AREAS",
                   help="comma-separated: verilog, verilator, cocotb, yosys (cache/yosys), "
                        "cache (every cache/<tool>), cache/<tool>, fpga (board builds), all "
                        "(default all: every area `nybble cache info` lists)")
    c.set_defaults(func=_clean)
    p.set_defaults(func=lambda args: p.print_help())


def _common_args(p):
    p.add_argument("--build-dir", default="build", metavar="DIR",
                   help="the build directory (default build/)")
    p.add_argument("--json", action="store_true", help="print one JSON document")


# --- what is in an area -------------------------------------------------------------------

_TMP = re.compile(r"^\..+\.tmp$")                    # mkstemp files of atomic writes
_SHAPES = {
    # kind: (entry file names, entry folder names, scratch file names, scratch folder names)
    "verilog": (re.compile(r"^.+_[0-9a-f]{20}\.v$"), None,
                re.compile(r"^.+_[0-9a-f]{20}\.v\.sha256$|^\..+\.tmp$"), None),
    "verilator": (None, re.compile(r"^[0-9a-f]{20}$"), None, re.compile(r"^jobs$")),
    "cocotb": (None, re.compile(r"^[A-Za-z0-9_]+-[0-9a-f]{16}$"), None, re.compile(r"^jobs$")),
    "fpga": (None, re.compile(r"^[A-Za-z0-9_.-]+_\d+x\d+_[A-Za-z0-9_.-]+$"), None, None),
    "result": (re.compile(r"^[0-9a-f]{64}\.json$"), None, re.compile(r"^\..+\.tmp$"), None),
}
_WORK_DIR = re.compile(r"^[0-9a-f]{16}-")             # ResultCache.work_dir


@dataclass
class Area:
    """One cache area: ``entries`` and ``scratch`` are the paths that belong to it."""
    name: str
    path: Path
    kind: str
    entries: list = field(default_factory=list)
    scratch: list = field(default_factory=list)

    def as_dict(self):
        return {"name": self.name, "path": str(self.path), "entries": len(self.entries),
                "bytes": sum(_size(p) for p in self.entries + self.scratch)}


def _children(folder):
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _fill(area):
    """Sort the children of ``area.path`` into entries and scratch by their shape."""
    entry_file, entry_dir, scratch_file, scratch_dir = _SHAPES[area.kind]
    for e in _children(area.path):
        is_dir = e.is_dir(follow_symlinks=False)
        path = Path(e.path)
        if is_dir and entry_dir and entry_dir.match(e.name):
            area.entries.append(path)
        elif not is_dir and entry_file and entry_file.match(e.name):
            area.entries.append(path)
        elif is_dir and scratch_dir and scratch_dir.match(e.name):
            area.scratch.append(path)
        elif not is_dir and scratch_file and scratch_file.match(e.name):
            area.scratch.append(path)
        elif is_dir and area.kind == "result" and e.name == "work":
            area.scratch.extend(Path(w.path) for w in _children(path)
                                if w.is_dir(follow_symlinks=False) and _WORK_DIR.match(w.name))
    return area


def _size(path):
    """Bytes of the file ``path`` or of every file under the folder ``path`` (symbolic links
    count as themselves and are not followed; files that vanish meanwhile count 0)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_size
    total = 0
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _cache_root(build_dir):
    from nybble.synth.cache import CACHE_ENV_VAR
    env = os.environ.get(CACHE_ENV_VAR)
    root = Path(env) if env else Path(build_dir) / "cache"
    if root.exists() and not root.is_dir():
        raise UsageError(f"${CACHE_ENV_VAR} {str(root)!r} is not a directory" if env else
                         f"{str(root)!r} (the result cache of --build-dir) is not a directory")
    return root


def _check_build_dir(build_dir):
    path = Path(build_dir)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--build-dir {build_dir!r} is not a directory")
    return path


def scan(build_dir="build"):
    """``(cache root, [Area, ...])`` of ``build_dir`` (missing folders: areas with nothing)."""
    build = _check_build_dir(build_dir)
    root = _cache_root(build_dir)
    areas = [_fill(Area(name, build / name, name)) for name in ("verilog", "verilator",
                                                                 "cocotb")]
    tools = list(KNOWN_TOOLS)
    for e in _children(root):
        if e.is_dir(follow_symlinks=False) and e.name not in tools and any(
                _SHAPES["result"][0].match(c.name) for c in _children(e.path)):
            tools.append(e.name)
    areas += [_fill(Area(f"cache/{tool}", root / tool, "result")) for tool in tools]
    areas.append(_fill(Area("fpga", build / "fpga", "fpga")))
    return root, areas


def _select(areas, what):
    """The areas ``--what`` names."""
    names = [a.name for a in areas]
    chosen = []
    for word in (w.strip() for w in what.split(",")):
        if word == "all":
            picked = names
        elif word == "cache":
            picked = [n for n in names if n.startswith("cache/")]
        elif word in ALIASES:
            picked = ALIASES[word]
        elif word in names:
            picked = [word]
        else:
            raise UsageError(f"--what must be a comma-separated list of all, cache, yosys, "
                             f"{', '.join(names)}; not {word!r}")
        chosen += [n for n in picked if n not in chosen]
    return [a for a in areas if a.name in chosen]


@contextlib.contextmanager
def _unlocked(entry):
    """Yields False when another process holds ``entry/build.lock`` (a build is running),
    else True, holding the lock meanwhile."""
    lock = Path(entry) / "build.lock"
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        yield True
        return
    try:
        import fcntl
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def clean(areas, log=None):
    """Remove ``areas`` (from :func:`scan`); returns ``(per area {name, path, entries, bytes}
    removed, paths skipped because a build holds their lock)``."""
    report, skipped = [], []
    for area in areas:
        freed, removed = 0, 0
        for path in area.entries + area.scratch:
            is_entry = path in area.entries
            guard = _unlocked(path) if area.kind in ("verilator", "cocotb") else \
                contextlib.nullcontext(True)
            with guard as free:
                if not free:
                    skipped.append(str(path))
                    if log is not None:
                        print(f"cache clean: skipping {path}: a build holds its lock", file=log)
                    continue
                before = _size(path)
                _remove(path)
                freed += before - (_size(path) if os.path.lexists(path) else 0)
                removed += is_entry and not os.path.lexists(path)
        for folder in ([area.path / "work"] if area.kind == "result" else []) + [area.path]:
            with contextlib.suppress(OSError):
                folder.rmdir()          # only when empty: nothing of anyone else's goes
        if log is not None and (removed or freed):
            print(f"cache clean: {area.name}: removed {removed} entries ({_human(freed)}) "
                  f"from {area.path}", file=log)
        report.append({"name": area.name, "path": str(area.path), "entries": removed,
                       "bytes": freed})
    return report, skipped


def _human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def _total(rows):
    return {"entries": sum(r["entries"] for r in rows), "bytes": sum(r["bytes"] for r in rows)}


def _table(rows, total, verb):
    width = max(len(r["name"]) for r in rows + [{"name": "total"}])
    lines = [f"  {r['name']:<{width}}  {r['entries']:>6} entries  {_human(r['bytes']):>10}  "
             f"{r['path']}" for r in rows]
    lines.append(f"  {'total':<{width}}  {total['entries']:>6} entries  "
                 f"{_human(total['bytes']):>10}  {verb}")
    return lines


def _info(args):
    root, areas = scan(args.build_dir)
    exists = Path(args.build_dir).is_dir()
    if not exists:
        print(f"cache info: {args.build_dir} does not exist: no caches", file=sys.stderr)
    rows = [a.as_dict() for a in areas]
    total = _total(rows)
    payload = {"build_dir": args.build_dir, "exists": exists, "cache_root": str(root),
               "areas": rows, "total": total}
    text = "\n".join([f"caches under {args.build_dir} (tool results under {root}):",
                      *_table(rows, total, "(`nybble cache clean` removes them)")])
    emit(args, payload, text)
    return 0


def _clean(args):
    root, areas = scan(args.build_dir)
    chosen = _select(areas, args.what)
    exists = Path(args.build_dir).is_dir()
    rows, skipped = clean(chosen, log=sys.stderr)
    total = _total(rows)
    payload = {"build_dir": args.build_dir, "exists": exists, "cache_root": str(root),
               "what": [a.name for a in chosen], "areas": rows, "total": total,
               "skipped": skipped}
    text = "\n".join([f"removed from {args.build_dir} (tool results under {root}):",
                      *_table(rows, total, "freed")]
                     + [f"skipped (a build holds its lock): {p}" for p in skipped])
    emit(args, payload, text)
    return 0
