"""The SRAM macro model: transistors and um^2 from words, width, ports and node."""

import pytest

from nybble.synth.sram import (CELL_UM2, CONTROL_TRANSISTORS, LIBERTY_NODES, liberty_node,
                               sram_area)


def test_two_port_transistors_by_hand():
    s = sram_area(16, 64)
    # 8T cells; per row and port: 2 * 4 address bits decoder + 4 wordline driver;
    # per column 21 (read) + 14 (write); control
    assert s.transistors == 16 * 64 * 8 + 16 * 2 * (8 + 4) + 64 * 35 + CONTROL_TRANSISTORS
    assert (s.cell, s.area_um2, s.efficiency, s.kib) == ("8T two-port", None, None, 0.125)


def test_single_port_is_6t():
    s = sram_area(1024, 32, read_ports=0, write_ports=0)
    assert s.cell == "6T single-port"
    assert s.transistors == 1024 * 32 * 6 + 1024 * (2 * 10 + 4) + 32 * 35 + 200


def test_um2_uses_the_published_cell_and_efficiency_grows_with_size():
    small, big = sram_area(16, 64, node=180), sram_area(2048, 64, node=180)
    assert small.area_um2 == pytest.approx(16 * 64 * 1.3 * CELL_UM2[180] / small.efficiency)
    assert 0.2 < small.efficiency < 0.3 and 0.65 < big.efficiency < 0.75
    assert sram_area(2048, 64, node=45).area_um2 < big.area_um2 / 10
    # area grows with capacity, per bit it falls
    assert big.area_um2 > small.area_um2
    assert big.area_um2 / (2048 * 64) < small.area_um2 / (16 * 64)


def test_liberty_node():
    assert liberty_node("/usr/share/qflow/tech/osu018/osu018_stdcells.lib") == 180
    assert liberty_node(None) is None and liberty_node("/x/other.lib") is None
    assert set(LIBERTY_NODES.values()) <= set(CELL_UM2)


def test_wrong_arguments():
    with pytest.raises(ValueError, match=r"^SRAM ports \(read_ports, write_ports\) must be "
                                         r"\(1, 1\) \(two-port\) or \(0, 0\) \(one shared "
                                         r"port\), not \(2, 1\)$"):
        sram_area(16, 8, read_ports=2)
    with pytest.raises(ValueError, match=r"^SRAM node must be one of 180, 130, 90, 65, 45 "
                                         r"\(nm\) or None, not 28$"):
        sram_area(16, 8, node=28)
    with pytest.raises(ValueError, match=r"^SRAM words"):
        sram_area(0, 8)
