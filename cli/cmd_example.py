"""``nybble example NAME|all [--out DIR]``: write the small input files the README's commands
use, so that every command there runs as written on a fresh machine.

=====================  =========================================================  ===========
file                   what                                                        used by
=====================  =========================================================  ===========
``A.npy``, ``B.npy``   64 x 64 and 64 x 32 float64 matrices (normal)              ``gemm``
``A_int4.npy``,        int4 values -8..7 (integers are values)                     ``gemm``
``B_int4.npy``
``X.npy``              a 4 x 256 float32 activation tensor                         ``quantize``
``W.npy``              a 64 x 128 heavy-tailed (Student t) weight                  ``format-search``
``chain_0.npy``,       a two-matrix chain 64 -> 48 -> 32                           ``stability``
``chain_1.npy``
``topology.csv``       a SCALE-Sim GEMM topology (Layer, M, N, K)                  ``cycles``
``scalesim.cfg``       scale-sim-v2's example config (32 x 32, os)               ``cycles``
``tiny.gguf``          one Q4_0 and one MXFP4 weight tensor (64 x 64)              ``gemm``
=====================  =========================================================  ===========

Every file is seeded (the same bytes on every machine).
"""

import os
import sys

import numpy as np

from .common import UsageError, check_output_dir, emit

#: scale-sim-v2's example architecture (configs/scale.cfg): 32 x 32, output-stationary.
SCALESIM_CFG = """\
[general]
run_name = scale_example_run_32x32_os

[architecture_presets]
ArrayHeight:    32
ArrayWidth:     32
IfmapSramSzkB:   64
FilterSramSzkB:  64
OfmapSramSzkB:   64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 64
Dataflow : os
MemoryBanks:   1

[sparsity]
SparsitySupport : false

[run_presets]
InterfaceBandwidth: USER
"""

TOPOLOGY_CSV = """\
Layer, M, N, K,
qkv_proj, 128, 768, 256,
attn_out, 128, 256, 256,
mlp_up, 128, 1024, 256,
mlp_down, 128, 256, 1024,
"""


def _rng(name):
    return np.random.default_rng(sum(map(ord, name)))


def _gguf(path):
    import gguf
    from gguf.quants import quantize as gq
    T = gguf.GGMLQuantizationType
    wr = gguf.GGUFWriter(path, "llama")
    rng = _rng("gguf")
    for name, kind in (("blk.0.attn_q.weight", T.Q4_0), ("blk.0.ffn_up.weight", T.MXFP4)):
        w = rng.standard_normal((64, 64)).astype(np.float32)
        wr.add_tensor(name, gq(w, kind), raw_dtype=kind)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def _npy(value):
    return lambda path: np.save(path, value())


EXAMPLES = {
    "A.npy": _npy(lambda: _rng("A").standard_normal((64, 64))),
    "B.npy": _npy(lambda: _rng("B").standard_normal((64, 32))),
    "A_int4.npy": _npy(lambda: _rng("Ai").integers(-8, 8, (64, 64))),
    "B_int4.npy": _npy(lambda: _rng("Bi").integers(-8, 8, (64, 32))),
    "X.npy": _npy(lambda: _rng("X").standard_normal((4, 256)).astype(np.float32)),
    "W.npy": _npy(lambda: (_rng("W").standard_t(4, (64, 128)) * 0.02).astype(np.float32)),
    "chain_0.npy": _npy(lambda: _rng("c0").standard_normal((48, 64)) / 8),
    "chain_1.npy": _npy(lambda: _rng("c1").standard_normal((32, 48)) / 7),
    "topology.csv": lambda path: open(path, "w").write(TOPOLOGY_CSV),
    "scalesim.cfg": lambda path: open(path, "w").write(SCALESIM_CFG),
    "tiny.gguf": _gguf,
}


def register(sub):
    p = sub.add_parser("example", help="write the README's example input files")
    p.add_argument("names", nargs="*", default=["all"],
                   help=f"files to write: {', '.join(EXAMPLES)} or all (default all)")
    p.add_argument("--out", default="examples", metavar="DIR",
                   help="directory to write them to (default examples/)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def run(args):
    names = list(EXAMPLES) if "all" in args.names else args.names
    for n in names:
        if n not in EXAMPLES:
            raise UsageError(f"example must be one of {', '.join(EXAMPLES)} or all, not {n!r}")
    check_output_dir("--out", args.out)
    os.makedirs(args.out, exist_ok=True)
    written = []
    for n in names:
        path = os.path.join(args.out, n)
        EXAMPLES[n](path)
        written.append({"name": n, "path": path, "bytes": os.path.getsize(path)})
        print(f"wrote {path}", file=sys.stderr)
    emit(args, written, "\n".join(f"{w['path']} ({w['bytes']} bytes)" for w in written))
