"""User weights for the accuracy columns: a GGUF file or a directory of ``.npy`` files.

Both give ``{layer name: K x N float64 array}`` (the B operand of the workload's layer, blocks
along K):

* a directory: ``<layer name>.npy`` for any layer of the workload (``q_proj.npy``,
  ``layer1.0.conv1.npy``); an array shaped like the layer's ``N x K`` (PyTorch's
  ``out x in``) is transposed, any other 2-D array is taken as ``K x N``;
* a GGUF file (LLaMA layers only): ``blk.<block>.<tensor>.weight`` with ``q_proj`` ->
  ``attn_q``, ``k_proj`` -> ``attn_k``, ``v_proj`` -> ``attn_v``, ``o_proj`` ->
  ``attn_output``, ``ffn_gate`` / ``ffn_up`` / ``ffn_down`` as named; the tensors the file has
  (Q4_0 / MXFP4, read by :func:`nybble.sim.gguf_input.load_gguf_tensor`) are dequantized.

Layers without a user tensor keep the synthetic weights; the accuracy rows say which
(``source``).  A directory or file with no tensor for any layer is an error.
"""

import os

import numpy as np

from nybble.sim.gguf_input import gguf_tensor_names, load_gguf_tensor
from nybble.sw.errors import InputFileError

__all__ = ["load_weights", "GGUF_LLAMA_TENSORS"]

#: LLaMA layer -> GGUF tensor name (``{block}``: the decoder block)
GGUF_LLAMA_TENSORS = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v",
                      "o_proj": "attn_output", "ffn_gate": "ffn_gate", "ffn_up": "ffn_up",
                      "ffn_down": "ffn_down"}


def _oriented(arr, layer):
    if arr.ndim != 2:
        raise InputFileError(f"weights for {layer.name} must be 2-D, not shape {arr.shape}")
    if arr.shape == (layer.n, layer.k) and arr.shape != (layer.k, layer.n):
        arr = arr.T
    if not np.all(np.isfinite(arr)):
        raise InputFileError(f"weights for {layer.name} hold NaN or Inf")
    return np.asarray(arr, dtype=np.float64)


def _from_dir(path, workload):
    out = {}
    for layer in workload.layers:
        if not workload.weight_layer(layer) or layer.name in out:
            continue
        f = os.path.join(path, f"{layer.name}.npy")
        if os.path.isfile(f):
            try:
                arr = np.load(f, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise InputFileError(f"{f}: not a readable .npy file ({e})") from None
            out[layer.name] = _oriented(arr, layer)
    return out


def _from_gguf(path, workload, block):
    if workload.name != "llama-7b":
        raise InputFileError(f"GGUF weights map onto llama-7b layers, not onto "
                             f"{workload.name!r}; give a directory of <layer>.npy files")
    names = gguf_tensor_names(path)
    out = {}
    for layer in workload.layers:
        tensor = f"blk.{block}.{GGUF_LLAMA_TENSORS.get(layer.name, '')}.weight"
        if layer.name in GGUF_LLAMA_TENSORS and tensor in names and layer.name not in out:
            out[layer.name] = _oriented(load_gguf_tensor(path, tensor, axis=0).dequantize(),
                                        layer)
    return out


def load_weights(path, workload, *, block=0):
    """``{layer name: K x N array}`` from ``path`` (module docstring) for ``workload``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        out = _from_dir(path, workload)
        want = "<layer>.npy files for layers " + ", ".join(
            dict.fromkeys(l.name for l in workload.layers if workload.weight_layer(l)))
    elif os.path.isfile(path) and path.endswith(".gguf"):
        out = _from_gguf(path, workload, block)
        want = "tensors " + ", ".join(f"blk.{block}.{t}.weight"
                                      for t in GGUF_LLAMA_TENSORS.values())
    else:
        raise InputFileError(f"weights {path!r} must be a .gguf file or a directory of "
                             f".npy files")
    if not out:
        raise InputFileError(f"weights {path!r} hold none of the workload's weights ({want})")
    return out
