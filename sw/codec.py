"""Encoding real numbers to format codes, decoding codes to values, packing nibbles.

One table-driven encoder serves every format: the finite values are sorted, each input is
placed between its two neighbours ``lo <= x < hi`` and the rounding mode picks one.

Rounding modes (all saturating: inputs beyond the largest finite value give that value,
never Inf or NaN):

``nearest_even``  nearest value; a tie goes to the neighbour whose value is an even multiple
                  of the gap ``hi - lo`` (IEEE round-half-even for floats and ints; for e3m0
                  1.5*2^k rounds up to 2^(k+1) and the tie between 0 and the smallest power
                  goes to 0).  Where neither neighbour is such a multiple (codebooks, radix-4)
                  the tie goes to the larger magnitude.
``nearest_away``  nearest value, ties away from zero (microxcaling's "nearest").
``nearest_toward_zero``  nearest value, ties to the smaller magnitude (ggml's MXFP4
                  quantizer and BitMoD pick the lower value on a tie); zero is always
                  +0 here, as ggml's argmin over codes gives.
``toward_zero``   the neighbour nearer zero (truncation).
``stochastic``    ``hi`` with probability ``(x - lo) / (hi - lo)``, else ``lo`` (unbiased);
                  ``seed`` makes it reproducible.

For sign-magnitude formats (except with ``nearest_toward_zero``) the sign of a zero result follows the input (-0.1 encodes to the
-0 code in fp4 e2m1, as ml_dtypes does).
"""

from functools import lru_cache

import numpy as np

from .formats import get_format
from .errors import ParameterError, ParameterTypeError

__all__ = ["encode", "decode", "pack4", "unpack4", "ROUNDING_MODES"]

ROUNDING_MODES = ("nearest_even", "nearest_away", "nearest_toward_zero", "toward_zero",
                  "stochastic")


@lru_cache(maxsize=None)
def _line(fmt):
    """Sorted distinct finite values, their codes, and the nearest-even tie direction."""
    vals = fmt.values
    codes = np.flatnonzero(np.isfinite(vals))
    v = vals[codes]
    # one code per value: prefer +0 over -0, lowest code otherwise
    order = np.lexsort((codes, v))
    v, codes = v[order], codes[order]
    keep = np.ones(v.size, bool)
    keep[1:] = v[1:] != v[:-1]
    v, codes = v[keep], codes[keep]
    gap = np.diff(v)
    q_lo, q_hi = v[:-1] / gap, v[1:] / gap
    lo_int = q_lo == np.floor(q_lo)
    hi_int = q_hi == np.floor(q_hi)
    defined = lo_int & hi_int
    hi_even = defined & (np.mod(q_hi, 2) == 0)
    # fallback: larger magnitude
    larger_hi = np.abs(v[1:]) > np.abs(v[:-1])
    tie_hi = np.where(defined, hi_even, larger_hi)
    return v, codes.astype(np.int64), tie_hi


def _code_dtype(fmt):
    return np.uint8 if fmt.bits <= 8 else np.uint16 if fmt.bits <= 16 else np.uint32


def _first_bad(x, mask):
    idx = np.argwhere(mask)[0]
    return tuple(int(i) for i in idx) if x.ndim > 1 else int(idx[0]) if x.ndim == 1 else ()


