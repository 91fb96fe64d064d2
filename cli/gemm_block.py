"""``nybble gemm`` on block-scaled arrays: ``--scheme mxfp4|mxint8|nvfp4|q4_0``, GGUF inputs.

Hooked into :mod:`.cmd_gemm`: ``register`` calls :func:`add_block_args` on the ``gemm``
parser, and ``run`` hands over to :func:`run_block` when :func:`wants_block` says so (a
block scheme, a GGUF input or a block-scaled ``--pe``).

Operands: float ``.npy`` files quantized with the scheme (A along its rows' K, B along its
columns' K), GGUF tensors (``--a-gguf FILE --a-tensor NAME``: Q4_0 or MXFP4, read byte for
byte; for B the stored ``N x K`` weight is transposed, the usual ``x @ W.T``), or random
normal floats of ``--m/--n/--k``.  The scheme follows from the GGUF tensor when not given;
``--pe`` defaults to the scheme's kind.  The RTL accumulators are checked bit for bit against
:func:`nybble.sw.gemm_block_acc`; ``--out`` saves the real result (accumulators times
``2**-acc_frac_bits`` times NVFP4's tensor scales, applied on the host).
"""

import dataclasses
import os

import numpy as np

from .__main__ import emit, UsageError

__all__ = ["add_block_args", "wants_block", "run_block", "BLOCK_SCHEME_KINDS"]

#: block scheme -> PE kind that runs it
BLOCK_SCHEME_KINDS = {"mxfp4": "mxfp4", "mxint8": "mxint8", "nvfp4": "nvfp4", "q4_0": "q4_0"}


def add_block_args(p):
    """The block-scaled flags of ``nybble gemm``."""
    g = p.add_argument_group("block-scaled arrays (--scheme mxfp4, mxint8, nvfp4, q4_0)")
    g.add_argument("--a-gguf", metavar="FILE", help="A from a GGUF file (Q4_0 / MXFP4 tensor)")
    g.add_argument("--a-tensor", metavar="NAME", help="tensor name in --a-gguf")
    g.add_argument("--b-gguf", metavar="FILE",
                   help="B from a GGUF file: the stored N x K weight, transposed")
    g.add_argument("--b-tensor", metavar="NAME", help="tensor name in --b-gguf")
    g.add_argument("--block-size", type=int, choices=(16, 32),
                   help="elements per block scale (default: the scheme's, 32 MX / 16 NVFP4)")
    g.add_argument("--acc-frac-bits", type=int,
                   help="fraction bits of the cross-block accumulator (default: see "
                        "nybble.hw.block_pe.default_acc_frac_bits)")


def _is_block_pe(name):
    from nybble.hw.pe import PE_KINDS
    return name in PE_KINDS and PE_KINDS[name].pe == "block"


def wants_block(args):
    """True when the flags ask for a block-scaled run."""
    return bool(getattr(args, "a_gguf", None) or getattr(args, "b_gguf", None)
                or getattr(args, "scheme", None) in BLOCK_SCHEME_KINDS
                or _is_block_pe(getattr(args, "pe", "")))


def _gguf(path, tensor, flag, axis):
    from nybble.sim.gguf_input import load_gguf_tensor
    if not tensor:
        raise UsageError(f"--{flag}-gguf needs --{flag}-tensor NAME")
    try:
        return load_gguf_tensor(path, tensor, axis=axis)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None


def _scheme(args):
    """The scheme name from --scheme, the GGUF tensors or --pe."""
    from nybble.sim.gguf_input import gguf_tensor_names, GGUF_SCHEMES
    found = {}
    for flag in ("a", "b"):
        path, name = getattr(args, f"{flag}_gguf"), getattr(args, f"{flag}_tensor")
        if path and name:
            names = gguf_tensor_names(path) if os.path.exists(path) else {}
            if name in names and names[name] in GGUF_SCHEMES:
                found[flag] = GGUF_SCHEMES[names[name]]
    if len(set(found.values())) > 1:
        raise UsageError(f"the GGUF tensors have different schemes ({found['a']} for A, "
                         f"{found['b']} for B); both operands need one")
    scheme = args.scheme
    if scheme is None:
        scheme = next(iter(found.values()), None)
    if scheme is None and _is_block_pe(args.pe):
        scheme = next(s for s, k in BLOCK_SCHEME_KINDS.items() if k == args.pe)
    if scheme not in BLOCK_SCHEME_KINDS:
        raise UsageError(f"--scheme must be one of {', '.join(BLOCK_SCHEME_KINDS)} for a "
                         f"block-scaled run, not {scheme!r}")
    for flag, s in found.items():
        if s != scheme:
            raise UsageError(f"--{flag}-tensor is {s} but --scheme is {scheme}")
    return scheme


