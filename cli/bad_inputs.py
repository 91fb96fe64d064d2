"""A catalogue of bad inputs, by the class of mistake a user makes, and a runner that says how
each is met: ``clean`` (one ``nybble <cmd>: error: ...`` line on stderr, exit status 1 or 2,
and with ``--json`` one parseable JSON document on stdout) or not (a traceback, a silent
result, a non-JSON stdout).  ``nybble bench errors`` runs it; ``python cli/bad_inputs.py``
runs it against whichever ``nybble`` is importable (so an older checkout can be measured the
same way).

A case is ``(class, what, argv, setup)``; ``{d}`` in ``argv`` is a scratch directory that
``setup`` (a name from :data:`SETUPS`) fills first.  ``silent`` cases must not exit 0 without
saying anything on stderr.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

__all__ = ["CASES", "CLASSES", "run_cases"]

CLASSES = {
    "json": "results a script cannot trust (stdout not one JSON document)",
    "paths": "output paths that cannot be written, missing tools",
    "gguf": "GGUF mistakes",
    "silent": "silent wrong results (narrow accumulators, extreme magnitudes, output names)",
    "loader": "misleading messages about input files and numbers",
    "size": "work too big to finish",
    "values": "integer inputs as values",
}


def _arrays(d):
    rng = np.random.default_rng(0)
    np.save(f"{d}/a.npy", rng.standard_normal((4, 32)))
    np.save(f"{d}/b.npy", rng.standard_normal((32, 3)))
    np.save(f"{d}/ai.npy", rng.integers(-8, 8, (4, 8)))
    np.save(f"{d}/bi.npy", rng.integers(-8, 8, (8, 3)))
    np.save(f"{d}/big.npy", np.array([[1e300, 1.0] * 16]))
    np.save(f"{d}/bigT.npy", np.array([[1e300, 1.0] * 16]).T)
    np.save(f"{d}/ai9.npy", np.full((4, 8), 9))
    np.save(f"{d}/tiny.npy", np.array([[1e-50, 1e-51] * 16]))
    np.save(f"{d}/obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(f"{d}/two.npz", a=np.ones(3), b=np.ones(3))
    with open(f"{d}/text.npy", "w") as f:
        f.write("1 2 3\n")
    with open(f"{d}/file", "w") as f:
        f.write("x")
    os.makedirs(f"{d}/dir", exist_ok=True)


def _gguf(d):
    _arrays(d)
    import gguf
    from gguf.quants import quantize as gq
    T = gguf.GGMLQuantizationType
    wr = gguf.GGUFWriter(f"{d}/w.gguf", "llama")
    wr.add_tensor("w", gq(np.ones((3, 32), np.float32), T.Q4_0), raw_dtype=T.Q4_0)
    wr.add_tensor("norm", np.ones(32, np.float32))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    with open(f"{d}/w.gguf", "rb") as f, open(f"{d}/short.gguf", "wb") as g:
        g.write(f.read()[:40])


SETUPS = {"arrays": _arrays, "gguf": _gguf}

_G = ["gemm", "--array", "2x2", "--sim", "amaranth"]

CASES = [
    # -- json: every failing path with --json still prints one document
    ("json", "gemm unknown PE, --json", _G + ["--pe", "int3", "--json"], None),
    ("json", "gemm bad --array, --json", ["gemm", "--array", "2by2", "--json"], None),
    ("json", "gemm non-integer --m, --json", _G + ["--m", "x", "--json"], None),
    ("json", "quantize 1e300, --json", ["quantize", "{d}/big.npy", "--scheme", "int4_tensor",
                                        "--json"], "arrays"),
    ("json", "bench golden --repeats 0, --json", ["bench", "golden", "--repeats", "0",
                                                  "--json"], None),
    ("json", "cycles bad topology, --json", ["cycles", "--topology", "{d}/file", "--json"],
     "arrays"),
    ("json", "formats unknown, --json", ["formats", "fp5", "--json"], None),
    ("json", "stability bad family, --json", ["stability", "--family", "x", "--json"], None),
    ("json", "cost --jobs 0, --json", ["cost", "--jobs", "0", "--json"], None),
    ("json", "fpga bad board, --json", ["fpga", "--board", "x", "--pe", "int4", "--json"],
     None),
    # -- paths and tools
    ("paths", "gemm --out is a directory", _G + ["--out", "{d}/dir"], "arrays"),
    ("paths", "gemm --out under a file", _G + ["--out", "{d}/file/c.npy"], "arrays"),
    ("paths", "gemm --out /dev/full", _G + ["--m", "2", "--n", "2", "--k", "2", "--out",
                                            "/dev/full"], None),
    ("paths", "gemm --waves under a file", _G + ["--waves", "{d}/file/w.vcd"], "arrays"),
    ("paths", "gemm --build-dir is a file", _G + ["--build-dir", "{d}/file"], "arrays"),
    ("paths", "quantize -o is a directory", ["quantize", "{d}/a.npy", "--scheme", "mxfp4",
                                             "-o", "{d}/dir"], "arrays"),
    ("paths", "quantize -o under a file", ["quantize", "{d}/a.npy", "--scheme", "mxfp4", "-o",
                                           "{d}/file/q.npz"], "arrays"),
    ("paths", "stability --plot under a file", ["stability", "--family", "gaussian", "--n",
                                                "8", "--depth", "1", "--schemes", "mxfp4",
                                                "--plot", "{d}/file/p.png"], "arrays"),
    ("paths", "cost --out is a file", ["cost", "--out", "{d}/file"], "arrays"),
    ("paths", "verilog -o is a directory", ["verilog", "--pe", "int4", "-o", "{d}/dir"],
     "arrays"),
    ("paths", "cache info --build-dir is a file", ["cache", "info", "--build-dir",
                                                   "{d}/file"], "arrays"),
    # -- GGUF
    ("gguf", "missing GGUF file", _G + ["--b-gguf", "{d}/none.gguf", "--b-tensor", "w"],
     "gguf"),
    ("gguf", "wrong tensor name", _G + ["--b-gguf", "{d}/w.gguf", "--b-tensor", "nope"],
     "gguf"),
    ("gguf", "F32 tensor", _G + ["--b-gguf", "{d}/w.gguf", "--b-tensor", "norm"], "gguf"),
    ("gguf", "--b-gguf without --b-tensor", _G + ["--b-gguf", "{d}/w.gguf"], "gguf"),
    ("gguf", "--a-tensor without --a-gguf", _G + ["--a-tensor", "w"], "gguf"),
    ("gguf", "truncated GGUF", _G + ["--b-gguf", "{d}/short.gguf", "--b-tensor", "w"], "gguf"),
    ("gguf", "a text file as GGUF", _G + ["--b-gguf", "{d}/text.npy", "--b-tensor", "w"],
     "gguf"),
    # -- silent wrong results
    ("silent", "--acc-bits 8 with K = 64", _G + ["--m", "2", "--n", "2", "--k", "64",
                                                 "--acc-bits", "8"], None),
    ("silent", "quantize 1e300", ["quantize", "{d}/big.npy", "--scheme", "int4_tensor"],
     "arrays"),
    ("silent", "quantize 1e-50", ["quantize", "{d}/tiny.npy", "--scheme", "mxfp4"], "arrays"),
    ("silent", "quantize 1e300 with q4_0", ["quantize", "{d}/big.npy", "--scheme", "q4_0"],
     "arrays"),
    ("silent", "gemm 1e300 with --scheme", _G + ["--a", "{d}/big.npy", "--b", "{d}/bigT.npy",
                                                 "--scheme", "int4_tensor"], "arrays"),
    # -- loader messages
    ("loader", "missing .npy", _G + ["--a", "{d}/none.npy", "--b", "{d}/b.npy", "--scheme",
                                     "int4_tensor"], "arrays"),
    ("loader", "text file named .npy", _G + ["--a", "{d}/text.npy", "--b", "{d}/b.npy",
                                             "--scheme", "int4_tensor"], "arrays"),
    ("loader", "object array .npy", _G + ["--a", "{d}/obj.npy", "--b", "{d}/b.npy",
                                          "--scheme", "int4_tensor"], "arrays"),
    ("loader", ".npz given as --a", _G + ["--a", "{d}/two.npz", "--b", "{d}/b.npy",
                                          "--scheme", "int4_tensor"], "arrays"),
    ("loader", "a directory as --a", _G + ["--a", "{d}/dir", "--b", "{d}/b.npy", "--scheme",
                                           "int4_tensor"], "arrays"),
    ("loader", "negative --m", _G + ["--m", "-3"], None),
    ("loader", "negative --seed", _G + ["--seed", "-1"], None),
    ("loader", "zero --depth", _G + ["--depth", "0"], None),
    ("loader", "quantize a .npz", ["quantize", "{d}/two.npz", "--scheme", "mxfp4"], "arrays"),
    ("loader", "format-search a text file", ["format-search", "{d}/text.npy"], "arrays"),
    ("loader", "K mismatch", _G + ["--a", "{d}/a.npy", "--b", "{d}/a.npy", "--scheme",
                                   "int4_tensor"], "arrays"),
    ("loader", "unknown scheme", _G + ["--a", "{d}/a.npy", "--b", "{d}/b.npy", "--scheme",
                                       "int5"], "arrays"),
    ("loader", "unknown rounding", ["quantize", "{d}/a.npy", "--scheme", "mxfp4",
                                    "--rounding", "up"], "arrays"),
    # -- sizes
    ("size", "K = 300,000,000 on 4x4", ["gemm", "--array", "4x4", "--m", "4", "--n", "4",
                                        "--k", "300000000"], None),
    ("size", "K = 20,000,000 on 2x2", ["gemm", "--array", "2x2", "--m", "2", "--n", "2",
                                       "--k", "20000000"], None),
    ("size", "a 300x300 array", ["gemm", "--array", "300x300"], None),
    # -- values
    ("values", "int4 values as --a/--b", _G + ["--a", "{d}/ai.npy", "--b", "{d}/bi.npy"],
     "arrays"),
    ("values", "a value int4 cannot hold", _G + ["--a", "{d}/ai9.npy", "--b", "{d}/bi.npy"],
     "arrays"),
]
#: cases that are right when they succeed (exit 0)
SUCCEED = {"int4 values as --a/--b"}


#: How long one case may take before it counts as "looks hung".
TIMEOUT = 120
_MAIN = "import sys; from nybble.__main__ import main; sys.exit(main(sys.argv[1:]))"


def _run_one(argv, cwd):
    """One case in its own process, as a user runs it: ``(exit status, stdout, stderr,
    what went wrong outside our error path or None)``."""
    try:
        p = subprocess.run([sys.executable, "-c", _MAIN, *argv], cwd=cwd, capture_output=True,
                           text=True, timeout=TIMEOUT, env=dict(os.environ, NYBBLE_DEBUG=""))
    except subprocess.TimeoutExpired:
        return None, "", "", f"no answer within {TIMEOUT} s"
    if p.returncode < 0:
        return p.returncode, p.stdout, p.stderr, f"killed by signal {-p.returncode}"
    if "Traceback (most recent call last)" in p.stderr:
        return p.returncode, p.stdout, p.stderr, \
            "traceback: " + p.stderr.strip().splitlines()[-1]
    return p.returncode, p.stdout, p.stderr, None


def verdict(name, argv, code, out, err, escaped):
    """``(ok, reason)`` for one case's outcome (module docstring)."""
    if escaped:
        return False, escaped
    if name in SUCCEED:
        return code == 0, f"exit {code}"
    if code == 0:
        if "warning" in err:
            return True, "warned"
        return False, "exit 0 without an error"
    if "argument COMMAND: invalid choice" in err:
        return False, "no such command"
    lines = [line for line in err.splitlines() if line.startswith("nybble")]
    if not any(": error: " in line for line in lines) or "Traceback" in err:
        return False, "no one-line error"
    if "--json" in argv:
        try:
            json.loads(out)
        except ValueError:
            return False, "stdout is not one JSON document"
    return True, lines[-1][:100]


def run_cases(cases=CASES, progress=None):
    """Run every case (each in its own process, in a scratch directory that it may write to);
    returns ``[{class, what, ok, reason}]``."""
    rows = []
    for cls, what, argv, setup in cases:
        with tempfile.TemporaryDirectory(prefix="nybble-bad-") as d:
            if setup:
                SETUPS[setup](d)
            args = [a.format(d=d) for a in argv]
            ok, reason = verdict(what, args, *_run_one(args, d))
        rows.append({"class": cls, "what": what, "ok": ok, "reason": reason})
        if progress:
            progress(f"{'ok  ' if ok else 'FAIL'} {cls:<7} {what}: {reason}")
    return rows


def summary(rows):
    """``{class: [clean, tried]}`` and the totals."""
    out = {c: [0, 0] for c in CLASSES}
    for r in rows:
        out[r["class"]][1] += 1
        out[r["class"]][0] += int(r["ok"])
    return out


if __name__ == "__main__":
    res = run_cases(progress=lambda line: print(line, file=sys.stderr))
    s = summary(res)
    print(json.dumps({"classes": s, "clean": sum(v[0] for v in s.values()),
                      "tried": len(res)}, indent=1))
