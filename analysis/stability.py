r"""Error propagation through chains of quantized matrices: measurement, prediction, diagnosis.

A chain ``y = A_d ... A_1 x`` (:mod:`nybble.analysis.chains`; ``A_i`` is ``out x in``) is run in
float64 and with every weight matrix quantized once per scheme (blocks along the reduction
axis, ``axis=-1``) and, with ``activations=True``, every activation quantized too (blocks along
the feature axis; the ``T`` input vectors travel as one ``n x T`` matrix, so per-tensor schemes
share one scale over the batch).  Inputs are ``x ~ N(0, I)``.  The quantized run uses the
dequantized weights in float64, which equals :func:`nybble.sw.gemm` to rounding.

Measured (:func:`measure_chain`)
--------------------------------
mean cosine(y, y_q) over the ``T`` inputs; ``P(<y, y_q> > 0)``; the fraction of output
coordinates whose sign survives (an output quantized to exactly 0 has lost its sign);
top-1 agreement of a random 10-class probe head ``C`` (float: ``argmax C y == argmax C y_q``);
after every layer, the relative error ``||H_q - H||_F / ||H||_F`` and the mean cosine.

Predicted (:func:`predict_chain`): from the matrices alone, nothing is quantized
-------------------------------------------------------------------------------
**1. Noise of one scaling group** (:func:`group_noise`).  A group of ``g`` elements has
``amax = a``, ``rms = r`` and crest factor ``c = a / r``.  The scheme's scale maps ``a`` to
``M`` on the element grid (``M = 7`` for int4, ``16`` for e3m0, ``1`` for NF4, ``12`` or the
special value for BitMoD -- these constants are read off the quantizer itself --;
``a / 2**(floor(log2 a) - emax)`` in ``[2**emax, 2**(emax+1))`` for MX; the e4m3-rounded
block scale for NVFP4), so the step of the grid is ``a / M`` in data units.  Model: the
largest element sits at ``M`` (its error is the grid's error there); the other ``g - 1`` are
Gaussian, truncated at ``+-M`` (no element exceeds the max), with the group's remaining
energy ``(g r^2 - a^2) / (g - 1)`` -- on the grid, standard deviation ``~ M / c``.  Their
error statistics ``E[(Q - U)^2]``, ``E[QU]`` come from the format's value table
(:mod:`nybble.sw.formats`) by exact Gaussian integrals
(:func:`nybble.analysis.lloyd_max.gaussian_quantizer_stats`), which covers uniform grids
(``step^2 / 12`` when the crest factor is low), saturation, the non-uniform grids of e2m1,
e3m0 and NF4, and stochastic rounding.  A high crest factor shrinks ``M / c`` and pushes the
elements onto the few smallest levels.  Inside a group the variances follow the matrix's
separable profile (row energy x column energy), which matters only for outlier columns.  The
part of the error along the matrix itself (a common gain, harmless to a cosine) is removed
at the matrix level.  Result: a noise variance ``sigma_rc^2`` for every element.

**2. Propagation.**  With ``P_i = A_i ... A_1`` (``P_0 = I``), ``L_i = A_d ... A_{i+1}`` and
``E_i = Q(A_i) - A_i``, to first order ``y_q - y = sum_i L_i E_i P_{i-1} x``, and for
independent zero-mean noise entries and ``x ~ N(0, I)`` (exact for that model)::

    E||L_i E_i P_{i-1} x||^2 = sum_rc sigma_rc^2 ||L_i[:, r]||^2 ||P_{i-1}[c, :]||^2

against the signal ``E||y||^2 = ||P_d||_F^2``.  The ratio is written ``nu_i = eps_i G_i``::

    eps_i = sum_rc sigma_rc^2 / ||A_i||_F^2         relative weight error: what a per-layer
                                                    heuristic (crest factor, step) sees
    G_i   = nu_i / eps_i                            the chain amplification factor

For a generic chain ``G_i = ||L_i||_F^2 ||A_i||_F^2 ||P_{i-1}||_F^2 / (n_i m_i ||P_d||_F^2)``
is 1 (exactly 1 for orthogonal chains, ``1 +- O(n^-1/2)`` for Gaussian ones).  It is large
when the product is much smaller than its factors -- cancellation: a matrix followed by its
near-inverse (``G ~ mean(s^2) mean(s^-2)`` over its singular values), or any ill-conditioned
product whose later factors attenuate exactly the directions the signal occupies -- while
every factor on its own looks harmless.  (Independent ill-conditioned factors, the
``ill_conditioned`` family, do not cancel: ``G`` stays ~1-2.)  Activation noise at the input of layer ``i``
(variance ``tau_c`` per coordinate: the same group model applied to Gaussian activations of
variance ``||P_{i-1}[c, :]||^2``) enters the same way with ``L_{i-1}`` in place of ``L_i``.

**3. Compounding over depth.**  The quantizers of layer ``k`` see the signal plus the noise
that reached them, so with ``nu_k^(t)`` the contribution of layer ``k`` at depth ``t`` and
``NSR_0 = 0``::

    NSR_t = sum_{k <= t} nu_k^(t) (1 + NSR_{k-1}),       cosine_t = 1 / sqrt(1 + NSR_t)

For ``G = 1`` this is ``prod (1 + nu_k) - 1``; the first-order sum underestimates deep
chains (int4 per-tensor at depth 16: 0.61 against 0.82, cosine 0.79 against 0.74).  The
cosine is averaged over inputs: the linear noise-to-signal of each input,
``sum_c kappa_c (P_{k-1} x)_c^2 / ||P_t x||^2`` (``kappa = ||L[:, r]||^2``-weighted column sums
of ``sigma^2``), scales ``NSR_t`` -- this matters when the signal occupies few directions
(outlier columns).  These inputs are drawn independently of the measurement's and only run
through the float chain.

**4. Signs and the head.**  Treating ``y`` and the noise ``e`` as independent Gaussians
(``Sigma_y = P_d P_d^T``; ``Sigma_e`` from step 2, scaled to ``NSR_d``): coordinate ``k`` keeps
its sign with probability ``1 - arccos(sqrt(a_k / (a_k + b_k))) / pi`` (``a = diag Sigma_y``,
``b = diag Sigma_e``); ``P(<y, y_q> > 0) = Phi(tr Sigma_y / sqrt(tr(Sigma_y Sigma_e)))``; the
head's top-1 agreement is sampled from the 10-dimensional Gaussians ``C y`` and ``C e``.

Accuracy: the per-matrix error of step 1 is within 1-3% of the measured one for Gaussian,
orthogonal, Student-t and outlier-column matrices at every scheme (BitMoD +9%: its per-group
type choice sees the actual values); predicted cosines of Gaussian and orthogonal chains
(n = 256, depth <= 16) are within 0.02 of the measured ones for every scheme
(``tests/analysis/test_stability.py``).  The prediction is an expectation over quantization-noise
realisations: when the signal collapses onto few directions (outlier columns) a single
measured run scatters around it by ~0.05-0.2 in cosine.

Diagnosis (:func:`diagnose`): the layer and operand with the largest ``nu_i``, and whether
amplification (``G_i > 4``), the crest factor (50% above the Gaussian expectation for the
group size) or the format's step dominates.  A chain with any ``G_i > 4`` is flagged
``cancellation`` from the matrices alone.

Cost (:func:`scheme_bits`): bits per weight including scales; ties broken by the PE (e3m0 is
a shift, int4 a small multiplier, e2m1 slightly larger, codebooks need a lookup).
"""

