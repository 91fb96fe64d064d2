"""gemm_codes' keyword options for the PE library: acc_frac_bits windows, lanes, per-k formats,
against a slow reference written from the module docstring."""
from fractions import Fraction
import math

import numpy as np
import pytest

from nybble.sw import gemm_codes, get_format, min_acc_bits, element_ints


def ref(a, b, fa, fb, acc_bits, overflow, frac=None, lanes=1):
    fa = fa if isinstance(fa, list) else [fa] * a.shape[1]
    fb = fb if isinstance(fb, list) else [fb] * b.shape[0]
    val = lambda f, c: Fraction(float(get_format(f).values[c]))
    grid = frac if frac is not None else \
        max(element_ints(f)[1] for f in fa) + max(element_ints(f)[1] for f in fb)
    lim = 1 << (acc_bits - 1)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=object)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = 0
            for g in range(0, a.shape[1], lanes):
                step = 0
                for k in range(g, min(a.shape[1], g + lanes)):
                    p = val(fa[k], a[i, k]) * val(fb[k], b[k, j]) * 2 ** grid
                    step += math.floor(p)
                acc += step
                if overflow == "wrap":
                    acc = (acc + lim) % (2 * lim) - lim
                else:
                    acc = max(-lim, min(lim - 1, acc))
            out[i, j] = acc
    return out


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("fmt,frac", [("bf16", 8), ("fp16", 10), ("fp8_e4m3", 4),
                                      ("fp4_e2m1", 5), ("int4", 3)])
def test_window(fmt, frac, overflow):
    rng = np.random.default_rng(len(fmt) + frac)
    fin = np.flatnonzero(get_format(fmt).finite)
    if fmt in ("bf16", "fp16"):  # keep the values in a range where the window matters
        v = get_format(fmt).values[fin]
        fin = fin[(np.abs(v) < 64) & (np.abs(v) > 2 ** -12) | (v == 0)]
    a = rng.choice(fin, (3, 12))
    b = rng.choice(fin, (12, 2))
    bits = 20
    got = gemm_codes(a, b, fmt, fmt, acc_bits=bits, overflow=overflow, acc_frac_bits=frac)
    assert np.array_equal(got, ref(a, b, fmt, fmt, bits, overflow, frac)), fmt


@pytest.mark.parametrize("lanes", [2, 3, 4])
def test_lanes_saturate(lanes):
    rng = np.random.default_rng(lanes)
    a = rng.integers(0, 16, (4, 11))
    b = rng.integers(0, 16, (11, 3))
    for bits in (8, 9):
        got = gemm_codes(a, b, "int4", "int4", acc_bits=bits, overflow="saturate", lanes=lanes)
        assert np.array_equal(got, ref(a, b, "int4", "int4", bits, "saturate", lanes=lanes))
    # wrap does not depend on the grouping
    assert np.array_equal(gemm_codes(a, b, "int4", "int4", acc_bits=8, lanes=lanes),
                          gemm_codes(a, b, "int4", "int4", acc_bits=8))


def test_lanes_differs_from_per_product_saturation():
    a = np.array([[7, 7, 7, 0x9]])  # 49, 49, 49, -49 with b = 7
    b = np.full((4, 1), 7)
    one = gemm_codes(a, b, "int4", "int4", acc_bits=8, overflow="saturate")
    four = gemm_codes(a, b, "int4", "int4", acc_bits=8, overflow="saturate", lanes=4)
    assert (one[0, 0], four[0, 0]) == (127 - 49, 98)  # clamped at k=2 vs one exact sum


def test_per_k_formats():
    types = ["int4", "fp4_e2m1", "e3m0", "bitmod_er_pos", "bitmod_ea_neg"]
    rng = np.random.default_rng(9)
    fmts = [types[i] for i in rng.integers(0, len(types), 10)]
    a = rng.integers(0, 256, (2, 10))
    b = rng.integers(0, 16, (10, 3))
    for overflow, bits in (("wrap", 32), ("saturate", 12), ("wrap", 11)):
        got = gemm_codes(a, b, "int8", fmts, acc_bits=bits, overflow=overflow, acc_frac_bits=2)
        want = ref(a, b, "int8", fmts, bits, overflow, frac=2)
        assert np.array_equal(got, want), (overflow, bits)
    with pytest.raises(ValueError, match=r"^b_codes has K = 10 but 3 formats were given"):
        gemm_codes(a, b, "int8", fmts[:3])


def test_min_acc_bits_window():
    assert min_acc_bits("bf16", "bf16", 1) == 523
    assert min_acc_bits("bf16", "bf16", 1, acc_frac_bits=32) == 289
    assert min_acc_bits("int4", "int4", 1, acc_frac_bits=2) == 10
