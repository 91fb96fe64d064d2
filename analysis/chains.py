"""Chains of matrices: synthetic families, loading from files, Hadamard rotation.

A chain is a list ``[A_1, ..., A_d]`` of 2-D float arrays applied in order to column vectors,
``y = A_d ... A_2 A_1 x``; ``A_i`` has shape ``(out, in)`` (PyTorch's ``Linear.weight``
layout), so consecutive matrices must satisfy ``A_{i+1}.shape[1] == A_i.shape[0]``.

Synthetic families (:func:`synthetic_chain`; every matrix ``n x n``, scaled so that
``||A||_F^2 = n``, i.e. a unit-variance input keeps unit variance on average):

===================  =========================================================================
family               matrices
===================  =========================================================================
``gaussian``         iid N(0, 1/n) entries
``orthogonal``       Haar-random orthogonal (QR of a Gaussian matrix, signs fixed)
``student_t``        iid Student-t entries (``df`` = 3 by default: heavy tails, high crest
                     factor max/rms in every scaling group)
``ill_conditioned``  ``U diag(s) V^T`` with independent Haar ``U``, ``V`` and singular values
                     log-spaced over ``condition`` (1e3 by default): the product is far
                     worse conditioned than any factor and the signal collapses onto a few
                     directions, but consecutive factors are independent, so noise and
                     signal are amplified alike on average (amplification ~1-2)
``outlier_columns``  Gaussian with a fraction ``outlier_fraction`` (3 %) of the input columns
                     scaled up ``outlier_scale`` (10x): the activation-outlier pattern of LLMs
``inverse_pairs``    ``M_1, M_1^-1, M_2, M_2^-1, ...`` with ``M_k`` ill-conditioned as above:
                     every pair multiplies to the identity, so a perfectly conditioned
                     product hides factors that cancel each other -- the cancellation case
                     (an odd depth ends with an unpaired ``M``)
===================  =========================================================================

Rotation (:func:`rotate_chain`): incoherence processing as in QuIP#/QuaRot.  With orthogonal
``H_0 .. H_{d-1}`` (and ``H_d = I``), ``A_i' = H_i^T A_i H_{i-1}`` and ``x' = H_0^T x`` give
the same ``y``; each ``H`` is a randomized Hadamard matrix ``Had_n diag(+-1) / sqrt(n)``
(``n`` a power of two) or a Haar-random orthogonal matrix otherwise.
"""

import numbers
import os

import numpy as np

from nybble.sw.formats import check_integral
from nybble.sw.errors import InputFileError, ParameterError, ParameterTypeError

__all__ = ["FAMILIES", "synthetic_chain", "check_chain", "load_chain", "hadamard",
           "random_rotation", "rotate_chain", "chain_product"]

FAMILIES = ("gaussian", "orthogonal", "student_t", "ill_conditioned", "outlier_columns",
            "inverse_pairs")


def _haar(n, rng):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))[None, :]


def _ill(n, rng, condition):
    s = np.logspace(0.0, -np.log10(condition), n)
    a = (_haar(n, rng) * s[None, :]) @ _haar(n, rng).T
    return a * np.sqrt(n / np.sum(a * a))


def _check_positive(name, value, strict=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"{name} must be a real number, not {value!r}")
    value = float(value)
    if not np.isfinite(value) or (value <= 0 if strict else value < 0):
        raise ParameterError(f"{name} must be {'positive' if strict else 'non-negative'} "
                         f"and finite, not {value!r}")
    return value


def synthetic_chain(family, n=256, depth=8, seed=0, *, condition=1e3, df=3.0,
                    outlier_fraction=0.03, outlier_scale=10.0):
    """A list of ``depth`` ``n x n`` float64 matrices of the named family (module table).

    Deterministic in ``(family, n, depth, seed)`` and the family parameters.
    """
    if family not in FAMILIES:
        raise ParameterError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    n = check_integral("n", n, 2, 1 << 14)
    depth = check_integral("depth", depth, 1, 1024)
    seed = check_integral("seed", seed, 0)
    condition = _check_positive("condition", condition)
    if condition < 1:
        raise ParameterError(f"condition must be >= 1, not {condition!r}")
    df = _check_positive("df", df)
    outlier_fraction = _check_positive("outlier_fraction", outlier_fraction, strict=False)
    if outlier_fraction > 1:
        raise ParameterError(f"outlier_fraction must be in 0..1, not {outlier_fraction!r}")
    outlier_scale = _check_positive("outlier_scale", outlier_scale)
    rng = np.random.default_rng([seed, FAMILIES.index(family), n, depth])
    mats = []
    if family == "inverse_pairs":
        while len(mats) < depth:
            m = _ill(n, rng, condition)
            mats.append(m)
            if len(mats) < depth:
                mats.append(np.linalg.inv(m))
        return mats
    for _ in range(depth):
        if family == "gaussian":
            a = rng.standard_normal((n, n))
        elif family == "orthogonal":
            a = _haar(n, rng)
        elif family == "student_t":
            a = rng.standard_t(df, (n, n))
        elif family == "ill_conditioned":
            a = _ill(n, rng, condition)
        else:  # outlier_columns
            a = rng.standard_normal((n, n))
            k = int(round(outlier_fraction * n))
            cols = rng.choice(n, size=k, replace=False)
            a[:, cols] *= outlier_scale
        if family != "orthogonal":
            a = a * np.sqrt(n / np.sum(a * a))
        mats.append(a)
    return mats


