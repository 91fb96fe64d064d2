r"""The error a design point's number format causes on a workload: SQNR and cosine per layer,
and the stability analyzer's predicted end-to-end cosine.

Which quantizer a PE implies (:func:`numerics_of`)
-------------------------------------------------
A plain MAC / dot-product array sums whole K-long products in one accumulator, so the only
scales it can apply exactly are one per row of A and one per column of B, after the sum:
activations are quantized per token (a float32 scale per row of A, along K) to the PE's
activation format and weights per output channel (per column of B, along K) to its weight
format; the scale maps the row's max magnitude to the format's largest symmetric value
(:func:`nybble.sw.quantize` with a per-channel :class:`~nybble.sw.quantize.Scheme`).
Block-scaled PEs (``mxfp4``, ``nvfp4``, ``mxint8``, ``q4_0``) apply their own scheme, blocks
along K, to both operands.  The bit-serial PE: int8 activations, its first weight data type
(int4) per channel.  The L-Mul kinds approximate their products, which no quantizer
describes: their accuracy columns say "missing".

Operands (:func:`layer_operands`)
---------------------------------
With no user weights, built-in LLM-like synthetic data, seeded by the layer's name and shape:
weights ``W[k, n] = 0.02 * t_5 * g_n`` (Student-t with 5 degrees of freedom: heavy tails;
1 % of output channels ``n`` get ``g_n = 4``, the rest 1) and activations
``X[m, k] = N(0, 1) * h_k`` with 1 % of feature channels ``k`` at ``h_k = 20`` (the outlier
features of LLM.int8(), Dettmers et al. 2022); a layer whose B is an activation (attention)
draws B like X.  With user weights (``weights``: ``{layer name: K x N array}``) the layer's B
is that array.  To keep this cheap every layer is measured on at most
:data:`SAMPLE_TOKENS` rows of A and :data:`SAMPLE_CHANNELS` columns of B, K in full (so
blocks and per-channel scales see the whole reduction).

Per layer: ``C = X @ W`` in float64 and ``Cq = Q(X) @ Q(W)`` (dequantized operands in float64,
which equals :func:`nybble.sw.gemm` to rounding); ``sqnr_db = 10 log10(|C|^2 / |C - Cq|^2)``,
``cosine`` = the mean over rows of cos(C_m, Cq_m).

End to end (:func:`predicted_cosine`): :func:`nybble.analysis.stability.predict_chain` on a
chain of one ``W x W`` matrix per weight layer in workload order (``W`` =
:data:`CHAIN_WIDTH`, or the smallest user tensor side): the leading block of each layer's
weights, transposed to ``out x in``.  Activations are quantized in the chain too when the PE
uses one scheme for both operands; when they differ (``int8_e3m0``, ``lut_nf4``) the analyzer
models the weights only and ``predicted_scope`` says so.
"""

import functools
import hashlib
import zlib

import numpy as np

from nybble.analysis.stability import predict_chain
from nybble.hw.kinds import pe_kind
from nybble.sw.formats import get_format
from nybble.sw.errors import ParameterError
from nybble.sw.quantize import Scheme, get_scheme, quantize

__all__ = ["Numerics", "numerics_of", "per_channel_scheme", "synthetic_activations",
           "synthetic_weights",
           "layer_operands", "layer_error", "predicted_cosine", "workload_accuracy",
           "weights_digest", "SAMPLE_TOKENS", "SAMPLE_CHANNELS", "CHAIN_WIDTH", "CHAIN_TRIALS"]

#: rows of A and columns of B each layer is measured on (K is always whole)
SAMPLE_TOKENS = 64
SAMPLE_CHANNELS = 256
#: side of the chain matrices of the predicted end-to-end cosine, and its input count
CHAIN_WIDTH = 256
CHAIN_TRIALS = 64

#: block-scaled PE kind -> its quantization scheme
_BLOCK_SCHEMES = {"mxfp4": "mxfp4", "nvfp4": "nvfp4", "mxint8": "mxint8", "q4_0": "q4_0"}


