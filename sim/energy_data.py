"""Operand data for energy runs: activation / weight code matrices, and the PE step stream
that walks their product.

A data set is a pair of code matrices, ``A`` (M x K, activation format) and ``B`` (K x N,
weight format). :func:`gemm_steps` turns them into what a PE consumes: the dot products
``A[i, :] . B[:, j]`` one after the other, ``lanes`` k-indices per step, ``first`` on each
dot product's first step (so a dot product of K = 64 is 64 / lanes steps).

Synthetic data sets (:func:`synthetic_codes`), seeded:

* ``uniform``: every finite code equally likely (the worst case for switching);
* ``gaussian``: N(0, 1) samples quantized to the format with one absmax scale per matrix
  (max |x| -> the format's largest finite value; round to nearest even): the many small
  values and zeros of real tensors;
* ``zeros50``: ``uniform`` with each element of both matrices replaced by the zero code with
  probability 1/2 (so >= 50% zeros in each, ~75% zero products).

Real data (:func:`quantize_absmax`): any float matrices, quantized the way ``gaussian`` is
(the CLI feeds it the digits MLP's weights and activations).
"""

import numpy as np

from nybble.sw import encode, get_format
from nybble.sw.formats import check_integral
from nybble.sw.errors import ParameterError

__all__ = ["SYNTHETIC_DATA", "DEFAULT_K", "synthetic_codes", "quantize_absmax", "zero_code",
           "gemm_steps"]

#: Names of the synthetic data sets.
SYNTHETIC_DATA = ("uniform", "gaussian", "zeros50")

#: Dot-product length of the synthetic data sets.
DEFAULT_K = 64


def zero_code(fmt):
    """The (positive) code of 0 in ``fmt``."""
    f = get_format(fmt)
    zeros = np.flatnonzero(f.values == 0)
    if not len(zeros):
        raise ParameterError(f"format {f.name} has no zero code")
    return int(zeros[0])


def _finite_codes(fmt):
    return np.flatnonzero(get_format(fmt).finite)


def quantize_absmax(x, fmt):
    """Codes of ``x`` (float array) in ``fmt`` with one scale: ``max |x|`` maps to the
    format's largest finite magnitude (unsigned formats: ``|x|``); round to nearest even."""
    f = get_format(fmt)
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ParameterError(f"data for {f.name} must be finite")
    if not f.signed:
        x = np.abs(x)
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    top = float(np.max(np.abs(f.values[f.finite])))
    scale = top / amax if amax > 0 else 1.0
    return encode(x * scale, f).astype(np.int64)


def synthetic_codes(name, fmt_a, fmt_b, m, k, n, *, seed=0):
    """``(A, B)`` code matrices (``m x k`` in ``fmt_a``, ``k x n`` in ``fmt_b``) of the
    synthetic data set ``name`` (module docstring)."""
    if name not in SYNTHETIC_DATA:
        raise ParameterError(f"data set must be one of {', '.join(SYNTHETIC_DATA)}, "
                             f"not {name!r}")
    rng = np.random.default_rng([seed, SYNTHETIC_DATA.index(name)])
    if name == "gaussian":
        return (quantize_absmax(rng.standard_normal((m, k)), fmt_a),
                quantize_absmax(rng.standard_normal((k, n)), fmt_b))
    a = rng.choice(_finite_codes(fmt_a), (m, k))
    b = rng.choice(_finite_codes(fmt_b), (k, n))
    if name == "zeros50":
        a = np.where(rng.random(a.shape) < 0.5, zero_code(fmt_a), a)
        b = np.where(rng.random(b.shape) < 0.5, zero_code(fmt_b), b)
    return a, b


def gemm_steps(a, b, lanes, steps):
    """The first ``steps`` PE steps of the product ``a @ b`` (code matrices), dot products in
    row-major output order, wrapping around when the product has fewer steps: returns
    ``(a_steps, b_steps, first)`` of shapes ``(steps, lanes)``, ``(steps, lanes)``,
    ``(steps,)``. K must be a multiple of ``lanes``."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ParameterError(f"A and B must be matrices with A's columns = B's rows, not "
                             f"shapes {a.shape} and {b.shape}")
    lanes = check_integral("lanes", lanes, 1, 256)
    steps = check_integral("steps", steps, 1)
    m, k = a.shape
    n = b.shape[1]
    if k % lanes:
        raise ParameterError(f"K ({k}) must be a multiple of the PE's lanes ({lanes})")
    per_dot = k // lanes
    idx = np.arange(steps)
    dot = (idx // per_dot) % (m * n)
    i, j, c = dot // n, dot % n, idx % per_dot
    ks = c[:, None] * lanes + np.arange(lanes)[None, :]
    return a[i[:, None], ks], b[ks, j[:, None]], c == 0
