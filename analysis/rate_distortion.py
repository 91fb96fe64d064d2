r"""How far each format is from the information-theoretic limits, for Gaussian data.

Scalars (:func:`scalar_report`)
-------------------------------
For a unit Gaussian source the distortion-rate function is ``D(R) = 2**(-2R)`` (MSE at
``R`` bits per sample), so a quantizer with MSE ``D`` at rate ``R`` is

    gap = R - 1/2 log2(1 / D)  bits

above the limit.  References at the same rate: the fixed-rate optimum (Lloyd-Max,
:func:`nybble.analysis.lloyd_max.lloyd_max`, 0.64 bit above at 4 bits) and an entropy-coded uniform
quantizer (``1/2 log2(pi e / 6) = 0.254`` bit above at high rate).  Each scheme is measured on
Gaussian data with its own block scaling, at its rate including the scale bits
(:func:`nybble.analysis.stability.scheme_bits`); each 4-bit element format is also evaluated
exactly (Gaussian integrals) with the single best scale for a unit Gaussian.

Inner products and matmul (:func:`inner_product_report`)
---------------------------------------------------------
Ordentlich & Polyanskiy, "Optimal Quantization for Matrix Multiplication" (arXiv 2410.13780):
for ``U, V`` in ``R^n`` with iid ``N(0, 1)`` entries, each compressed to ``nR`` bits
independently, the smallest achievable ``E[(U^T V - est)^2] / n`` is, for large ``n``,

    Gamma(R) = 2 * 2**(-2R) - 2**(-4R)                    for R >= R* ~ 0.906
    Gamma(R) = 1 - (1 - Gamma(R*)) R / R*                 for R <  R*  (time sharing)

where ``R*`` is where the tangent from ``(0, 1)`` touches ``2 * 2**(-2R) - 2**(-4R)``
(computed here, :func:`ip_critical_rate`).  The same function bounds the per-entry error of a
matrix product ``A^T B`` of iid Gaussian matrices normalised by the inner dimension.
``2 D - D^2`` is what two MMSE-scaled Gaussian-optimal vector quantizers at distortion
``D = 2**(-2R)`` give; scalar quantizers with unbiased-looking rounding get about ``2 D + D^2``
(:func:`inner_product_report` lists both next to the measurement).

GPTQ against round-to-nearest (:func:`gptq_report`, :mod:`nybble.analysis.gptq`) is compared by the
weighted error ``tr((W - W_q) H (W - W_q)^T)`` and against the Gaussian reverse-waterfilling
limit for that error (:func:`waterfilling_distortion`).
"""

from functools import lru_cache

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from nybble.sw.formats import get_format, check_integral
from nybble.sw.quantize import quantize, get_scheme
from .lloyd_max import lloyd_max, gaussian_quantizer_mse
from .gptq import gptq_quantize, weighted_error
from .stability import scheme_bits

__all__ = ["gaussian_distortion_rate", "gaussian_rate", "gap_bits", "ENTROPY_CODED_GAP",
           "ip_distortion_limit", "ip_critical_rate", "ip_rate", "best_scale_mse",
           "scheme_gaussian_mse", "scalar_report", "inner_product_report",
           "waterfilling_distortion", "waterfilling_rate", "gptq_report", "rd_report"]

#: bits above D(R) of an entropy-coded uniform scalar quantizer at high rate (2 pi e / 12)
ENTROPY_CODED_GAP = 0.5 * np.log2(np.pi * np.e / 6.0)

SCALAR_SCHEMES = ("int4_tensor", "int4_channel", "int4_g32", "mxfp4", "nvfp4", "e3m0_g32",
                  "nf4_g64", "bitmod_g128", "mxfp6_e2m3", "mxfp8_e4m3")
ELEMENT_FORMATS = ("int4", "float4_e2m1fn", "e3m0", "nf4")


def gaussian_distortion_rate(rate):
    """``D(R) = 2**(-2R)``: the least MSE at ``R`` bits per sample for a unit Gaussian."""
    return np.exp2(-2.0 * np.asarray(rate, dtype=np.float64))