class Numerics:
    """The quantizers of a PE kind: ``activation`` and ``weight``
    (:class:`~nybble.sw.quantize.Scheme`) and a one-line ``description``."""

    def __init__(self, activation, weight, description):
        self.activation, self.weight, self.description = activation, weight, description

    @property
    def key(self):
        """What the accuracy depends on (cache key part, and equal for equal numerics)."""
        a, w = self.activation, self.weight
        return (f"{a.element}/{a.block}/{a.scale_kind}|{w.element}/{w.block}/"
                f"{w.scale_kind}")

    @property
    def shared(self):
        """True when one scheme quantizes both operands."""
        a, w = self.activation, self.weight
        return (a.element, a.block, a.scale_kind) == (w.element, w.block, w.scale_kind)


def per_channel_scheme(fmt):
    """One float32 scale per channel (the whole axis a block) in format ``fmt``."""
    name = get_format(fmt).name
    return Scheme(f"{name}_channel", name, None, "float32")


def numerics_of(pe):
    """:class:`Numerics` of PE kind ``pe`` (module docstring); None for the L-Mul kinds, whose
    approximate products a quantizer does not describe."""
    kind = pe_kind(pe)
    if kind.options.get("product") == "lmul":
        return None
    if kind.pe == "block":
        sch = get_scheme(_BLOCK_SCHEMES[kind.name])
        return Numerics(sch, sch, f"{sch.name} on both operands (blocks along K)")
    if kind.pe == "bitserial":
        act, wt = kind.formats[0], kind.formats[1]
    else:
        act, wt = kind.formats
    a, w = per_channel_scheme(act), per_channel_scheme(wt)
    return Numerics(a, w, f"activations {a.element} per token, weights {w.element} per "
                          f"output channel (float32 scales)")


def _seed(*parts):
    return [zlib.crc32(repr(parts).encode())]


def _shared(fn):
    """Memoised per process and read-only: every format's accuracy and energy task of a
    sweep draws the same operands (a 4096 x 256 Student-t draw is ~0.1 s)."""
    cached = functools.lru_cache(maxsize=64)(fn)

    @functools.wraps(fn)
    def wrapper(*args):
        x = cached(*args)
        x.setflags(write=False)
        return x
    return wrapper


@_shared
def synthetic_weights(k, n, seed_parts):
    """``k x n`` LLM-like weights (module docstring), deterministic in ``seed_parts``
    (read-only; the same array for the same arguments)."""
    rng = np.random.default_rng(_seed("weights", *seed_parts))
    w = 0.02 * rng.standard_t(5, size=(k, n))
    outliers = rng.random(n) < 0.01
    w[:, outliers] *= 4.0
    return w


@_shared
def synthetic_activations(m, k, seed_parts):
    """``m x k`` activations with 1 % outlier feature channels (module docstring;
    read-only, shared as :func:`synthetic_weights`)."""
    rng = np.random.default_rng(_seed("activations", *seed_parts))
    x = rng.standard_normal((m, k))
    outliers = rng.random(k) < 0.01
    x[:, outliers] *= 20.0
    return x


def layer_operands(layer, *, weight_layer=True, weights=None):
    """``(A, B, source)`` for measuring ``layer``: A is at most :data:`SAMPLE_TOKENS` x K, B
    K x at most :data:`SAMPLE_CHANNELS`; ``source`` is ``"synthetic"``, ``"activations"``
    (B is an activation) or ``"user"``."""
    if weights is not None:
        b = np.asarray(weights, dtype=np.float64)
        k = b.shape[0]
        b = b[:, :SAMPLE_CHANNELS]
        source = "user"
    else:
        k = layer.k
        n = min(layer.n, SAMPLE_CHANNELS)
        parts = (layer.name, layer.k, layer.n)
        if weight_layer:
            b, source = synthetic_weights(k, n, parts), "synthetic"
        else:
            b, source = synthetic_activations(n, k, ("b",) + parts).T, "activations"
    a = synthetic_activations(min(layer.m, SAMPLE_TOKENS), k, (layer.name, k))
    return a, b, source


def _dequantized(x, scheme, axis):
    return quantize(x, scheme, axis=axis).dequantize()


