"""L-Mul (nybble.sw.lmul) against the paper's formula evaluated with exact fractions."""
from fractions import Fraction

import numpy as np
import pytest

from nybble.sw import get_format, gemm_codes, product_format, min_acc_bits
from nybble.sw.lmul import lmul_offset_bits, lmul_product, lmul_table, lmul_error


def ref_lmul(ca, cb, fmt):
    """(1 + xm + ym + 2^-l) 2^(xe+ye) for normals; h-gated terms for zero / subnormals."""
    f = get_format(fmt)
    m, e_bits, bias = f.man_bits, f.exp_bits, f.bias

    def fields(c):
        s = (c >> (m + e_bits)) & 1
        e = (c >> m) & ((1 << e_bits) - 1)
        return s, int(e != 0), Fraction(c & ((1 << m) - 1), 1 << m), max(e, 1) - bias

    sa, ha, xa, ea = fields(ca)
    sb, hb, xb, eb = fields(cb)
    sig = ha * hb * (1 + Fraction(1, 1 << lmul_offset_bits(m))) + ha * xb + hb * xa
    v = sig * Fraction(2) ** (ea + eb)
    return -v if sa ^ sb else v


def test_offset_bits():
    assert [lmul_offset_bits(m) for m in range(8)] == [0, 1, 2, 3, 3, 4, 4, 4]


@pytest.mark.parametrize("fmt", ["fp4_e2m1", "fp8_e4m3"])
def test_against_formula(fmt):
    f = get_format(fmt)
    fin = np.flatnonzero(f.finite)
    rng = np.random.default_rng(0)
    pairs = [(a, b) for a in fin for b in fin] if len(fin) <= 16 else \
        list(zip(rng.choice(fin, 3000), rng.choice(fin, 3000)))
    grid = 2 * f.frac_bits
    for a, b in pairs:
        got = int(lmul_product(np.array(a), np.array(b), fmt))
        want = ref_lmul(int(a), int(b), fmt) * 2 ** grid
        assert want.denominator == 1 and got == want, f"{fmt} codes {a:#x} x {b:#x}: " \
                                                       f"{got}, expected {want}"


def test_paper_examples():
    # fp4 e2m1: 1 x 1 = (1 + 0 + 0 + 2^-1) = 1.5; 6 x 6 = (1 + .5 + .5 + .5) * 16 = 40
    t = lmul_table("fp4_e2m1") / 4
    assert t[2, 2] == 1.5 and t[7, 7] == 40 and t[0xF, 7] == -40 and t[0, 7] == 0
    # mantissa overflow keeps its carry: 1.875 x 1.875 in e4m3 = 1 + .875 + .875 + .125
    e = get_format("fp8_e4m3")
    c = int(np.flatnonzero(e.values == 1.875)[0])
    assert lmul_table(e)[c, c] / 2 ** 18 == 2.875


def test_error_stats():
    s = lmul_error("fp8_e4m3")
    assert s["pairs"] == 254 ** 2
    assert 0.18 < s["normal_max_rel_error"] < 0.19  # 2.875 / 3.515625 - 1
    assert s["max_rel_error"] == 1.0  # subnormal x subnormal -> 0


def test_golden_lmul_option():
    rng = np.random.default_rng(1)
    f = get_format("fp4_e2m1")
    a = rng.integers(0, 16, (3, 9))
    b = rng.integers(0, 16, (9, 4))
    got = gemm_codes(a, b, f, f, product="lmul")
    t = lmul_table(f)
    want = np.array([[sum(int(t[a[i, k], b[k, j]]) for k in range(9)) for j in range(4)]
                     for i in range(3)])
    assert np.array_equal(got, want)
    assert product_format("fp4_e2m1", "fp4_e2m1", product="lmul") == (2, -160, 160)
    assert min_acc_bits("fp4_e2m1", "fp4_e2m1", 1, product="lmul") == 9


def test_errors():
    with pytest.raises(ValueError, match=r"^L-Mul needs a sign/exponent/mantissa float format, "
                                         r"not int4"):
        lmul_product(np.array(1), np.array(1), "int4")
    with pytest.raises(ValueError, match=r"NaN/Inf code of float8_e4m3fn"):
        lmul_product(np.array(0x7F), np.array(1), "fp8_e4m3")
    with pytest.raises(ValueError, match=r"^product='lmul' needs both operands in one float"):
        gemm_codes(np.zeros((1, 1), int), np.zeros((1, 1), int), "fp4_e2m1", "fp8_e4m3",
                   product="lmul")
    with pytest.raises(ValueError, match=r"^product must be one of exact, lmul, not 'x'$"):
        gemm_codes(np.zeros((1, 1), int), np.zeros((1, 1), int), "int4", "int4", product="x")