def _pe(args, scheme):
    kind = BLOCK_SCHEME_KINDS[scheme]
    if _is_block_pe(args.pe):
        if args.pe != kind:
            raise UsageError(f"--scheme {scheme} runs on --pe {kind}, not {args.pe}")
        return kind
    if args.pe != "int4":  # int4 is the flag's default: replaced by the scheme's kind
        raise UsageError(f"--scheme {scheme} needs a block-scaled PE (--pe {kind}), not "
                         f"{args.pe}")
    return kind


def _operands(args, scheme, block):
    from nybble.sw import quantize, get_scheme
    from .cmd_quantize import load_npy
    sch = get_scheme(scheme)
    if block != sch.block:
        if scheme == "q4_0":
            raise UsageError("q4_0 blocks are 32 elements (llama.cpp's layout); "
                             f"--block-size {block} is not possible")
        sch = dataclasses.replace(sch, block=block)
    rng = np.random.default_rng(args.seed)
    floats = {}

    def get(flag, axis, shape):
        path = getattr(args, flag)
        if getattr(args, f"{flag}_gguf"):
            if path:
                raise UsageError(f"give --{flag} or --{flag}-gguf, not both")
            qt = _gguf(getattr(args, f"{flag}_gguf"), getattr(args, f"{flag}_tensor"), flag,
                       axis)
            if qt.block != block:
                raise UsageError(f"--{flag}-tensor has blocks of {qt.block}, not "
                                 f"--block-size {block}")
            return qt
        if path:
            x = load_npy(path, flag)
            if x.ndim != 2:
                raise UsageError(f"--{flag} must be a 2-D array, not shape {x.shape}")
            if not np.issubdtype(x.dtype, np.floating):
                raise UsageError(f"--{flag} must hold floats for --scheme {scheme} (codes "
                                 "without their block scales cannot run on a block-scaled "
                                 "array)")
        else:
            x = rng.standard_normal(shape)
        floats[flag] = x
        try:
            return quantize(x, sch, axis=axis)
        except ValueError as e:
            raise UsageError(f"--{flag}: {e}") from None

    a = get("a", -1, (args.m, args.k))
    b = get("b", 0, (a.shape[1], args.n))
    if a.shape[1] != b.shape[0]:
        raise UsageError(f"K mismatch: A is {a.shape[0]} x {a.shape[1]}, B is "
                         f"{b.shape[0]} x {b.shape[1]}")
    return a, b, floats


def _config(args, pe, block, need=None):
    from nybble.hw.config import ArrayConfig
    from nybble.hw.pe import PE_KINDS
    rows, cols = ArrayConfig.parse_array(args.array)
    depth = args.depth or max(4096, *(need or (0,)))
    kind_block = PE_KINDS[pe].options["block_size"]
    return ArrayConfig(rows=rows, cols=cols, pe=pe, acc_bits=args.acc_bits,
                       overflow=args.overflow, dataflow=args.dataflow, a_depth=depth,
                       b_depth=depth, c_depth=depth,
                       block_size=None if block == kind_block else block,
                       acc_frac_bits=args.acc_frac_bits)


