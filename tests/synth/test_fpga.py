# amaranth: UnusedElaboratable=no
"""FPGA builds: board table, nextpnr report parsing, one real iCE40 bitstream."""

import os

import pytest

from nybble.hw.config import ArrayConfig
from nybble.hw.fpga_top import BoardTop, PeProbeTop
from nybble.synth.fpga import (BOARDS, FpgaResourceError, _keep_pe_hierarchy, _resource_error,
                               board_pe_fmax, build_board, parse_utilisation, pe_fmax,
                               pe_modules)
from nybble.synth.toolchain import yowasp_env

_LOG = """\
Info: Packing constants..
Info: Device utilisation:
Info: 	         ICESTORM_LC:  6011/ 5280   113%
Info: 	        ICESTORM_RAM:    10/   30    33%
Info: 	               SB_IO:     4/   39    10%
Info: 	               SB_GB:     6/    8    75%
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'
"""


def test_parse_utilisation_and_overflow_message():
    util = parse_utilisation(_LOG)
    assert util == {"ICESTORM_LC": (6011, 5280), "ICESTORM_RAM": (10, 30),
                    "SB_IO": (4, 39), "SB_GB": (6, 8)}
    error = _resource_error("A 6x6 int4 array", "icebreaker", "iCE40UP5K", util)
    assert isinstance(error, FpgaResourceError) and isinstance(error, ValueError)
    assert str(error) == ("A 6x6 int4 array does not fit the icebreaker (iCE40UP5K): logic "
                          "cells (LUT4 + flip-flop) ICESTORM_LC: 6011 used, 5280 available "
                          "-- use a smaller array, smaller buffer depths or a larger board")
    assert error.overflows == [("ICESTORM_LC", 6011, 5280)]
    assert _resource_error("x", "b", "d", {"SB_IO": (4, 39)}) is None


def test_boards_and_tools():
    assert {"icebreaker", "ulx3s-25f"} <= set(BOARDS)
    assert {b.family for b in BOARDS.values()} == {"ice40", "ecp5"}
    for board in BOARDS.values():
        platform = board.make_platform()
        assert platform.device and platform.default_clk_frequency > 0
    ice40, ecp5 = yowasp_env("ice40"), yowasp_env("ecp5")
    for env, names in ((ice40, ("YOSYS", "NEXTPNR_ICE40", "ICEPACK")),
                       (ecp5, ("YOSYS", "NEXTPNR_ECP5", "ECPPACK"))):
        for name in names:
            assert os.access(env[name], os.X_OK), (name, env[name])


