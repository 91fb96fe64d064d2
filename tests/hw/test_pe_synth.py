"""Shift-only and L-Mul PEs synthesise without a multiplier cell (Yosys, generic gates)."""
import pytest

from nybble.hw.kinds import make_pe
from nybble.synth.verilog import to_verilog
from nybble.synth.yosys import synth_area


def _area(kind):
    return synth_area(to_verilog(make_pe(kind), name="top"), "top", hierarchy=False)


@pytest.mark.synth
@pytest.mark.parametrize("kind", ["e3m0", "int4_e3m0", "int8_e3m0", "e3m0_dp4",
                                  "lmul_fp4_e2m1", "lmul_fp8_e4m3", "bitserial"])
def test_no_multiplier(kind):
    area = _area(kind)
    assert area.rtl_multipliers == 0, f"{kind}: {area.rtl_multipliers} multiplier cells " \
                                      "in the RTL"
    assert area.cells > 0


@pytest.mark.synth
def test_multiplier_pe_has_one():
    assert _area("int4").rtl_multipliers == 1
    assert _area("int4_dp4").rtl_multipliers == 4
