"""Operand data sets and the PE step stream that walks a product."""
import numpy as np
import pytest

from nybble.sim.energy_data import (gemm_steps, quantize_absmax, synthetic_codes,
                                    zero_code)
from nybble.sw import decode, get_format
from nybble.sw.errors import ParameterError


@pytest.mark.parametrize("lanes", [1, 4])
def test_steps_rebuild_the_product(lanes, rng):
    a = rng.integers(-8, 8, (3, 8))
    b = rng.integers(-8, 8, (8, 5))
    per_dot = 8 // lanes
    sa, sb, first = gemm_steps(a, b, lanes, 3 * 5 * per_dot)
    sums = (sa * sb).sum(axis=1).reshape(15, per_dot).sum(axis=1)
    assert sums.tolist() == (a @ b).ravel().tolist()
    assert first.tolist() == ([True] + [False] * (per_dot - 1)) * 15


def test_steps_wrap_around():
    a = np.arange(4).reshape(1, 4)
    b = np.ones((4, 1), dtype=np.int64)
    sa, _, first = gemm_steps(a, b, 2, 5)
    assert sa.tolist() == [[0, 1], [2, 3], [0, 1], [2, 3], [0, 1]]
    assert first.tolist() == [True, False, True, False, True]


def test_steps_errors():
    with pytest.raises(ParameterError, match=r"K \(6\) must be a multiple of the PE's "
                                             r"lanes \(4\)"):
        gemm_steps(np.zeros((2, 6)), np.zeros((6, 2)), 4, 3)
    with pytest.raises(ParameterError, match="A's columns = B's rows"):
        gemm_steps(np.zeros((2, 6)), np.zeros((5, 2)), 1, 3)


def test_zeros50_has_at_least_half_zeros():
    a, b = synthetic_codes("zeros50", "int4", "fp4_e2m1", 64, 64, 64, seed=1)
    assert (a == zero_code("int4")).mean() >= 0.5
    assert (decode(b, "fp4_e2m1") == 0).mean() >= 0.5


def test_uniform_covers_every_code():
    a, b = synthetic_codes("uniform", "e3m0", "e3m0", 64, 64, 64)
    assert set(np.unique(a)) == set(np.flatnonzero(get_format("e3m0").finite))


def test_gaussian_absmax():
    a, b = synthetic_codes("gaussian", "int8", "int8", 32, 64, 32)
    values = decode(a, "int8")
    assert np.abs(values).max() >= 127  # the largest sample lands on the top of the range
    assert (np.abs(values) < 32).mean() > 0.5  # and most are small


def test_quantize_absmax_unsigned_takes_magnitudes():
    codes = quantize_absmax(np.array([-2.0, 1.0, 0.0]), "uint4")
    assert decode(codes, "uint4").tolist() == [15, 8, 0]


def test_bad_data_name():
    with pytest.raises(ParameterError, match="data set must be one of uniform, gaussian, "
                                             "zeros50, not 'digits'"):
        synthetic_codes("digits", "int4", "int4", 2, 2, 2)
