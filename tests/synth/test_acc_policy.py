"""Accumulator policies: exact-k widths from nybble.sw.min_acc_bits, the equal convention."""

import pytest

from nybble.hw.kinds import pe_kind
from nybble.sw import min_acc_bits
from nybble.synth.acc_policy import (ACC_POLICIES, DEFAULT_K, check_policy, policy_acc_bits,
                                     policy_text)
from nybble.synth.area import convention_acc_bits


@pytest.mark.parametrize("kind, bits", [
    # int4 products lie in [-56, 64]: 4096 of them need 20 bits; int8: 28; int16: 44
    ("int4", 20), ("int8", 28), ("int16", 44), ("int4_dp4", 20), ("int16_dp16", 44),
    ("fp4_e2m1", 21), ("fp16", 93), ("bf16", 301)])
def test_exact_k_widths(kind, bits):
    assert policy_acc_bits(kind) == bits


def test_exact_k_is_min_acc_bits_and_cannot_overflow():
    for k in (1, 16, 256, 4096, 65536):
        spec = pe_kind("int8").spec()
        width = policy_acc_bits("int8", k=k)
        assert width == max(min_acc_bits("int8", "int8", k), spec.min_acc_bits)
        # the worst case, k products of (-128)^2, fits; one more bit would be spare
        assert k * 128 * 128 <= (1 << (width - 1)) - 1
        assert k * 128 * 128 > (1 << (width - 2)) - 1 or width == spec.min_acc_bits


def test_bitserial_takes_its_widest_weight_type():
    spec = pe_kind("bitserial").spec()
    assert policy_acc_bits("bitserial", k=256) == max(
        min_acc_bits(spec.fmt_a, d, 256, acc_frac_bits=spec.frac_bits)
        for d in spec.dtype_formats)


def test_block_kinds_keep_their_own_accumulator():
    assert policy_acc_bits("mxfp4") == pe_kind("mxfp4").spec().acc_bits


def test_equal_is_the_old_convention():
    for kind in ("int4", "int16", "fp16", "bf16", "int16_dp4"):
        assert policy_acc_bits(kind, "equal") == convention_acc_bits(kind)
    assert policy_acc_bits("int4", "equal", acc_bits=24) == 24


def test_text_names_the_policy():
    assert policy_text("exact-k", k=64).startswith("exact-k: ") and "K = 64" in policy_text(
        "exact-k", k=64)
    assert policy_text("equal", acc_bits=24).startswith("equal: accumulators at equal width: "
                                                         "24 bits")
    assert ACC_POLICIES == ("exact-k", "equal") and DEFAULT_K == 4096


def test_wrong_arguments():
    with pytest.raises(ValueError, match=r"^Accumulator policy must be one of 'exact-k', "
                                         r"'equal', not 'wide'$"):
        check_policy("wide")
    with pytest.raises(ValueError, match=r"^k must be between 1 and 16777216 products, "
                                         r"not 0$"):
        policy_acc_bits("int4", k=0)
    with pytest.raises(TypeError, match=r"^k must be an integer number of products, "
                                        r"not 2\.5$"):
        policy_acc_bits("int4", k=2.5)
    with pytest.raises(ValueError, match=r"^PE kind must be one of .*not 'int3'$"):
        policy_acc_bits("int3")
