"""Choosing the number format itself: the LLM-FP4 search over exponent/mantissa splits and
a real-valued exponent bias (Liu et al., "LLM-FP4: 4-Bit Floating-Point Quantized
Transformers", EMNLP 2023).

Candidates at ``bits`` bits: every split ``e<E>m<M>`` with ``1 + E + M = bits`` (at 4 bits:
e0m3, e1m2, e2m1, e3m0).  Every code is finite (no Inf/NaN), exponent field 0 is subnormal, so
with exponent bias ``b`` (a real number) the magnitudes are::

    (m / 2**M) * 2**(1 - b)            e = 0   (subnormal; all of e0m3, which is the
                                                 sign-magnitude integer grid +-7, "int4")
    (1 + m / 2**M) * 2**(e - b)        e >= 1

so the bias is the clipping range in disguise: the largest value is
``(2 - 2**-M) * 2**(2**E - 1 - b)`` (``2 (1 - 2**-M) 2**-b`` for E = 0), and a real-valued
``b`` is a free scale.  e1m2 with subnormals is the same uniform grid as e0m3 (one binade
apart), so the two always tie; both are listed because LLM-FP4 lists them.

Search (:func:`format_search`): per tensor (one bias) or per channel (one bias per slice
along ``axis``), for each candidate, the MSE over a geometric grid of 64 clipping ranges from
``0.2 amax`` to ``1.5 amax`` (``amax`` per tensor or channel), then a second grid of 32 around
the best point; elements round to nearest even through :mod:`nybble.sw.codec` (each
candidate is a 2**bits-entry :func:`nybble.sw.codebook`).  The result: the candidate with the
least MSE, its bias(es), and every candidate's MSE, bias and MSE at the plain ``amax`` range.
"""

import numpy as np

from nybble.sw.codec import encode, decode
from nybble.sw.formats import codebook, check_integral
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["format_candidates", "format_values", "format_search", "SEARCH_BITS"]

SEARCH_BITS = (2, 3, 4, 8)  # 2**bits must be a codebook size nybble.sw supports
_GRANULARITY = ("tensor", "channel")


def format_values(exp_bits, man_bits, bias=0.0):
    """All ``2**(1 + exp_bits + man_bits)`` values of the signed format (code order:
    sign, exponent, mantissa), float64."""
    e_bits = check_integral("exp_bits", exp_bits, 0, 8)
    m_bits = check_integral("man_bits", man_bits, 0, 23)
    n = 1 << (e_bits + m_bits)
    codes = np.arange(n)
    e = codes >> m_bits
    m = codes & ((1 << m_bits) - 1)
    frac = m / float(1 << m_bits)
    mag = np.where(e == 0, frac * 2.0 ** (1 - bias), (1 + frac) * 2.0 ** (e - bias))
    return np.concatenate([mag, -mag])


def format_candidates(bits=4):
    """``[(name, exp_bits, man_bits)]`` of every split at ``bits`` bits (e0 first)."""
    bits = check_integral("bits", bits, 2, 8)
    if bits not in SEARCH_BITS:
        raise ParameterError(f"bits must be one of {', '.join(map(str, SEARCH_BITS))} (2**bits "
                         f"must be a codebook size), not {bits}")
    return [(f"e{e}m{bits - 1 - e}", e, bits - 1 - e) for e in range(bits)]


def _label(name, e, m):
    return f"{name} (int{1 + m}, sign-magnitude)" if e == 0 else name


def _check_x(x):
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating)
                                 or np.issubdtype(x.dtype, np.integer)):
        raise ParameterTypeError(f"x must be a real array, not dtype {x.dtype}")
    if x.size == 0:
        raise ParameterError(f"x must not be empty (shape {x.shape})")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        i = tuple(int(v) for v in np.argwhere(~np.isfinite(x))[0])
        raise ParameterError(f"x must be finite: element {i} is {x[i]}")
    return x


def _mse_at(x2d, fmt, top, maxval):
    """Per-channel MSE with the range ``maxval`` (channels x 1) -> (channels,)."""
    scale = np.where(maxval > 0, maxval / top, 1.0)
    q = decode(encode(x2d / scale, fmt), fmt) * scale
    return np.mean((q - x2d) ** 2, axis=1)


def format_search(x, bits=4, *, granularity="tensor", axis=0, grid=64, refine=32):
    """Find the split and exponent bias with the least MSE for ``x`` (module docstring).

    ``granularity`` is ``"tensor"`` or ``"channel"`` (one bias per index of ``axis``).
    Returns a dict: ``best`` (the winning candidate) and ``candidates`` (every split, each
    with ``format``, ``exp_bits``, ``man_bits``, ``bias`` (float, or a list per channel),
    ``max_value``, ``mse``, ``mse_amax`` (the range at amax, no clipping),
    ``relative_mse``, ``sqnr_db``).
    """
    x = _check_x(x)
    if granularity not in _GRANULARITY:
        raise ParameterError(f"granularity must be one of {', '.join(_GRANULARITY)}, "
                         f"not {granularity!r}")
    grid = check_integral("grid", grid, 2)
    refine = check_integral("refine", refine, 0)
    if granularity == "channel":
        if x.ndim < 2:
            raise ParameterError(f"granularity 'channel' needs an array with at least 2 "
                             f"dimensions, not shape {x.shape}")
        axis = check_integral("axis", axis, -x.ndim, x.ndim - 1) % x.ndim
        x2d = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    else:
        x2d = x.reshape(1, -1)
    amax = np.max(np.abs(x2d), axis=1, keepdims=True)
    power = float(np.mean(x2d ** 2))
    cands = []
    for name, e, m in format_candidates(bits):
        unit = format_values(e, m, 0.0)
        fmt = codebook(unit, name=f"{name}_b0")
        top = float(np.max(unit))
        alphas = np.geomspace(0.2, 1.5, grid)
        errs = np.stack([_mse_at(x2d, fmt, top, amax * a) for a in alphas])  # (grid, C)
        i = np.argmin(errs, axis=0)
        best_a = alphas[i]
        best_e = errs[i, np.arange(errs.shape[1])]
        if refine:
            step = alphas[1] / alphas[0]
            fine = np.geomspace(1.0 / step, step, refine)
            for f in fine:
                err = _mse_at(x2d, fmt, top, amax * (best_a * f)[:, None])
                better = err < best_e
                best_e = np.where(better, err, best_e)
                best_a = np.where(better, best_a * f, best_a)
        maxval = amax[:, 0] * best_a
        with np.errstate(divide="ignore"):
            bias = np.where(maxval > 0, np.log2(top / np.where(maxval > 0, maxval, 1.0)), 0.0)
        mse = float(np.mean(best_e))
        mse_amax = float(np.mean(_mse_at(x2d, fmt, top, amax)))
        per_tensor = granularity == "tensor"
        cands.append({
            "format": name, "label": _label(name, e, m), "exp_bits": e, "man_bits": m,
            "bias": float(bias[0]) if per_tensor else bias.tolist(),
            "max_value": float(maxval[0]) if per_tensor else maxval.tolist(),
            "clip_ratio": float(best_a[0]) if per_tensor else float(np.mean(best_a)),
            "mse": mse, "mse_amax": mse_amax,
            "relative_mse": mse / power if power > 0 else 0.0,
            "sqnr_db": float(10 * np.log10(power / mse)) if mse > 0 and power > 0 else None,
        })
    best = min(cands, key=lambda c: (c["mse"], c["exp_bits"]))
    return {"bits": int(bits), "granularity": granularity,
            "axis": axis if granularity == "channel" else None,
            "shape": list(x.shape), "best": best, "candidates": cands}
