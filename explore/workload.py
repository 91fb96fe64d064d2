"""The workload of an exploration: a named list of GEMMs, with LLaMA's decode phase.

``llama-7b`` and ``resnet50`` are :mod:`nybble.sim.workloads`' built-in networks; a path ending
in ``.csv`` is a SCALE-Sim topology (:func:`nybble.sim.workloads.read_topology`).

LLaMA-7B's *prefill* is :func:`nybble.sim.workloads.llama_7b` as it is (all ``seq_len`` prompt
tokens at once).  *Decode* generates one token per sequence with ``seq_len`` tokens already in
the KV cache: the projections and the FFN see ``M = batch`` rows, each head's scores are
``1 x seq_len`` (``K = 128``) and its weighted values ``1 x 128`` (``K = seq_len``), one GEMM per
head and sequence.  It is derived from the prefill layers, so the model's dimensions are
stated once.

Every layer says whether its B operand is a weight matrix (``weight_layer``): LLaMA's
attention scores and values multiply two activations (Q by K, P by V) and so have no weights.
"""

import dataclasses
import hashlib
import json
import os

from nybble.sim.workloads import Layer, get_workload, read_topology, total_macs
from nybble.sw.errors import InputFileError, ParameterError

__all__ = ["Workload", "load_workload", "PHASES", "ACTIVATION_LAYERS"]

PHASES = ("prefill", "decode")

#: LLaMA layers whose B operand is an activation (keys, values), not a weight matrix.
ACTIVATION_LAYERS = frozenset({"attn_scores", "attn_values"})


@dataclasses.dataclass(frozen=True)
class Workload:
    """``name`` (what the user gave), ``phase`` (``prefill``/``decode``; None for files and
    ResNet), ``params`` (seq_len, batch, ...) and ``layers``
    (:class:`nybble.sim.workloads.Layer`, one GEMM each)."""

    name: str
    phase: str | None
    params: dict
    layers: tuple

    @property
    def macs(self):
        return total_macs(self.layers)

    def weight_layer(self, layer):
        """True when ``layer``'s B operand is a weight matrix."""
        return not (self.name == "llama-7b" and layer.name in ACTIVATION_LAYERS)

    def as_dict(self):
        return {"name": self.name, "phase": self.phase, "params": dict(self.params),
                "macs": self.macs,
                "layers": [dataclasses.asdict(layer) for layer in self.layers]}

    def digest(self):
        """SHA-256 of the layers and parameters: the workload's part of every cache key."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


def _decode(prefill, batch):
    # attention: one query row per head and sequence (count already heads * batch) against
    # the seq_len cached keys / values; everything else: one new token per sequence
    return tuple(dataclasses.replace(layer, m=1 if layer.name in ACTIVATION_LAYERS else batch)
                 for layer in prefill)


def load_workload(name, *, phase=None, seq_len=None, batch=None):
    """The :class:`Workload` ``name`` (``llama-7b``, ``resnet50`` or a topology ``.csv``).

    ``phase``: ``prefill`` (default) or ``decode``, LLaMA only; ``seq_len`` (LLaMA, default
    2048), ``batch`` (default 1)."""
    if not isinstance(name, str) or not name:
        raise ParameterError(f"workload must be llama-7b, resnet50 or a topology .csv file, "
                             f"not {name!r}")
    if phase is not None and phase not in PHASES:
        raise ParameterError(f"phase must be one of {', '.join(PHASES)}, not {phase!r}")
    if name.endswith(".csv") or os.path.sep in name:
        if phase is not None or seq_len is not None or batch is not None:
            raise ParameterError("phase, seq_len and batch apply to llama-7b / resnet50, not "
                                 "to a topology file")
        if not os.path.isfile(name):
            raise InputFileError(f"topology file {name!r} does not exist")
        return Workload(name, None, {}, tuple(read_topology(name)))
    params = {}
    if batch is not None:
        params["batch"] = batch
    if name == "llama-7b":
        if seq_len is not None:
            params["seq_len"] = seq_len
        layers = get_workload(name, **params)
        phase = phase or "prefill"
        if phase == "decode":
            layers = _decode(layers, params.get("batch", 1))
        return Workload(name, phase, params, tuple(layers))
    if phase is not None or seq_len is not None:
        raise ParameterError(f"phase and seq_len apply to llama-7b, not to {name!r}")
    return Workload(name, None, params, tuple(get_workload(name, **params)))