def gaussian_rate(mse):
    """``R(D) = max(0, 1/2 log2(1 / D))`` for a unit Gaussian."""
    return np.maximum(0.0, 0.5 * np.log2(1.0 / np.asarray(mse, dtype=np.float64)))


def gap_bits(mse, rate):
    """Bits spent above the Gaussian limit: ``rate - R(mse)``."""
    return float(rate - gaussian_rate(mse))


def _f_naive(r):
    return 2.0 * np.exp2(-2.0 * r) - np.exp2(-4.0 * r)


@lru_cache(maxsize=None)
def ip_critical_rate():
    """``R*``: where the tangent from ``(0, 1)`` touches ``2 * 2**(-2R) - 2**(-4R)``."""
    ln2 = np.log(2.0)

    def tangent(r):
        fp = -4.0 * ln2 * np.exp2(-2.0 * r) + 4.0 * ln2 * np.exp2(-4.0 * r)
        return _f_naive(r) - r * fp - 1.0

    return float(brentq(tangent, 0.3, 3.0, xtol=1e-14))


def ip_distortion_limit(rate):
    """``Gamma(R)``: the inner-product / matmul distortion limit per unit of inner dimension
    (Ordentlich & Polyanskiy 2024), for iid unit Gaussians."""
    r = np.asarray(rate, dtype=np.float64)
    rs = ip_critical_rate()
    lin = 1.0 - (1.0 - _f_naive(rs)) * r / rs
    out = np.where(r >= rs, _f_naive(np.maximum(r, 0.0)), lin)
    return float(out) if out.ndim == 0 else out


def ip_rate(distortion):
    """The inverse of :func:`ip_distortion_limit`: the least rate achieving ``distortion``."""
    d = float(distortion)
    if d >= 1.0:
        return 0.0
    rs = ip_critical_rate()
    ds = _f_naive(rs)
    if d >= ds:
        return float((1.0 - d) / (1.0 - ds) * rs)
    return float(-0.5 * np.log2(1.0 - np.sqrt(1.0 - d)))


def best_scale_mse(fmt, rounding="nearest_even"):
    """``(mse, scale)``: the element format's levels times the single scale that minimises
    the MSE for a unit Gaussian (exact integrals; golden-section search in log scale)."""
    f = get_format(fmt)
    v = f.values[np.isfinite(f.values)]

    def mse(log_s):
        return float(gaussian_quantizer_mse(v * np.exp(log_s), 1.0, rounding))

    top = float(np.max(np.abs(v)))
    lo, hi = np.log(0.5 / top), np.log(8.0 / top)
    grid = np.linspace(lo, hi, 121)
    vals = [mse(g) for g in grid]
    i = int(np.argmin(vals))
    res = minimize_scalar(mse, bracket=(grid[max(i - 1, 0)], grid[i], grid[min(i + 1, 120)]),
                          tol=1e-10) if 0 < i < 120 else None
    if res is not None and res.fun <= vals[i]:
        return float(res.fun), float(np.exp(res.x))
    return float(vals[i]), float(np.exp(grid[i]))


def _gaussian(shape, seed):
    return np.random.default_rng([seed, 0x6A55]).standard_normal(shape)


def scheme_gaussian_mse(scheme, *, rows=256, cols=2048, seed=0):
    """``(mse, stderr)`` of ``scheme`` on iid unit-Gaussian data (``rows x cols``, blocks
    along the rows)."""
    x = _gaussian((rows, cols), seed)
    e2 = (quantize(x, scheme, axis=-1).dequantize() - x) ** 2
    per_row = e2.mean(axis=1)
    return float(per_row.mean()), float(per_row.std(ddof=1) / np.sqrt(rows))


def _rate(scheme, k):
    return scheme_bits(scheme, k)