from dataclasses import dataclass
from functools import lru_cache
import numbers

import numpy as np
from scipy.special import ndtr

from nybble.sw.codec import encode, decode
from nybble.sw.formats import get_format, check_integral
from nybble.sw.quantize import get_scheme, quantize, BITMOD_TYPES
from .chains import check_chain, rotate_chain
from .lloyd_max import gaussian_quantizer_stats, truncated_gaussian_sigma
from nybble.sw.errors import ParameterError

__all__ = ["DEFAULT_SCHEMES", "STABILITY_ROUNDING", "check_scheme", "scheme_bits", "group_noise",
           "ChainGains", "chain_gains", "predict_chain", "measure_chain", "diagnose",
           "analyze", "AMPLIFICATION_THRESHOLD"]

DEFAULT_SCHEMES = ("int4_tensor", "int4_channel", "int4_g32", "mxfp4", "nvfp4", "e3m0_g32",
                   "nf4_g64", "bitmod_g128")
STABILITY_ROUNDING = ("nearest_even", "stochastic")
AMPLIFICATION_THRESHOLD = 4.0
_SCALE_BITS = {"float32": 32, "e8m0": 8, "e4m3": 8}
_PE_RANK = {"pow2": 0, "int": 1, "float": 2, "codebook": 3}


_SUPPORTED = ("int4_tensor, int4_channel, int4_g<N>, mxfp4, nvfp4, e3m0_g<N>, nf4_g<N>, "
              "bitmod_g<N>, mxfp6_e2m3, mxfp6_e3m2, mxfp8_e4m3, mxfp8_e5m2, mxint8")


def _scheme(name):
    try:
        sch = get_scheme(name)
    except ValueError:
        raise ParameterError(f"scheme must be one of {_SUPPORTED} (N = group size), "
                         f"not {name!r}") from None
    if sch.scale_kind == "ggml" or not sch.symmetric:
        raise ParameterError(f"scheme must be a symmetric block scheme ({_SUPPORTED}), not "
                         f"{sch.name!r}: the ggml schemes have their own layouts and zero points")
    return sch


def check_scheme(scheme):
    """The :class:`~nybble.sw.quantize.Scheme` named ``scheme`` if the analyses here support
    it (symmetric block schemes), else ``ValueError`` listing the supported ones."""
    return _scheme(scheme)


def scheme_bits(scheme, k):
    """Storage bits per element for a row of ``k`` elements: element bits plus the block's
    share of its scale (BitMoD adds 2 bits of type per group; NVFP4 and per-tensor schemes
    add a 32-bit tensor scale, counted per ``k`` here as a per-row upper bound)."""
    sch = _scheme(scheme)
    bits = sch.elem_fmt.bits
    k = max(int(k), 1)
    if sch.block == 0:
        return bits + 32.0 / k
    block = k if sch.block is None else sch.block
    extra = 2.0 / block if sch.element.startswith("bitmod") else 0.0
    tensor = 32.0 / k if sch.scale_kind == "e4m3" else 0.0
    return bits + _SCALE_BITS[sch.scale_kind] / block + extra + tensor


