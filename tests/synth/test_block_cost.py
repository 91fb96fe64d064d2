"""Cost of block scaling: measured PE area (Yosys) against plain dot-product PEs, the
operand-buffer width (the cycle overhead of the block schedule: tests/sim/test_cycles.py)."""
# amaranth: UnusedElaboratable=no
import pytest

from nybble.synth.block_cost import (block_area_overhead, buffer_bits_overhead,
                                     default_baselines)


@pytest.mark.synth
@pytest.mark.parametrize("kind", ["mxfp4", "nvfp4"])
def test_area_overhead_is_measured(kind, shared_cache):
    r = block_area_overhead(kind, cache_dir=shared_cache)
    assert set(r.baselines) == {"fp4_e2m1_dp8", "int4_dp8"}
    assert r.transistors > r.baselines["fp4_e2m1_dp8"]["transistors"] > 0
    assert 0 < r.overhead["fp4_e2m1_dp8"] < 1.5
    assert r.parts["scaler"] > 0 and r.parts["products"] > 0
    assert sum(r.parts.values()) >= 0.8 * r.transistors
    assert r.as_dict()["kind"] == kind


def test_buffer_overhead_and_baselines():
    assert buffer_bits_overhead("mxfp4") == 40 / 32 and buffer_bits_overhead("q4_0") == 1.5
    assert default_baselines("mxint8", 8) == ["int8_dp8", "int4_dp8"]
    with pytest.raises(ValueError, match=r"^kind must be a block-scaled PE kind"):
        block_area_overhead("int4_dp8")