def scalar_report(schemes=SCALAR_SCHEMES, *, rows=256, cols=2048, seed=0):
    """Per scheme: rate (bits/element incl. scales), MSE on unit-Gaussian data, ``D(R)``,
    the Lloyd-Max MSE at the element's bits, and the gaps in bits; per 4-bit element format:
    the exact MSE with the best single scale."""
    out = {"schemes": [], "element_formats": [], "lloyd_max": [],
           "entropy_coded_uniform_gap_bits": ENTROPY_CODED_GAP}
    for b in range(1, 9):
        q = lloyd_max(b)
        out["lloyd_max"].append({"bits": b, "mse": q.mse, "d_r": float(gaussian_distortion_rate(b)),
                                 "gap_bits": q.gap_bits, "iterations": q.iterations})
    for s in schemes:
        sch = get_scheme(s)
        rate = _rate(s, cols)
        mse, se = scheme_gaussian_mse(s, rows=rows, cols=cols, seed=seed)
        lm = lloyd_max(sch.elem_fmt.bits).mse if sch.elem_fmt.bits <= 8 else None
        out["schemes"].append({
            "scheme": s, "element_bits": sch.elem_fmt.bits, "rate": rate, "mse": mse,
            "mse_stderr": se, "d_r": float(gaussian_distortion_rate(rate)),
            "gap_bits": gap_bits(mse, rate), "lloyd_max_mse": lm,
            "lloyd_max_gap_bits": gap_bits(lm, sch.elem_fmt.bits) if lm else None,
            "excess_over_lloyd_max": mse / lm - 1.0 if lm else None})
    for f in ELEMENT_FORMATS:
        fmt = get_format(f)
        mse, scale = best_scale_mse(f)
        lm = lloyd_max(fmt.bits).mse
        out["element_formats"].append({
            "format": fmt.name, "bits": fmt.bits, "mse": mse, "scale": scale,
            "levels": int(np.unique(fmt.values[np.isfinite(fmt.values)]).size),
            "d_r": float(gaussian_distortion_rate(fmt.bits)),
            "gap_bits": gap_bits(mse, fmt.bits), "lloyd_max_mse": lm,
            "excess_over_lloyd_max": mse / lm - 1.0})
    return out


def inner_product_report(schemes=SCALAR_SCHEMES, *, n=2048, m=64, p=64, seed=0):
    """Per scheme: the matmul error ``E||A^T B - A_q^T B_q||_F^2 / (n m p)`` for iid unit
    Gaussian ``A`` (``n x m``) and ``B`` (``n x p``), both quantized along ``n``, against
    ``Gamma(R)`` at the scheme's rate, with the gap in bits ``R - Gamma^-1(D)``."""
    rows = []
    a = _gaussian((n, m), seed + 1)
    b = _gaussian((n, p), seed + 2)
    exact = a.T @ b
    for s in schemes:
        aq = quantize(a, s, axis=0).dequantize()
        bq = quantize(b, s, axis=0).dequantize()
        d = float(np.mean((aq.T @ bq - exact) ** 2) / n)
        mse = float((np.mean((aq - a) ** 2) + np.mean((bq - b) ** 2)) / 2)
        rate = _rate(s, n)
        rows.append({"scheme": s, "rate": rate, "distortion": d, "element_mse": mse,
                     "naive_2d_plus_d2": 2 * mse + mse ** 2,
                     "limit": ip_distortion_limit(rate), "gap_bits": rate - ip_rate(d)})
    return {"critical_rate": ip_critical_rate(), "n": n, "m": m, "p": p, "schemes": rows}


def waterfilling_distortion(eigenvalues, rate, sigma2=1.0):
    """Least ``E[(w - w_q)^T H (w - w_q)]`` for ``w ~ N(0, sigma2 I_K)`` at ``rate`` bits per
    entry (``K rate`` bits per row): reverse water-filling over ``H``'s eigenvalues,
    ``sum_k min(theta, sigma2 lambda_k)`` with ``sum_k 1/2 log2(sigma2 lambda_k / theta)^+ =
    K rate``."""
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None) * sigma2
    lam = lam[lam > 0]
    total_bits = rate * np.asarray(eigenvalues).size
    if lam.size == 0:
        return 0.0
    if total_bits <= 0:
        return float(lam.sum())

    log_lam = np.log(lam)

    def bits(log_theta):
        return float(np.sum(np.maximum(0.0, 0.5 * (log_lam - log_theta) / np.log(2.0))))

    lo, hi = np.log(lam.min()) - 2 * total_bits - 50, np.log(lam.max())
    log_theta = brentq(lambda t: bits(t) - total_bits, lo, hi, xtol=1e-13)
    return float(np.sum(np.minimum(np.exp(log_theta), lam)))