def encode(x, fmt, *, rounding="nearest_even", seed=None):
    """Round real numbers to the codes of ``fmt`` (saturating).

    Parameters
    ----------
    x : array_like of real numbers (any shape).
    fmt : format name, alias or :class:`~nybble.sw.formats.Format`.
    rounding : one of ``nearest_even`` (default), ``nearest_away``, ``nearest_toward_zero``,
        ``toward_zero``, ``stochastic`` (see the module docstring for the exact tie rules).
    seed : seed for ``stochastic`` rounding.

    Returns an unsigned integer array of codes with the shape of ``x``.
    Raises ``ValueError`` on NaN or Inf input, naming the format and the first bad index.
    """
    fmt = get_format(fmt)
    if rounding not in ROUNDING_MODES:
        raise ParameterError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {rounding!r}")
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        try:
            x = x.astype(np.float64)
        except (TypeError, ValueError):
            raise ParameterTypeError(f"x must be an array of real numbers, not dtype {x.dtype}") from None
    if np.iscomplexobj(x):
        raise ParameterTypeError("x must be real, not complex")
    x = x.astype(np.float64, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        i = _first_bad(x, bad)
        raise ParameterError(f"cannot encode to {fmt.name}: input at index {i} is "
                         f"{x[i] if x.ndim else x} (NaN and Inf have no code)")
    v, codes, tie_hi = _line(fmt)
    flat = x.ravel()
    xc = np.clip(flat, v[0], v[-1])
    i = np.searchsorted(v, xc, side="right") - 1
    i = np.clip(i, 0, v.size - 2)
    lo, hi = v[i], v[i + 1]
    exact_hi = xc >= hi  # only at the top of the range
    d_lo, d_hi = xc - lo, hi - xc
    if rounding == "nearest_even":
        up = (d_hi < d_lo) | ((d_hi == d_lo) & tie_hi[i])
    elif rounding == "nearest_away":
        up = (d_hi < d_lo) | ((d_hi == d_lo) & (np.abs(hi) > np.abs(lo)))
    elif rounding == "nearest_toward_zero":
        up = (d_hi < d_lo) | ((d_hi == d_lo) & (np.abs(hi) < np.abs(lo)))
    elif rounding == "toward_zero":
        up = (xc < 0) & (d_lo > 0)
    else:
        rng = np.random.default_rng(seed)
        up = rng.random(xc.shape) * (hi - lo) < d_lo
    up |= exact_hi
    out = codes[np.where(up, i + 1, i)]
    nz = fmt.negative_zero_code
    if nz is not None and rounding != "nearest_toward_zero":
        neg_zero = (np.where(up, hi, lo) == 0) & np.signbit(flat)
        out = np.where(neg_zero, nz, out)
    return out.astype(_code_dtype(fmt)).reshape(x.shape)


def decode(codes, fmt):
    """Values (float64) of ``codes`` in ``fmt``; NaN/Inf codes decode to NaN/Inf."""
    fmt = get_format(fmt)
    c = np.asarray(codes)
    if not np.issubdtype(c.dtype, np.integer):
        raise ParameterTypeError(f"codes must be an integer array, not dtype {c.dtype}")
    if c.size and (c.min() < 0 or c.max() >= fmt.n_codes):
        raise ParameterError(f"codes of {fmt.name} must be in 0..{fmt.n_codes - 1}, "
                         f"got {int(c.min())}..{int(c.max())}")
    return fmt.values[c.astype(np.int64)]


def pack4(codes):
    """Pack 4-bit codes two per byte, element 2i in the low nibble, 2i+1 in the high one.

    Input is flattened in C order; an odd count is padded with a zero nibble.
    """
    c = np.asarray(codes)
    if not np.issubdtype(c.dtype, np.integer):
        raise ParameterTypeError(f"codes must be an integer array, not dtype {c.dtype}")
    c = c.ravel().astype(np.int64)
    if c.size and (c.min() < 0 or c.max() > 15):
        raise ParameterError(f"pack4 takes 4-bit codes 0..15, got {int(c.min())}..{int(c.max())}")
    if c.size % 2:
        c = np.append(c, 0)
    return (c[0::2] | (c[1::2] << 4)).astype(np.uint8)


def unpack4(data, n):
    """Inverse of :func:`pack4`: the first ``n`` 4-bit codes (uint8) from packed bytes."""
    d = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else np.asarray(data)
    if d.dtype != np.uint8:
        raise ParameterTypeError(f"data must be bytes or a uint8 array, not dtype {d.dtype}")
    d = d.ravel()
    n = int(n)
    if not 0 <= n <= 2 * d.size:
        raise ParameterError(f"n must be in 0..{2 * d.size} for {d.size} bytes, not {n}")
    out = np.empty(2 * d.size, np.uint8)
    out[0::2] = d & 0xF
    out[1::2] = d >> 4
    return out[:n]
