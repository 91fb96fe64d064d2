"""Per-byte memory energies against the Horowitz anchors they come from."""
import math

import pytest

from nybble.sim.memory_energy import (SRAM_ANCHORS, dram_pj_per_byte, memory_energy,
                                      sram_pj_per_byte)
from nybble.sw.errors import ParameterError, ParameterTypeError


@pytest.mark.parametrize("size, pj64", SRAM_ANCHORS)
def test_sram_anchors_exact(size, pj64):
    assert sram_pj_per_byte(size) == pytest.approx(pj64 / 8)


def test_sram_interpolates_as_a_power_law():
    # halfway (in log size) between 8 KiB and 32 KiB: the geometric mean of 10 and 20 pJ
    assert sram_pj_per_byte(16 << 10) == pytest.approx(math.sqrt(10 * 20) / 8)
    assert sram_pj_per_byte(2 << 10) == pytest.approx(5.0 / 8)  # exponent 0.5 extended down
    sizes = [1 << k for k in range(8, 26)]
    energies = [sram_pj_per_byte(s) for s in sizes]
    assert energies == sorted(energies)


def test_dram_range():
    assert dram_pj_per_byte() == (162.5, 325.0)


def test_memory_energy():
    e = memory_energy(sram_bytes=1000, dram_bytes=10, sram_size=8 << 10)
    assert e["sram_pj"] == pytest.approx(1250.0)
    assert (e["dram_pj_low"], e["dram_pj_high"]) == (1625.0, 3250.0)


def test_errors():
    with pytest.raises(ParameterError, match=r"SRAM size must be a finite number of bytes "
                                             r">= 1, not 0"):
        sram_pj_per_byte(0)
    with pytest.raises(ParameterTypeError, match="sram_bytes must be a number of bytes"):
        memory_energy(sram_bytes="x", dram_bytes=0, sram_size=1024)
    with pytest.raises(ParameterError, match="dram_bytes must be a finite number"):
        memory_energy(sram_bytes=0, dram_bytes=-1, sram_size=1024)