def check_chain(mats, names=None):
    """Validate a chain; returns it as a list of float64 arrays.

    Raises ``TypeError`` for non-numeric data and ``ValueError`` naming the offending matrix
    (by ``names[i]`` when given) for a wrong rank, an empty or non-finite matrix, or two
    consecutive matrices whose shapes do not chain.
    """
    if isinstance(mats, np.ndarray):
        mats = [mats]
    mats = list(mats)
    if not mats:
        raise ParameterError("the chain must hold at least one matrix")
    names = list(names) if names is not None else [f"matrix {i + 1}" for i in range(len(mats))]
    out = []
    for i, (m, name) in enumerate(zip(mats, names)):
        a = np.asarray(m)
        if a.dtype == object or not (np.issubdtype(a.dtype, np.floating)
                                     or np.issubdtype(a.dtype, np.integer)):
            raise ParameterTypeError(f"{name} must hold real numbers, not dtype {a.dtype}")
        if a.ndim != 2:
            raise ParameterError(f"{name} must be a 2-D matrix (out x in), not {a.ndim}-D with "
                             f"shape {a.shape}")
        if a.size == 0:
            raise ParameterError(f"{name} is empty (shape {a.shape})")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            idx = tuple(int(v) for v in np.argwhere(~np.isfinite(a))[0])
            raise ParameterError(f"{name} must be finite: element {idx} is {a[idx]}")
        if out and a.shape[1] != out[-1].shape[0]:
            raise ParameterError(
                f"shape mismatch in the chain: {name} is {a.shape[0]} x {a.shape[1]} but "
                f"{names[i - 1]} is {out[-1].shape[0]} x {out[-1].shape[1]}; matrices apply "
                f"in order (y = A_d ... A_1 x, each A out x in), so {name} needs "
                f"{out[-1].shape[0]} columns")
        out.append(a)
    return out


def load_chain(paths):
    """Load a chain from ``.npy`` files (one matrix each) and ``.npz`` archives (every array,
    in stored order), in the order given.  Returns ``(matrices, names)``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for
    anything that is not a readable array file, an archive without arrays, or a chain
    whose shapes do not fit (:func:`check_chain`).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    mats, names = [], []
    for p in paths:
        p = os.fspath(p)
        if not os.path.exists(p):
            raise InputFileError(f"matrix file {p!r} does not exist")
        ext = os.path.splitext(p)[1].lower()
        if ext not in (".npy", ".npz"):
            raise ParameterError(f"matrix file {p!r} must be .npy or .npz, not {ext or 'no suffix'!r}")
        try:
            data = np.load(p, allow_pickle=False)
        except Exception as e:  # numpy raises ValueError/OSError/EOFError/... for bad files
            raise ParameterError(f"cannot read {p!r} as a numpy {ext} file: {e}") from None
        if ext == ".npz":
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ParameterError(f"{p!r} is not an .npz archive")
            with data:
                if not data.files:
                    raise ParameterError(f"{p!r} holds no arrays")
                for k in data.files:
                    try:
                        mats.append(data[k])
                    except Exception as e:
                        raise ParameterError(f"cannot read array {k!r} of {p!r}: {e}") from None
                    names.append(f"{p}[{k}]")
        else:
            if not isinstance(data, np.ndarray):
                raise ParameterError(f"{p!r} is not an .npy array file")
            mats.append(data)
            names.append(p)
    return check_chain(mats, names), names


def hadamard(n):
    """The Sylvester Hadamard matrix of order ``n`` (a power of two), entries +-1."""
    n = check_integral("n", n, 1)
    if n & (n - 1):
        raise ParameterError(f"n must be a power of two for a Hadamard matrix, not {n}")
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def random_rotation(n, rng):
    """An orthogonal ``n x n`` matrix: ``hadamard(n) diag(random signs) / sqrt(n)`` when ``n``
    is a power of two, otherwise Haar-random."""
    if n & (n - 1) == 0:
        signs = rng.choice([-1.0, 1.0], size=n)
        return hadamard(n) * signs[None, :] / np.sqrt(n)
    return _haar(n, rng)


def rotate_chain(mats, seed=0):
    """Incoherence processing: ``(rotated, h0)`` with ``rotated[i] = H_i^T A_i H_{i-1}``
    (``H_d = I``); ``rotated`` applied to ``h0.T @ x`` equals the chain applied to ``x``."""
    mats = check_chain(mats)
    rng = np.random.default_rng([check_integral("seed", seed, 0), 0x4ADA])
    hs = [random_rotation(mats[0].shape[1], rng)]
    for a in mats[:-1]:
        hs.append(random_rotation(a.shape[0], rng))
    hs.append(np.eye(mats[-1].shape[0]))
    rotated = [hs[i + 1].T @ a @ hs[i] for i, a in enumerate(mats)]
    return rotated, hs[0]


def chain_product(mats):
    """``A_d ... A_1``."""
    p = mats[0]
    for a in mats[1:]:
        p = a @ p
    return p
