"""L-Mul: the approximate floating-point product of "Addition is All You Need" (Luo & Sun 2024).

For two normal floats ``x = (1 + xm) 2^xe`` and ``y = (1 + ym) 2^ye`` with ``m`` mantissa bits,
L-Mul replaces the mantissa product ``xm * ym`` by a constant::

    L-Mul(x, y) = (1 + xm + ym + 2^-l(m)) * 2^(xe + ye),  l(m) = m (m <= 3), 3 (m = 4), 4 (m > 4)

so a multiplier becomes one adder.  Nybble's golden model and RTL compute exactly this, on
integers, for any ``"float"`` format (fp4 e2m1: ``l = 1``; fp8 e4m3: ``l = 3``):

* **Integer form.**  Each operand is a significand ``sig = h * 2^m + M`` (hidden bit ``h``:
  1 for normals, 0 for subnormals and zero; ``M`` the mantissa field) and an effective exponent
  ``eff = max(e, 1)``.  The exact product is ``sig_a * sig_b = h_a h_b 2^(2m) + h_a 2^m M_b +
  h_b 2^m M_a + M_a M_b``; L-Mul drops ``M_a M_b`` and adds ``h_a h_b 2^(2m - l)``::

      lsig = h_a h_b (2^(2m) + 2^(2m - l)) + h_a (M_b << m) + h_b (M_a << m)

  and the product is ``(-1)^(s_a ^ s_b) * lsig << ((eff_a - 1) + (eff_b - 1))`` on the exact
  product grid ``2^-(2 f)`` (``f`` = the format's ``frac_bits``), the grid of
  :func:`nybble.sw.product_format`.  Nothing is rounded: ``l(m) <= m``, so the offset lies on
  the mantissa grid.
* **Mantissa overflow** (``xm + ym + 2^-l >= 1``): the carry is *kept* as a second integer
  bit of the significand (``lsig / 2^(2m)`` lies in ``[1, 3 + 2^-l)``); the exponent is not
  bumped and nothing is renormalised or rounded.  This is the paper's formula evaluated
  exactly.  (An implementation that adds the bit patterns as integers instead carries into
  the exponent, giving ``2 (xm + ym + 2^-l) 2^(xe+ye)`` for those pairs; Nybble does not.)
* **Zero and subnormals**, which the paper leaves out: they follow from the integer form with
  ``h = 0``.  Zero times anything is 0; subnormal x normal drops the ``M_a M_b`` term and gets
  no offset (``lsig = M_a << m``); subnormal x subnormal is 0.
* NaN / Inf codes have no L-Mul product: they are rejected, as by the exact golden model.

The approximate product can be larger than the exact one (fp4 e2m1: ``6 x 6 -> 40``, not 36),
so its range is stated separately: ``product_format(fa, fb, product="lmul")``.
"""

from functools import lru_cache

import numpy as np

from .formats import get_format
from .errors import ParameterError, ParameterTypeError

__all__ = ["lmul_offset_bits", "lmul_product", "lmul_table", "lmul_error"]


def lmul_offset_bits(man_bits):
    """``l(m)`` of the paper: the offset term is ``2^-l(m)`` for ``m`` mantissa bits."""
    m = int(man_bits)
    if m < 0:
        raise ParameterError(f"man_bits must be >= 0, not {m}")
    return m if m <= 3 else 3 if m == 4 else 4


def _check_fmt(fmt):
    fmt = get_format(fmt)
    if fmt.kind != "float" or fmt.frac_bits is None:
        raise ParameterError(f"L-Mul needs a sign/exponent/mantissa float format, not {fmt.name} "
                         f"(kind {fmt.kind!r})")
    if fmt.man_bits < 1:
        raise ParameterError(f"L-Mul needs at least one mantissa bit, {fmt.name} has none")
    return fmt


def _fields(codes, fmt):
    c = np.asarray(codes, dtype=np.int64)
    m, e_bits = fmt.man_bits, fmt.exp_bits
    s = (c >> (m + e_bits)) & 1
    e = (c >> m) & ((1 << e_bits) - 1)
    man = c & ((1 << m) - 1)
    h = (e != 0).astype(np.int64)
    eff = np.maximum(e, 1)
    # the grid offset: value = sig * 2^(eff - bias - m) = (sig << shift) * 2^-frac_bits
    shift = eff - 1 + (fmt.frac_bits - (fmt.bias - 1 + m))
    return s, h, man, shift