def waterfilling_rate(eigenvalues, distortion, sigma2=1.0):
    """Inverse of :func:`waterfilling_distortion`: bits per entry needed for ``distortion``."""
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None) * sigma2
    k = np.asarray(eigenvalues).size
    if distortion >= lam.sum():
        return 0.0
    return float(brentq(lambda r: waterfilling_distortion(eigenvalues, r, sigma2) - distortion,
                        0.0, 64.0, xtol=1e-12))


def calibration_covariance(k=256, samples=4096, *, condition=1e3, outliers=4,
                           outlier_scale=10.0, seed=0):
    """A synthetic LLM-like calibration covariance ``H = X X^T / N`` (``k x k``): correlated
    features with a log-spaced spectrum over ``condition`` and ``outliers`` channels scaled
    ``outlier_scale`` times."""
    k = check_integral("k", k, 2)
    rng = np.random.default_rng([seed, 0xCA1])
    u, _ = np.linalg.qr(rng.standard_normal((k, k)))
    lam = np.logspace(0, -np.log10(condition), k)
    x = (u * np.sqrt(lam)[None, :]) @ rng.standard_normal((k, samples))
    if outliers:
        x[rng.choice(k, size=min(outliers, k), replace=False)] *= outlier_scale
    x /= np.sqrt(np.mean(x * x))
    return x @ x.T / samples


def gptq_report(schemes=("int4_channel", "int4_g32", "mxfp4", "e3m0_g32", "nf4_g64"), *,
                rows=256, k=256, seed=0, h=None, w=None):
    """RTN vs GPTQ vs GPTQ with a random (Hadamard) rotation, by weighted error
    ``tr((W - W_q) H (W - W_q)^T)``, for a Gaussian ``W`` (``rows x k``) and the synthetic
    calibration covariance (or the given ``h`` / ``w``); with the reverse water-filling
    limit at each scheme's rate and every method's gap to it in bits."""
    if h is None:
        h = calibration_covariance(k, seed=seed)
    if w is None:
        w = _gaussian((rows, h.shape[0]), seed + 3)
    lam = np.linalg.eigvalsh(h)
    sigma2 = float(np.mean(w * w))
    out = []
    for s in schemes:
        rate = _rate(s, h.shape[0])
        limit = w.shape[0] * waterfilling_distortion(lam, rate, sigma2)
        row = {"scheme": s, "rate": rate, "limit": limit}
        rtn = quantize(w, s, axis=-1).dequantize()
        results = {"rtn": rtn,
                   "rtn_rotated": gptq_quantize(w, h, s, rotate=True, seed=seed, rtn=True)[0],
                   "gptq": gptq_quantize(w, h, s, seed=seed)[0],
                   "gptq_rotated": gptq_quantize(w, h, s, rotate=True, seed=seed)[0]}
        for name, wq in results.items():
            err = weighted_error(w, wq, h)
            row[name] = err
            row[f"{name}_gap_bits"] = rate - waterfilling_rate(lam, err / w.shape[0], sigma2)
        out.append(row)
    return {"rows": w.shape[0], "k": h.shape[0], "schemes": out}


def rd_report(*, seed=0, quick=False):
    """Everything ``nybble rd`` prints: scalar, inner-product and GPTQ sections."""
    if quick:
        return {"scalar": scalar_report(rows=64, cols=1024, seed=seed),
                "inner_product": inner_product_report(n=1024, m=32, p=32, seed=seed),
                "gptq": gptq_report(rows=64, k=128, seed=seed)}
    return {"scalar": scalar_report(seed=seed), "inner_product": inner_product_report(seed=seed),
            "gptq": gptq_report(seed=seed)}
