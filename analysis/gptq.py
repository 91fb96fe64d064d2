"""GPTQ: weight-only quantization that corrects each column's rounding error with the
columns still to come, guided by a calibration covariance.

For a layer ``y = W x`` (``W`` is ``rows x K``) and calibration inputs with second moment
``H = E[x x^T]`` (``K x K``), the output error of a quantized ``W_q`` is the weighted error

    E||(W - W_q) x||^2 = tr((W - W_q) H (W - W_q)^T).

Round-to-nearest (RTN) minimises the plain ``||W - W_q||_F``.  GPTQ (Frantar et al. 2022,
the OBQ update applied column by column) quantizes column ``j``, then spreads its error over
the unquantized columns ``j+1..K`` along the rows of the inverse-Hessian Cholesky factor
``U = chol(H^-1)^T`` (upper)::

    q_j = Q(w_j);   e = (w_j - q_j) / U[j, j];   w_{j+1:} -= e U[j, j+1:]

with ``H`` damped by ``damp * mean(diag H)`` and the updates batched in blocks of
``block_size`` columns (the same result, fewer passes over ``W``).  The quantization grid
follows the scheme: per-tensor and per-channel scales come from the original ``W``; per-group
scales (int4_g<N>, e3m0_g<N>, nf4_g<N>, mxfp4, ...) are fixed when the group's first column
is reached, from the group's already-updated values, exactly as the scheme's quantizer would
set them (:func:`nybble.sw.quantize`).  Elements round to nearest even.

``rotate=True`` first applies a random orthogonal ``Q`` (Hadamard with random signs for a
power-of-two ``K``): ``W' = W Q``, ``H' = Q^T H Q``, and returns ``W'_q Q^T``, which leaves the
weighted error invariant but lowers the crest factor of ``W'`` (QuIP / QuaRot incoherence).
``rtn=True`` skips the error feedback (rotated RTN).
"""

import numpy as np

from nybble.sw.codec import encode, decode
from nybble.sw.formats import check_integral
from nybble.sw.quantize import quantize, get_scheme
from .chains import random_rotation
from nybble.sw.errors import ParameterError

__all__ = ["gptq_quantize", "weighted_error", "GPTQ_SCHEMES"]

GPTQ_SCHEMES = "int4_tensor, int4_channel, int4_g<N>, e3m0_g<N>, nf4_g<N>, mxfp4 and the other MX schemes"


def weighted_error(w, w_q, h):
    """``tr((W - W_q) H (W - W_q)^T)``."""
    d = np.asarray(w, dtype=np.float64) - np.asarray(w_q, dtype=np.float64)
    return float(np.sum((d @ h) * d))


def _check(w, h, scheme):
    w = np.asarray(w, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    if w.ndim != 2:
        raise ParameterError(f"w must be 2-D (rows x K), not shape {w.shape}")
    if h.shape != (w.shape[1], w.shape[1]):
        raise ParameterError(f"h must be K x K = {w.shape[1]} x {w.shape[1]} for w of shape "
                         f"{w.shape}, not {h.shape}")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(h))):
        raise ParameterError("w and h must be finite")
    sch = get_scheme(scheme)
    if sch.scale_kind not in ("float32", "e8m0") or sch.element.startswith("bitmod") \
            or not sch.symmetric:
        raise ParameterError(f"gptq supports {GPTQ_SCHEMES}, not {sch.name!r}")
    return w, h, sch


def _row_scales(block, sch):
    """Per-row scale (rows,) of ``block`` as the scheme's quantizer sets it (one group)."""
    qt = quantize(block, sch, axis=-1)
    s = np.asarray(qt.block_scale_values(), dtype=np.float64)
    s = s.reshape(block.shape[0], -1)[:, 0] if s.ndim else np.full(block.shape[0], float(s))
    return s


def _round(col, scale, elem):
    safe = np.where(scale > 0, scale, 1.0)
    return np.where(scale > 0, decode(encode(col / safe, elem), elem) * scale, 0.0)


def gptq_quantize(w, h, scheme, *, block_size=128, damp=0.01, rotate=False, seed=0,
                  rtn=False):
    """Quantize ``w`` (``rows x K``, blocks along K) with GPTQ for the covariance ``h``.

    Returns ``(w_q, info)``: ``w_q`` the dequantized weights in the original basis (float64),
    ``info`` a dict with ``weighted_error`` and, for comparison, ``rtn_weighted_error``.
    """
    w, h, sch = _check(w, h, scheme)
    block_size = check_integral("block_size", block_size, 1)
    if not 0 <= float(damp) < 1:
        raise ParameterError(f"damp must be in [0, 1), not {damp!r}")
    k = w.shape[1]
    q = None
    if rotate:
        q = random_rotation(k, np.random.default_rng([check_integral("seed", seed, 0), 0x6B7]))
        wr, hr = w @ q, q.T @ h @ q
    else:
        wr, hr = w, h
    if rtn:
        wq = quantize(wr, sch, axis=-1).dequantize()
    else:
        wq = _gptq(wr.copy(), hr, sch, block_size, float(damp))
    if q is not None:
        wq = wq @ q.T
    rtn_err = weighted_error(w, quantize(w, sch, axis=-1).dequantize(), h)
    return wq, {"weighted_error": weighted_error(w, wq, h), "rtn_weighted_error": rtn_err,
                "scheme": sch.name, "rotated": bool(rotate)}


def _gptq(w, h, sch, block_size, damp):
    rows, k = w.shape
    h = h.copy()
    dead = np.diag(h) == 0  # inputs that never fire: their weights do not matter
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h[np.diag_indices(k)] += damp * np.mean(np.diag(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: H^-1 = U^T U
    elem = sch.element
    group = k if sch.block is None else (k if sch.block == 0 else sch.block)
    if sch.block in (None, 0):  # scales from the original weights
        fixed = _row_scales(w, sch)
    out = np.zeros_like(w)
    scale = None
    for b0 in range(0, k, block_size):
        b1 = min(k, b0 + block_size)
        wb = w[:, b0:b1].copy()
        err = np.zeros_like(wb)
        for j in range(b0, b1):
            c = j - b0
            if sch.block in (None, 0):
                scale = fixed
            elif j % group == 0:
                g1 = min(k, j + group)
                # the group's current values: the rest of this block, and beyond it the
                # columns with this block's pending (lazy) updates applied
                rest = w[:, b1:g1] - err[:, :c] @ u[b0:j, b1:g1] if g1 > b1 else w[:, b1:b1]
                cur = np.concatenate([wb[:, c:], rest], axis=1)[:, :g1 - j]
                scale = _row_scales(cur, sch)
            col = wb[:, c]
            qc = _round(col, scale, elem)
            out[:, j] = qc
            e = (col - qc) / u[j, j]
            wb[:, c:] -= np.outer(e, u[j, j:b1])
            err[:, c] = e
        w[:, b1:] -= err @ u[b0:b1, b1:]
    return out