def _pe_rank(scheme):
    sch = get_scheme(scheme)
    return _PE_RANK.get(sch.elem_fmt.kind, 3)


# -- step 1: the noise of each scaling group -----------------------------------------------------

def _tables(sch):
    if sch.element.startswith("bitmod"):
        return [get_format(t).values for t in BITMOD_TYPES]
    return [sch.elem_fmt.values]


_PROBE = {}


def _float32_top(sch):
    """``amax / scale`` of a float32-scale scheme, read off the quantizer itself."""
    if sch.name not in _PROBE:
        probe = np.array([[1.0, 0.5, 0.25, 0.125]])
        qt = quantize(probe, sch, axis=-1)
        _PROBE[sch.name] = 1.0 / float(np.ravel(qt.block_scale_values())[0])
    return _PROBE[sch.name]


def _grid_error_at(values, m, rounding):
    """``(E[e^2], E[e])`` of quantizing the (signed) values ``m`` on the grid ``values``,
    ``e = Q(m) - m`` (stochastic rounding is unbiased inside the range)."""
    v = np.unique(values[np.isfinite(values)])
    x = np.clip(m, v[0], v[-1])
    sat = x - m
    i = np.clip(np.searchsorted(v, x, side="right") - 1, 0, v.size - 2)
    lo, hi = v[i], v[i + 1]
    if rounding == "stochastic":
        return (x - lo) * (hi - x) + sat ** 2, sat
    e = np.where(x - lo <= hi - x, lo, hi) - x
    return (e + sat) ** 2, e + sat


_RHO = np.geomspace(1e-4, 1.0 / np.sqrt(3.0) * (1 - 1e-9), 600)


@lru_cache(maxsize=256)
def _stats_table(values_bytes, rounding, m):
    """``(mse, E[QX])`` / sd^2 of a Gaussian truncated to ``+-m`` with standard deviation
    ``rho * m``, for every ``rho`` in ``_RHO`` (exact Gaussian integrals)."""
    values = np.frombuffer(values_bytes, dtype=np.float64)
    sd = _RHO * m
    sig = truncated_gaussian_sigma(sd, m)
    st = gaussian_quantizer_stats(values, sig, rounding, bound=m)
    var = sd * sd
    return st["mse"] / var, st["eqx"] / var


def _truncated_stats(values, rounding, sd, bound):
    """Per element ``(mse, E[QX]) / sd^2`` for Gaussians of standard deviation ``sd``
    truncated to ``+-bound``, interpolated (log ``sd / bound``) in :func:`_stats_table`;
    ``bound`` takes few distinct values per scheme (one for float32 scales; for MX and
    NVFP4 it is gridded in 65 steps and interpolated linearly)."""
    key = np.asarray(values, dtype=np.float64).tobytes()
    sd = np.asarray(sd, dtype=np.float64)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), sd.shape)
    lr = np.log(np.clip(sd / bound, _RHO[0], _RHO[-1]))
    grid = np.log(_RHO)
    uniq = np.unique(bound)
    if uniq.size <= 4:
        levels, frac = uniq, None
    else:
        # a fixed grid of 64 steps per octave, so that tables are shared between matrices
        k = np.arange(np.floor(64 * np.log2(uniq[0])), np.ceil(64 * np.log2(uniq[-1])) + 1)
        if k.size < 2:
            k = np.array([k[0], k[0] + 1])
        levels = np.exp2(k / 64)
        pos = np.interp(np.log(bound), np.log(levels), np.arange(levels.size))
        lo_i = np.minimum(np.floor(pos).astype(int), levels.size - 2)
        frac = pos - lo_i
    out_mse = np.zeros(sd.shape)
    out_eqx = np.zeros(sd.shape)
    for i, m in enumerate(levels):
        t_mse, t_eqx = _stats_table(key, rounding, float(m))
        if frac is None:
            sel = bound == m
            out_mse[sel] = np.interp(lr[sel], grid, t_mse)
            out_eqx[sel] = np.interp(lr[sel], grid, t_eqx)
            continue
        wgt = np.where(lo_i == i, 1.0 - frac, 0.0) + np.where(lo_i + 1 == i, frac, 0.0)
        sel = wgt > 0
        if sel.any():
            out_mse[sel] += wgt[sel] * np.interp(lr[sel], grid, t_mse)
            out_eqx[sel] += wgt[sel] * np.interp(lr[sel], grid, t_eqx)
    return out_mse, out_eqx