def lmul_product(a_codes, b_codes, fmt):
    """L-Mul products of ``a_codes`` and ``b_codes`` (broadcast together), both in ``fmt``.

    Returns integers (int64; Python ints in an object array when a value needs more than 62
    bits) on the grid ``2^-(2 * fmt.frac_bits)``.  See the module docstring for the exact
    formula, mantissa overflow (kept as an extra significand bit) and subnormals.
    Raises ``ValueError`` on a non-float format or a NaN/Inf code.
    """
    fmt = _check_fmt(fmt)
    a = np.asarray(a_codes)
    b = np.asarray(b_codes)
    for name, c in (("a_codes", a), ("b_codes", b)):
        if not np.issubdtype(c.dtype, np.integer):
            raise ParameterTypeError(f"{name} must be an integer array of {fmt.name} codes, "
                            f"not dtype {c.dtype}")
        if c.size and (c.min() < 0 or c.max() >= fmt.n_codes):
            raise ParameterError(f"{name} codes of {fmt.name} must be in 0..{fmt.n_codes - 1}")
        if not np.all(fmt.finite[c]):
            raise ParameterError(f"{name} holds a NaN/Inf code of {fmt.name}: L-Mul has no "
                             "product for it")
    m = fmt.man_bits
    lb = lmul_offset_bits(m)
    sa, ha, ma, sha = _fields(a, fmt)
    sb, hb, mb, shb = _fields(b, fmt)
    lsig = ha * hb * ((1 << (2 * m)) + (1 << (2 * m - lb))) + ha * (mb << m) + hb * (ma << m)
    sh = sha + shb
    big = int(np.max(sh, initial=0)) + 2 * m + 2 >= 62
    if big:
        lsig = lsig.astype(object)
        sh = sh.astype(object)
    p = lsig * (np.ones_like(sh) << sh) if big else lsig << sh
    return np.where((sa ^ sb) == 1, -p, p)


@lru_cache(maxsize=None)
def _table(fmt):
    n = fmt.n_codes
    codes = np.arange(n)
    fin = fmt.finite
    t = np.zeros((n, n), dtype=np.int64)
    ok = np.flatnonzero(fin)
    sub = lmul_product(ok[:, None], ok[None, :], fmt)
    if sub.dtype == object:
        t = t.astype(object)
    t[np.ix_(ok, ok)] = sub
    del codes
    t.setflags(write=False)
    return t


def lmul_table(fmt):
    """``(n_codes, n_codes)`` table of every L-Mul product (0 where a code is NaN/Inf)."""
    return _table(_check_fmt(fmt))


def lmul_error(fmt):
    """Error of L-Mul against the exact product over every pair of finite codes of ``fmt``.

    Returns a dict: ``max_rel_error`` and ``mean_rel_error`` over pairs whose exact product is
    nonzero (relative to the exact product), ``max_abs_error`` (in values, not grid units),
    ``pairs`` (finite pairs), ``exact_pairs`` (pairs where L-Mul is exact) and
    ``normal_max_rel_error`` / ``normal_mean_rel_error`` over pairs of two normal numbers
    (the case the paper analyses; subnormal x subnormal gives 0, a relative error of 1).
    """
    fmt = _check_fmt(fmt)
    ok = np.flatnonzero(fmt.finite)
    approx = lmul_table(fmt)[np.ix_(ok, ok)].astype(np.float64) * 2.0 ** (-2 * fmt.frac_bits)
    exact = fmt.values[ok][:, None] * fmt.values[ok][None, :]
    nz = exact != 0
    rel = np.abs(approx[nz] - exact[nz]) / np.abs(exact[nz])
    e = (ok >> fmt.man_bits) & ((1 << fmt.exp_bits) - 1)
    normal = (e != 0)[:, None] & (e != 0)[None, :]
    reln = np.abs(approx[normal] - exact[normal]) / np.abs(exact[normal])
    return {
        "max_rel_error": float(rel.max()) if rel.size else 0.0,
        "mean_rel_error": float(rel.mean()) if rel.size else 0.0,
        "max_abs_error": float(np.max(np.abs(approx - exact))),
        "pairs": int(exact.size),
        "exact_pairs": int(np.sum(approx == exact)),
        "normal_max_rel_error": float(reln.max()) if reln.size else 0.0,
        "normal_mean_rel_error": float(reln.mean()) if reln.size else 0.0,
    }