def layer_error(a, b, numerics):
    """``{"sqnr_db", "cosine"}`` of ``Q(a) @ Q(b)`` against ``a @ b`` (module docstring);
    ``sqnr_db`` is None when the product is exact."""
    c = a @ b
    cq = _dequantized(a, numerics.activation, -1) @ _dequantized(b, numerics.weight, 0)
    err = float(np.sum((c - cq) ** 2))
    sig = float(np.sum(c * c))
    sqnr = None if err == 0 else float(10 * np.log10(sig / err))  # None: exact
    num = np.sum(c * cq, axis=1)
    den = np.linalg.norm(c, axis=1) * np.linalg.norm(cq, axis=1)
    cos = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return {"sqnr_db": sqnr, "cosine": float(np.mean(cos))}


def predicted_cosine(chain, numerics):
    """``(cosine, scope)`` of the stability analyzer on ``chain`` (``out x in`` matrices)."""
    pred = predict_chain(chain, numerics.weight, activations=numerics.shared,
                         trials=CHAIN_TRIALS, seed=0)
    return pred["cosine"], ("weights and activations" if numerics.shared else "weights")


def _chain(workload, weights):
    mats = []
    for layer in workload.layers:
        if not workload.weight_layer(layer):
            continue
        w = weights.get(layer.name) if weights else None
        mats.append((layer, None if w is None else np.asarray(w, dtype=np.float64)))
    if not mats:
        return []
    sides = [min(w.shape) for _, w in mats if w is not None]
    width = min([CHAIN_WIDTH] + sides)
    return [(w[:width, :width] if w is not None else
             synthetic_weights(width, width, ("chain", layer.name, layer.k, layer.n))).T
            for layer, w in mats]


def weights_digest(weights):
    """SHA-256 of user weights (``{name: array}``), ``"synthetic"`` without them."""
    if not weights:
        return "synthetic"
    h = hashlib.sha256()
    for name in sorted(weights):
        arr = np.ascontiguousarray(np.asarray(weights[name], dtype=np.float64))
        h.update(name.encode() + b"\0" + repr(arr.shape).encode() + arr.tobytes())
    return h.hexdigest()


def workload_accuracy(pe, workload, weights=None):
    """Accuracy of PE kind ``pe``'s numerics on ``workload`` (a
    :class:`~nybble.explore.workload.Workload`): a dict with ``numerics`` (description),
    ``layers`` (per distinct layer: ``name``, ``sqnr_db``, ``cosine``, ``source``),
    ``layer_cosine_min``, ``layer_sqnr_db_min``, ``layer_sqnr_db_mean`` (MAC-weighted; None
    when every layer is exact),
    ``cosine`` (predicted end to end; None without weight layers) and ``predicted_scope``."""
    numerics = numerics_of(pe)
    if numerics is None:
        raise ParameterError(f"PE kind {pe!r} computes approximate (L-Mul) products; its "
                             f"accuracy is not a quantizer's")
    rows, seen = [], {}
    for layer in workload.layers:
        key = (layer.name, layer.m, layer.n, layer.k)
        if key in seen:
            continue
        user = weights.get(layer.name) if weights else None
        a, b, source = layer_operands(layer, weight_layer=workload.weight_layer(layer),
                                      weights=user)
        seen[key] = dict(name=layer.name, m=layer.m, n=layer.n, k=b.shape[0], source=source,
                         macs=layer.macs, **layer_error(a, b, numerics))
        rows.append(seen[key])
    chain = _chain(workload, weights)
    cosine, scope = predicted_cosine(chain, numerics) if chain else (None, "no weight layers")
    finite = [r for r in rows if r["sqnr_db"] is not None]
    mean = (sum(r["sqnr_db"] * r["macs"] for r in finite) / sum(r["macs"] for r in finite)
            if finite else None)
    return {"numerics": numerics.description, "numerics_key": numerics.key,
            "layers": rows, "layer_cosine_min": min(r["cosine"] for r in rows),
            "layer_sqnr_db_min": min((r["sqnr_db"] for r in finite), default=None),
            "layer_sqnr_db_mean": mean,
            "cosine": cosine, "predicted_scope": scope,
            "chain_depth": len(chain), "chain_width": chain[0].shape[0] if chain else None}
