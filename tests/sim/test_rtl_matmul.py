"""The RTL matmul (block sums on the simulated array) is nybble.sw.gemm, exactly."""
# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from nybble.sim.rtl_matmul import RtlMatmul
from nybble.sw import gemm, quantize


@pytest.mark.parametrize("scheme", ["int4_g32", "int4_channel"])
def test_rtl_matmul_equals_golden(scheme, rng):
    x = rng.standard_normal((5, 70))
    w = rng.standard_normal((70, 6))
    a, b = quantize(x, scheme, axis=-1), quantize(w, scheme, axis=0)
    mm = RtlMatmul(2, 2, sim="verilator")
    got = mm(a, b)
    assert mm.mismatches == 0 and mm.jobs >= 1
    assert np.array_equal(got, gemm(a, b))


def test_block_scaled_schemes_are_refused(rng):
    a = quantize(rng.standard_normal((2, 32)), "mxfp4")
    b = quantize(rng.standard_normal((32, 2)), "mxfp4", axis=0)
    with pytest.raises(ValueError, match="block-scaled array"):
        RtlMatmul(2, 2)(a, b)
    n = quantize(rng.standard_normal((2, 64)), "nf4_g64")
    with pytest.raises(ValueError, match="no array PE for nf4 x nf4"):
        RtlMatmul(2, 2)(n, quantize(rng.standard_normal((64, 2)), "nf4_g64", axis=0))
