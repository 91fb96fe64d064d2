"""The ASIC clock estimate from logic depth."""

import pytest

from nybble.synth.asic_clock import clock_mhz, clock_period_ps, fo4_ps


def test_fo4_rule_and_period():
    assert fo4_ps(180) == pytest.approx(64.8)
    assert fo4_ps(45) == pytest.approx(16.2)
    # 20 gates: 30 FO4 + 3 FO4 of register overhead
    assert clock_period_ps(20, 180) == pytest.approx(33 * 64.8)
    assert clock_mhz(20, 180) == pytest.approx(1e6 / (33 * 64.8))
    assert clock_mhz(0) > clock_mhz(1) > clock_mhz(40)


def test_wrong_arguments():
    with pytest.raises(ValueError, match=r"^node_nm must be a process node between 5 and "
                                         r"1000 nm, not 2$"):
        fo4_ps(2)
    with pytest.raises(ValueError, match=r"^Logic depth"):
        clock_period_ps(-1)
