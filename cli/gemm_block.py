"""The operands of ``nybble gemm`` on block-scaled arrays: ``--scheme mxfp4|mxint8|nvfp4|q4_0``,
GGUF inputs.

:mod:`.cmd_gemm` adds the flags (:func:`add_block_args`) and, when :func:`wants_block` says
so (a block scheme, a GGUF input or a block-scaled ``--pe``), takes its operands and PE kind
from :func:`block_operands`; the run and the check are the same as for every PE.

Operands: float ``.npy`` files quantized with the scheme (A along its rows' K, B along its
columns' K), GGUF tensors (``--a-gguf FILE --a-tensor NAME``: Q4_0 or MXFP4, read byte for
byte; for B the stored ``N x K`` weight is transposed, the usual ``x @ W.T``), or random
normal floats of ``--m/--n/--k``.  The scheme follows from the GGUF tensor when not given;
``--pe`` defaults to the scheme's kind.  The RTL accumulators are checked bit for bit against
:func:`nybble.sw.gemm_block_acc`; ``--out`` saves the real result (accumulators times
``2**-acc_frac_bits`` times NVFP4's tensor scales, applied on the host).
"""

import dataclasses

import numpy as np

from nybble.hw.kinds import PE_KINDS
from nybble.sim.gguf_input import gguf_scheme, gguf_tensor_names, load_gguf_tensor
from nybble.sw import get_scheme, quantize
from .common import UsageError, load_npy

__all__ = ["add_block_args", "wants_block", "block_operands", "BLOCK_SCHEME_KINDS"]

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
                        "nybble.hw.spec.default_acc_frac_bits)")


def _is_block_pe(name):
    return name in PE_KINDS and PE_KINDS[name].pe == "block"


def wants_block(args):
    """True when the flags ask for a block-scaled run."""
    return bool(any(getattr(args, f"{f}_{what}", None) for f in "ab" for what in
                    ("gguf", "tensor"))
                or getattr(args, "scheme", None) in BLOCK_SCHEME_KINDS
                or _is_block_pe(getattr(args, "pe", "")))


def _gguf(path, tensor, flag, axis):
    return load_gguf_tensor(path, tensor, axis=axis)


def _scheme(args):
    """The scheme name from --scheme, the GGUF tensors or --pe."""
    found = {}
    for flag in ("a", "b"):
        path, name = getattr(args, f"{flag}_gguf"), getattr(args, f"{flag}_tensor")
        if name and not path:
            raise UsageError(f"--{flag}-tensor needs --{flag}-gguf FILE")
        if path and not name:
            raise UsageError(f"--{flag}-gguf needs --{flag}-tensor NAME (the file's tensors: "
                             + ", ".join(f"{n} ({t})" for n, t in
                                         gguf_tensor_names(path).items()) + ")")
        if path:
            found[flag] = gguf_scheme(path, name)
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
            x = load_npy(path, f"--{flag}")
            if x.ndim != 2:
                raise UsageError(f"--{flag} must be a 2-D array, not shape {x.shape}")
            if getattr(args, "codes", False):
                raise UsageError(f"--codes: a block-scaled array takes values (quantized with "
                                 f"--scheme {scheme}); codes without their block scales "
                                 "cannot run on it")
            x = x.astype(np.float64)    # integers are values too
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


def block_operands(args):
    """``(scheme, config changes, a, b, floats)`` of a block-scaled run: the scheme, the
    ArrayConfig fields it sets (``pe``, ``block_size``, ``acc_frac_bits``), the
    QuantizedTensors and the float inputs they were quantized from (``{"a": ..., "b": ...}``,
    those that were floats)."""
    if args.dataflow != "os":
        raise UsageError("block-scaled arrays are output-stationary: use --dataflow os")
    scheme = _scheme(args)
    pe = _pe(args, scheme)
    kind_block = PE_KINDS[pe].options["block_size"]
    block = args.block_size or kind_block
    a, b, floats = _operands(args, scheme, block)
    changes = dict(pe=pe, block_size=None if block == kind_block else block,
                   acc_frac_bits=args.acc_frac_bits)
    return scheme, changes, a, b, floats
