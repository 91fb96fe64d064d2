"""Real quantized weights from GGUF files (llama.cpp's format) as array operands.

:func:`load_gguf_tensor` reads one tensor with the ``gguf`` package's :class:`GGUFReader` and
turns its blocks, byte for byte, into a :class:`nybble.sw.QuantizedTensor`:

=========  ==================  ==========================================================
GGML type  nybble scheme       runs on PE kind
=========  ==================  ==========================================================
Q4_0       ``q4_0``            ``q4_0`` (int4 elements ``q - 8``, fp16 ``d`` per 32)
MXFP4      ``mxfp4``           ``mxfp4`` (fp4 e2m1 elements, E8M0 scale per 32)
=========  ==================  ==========================================================

Shapes: GGUF lists dimensions innermost first (``ne[0]`` = the row length, along which the
blocks run); Nybble uses numpy order, so a weight stored as ``ne = (K, N)`` is the ``N x K``
array ``W`` with blocks along its last axis.  ``axis=-1`` returns ``W`` (an A operand, M x K);
``axis=0`` returns ``W.T`` (K x N, blocked along axis 0: a B operand, the usual ``x @ W.T``).
"""

import os

import numpy as np
from gguf import GGUFReader

from nybble.sw import from_bytes
from nybble.sw.errors import InputFileError, ParameterError

__all__ = ["load_gguf_tensor", "gguf_tensor_names", "gguf_scheme", "GGUF_SCHEMES"]

#: GGML quantization type name -> nybble scheme.
GGUF_SCHEMES = {"Q4_0": "q4_0", "MXFP4": "mxfp4"}


def _reader(path):
    if not os.path.exists(path):
        raise InputFileError(f"GGUF file {str(path)!r} does not exist")
    if os.path.isdir(path):
        raise ParameterError(f"GGUF file {str(path)!r} is a directory")
    try:
        return GGUFReader(path)
    except Exception as e:  # the gguf package raises ValueError, KeyError, struct errors...
        raise ParameterError(f"GGUF file {str(path)!r} is truncated or not a GGUF file "
                             f"({type(e).__name__}: {e})") from None


def gguf_tensor_names(path):
    """``{name: GGML type name}`` of every tensor in the GGUF file ``path``."""
    return {t.name: t.tensor_type.name for t in _reader(path).tensors}


def _tensor(reader, path, name):
    """Tensor ``name`` of a supported type, or an error that lists the file's tensors."""
    tensors = {t.name: t for t in reader.tensors}
    if name not in tensors:
        avail = ", ".join(f"{n} ({t.tensor_type.name})" for n, t in tensors.items()) or "none"
        raise ParameterError(f"GGUF file {str(path)!r} has no tensor {name!r}; its tensors "
                             f"are: {avail}")
    t = tensors[name]
    if t.tensor_type.name not in GGUF_SCHEMES:
        raise ParameterError(f"tensor {name!r} of {str(path)!r} is {t.tensor_type.name}; "
                             f"nybble runs {' and '.join(GGUF_SCHEMES)} tensors on the "
                             "block-scaled arrays")
    return t


def gguf_scheme(path, name):
    """The nybble scheme of tensor ``name`` in the GGUF file ``path`` (checked as
    :func:`load_gguf_tensor` checks it)."""
    return GGUF_SCHEMES[_tensor(_reader(path), path, name).tensor_type.name]


def load_gguf_tensor(path, name, *, axis=-1):
    """Tensor ``name`` of the GGUF file ``path`` (Q4_0 or MXFP4) as a QuantizedTensor.

    ``axis=-1``: the stored ``rows x ne[0]`` array, blocks along the last axis (an A
    operand); ``axis=0``: its transpose, blocks along axis 0 (a B operand).  A 1-D tensor is
    one row.  Raises ``ValueError`` naming the available tensors when ``name`` is missing,
    and the supported types when the tensor has another type.
    """
    if axis not in (-1, 0, 1):
        raise ParameterError(f"axis must be -1 (as stored) or 0 (transposed), not {axis!r}")
    t = _tensor(_reader(path), path, name)
    ttype = t.tensor_type.name
    dims = [int(d) for d in t.shape]       # ne[0] first
    if len(dims) > 2 and any(d != 1 for d in dims[2:]):
        raise ParameterError(f"tensor {name!r} has shape {tuple(reversed(dims))} (numpy order); "
                         "a GEMM operand must be 2-D")
    k = dims[0]
    rows = dims[1] if len(dims) > 1 else 1
    try:
        data = np.ascontiguousarray(t.data).view(np.uint8).tobytes()
    except Exception as e:  # a tensor whose data runs past the end of the file
        raise ParameterError(f"tensor {name!r} of {str(path)!r} is truncated ({e})") from None
    scheme = GGUF_SCHEMES[ttype]
    if axis == -1 or axis == 1:
        return from_bytes(data, scheme, (rows, k), axis=-1)
    return from_bytes(data, scheme, (k, rows), axis=0)