def run_block(args):
    """``nybble gemm`` for block-scaled schemes (module docstring)."""
    from nybble.hw.pe import PE_KINDS
    from nybble.sim.block_run import run_block_gemm, block_golden_for, block_result_values
    from nybble.sim.block_schedule import block_schedule_for
    if args.waves and not str(args.waves).endswith((".vcd", ".fst")):
        raise UsageError(f"--waves must name a .vcd or .fst file, not {args.waves!r}")
    if args.dataflow != "os":
        raise UsageError("block-scaled arrays are output-stationary: use --dataflow os")
    sim = args.sim
    if args.cocotb:
        sim = "icarus" if args.sim == "icarus" else "cocotb"
    elif args.sim == "icarus":
        raise UsageError("--sim icarus runs through cocotb: add --cocotb")
    scheme = _scheme(args)
    pe = _pe(args, scheme)
    block = args.block_size or PE_KINDS[pe].options["block_size"]
    a, b, floats = _operands(args, scheme, block)
    m, k = a.shape
    n = b.shape[1]
    s = block_schedule_for(_config(args, pe, block), m, n, k)
    cfg = _config(args, pe, block, need=(s.a_writes, s.b_writes, s.tiles * s.rows))
    run_ = run_block_gemm(cfg, a, b, sim=sim, waves=args.waves, build_dir=args.build_dir)
    gold = block_golden_for(cfg, a, b)
    mism = int(np.sum(np.asarray(run_.result, dtype=object) != np.asarray(gold, dtype=object)))
    value = block_result_values(cfg, run_.result, a, b)
    exact = a.dequantize() @ b.dequantize()
    sched = run_.schedule
    opts = cfg.pe_options
    out = {
        "array": f"{cfg.rows}x{cfg.cols}", "pe": cfg.pe, "dataflow": cfg.dataflow,
        "scheme": scheme, "block_size": opts["block_size"], "acc_bits": cfg.acc_bits,
        "acc_frac_bits": opts["acc_frac_bits"], "overflow": cfg.overflow,
        "m": m, "n": n, "k": k, "simulator": sim,
        "cycles": run_.cycles, "model_cycles": sched.cycles,
        "ideal_cycles": m * n * k / (cfg.rows * cfg.cols * sched.lanes),
        "utilization": m * n * k / (cfg.rows * cfg.cols * sched.lanes) / run_.cycles,
        "mismatches": mism, "sim_seconds": run_.sim_seconds,
        "build_seconds": run_.build_seconds, "cached_build": run_.cached_build,
        "macs_per_second": m * n * k / run_.sim_seconds if run_.sim_seconds > 0 else None,
        "max_abs_error_vs_dequantized": float(np.max(np.abs(value - exact))) if value.size
        else 0.0,
        "inputs": {f: ("gguf:" + getattr(args, f"{f}_tensor")) if getattr(args, f"{f}_gguf")
                   else (getattr(args, f) or "random") for f in ("a", "b")},
    }
    if "a" in floats and "b" in floats:
        out["max_abs_error_vs_float"] = float(np.max(np.abs(value - floats["a"] @ floats["b"])))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)) or ".", exist_ok=True)
        np.save(args.out, value)
        out["out"] = args.out
    if args.waves:
        out["waves"] = args.waves
    text = (f"{m}x{k} @ {k}x{n} {scheme} (blocks of {opts['block_size']}) on a {out['array']} "
            f"{cfg.pe} array ({sim}); accumulator {cfg.acc_bits} bits, "
            f"{opts['acc_frac_bits']} fraction bits, {cfg.overflow}\n"
            f"  cycles {out['cycles']} (ideal {out['ideal_cycles']:.0f}, utilization "
            f"{out['utilization']:.1%}; cycle model {sched.cycles})\n"
            f"  mismatches vs nybble.sw golden (gemm_block_acc): {mism} of {m * n}\n"
            f"  max |result - dequantized A @ B| = {out['max_abs_error_vs_dequantized']:.3g}"
            + (f", max |result - float A @ B| = {out['max_abs_error_vs_float']:.3g}"
               if "max_abs_error_vs_float" in out else "") + "\n"
            f"  simulated {out['macs_per_second'] or 0:.3g} MAC/s ({out['sim_seconds']:.3f} s), "
            f"build {out['build_seconds']:.1f} s{' (cached)' if run_.cached_build else ''}")
    emit(args, out, text)
    return 1 if mism else 0