def test_wrong_arguments(tmp_path):
    config = ArrayConfig(rows=2, cols=2, a_depth=16, b_depth=16, c_depth=16)
    with pytest.raises(ValueError, match=r"^Board must be one of icebreaker, .*, not "
                                         r"'de0'$"):
        build_board("de0", config, build_dir=tmp_path)
    with pytest.raises(TypeError, match=r"^config must be an ArrayConfig, not '2x2'$"):
        build_board("icebreaker", "2x2", build_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^Baud rate 6000000 is too fast for a 12 MHz "):
        build_board("icebreaker", config, baud=6_000_000, build_dir=tmp_path)


@pytest.mark.parametrize("board", ["icebreaker", "ulx3s-25f"])
def test_pe_modules_are_the_modules_yosys_reads(board):
    """The PE module names the flow keeps whole are the modules of the RTLIL Amaranth writes
    for the board: every PE of the array, the probe's one PE, nothing else."""
    config = ArrayConfig(rows=2, cols=3, pe="int4", a_depth=16, b_depth=16, c_depth=16)
    for top, count in ((BoardTop(config), 2 * 3), (PeProbeTop(config), 1)):
        names = pe_modules(top, BOARDS[board].make_platform())
        rtlil = BOARDS[board].make_platform().build(top, name="top", do_build=False)
        modules = [line.split()[1].lstrip("\\") for line in
                   rtlil.files["top.il"].splitlines() if line.startswith("module ")]
        assert len(names) == count and set(names) <= set(modules), (names, modules)
    assert pe_modules(PeProbeTop(config), BOARDS[board].make_platform()) == ["top.pe"]
    assert _keep_pe_hierarchy(["top.pe"]) == ("select -assert-mod-count 1 top.pe\n"
                                              "setattr -mod -set keep_hierarchy 1 top.pe")


@pytest.mark.synth
def test_pe_fmax(tmp_path):
    mhz, luts, seconds, cached = pe_fmax("int4", cache_dir=tmp_path / "cache",
                                         build_dir=tmp_path)
    assert 20 < mhz < 1000 and luts > 30 and not cached
    assert pe_fmax("int4", cache_dir=tmp_path / "cache", build_dir=tmp_path)[3]


@pytest.mark.synth
def test_lone_pe_on_the_icebreaker(tmp_path):
    """The array's PE alone on the iCE40 UP5K, same flow: every output kept (an int4 MAC with
    a 32-bit accumulator needs at least its 32-bit adder), Fmax above the board clock."""
    config = ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=32)
    lines = []
    pe = board_pe_fmax("icebreaker", config, build_dir=tmp_path, progress=lines.append)
    assert lines and "building in" in lines[0] and not pe.cached
    assert pe.device == "iCE40UP5K" and pe.family == "ice40" and pe.acc_bits == 32
    assert pe.luts > 100 and pe.carries >= 31 and pe.brams == 0 and pe.dsps == 0
    assert 12 < pe.fmax_mhz < 200 and pe.timing_met
    assert pe.utilisation["SB_IO"]["used"] <= 3  # clock, rx, tx
    again = board_pe_fmax("icebreaker", config.replace(rows=3, a_depth=16), build_dir=tmp_path)
    assert again.cached and again.fmax_mhz == pe.fmax_mhz  # the PE's build, not the array's
    with pytest.raises(ValueError, match=r"^Board must be one of icebreaker, .*, not 'de0'$"):
        board_pe_fmax("de0", config, build_dir=tmp_path)
    with pytest.raises(TypeError, match=r"^config must be an ArrayConfig, not 'int4'$"):
        board_pe_fmax("icebreaker", "int4", build_dir=tmp_path)


@pytest.mark.synth
def test_icebreaker_bitstream_for_a_2x2_int4_array(tmp_path):
    config = ArrayConfig(rows=2, cols=2, pe="int4", a_depth=256, b_depth=256, c_depth=256)
    lines = []
    result = build_board("icebreaker", config, build_dir=tmp_path, progress=lines.append)
    assert lines and "building in" in lines[0]
    assert result.device == "iCE40UP5K" and result.family == "ice40"
    assert os.path.getsize(result.bitstream) > 100_000  # an UP5K image is ~104 kB
    assert result.fmax_mhz > 12 and result.timing_met
    # the A, B buffers and the two 32-bit C banks are in block RAM, not flip-flops
    assert result.brams == 1 + 1 + 2 * 2 and result.ffs < 1500
    assert result.utilisation["SB_IO"]["used"] <= 5  # clock, rx, tx, LED
    assert 0 < result.utilisation["ICESTORM_LC"]["used"] < 5280
    again = build_board("icebreaker", config, build_dir=tmp_path)
    assert again.cached and again.bitstream == result.bitstream


@pytest.mark.synth
@pytest.mark.slow
def test_too_big_names_the_resource(tmp_path):
    config = ArrayConfig(rows=4, cols=4, pe="int8", a_depth=64, b_depth=64, c_depth=64)
    with pytest.raises(FpgaResourceError, match=r"^A 4x4 int8 array does not fit the icestick "
                                                r"\(iCE40HX1K\): logic cells \(LUT4 \+ "
                                                r"flip-flop\) ICESTORM_LC: \d+ used, 1280 "
                                                r"available"):
        build_board("icestick", config, build_dir=tmp_path)