def _blocks(x, block):
    """``x`` (R, K) as (R, nb, b) zero-padded, with the element count of every block."""
    r, k = x.shape
    if block == 0:
        flat = x.reshape(1, 1, -1)
        return flat, np.array([[x.size]])
    b = k if block is None else block
    nb = -(-k // b)
    pad = nb * b - k
    xb = np.concatenate([x, np.zeros((r, pad))], axis=1) if pad else x
    counts = np.full((r, nb), b)
    if pad:
        counts[:, -1] = b - pad
    return xb.reshape(r, nb, b), counts


def _group_scale_top(sch, amax, x):
    """``M = amax / scale`` per group for the scheme's scale rule."""
    kind = sch.scale_kind
    if kind == "float32":
        return np.full(amax.shape, _float32_top(sch))
    if kind == "e8m0":
        emax = int(np.floor(np.log2(sch.elem_fmt.max_abs)))
        _, ex = np.frexp(np.where(amax > 0, amax, 1.0))
        return np.where(amax > 0, amax / np.ldexp(1.0, ex - 1 - emax), 1.0)
    if kind == "e4m3":
        t_amax = float(np.max(np.abs(x)))
        ts = np.float64(np.float32(t_amax / (448.0 * 6.0))) if t_amax > 0 else 1.0
        sb = decode(encode(amax / 6.0 / ts, "float8_e4m3fn"), "float8_e4m3fn") * ts
        return np.where((amax > 0) & (sb > 0), amax / np.where(sb > 0, sb, 1.0), 1.0)
    raise ParameterError(f"no scale model for scale kind {kind!r}")


def group_noise(x, scheme, rounding="nearest_even"):
    """Predicted quantization-noise variance of every element of ``x`` (2-D, blocks along the
    last axis) under ``scheme``, from each group's amax and rms (module docstring, step 1).

    Inside a group the elements' variances follow the separable profile
    ``E[x_rc^2] ~ (row energy r) (column energy c)`` of the whole matrix (flat for iid
    data; it keeps a few outlier columns from being treated as a wide Gaussian).

    Returns ``(noise, crest)``: ``noise`` has the shape of ``x`` (absolute variance, the
    decorrelated part of the error); ``crest`` is amax/rms per group (R x n_blocks, or 1 x 1
    for per-tensor schemes).  No element is quantized.
    """
    sch = _scheme(scheme)
    if rounding not in STABILITY_ROUNDING:
        raise ParameterError(f"rounding must be one of {', '.join(STABILITY_ROUNDING)}, "
                         f"not {rounding!r}")
    x = np.asarray(x, dtype=np.float64)
    x2 = x * x
    tot = float(x2.mean())
    prof = (np.outer(x2.mean(axis=1), x2.mean(axis=0)) / tot) if tot > 0 else np.ones(x.shape)
    xb, counts = _blocks(x, sch.block)
    pb, _ = _blocks(prof, sch.block)
    mask, _ = _blocks(np.ones(x.shape), sch.block)
    amax = np.max(np.abs(xb), axis=-1)
    ss = np.sum(xb * xb, axis=-1)
    g = counts.astype(np.float64)
    # the largest element of each group is on the grid's top; the profile covers the others
    imax = np.argmax(np.abs(xb), axis=-1)[..., None]
    is_max = np.zeros(xb.shape, bool)
    np.put_along_axis(is_max, imax, True, axis=-1)
    max_sign = np.where(np.take_along_axis(xb, imax, axis=-1)[..., 0] < 0, -1.0, 1.0)
    others = mask * ~is_max
    with np.errstate(divide="ignore", invalid="ignore"):
        crest = np.where(ss > 0, amax / np.sqrt(ss / g), 0.0)
        pmean = np.sum(pb * others, axis=-1) / np.maximum(g - 1, 1)
        w = np.where(pmean[..., None] > 0, pb / np.where(pmean > 0, pmean, 1.0)[..., None], 1.0)
    m_top = _group_scale_top(sch, amax, x)
    live = amax > 0
    other = np.maximum(ss - amax ** 2, 0.0) / np.maximum(g - 1, 1)
    best = None
    for values in _tables(sch):
        tops = [None] if not sch.element.startswith("bitmod") else sorted(
            {12.0, float(np.max(np.abs(values)))})
        for top in tops:
            mt = m_top if top is None else np.full(amax.shape, top)
            sc = np.where(live, amax / mt, 0.0)
            su = np.where(live, np.sqrt(other) / np.where(live, sc, 1.0), 0.0)[..., None]
            su = su * np.sqrt(w)
            pos = su > 0
            mte = np.broadcast_to(mt[..., None], su.shape)
            # the other elements are bounded by the group's max: truncated Gaussians
            r_mse, r_eqx = _truncated_stats(values, rounding, np.where(pos, su, 1.0), mte)
            su2 = np.where(pos, su * su, 0.0)
            st = {"mse": r_mse * su2, "eqx": r_eqx * su2, "var": su2}
            e_max, e_mean = _grid_error_at(values, max_sign * mt, rounding)
            s2 = (sc ** 2)[..., None]
            mse = s2 * np.where(is_max, e_max[..., None], np.where(pos, st["mse"], 0.0) * others)
            # E[e x] with e = Q - x: eqx - var for the others; for the max, (q(M) - M) M
            cross = s2 * np.where(is_max, (e_mean * max_sign * mt)[..., None],
                                  np.where(pos, st["eqx"] - st["var"], 0.0) * others)
            x2 = s2 * np.where(is_max, mte ** 2, np.where(pos, st["var"], 0.0) * others)
            energy = np.sum(mse, axis=-1)
            if best is None:
                best = [energy, mse, cross, x2]
                continue
            better = (energy < best[0])
            best[0] = np.where(better, energy, best[0])
            for k, arr in ((1, mse), (2, cross), (3, x2)):
                best[k] = np.where(better[..., None], arr, best[k])
    maps = []
    for arr in best[1:]:
        arr = np.where(live[..., None], arr, 0.0)
        maps.append(arr.reshape(x.shape) if sch.block == 0
                    else arr.reshape(x.shape[0], -1)[:, :x.shape[1]])
    mse, cross, x2 = maps
    # a common gain of the whole matrix only rescales the signal: remove it (decorrelate at
    # the matrix level, not per element -- killing small elements is noise, not gain)
    tot2 = float(np.sum(x2))
    gamma = float(np.sum(cross)) / tot2 if tot2 > 0 else 0.0
    noise = np.maximum(mse - 2.0 * gamma * cross + gamma ** 2 * x2, 0.0)
    return noise, crest


def gaussian_crest(g):
    """E[max |z_i|] / 1 over ``g`` iid standard normals: the crest factor a Gaussian group
    of size ``g`` has on average (exact integral)."""
    g = max(int(g), 1)
    t = np.linspace(0.0, 12.0, 24001)
    cdf = np.clip(2.0 * ndtr(t) - 1.0, 0.0, 1.0) ** g
    return float(np.trapezoid(1.0 - cdf, t))


# -- step 2: scheme-independent gains of the chain --------------------------------------------

@dataclass
class ChainGains:
    """Column/row energies of the partial products of a chain (scheme-independent).

    ``dims[i]`` = n_i (``dims[0]`` input); ``frob[i] = ||P_i||_F^2``; ``rows[i][c] =
    ||P_i[c, :]||^2``; ``cols[j][t]`` = column energies of ``A_t ... A_{j+1}`` (``t >= j``;
    ones for ``t == j``); ``tail[j] = A_d ... A_{j+1}`` (``tail[d] = I``); ``p_d = P_d``.
    """

    dims: list
    frob: np.ndarray
    rows: list
    cols: list
    tail: list
    p_d: np.ndarray
    energies: list = None
    _out: dict = None

    def output_terms(self, head):
        """Per tail ``L_j``: ``(L_j**2, ||(L_j^T P_d)[r, :]||^2, head @ L_j)`` (cached)."""
        key = (head.shape, head.tobytes())
        if self._out is None:
            self._out = {}
        if key not in self._out:
            self._out[key] = [(l * l, np.sum((l.T @ self.p_d) ** 2, axis=1), head @ l)
                              for l in self.tail]
        return self._out[key]


def chain_gains(mats, trials=256, seed=0):
    """Compute :class:`ChainGains` (``d (d+1) / 2`` matrix products).

    ``energies[i]`` holds ``(P_i x)**2`` for ``trials`` inputs ``x ~ N(0, I)`` drawn
    independently of :func:`measure_chain`'s (float chain only: they give the spread of
    the signal and noise energies over inputs)."""
    mats = check_chain(mats)
    trials = check_integral("trials", trials, 1)
    d = len(mats)
    dims = [mats[0].shape[1]] + [a.shape[0] for a in mats]
    p = np.eye(dims[0])
    h = np.random.default_rng([seed, 0x9E7]).standard_normal((dims[0], trials))
    rows, frob, energies = [np.ones(dims[0])], [float(dims[0])], [h * h]
    for a in mats:
        p = a @ p
        h = a @ h
        r = np.sum(p * p, axis=1)
        rows.append(r)
        frob.append(float(r.sum()))
        energies.append(h * h)
    cols, tail = [], []
    for j in range(d + 1):
        cj = {j: np.ones(dims[j])}
        l = None
        for t in range(j + 1, d + 1):
            l = mats[t - 1] if l is None else mats[t - 1] @ l
            cj[t] = np.sum(l * l, axis=0)
        cols.append(cj)
        tail.append(np.eye(dims[d]) if l is None else l)
    return ChainGains(dims, np.array(frob), rows, cols, tail, p, energies)


# -- the prediction ----------------------------------------------------------------------------

def _head(n_out, classes, seed):
    rng = np.random.default_rng([seed, 0x4EAD, n_out, classes])
    c = rng.standard_normal((classes, n_out))
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def predict_chain(mats, scheme, *, activations=False, rounding="nearest_even", trials=256,
                  seed=0, gains=None, classes=10):
    """Predicted cosine, sign agreement, P(<y, y_q> > 0), head top-1 and per-layer terms
    for ``scheme`` on the chain ``mats``, from the matrices alone (module docstring).

    Returns a dict: ``cosine``, ``nsr``, ``sign_agreement``, ``p_positive_inner``,
    ``top1_agreement``, ``layers`` (one dict per layer: ``weight_nsr`` eps_i (relative
    weight error), ``amplification`` G_i, ``contribution`` nu_i, the same three for
    activations, ``crest_max``, ``crest_mean``, ``cosine`` and ``rel_error`` after the layer).
    """
    mats = check_chain(mats)
    sch = _scheme(scheme)
    trials = check_integral("trials", trials, 1)
    g = gains if gains is not None else chain_gains(mats, trials, seed)
    d = len(mats)
    sig2, taus, layers = [], [], []
    for i, a in enumerate(mats, start=1):
        noise, crest = group_noise(a, sch, rounding)
        ent = {"layer": i, "shape": list(a.shape),
               "crest_max": float(np.max(crest)), "crest_mean": float(np.mean(crest)),
               "weight_nsr": float(noise.sum() / np.sum(a * a))}
        sig2.append(noise)
        if activations:
            rng = np.random.default_rng([seed, 0xAC7, i])
            v = g.rows[i - 1]
            z = rng.standard_normal((trials, v.size)) * np.sqrt(v)[None, :]
            tau_noise, acrest = group_noise(z, sch, rounding)
            tau = tau_noise.mean(axis=0)
            ent["act_crest_mean"] = float(np.mean(acrest))
            ent["act_nsr"] = float(tau.sum() / g.frob[i - 1])
            taus.append(tau)
        layers.append(ent)
    # prefix predictions: nu_j^(t) for every output depth t, aggregated and per input
    cos_t, nsr_t, nu_final, nua_final, w_terms = [], [0.0], None, None, []
    for j in range(1, d + 1):
        w_terms.append(sig2[j - 1] @ g.rows[j - 1])  # noise energy of output row r
    for t in range(1, d + 1):
        nu = np.zeros(t)
        nua = np.zeros(t)
        n_x = np.zeros(g.energies[0].shape[1])
        for j in range(1, t + 1):
            kappa = g.cols[j][t] @ sig2[j - 1]  # per input coordinate of layer j
            nu[j - 1] = kappa @ g.rows[j - 1] / g.frob[t]
            n_x += kappa @ g.energies[j - 1]
            if activations:
                ka = g.cols[j - 1][t] * taus[j - 1]
                nua[j - 1] = ka.sum() / g.frob[t]
                if sch.block == 0:  # one scale for the batch: noise independent of x
                    n_x += ka.sum()
                else:               # per-vector scales: noise follows the vector's energy
                    v = g.rows[j - 1]
                    n_x += (ka / np.where(v > 0, v, 1.0)) @ g.energies[j - 1]
        lin = float(nu.sum() + nua.sum())
        # layer j's quantizers see the signal plus the noise that reached them
        nsr = float(np.sum((nu + nua) * (1.0 + np.array(nsr_t[:t]))))
        s_x = g.energies[t].sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(s_x > 0, n_x / s_x, 0.0) / lin if lin > 0 else np.zeros_like(s_x)
        nsr_t.append(nsr)
        cos_t.append(float(np.mean(1.0 / np.sqrt(1.0 + nsr * ratio))))
        nu_final, nua_final = nu, nua
    nsr_t = nsr_t[1:]
    nsr = nsr_t[-1]
    lin = float(np.sum(nu_final) + np.sum(nua_final))
    for j, ent in enumerate(layers, start=1):
        ent["contribution"] = float(nu_final[j - 1])
        ent["amplification"] = (float(nu_final[j - 1] / ent["weight_nsr"])
                                if ent["weight_nsr"] > 0 else 1.0)
        if activations:
            ent["act_contribution"] = float(nua_final[j - 1])
            ent["act_amplification"] = (float(nua_final[j - 1] / ent["act_nsr"])
                                        if ent["act_nsr"] > 0 else 1.0)
        ent["cosine"] = float(cos_t[j - 1])
        ent["rel_error"] = float(np.sqrt(nsr_t[j - 1]))
    # output noise covariance pieces (linear sum, scaled to the compounded NSR)
    scale = nsr / lin if lin > 0 else 0.0
    n_out = g.dims[-1]
    diag_e = np.zeros(n_out)
    tr_ye = 0.0
    head = _head(n_out, classes, seed)
    ce = np.zeros((classes, classes))
    pdt = g.p_d
    terms = g.output_terms(head)
    sources = [(terms[j], w_terms[j - 1]) for j in range(1, d + 1)]
    if activations:
        sources += [(terms[j - 1], taus[j - 1]) for j in range(1, d + 1)]
    for (l2, lp, cl), wv in sources:
        diag_e += l2 @ wv
        tr_ye += float(wv @ lp)
        ce += (cl * wv[None, :]) @ cl.T
    diag_e *= scale
    tr_ye *= scale
    ce *= scale
    a_k = g.rows[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(a_k + diag_e > 0, np.sqrt(a_k / (a_k + diag_e)), 1.0)
    sign = float(np.mean(1.0 - np.arccos(np.clip(rho, -1, 1)) / np.pi))
    p_pos = float(ndtr(g.frob[-1] / np.sqrt(tr_ye))) if tr_ye > 0 else 1.0
    cy = head @ pdt
    top1 = _gaussian_top1(cy @ cy.T, ce, seed)
    return {"scheme": sch.name, "cosine": float(cos_t[-1]), "nsr": nsr,
            "nsr_first_order": lin, "sign_agreement": sign, "p_positive_inner": p_pos,
            "top1_agreement": top1, "layers": layers}


def _gaussian_top1(sz, sn, seed, samples=20000):
    rng = np.random.default_rng([seed, 0x7091])
    k = sz.shape[0]

    def root(s):
        w, v = np.linalg.eigh(0.5 * (s + s.T))
        return v * np.sqrt(np.maximum(w, 0.0))[None, :]

    z = rng.standard_normal((samples, k)) @ root(sz).T
    e = rng.standard_normal((samples, k)) @ root(sn).T
    return float(np.mean(np.argmax(z, axis=1) == np.argmax(z + e, axis=1)))


# -- the measurement ---------------------------------------------------------------------------

def measure_chain(mats, scheme, *, activations=False, rounding="nearest_even", trials=256,
                  seed=0, x=None, classes=10, reference=None):
    """Run the chain in float64 and quantized (each weight matrix quantized once; all
    ``trials`` inputs as one matrix).  Returns a dict of the measured statistics (module
    docstring) with per-layer ``rel_error`` and ``cosine``.

    ``x`` (``n_0 x T``) overrides the random inputs; ``reference`` (the float activations
    after each layer, as returned in ``"_float"``) saves recomputing them across schemes.
    """
    mats = check_chain(mats)
    sch = _scheme(scheme)
    if rounding not in STABILITY_ROUNDING:
        raise ParameterError(f"rounding must be one of {', '.join(STABILITY_ROUNDING)}, "
                         f"not {rounding!r}")
    if x is None:
        trials = check_integral("trials", trials, 1)
        x = np.random.default_rng([seed, 0x1A9]).standard_normal((mats[0].shape[1], trials))
    if reference is None:
        reference, h = [], x
        for a in mats:
            h = a @ h
            reference.append(h)
    stoch = rounding == "stochastic"
    hq = x
    per_layer = []
    for i, a in enumerate(mats, start=1):
        aq = quantize(a, sch.name, axis=-1, rounding=rounding,
                      seed=[seed, 0x5EED, i] if stoch else None).dequantize()
        if activations:
            hq = quantize(hq, sch.name, axis=0, rounding=rounding,
                          seed=[seed, 0xAC7, i] if stoch else None).dequantize()
        hq = aq @ hq
        h = reference[i - 1]
        per_layer.append({"layer": i, "rel_error": float(np.linalg.norm(hq - h) / np.linalg.norm(h)),
                          "cosine": float(np.mean(_cosines(h, hq)))})
    y, yq = reference[-1], hq
    cos = _cosines(y, yq)
    head = _head(y.shape[0], classes, seed)
    return {"scheme": sch.name, "cosine": float(np.mean(cos)),
            "p_positive_inner": float(np.mean(np.sum(y * yq, axis=0) > 0)),
            "sign_agreement": float(np.mean(np.sign(y) == np.sign(yq))),
            "top1_agreement": float(np.mean(np.argmax(head @ y, axis=0)
                                            == np.argmax(head @ yq, axis=0))),
            "layers": per_layer, "_float": reference}


def _cosines(y, yq):
    num = np.sum(y * yq, axis=0)
    den = np.linalg.norm(y, axis=0) * np.linalg.norm(yq, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


# -- diagnosis and the whole analysis ----------------------------------------------------------

def diagnose(pred, scheme, names=None, group=None):
    """One sentence or two: which layer (and operand) dominates the predicted noise, and
    which property -- amplification, crest factor or the format's step -- makes it so.

    ``group`` is the scaling-group size (elements sharing a scale) for the crest reference.
    """
    layers = pred["layers"]
    cands = []
    for e in layers:
        cands.append((e["contribution"], "weights", e))
        if "act_contribution" in e:
            cands.append((e["act_contribution"], "activations", e))
    total = sum(c[0] for c in cands) or 1.0
    share, operand, e = max(cands, key=lambda c: c[0])
    name = names[e["layer"] - 1] if names else f"layer {e['layer']}"
    amp = e["amplification"] if operand == "weights" else e["act_amplification"]
    local = e["weight_nsr"] if operand == "weights" else e["act_nsr"]
    frac = share / total
    if frac < min(0.5, 2.0 / len(cands)):
        where = (f"the noise is spread over all {len(layers)} layers (largest share "
                 f"{100 * frac:.0f}%, the {operand} of {name})")
    else:
        where = f"the {operand} of {name} contribute {100 * frac:.0f}% of the noise"
    head = f"{scheme}: predicted cosine {pred['cosine']:.4f}; {where}"
    if amp > AMPLIFICATION_THRESHOLD:
        why = (f"amplification: noise injected there grows {amp:.3g}x more than the signal "
               f"on its way to the output (cancellation: the later layers undo or attenuate "
               f"the directions the signal occupies, as a matrix followed by its near-inverse "
               f"or an ill-conditioned product does), although its own relative error is "
               f"only {local:.2e}; a rotation does not help (it keeps the norms), less error in "
               f"these layers does (a finer scheme, higher precision) or a better-"
               f"conditioned factorization")
    else:
        crest = e["crest_mean"] if operand == "weights" else e.get("act_crest_mean", 0.0)
        ref = gaussian_crest(group) if group else None
        if ref and crest > 1.5 * ref:
            why = (f"crest factor: its scaling groups have max/rms {crest:.3g} on average "
                   f"(a Gaussian group of {group} has {ref:.2f}), so most values fall on the few "
                   f"smallest levels (relative error {local:.2e}); smaller groups or a "
                   f"Hadamard rotation (--rotate hadamard) lower it")
        else:
            why = (f"format resolution: the groups are near-Gaussian (crest {crest:.3g}"
                   + (f", Gaussian {ref:.2f}" if ref else "") + f"), the format's step gives "
                   f"relative error {local:.2e} per layer and {len(layers)} layers compound "
                   f"it (amplification {amp:.2f})")
    return f"{head}. Dominant: {why}."


def _group_size(sch, shape):
    """Elements that share one scale in a matrix of ``shape`` blocked along axis -1."""
    if sch.block == 0:
        return int(np.prod(shape))
    return shape[1] if sch.block is None else min(sch.block, shape[1])


def analyze(mats, schemes=DEFAULT_SCHEMES, *, trials=256, activations=False,
            rounding="nearest_even", rotate=None, seed=0, target_cosine=0.95, names=None,
            measure=True, source=None, progress=None):
    """Measure and predict every scheme on a chain; diagnose; find the cheapest scheme.

    ``rotate`` is ``None`` or ``"hadamard"`` (:func:`nybble.analysis.chains.rotate_chain`).
    Returns a list with one dict per scheme (keys ``scheme``, ``measured_cosine``,
    ``predicted_cosine``, ``p_positive_inner``, ``sign_agreement``, ``top1_agreement``,
    ``per_layer`` and more; measured values are ``None`` when ``measure`` is false).
    """
    mats = check_chain(mats, names)
    if rotate not in (None, "none", "hadamard"):
        raise ParameterError(f"rotate must be 'hadamard' or None, not {rotate!r}")
    if rounding not in STABILITY_ROUNDING:
        raise ParameterError(f"rounding must be one of {', '.join(STABILITY_ROUNDING)}, "
                         f"not {rounding!r}")
    if isinstance(target_cosine, bool) or not isinstance(target_cosine, numbers.Real) \
            or not 0 < float(target_cosine) <= 1:
        raise ParameterError(f"target_cosine must be in (0, 1], not {target_cosine!r}")
    schemes = [_scheme(s).name for s in schemes]
    if not schemes:
        raise ParameterError("schemes must name at least one scheme")
    trials = check_integral("trials", trials, 1)
    rotate = None if rotate == "none" else rotate
    if rotate == "hadamard":
        mats, _ = rotate_chain(mats, seed)
    gains = chain_gains(mats, trials, seed)
    x = np.random.default_rng([seed, 0x1A9]).standard_normal((mats[0].shape[1], trials))
    reference = None
    max_amp = None
    out = []
    for s in schemes:
        if progress:
            progress(s)
        pred = predict_chain(mats, s, activations=activations, rounding=rounding,
                             trials=trials, seed=seed, gains=gains)
        amps = [e["amplification"] for e in pred["layers"]]
        max_amp = max(amps) if max_amp is None else max(max_amp, max(amps))
        meas = None
        if measure:
            meas = measure_chain(mats, s, activations=activations, rounding=rounding,
                                 seed=seed, x=x, reference=reference)
            reference = meas.pop("_float")
        sch = get_scheme(s)
        k = mats[0].shape[1]
        per_layer = []
        for j, e in enumerate(pred["layers"]):
            row = {"layer": e["layer"], "name": names[j] if names else f"layer {j + 1}",
                   "shape": e["shape"],
                   "crest_max": e["crest_max"], "crest_mean": e["crest_mean"],
                   "weight_nsr": e["weight_nsr"], "amplification": e["amplification"],
                   "contribution": e["contribution"],
                   "predicted_cosine": e["cosine"], "predicted_rel_error": e["rel_error"]}
            if activations:
                row.update(act_nsr=e["act_nsr"], act_amplification=e["act_amplification"],
                           act_contribution=e["act_contribution"],
                           act_crest_mean=e["act_crest_mean"])
            if meas:
                row.update(measured_cosine=meas["layers"][j]["cosine"],
                           measured_rel_error=meas["layers"][j]["rel_error"])
            per_layer.append(row)
        out.append({
            "scheme": s,
            "bits_per_weight": scheme_bits(s, k),
            "measured_cosine": meas["cosine"] if meas else None,
            "predicted_cosine": pred["cosine"],
            "p_positive_inner": meas["p_positive_inner"] if meas else None,
            "predicted_p_positive_inner": pred["p_positive_inner"],
            "sign_agreement": meas["sign_agreement"] if meas else None,
            "predicted_sign_agreement": pred["sign_agreement"],
            "top1_agreement": meas["top1_agreement"] if meas else None,
            "predicted_top1_agreement": pred["top1_agreement"],
            "predicted_nsr": pred["nsr"],
            "predicted_stable": pred["cosine"] >= target_cosine,
            "measured_stable": (meas["cosine"] >= target_cosine) if meas else None,
            "diagnosis": diagnose(pred, s, names, _group_size(sch, mats[0].shape)),
            "per_layer": per_layer,
        })
    cancellation = max_amp is not None and max_amp > AMPLIFICATION_THRESHOLD
    cost = {r["scheme"]: (r["bits_per_weight"], _pe_rank(r["scheme"])) for r in out}
    ok_pred = sorted((r for r in out if r["predicted_stable"]), key=lambda r: cost[r["scheme"]])
    ok_meas = sorted((r for r in out if r["measured_stable"]), key=lambda r: cost[r["scheme"]])
    chain_info = {"source": source, "depth": len(mats), "dims": gains.dims,
                  "rotate": rotate or "none", "rounding": rounding,
                  "activations": bool(activations), "trials": trials, "seed": seed,
                  "target_cosine": float(target_cosine),
                  "max_amplification": max_amp, "cancellation": bool(cancellation)}
    for r in out:
        r["cheapest_meeting_target"] = ok_pred[0]["scheme"] if ok_pred else None
        r["cheapest_meeting_target_measured"] = ok_meas[0]["scheme"] if ok_meas else None
        r["chain"] = chain_info
    return out
