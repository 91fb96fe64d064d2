"""Every finite pair of the 8-bit baselines through the whole PE (accumulator included).

The product units alone are checked on the same pairs in test_product.py (seconds); these
runs take the full clocked path and ~8-15 s each, so they are marked slow."""
import pytest

from nybble.sim.pe_check import check_pairs


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["int8", "fp8_e4m3", "lmul_fp8_e4m3", "int8_dp4"])
def test_all_pairs_8bit(kind):
    r = check_pairs(kind)
    assert r.exhaustive and r.pairs_checked >= 64516
    assert r.mismatches == 0, f"{kind}: {r.mismatches} steps differ; first: {r.first_mismatch}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["int16", "fp16", "bf16"])
def test_16bit_large_sample(kind):
    r = check_pairs(kind, sample=32768, seed=1)
    assert r.mismatches == 0, f"{kind}: {r.mismatches} steps differ; first: {r.first_mismatch}"
