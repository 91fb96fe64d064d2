# amaranth: UnusedElaboratable=no
"""PE and array area: categories from instance paths, buffers measured apart, conventions."""

import pytest

from nybble.hw.config import ArrayConfig
from nybble.synth.area import (CATEGORIES, EQUAL_ACC_BITS, array_area, array_categories,
                               convention_acc_bits, memories_in, pe_area, pe_categories,
                               pe_verilog)


def _entry(cells, transistors, reg_cells=0, reg_transistors=0, area=None, reg_area=None):
    return {"cells": cells, "transistors": transistors, "area_um2": area, "instances": 1,
            "register_bits": reg_cells // 2, "register_cells": reg_cells,
            "register_transistors": reg_transistors, "register_area_um2": reg_area}


@pytest.mark.parametrize("kind, acc_bits", [
    ("int4", 32), ("int4_dp4", 32), ("int16", 32), ("lut_nf4", 32), ("bitserial", 32),
    ("fp8_e4m3", 45),      # exact (Kulisch) accumulator: one step needs 37 bits
    ("fp16", 89),
    ("bf16", 64),          # its 64-bit window, an option of the kind
    ("int16_dp4", 42),     # a step of four int16 products needs 34 bits
    ("fp16_ieee", 32),     # IEEE-style: an FP32 accumulator
    ("bf16_ieee_dp4", 32),
])
def test_convention_acc_bits(kind, acc_bits):
    assert convention_acc_bits(kind) == acc_bits
    assert EQUAL_ACC_BITS == 32


def test_pe_categories_from_instance_paths():
    breakdown = {
        "top": _entry(100, 1000, reg_cells=20, reg_transistors=280),
        "top.product_0": _entry(50, 400),
        "top.product_1": _entry(50, 400),
        "top.table": _entry(30, 300, reg_cells=30, reg_transistors=300),
        "top.accumulator": _entry(80, 900, reg_cells=40, reg_transistors=500),
        "top.other": _entry(1, 7),
        "elsewhere": _entry(999, 999),
    }
    cats = pe_categories(breakdown)
    assert {c: v["transistors"] for c, v in cats.items()} == {
        "multiplier": 1100, "adder_tree": 720 + 7, "accumulator": 900, "registers": 280,
        "buffers": 0, "control": 0}
    assert all(v["area_um2"] is None for v in cats.values())
    serial = pe_categories(breakdown, serial=True)
    assert serial["multiplier"]["transistors"] == 1100 + 720
    assert serial["adder_tree"]["transistors"] == 7


def test_array_categories_take_buffers_out_of_the_top():
    breakdown = {
        "top": _entry(500, 6000, reg_cells=300, reg_transistors=4000, area=60.0,
                      reg_area=40.0),
        "top.array": _entry(40, 500, reg_cells=30, reg_transistors=400, area=5.0,
                            reg_area=4.0),
        "top.array.pe_0_0": _entry(10, 100, reg_cells=10, reg_transistors=100, area=1.0,
                                   reg_area=1.0),
        "top.array.pe_0_0.product_0": _entry(5, 50, area=0.5),
        "top.array.pe_0_0.accumulator": _entry(20, 200, area=2.0),
        "top.array.pe_0_1": _entry(10, 100, reg_cells=10, reg_transistors=100, area=1.0,
                                   reg_area=1.0),
        "top.array.pe_0_1.product_0": _entry(5, 50, area=0.5),
        "top.array.pe_0_1.accumulator": _entry(20, 200, area=2.0),
    }
    cats = array_categories(breakdown, (400, 5000, 50.0))
    got = {c: (v["transistors"], v["area_um2"]) for c, v in cats.items()}
    assert got == {"multiplier": (100, 1.0), "adder_tree": (0, 0.0),
                   "accumulator": (400, 4.0), "registers": (200 + 400, 6.0),
                   "buffers": (5000, 50.0), "control": (1000 + 100, 11.0)}
    total = sum(e["transistors"] for e in breakdown.values())
    assert sum(v[0] for v in got.values()) == total


def test_memories_in():
    text = ("module top(clk);\n  reg [15:0] a_buf [255:0];\n  reg [31:0] c_bank_0 [15:0];\n"
            "  reg [3:0] not_a_memory;\nendmodule\n"
            "module \\top.array (clk);\n  reg [7:0] elsewhere [3:0];\nendmodule\n")
    assert memories_in(text) == [("a_buf", 16, 256), ("c_bank_0", 32, 16)]
    rtlil = ("module \\top\n  memory width 16 size 256 \\a_buf\n  wire width 4 \\x\n"
             "  memory width 32 size 16 \\c_bank_0\n  process $1\n  end\nend\n"
             "module \\top.array\n  memory width 8 size 4 \\elsewhere\nend\n")
    assert memories_in(rtlil) == [("a_buf", 16, 256), ("c_bank_0", 32, 16)]


@pytest.mark.synth
def test_pe_area_breakdown(shared_cache, tmp_path_factory):
    build = tmp_path_factory.mktemp("verilog")
    mac = pe_area("int4", cache_dir=shared_cache, build_dir=build)
    dp = pe_area("int4_dp4", cache_dir=shared_cache, build_dir=build)
    assert (mac.name, mac.scope, mac.acc_bits) == ("int4", "pe", 32)
    m, d = ({c: v["transistors"] for c, v in r.categories.items()} for r in (mac, dp))
    # a MAC PE has no adder tree; its top holds only the forwarding registers (10 bits)
    assert m["adder_tree"] == 0 and m["buffers"] == m["control"] == 0
    assert mac.register_bits == 10 and m["registers"] > 0
    assert m["multiplier"] > 0 and m["accumulator"] > m["multiplier"]
    assert d["multiplier"] == 4 * m["multiplier"] and d["adder_tree"] > 0
    assert dp.register_bits == 34
    for r, cats in ((mac, m), (dp, d)):
        assert abs(sum(cats.values()) - r.transistors) <= 0.1 * r.transistors
    again = pe_area("int4", cache_dir=shared_cache, build_dir=build)
    assert again.cached and again.transistors == mac.transistors


@pytest.mark.slow
@pytest.mark.synth
def test_ieee_pe_area_breakdown(shared_cache, tmp_path_factory):
    # the IEEE-style fp8 MAC: multiplier (product_0), normalise / round (the PE's own logic),
    # FP32 adder and register (accumulator), forwarding registers
    build = tmp_path_factory.mktemp("verilog")
    r = pe_area("fp8_e4m3_ieee", cache_dir=shared_cache, build_dir=build)
    cats = {c: v["transistors"] for c, v in r.categories.items()}
    assert r.acc_bits == 32 and r.register_bits == 20
    assert cats["accumulator"] > cats["adder_tree"] > cats["multiplier"] > 0
    assert abs(sum(cats.values()) - r.transistors) <= 0.15 * r.transistors


def test_ieee_pe_verilog_takes_no_overflow_option(tmp_path):
    text, _ = pe_verilog("fp8_e4m3_ieee", build_dir=tmp_path)
    assert "module top" in text and "acc_fp32" in text


@pytest.mark.synth
def test_array_area_breakdown(shared_cache, tmp_path_factory):
    build = tmp_path_factory.mktemp("verilog")
    config = ArrayConfig(rows=2, cols=2, pe="int4", a_depth=4, b_depth=4, c_depth=4)
    arr = array_area(config, cache_dir=shared_cache, build_dir=build)
    pe = pe_area("int4", cache_dir=shared_cache, build_dir=build)
    cats = {c: v["transistors"] for c, v in arr.categories.items()}
    assert set(cats) == set(CATEGORIES) and arr.scope == "array"
    assert all(cats[c] > 0 for c in ("multiplier", "accumulator", "registers", "buffers",
                                     "control")), cats
    assert cats["multiplier"] == 4 * pe.categories["multiplier"]["transistors"]
    # skew and drain registers on top of the PEs' forwarding registers
    assert cats["registers"] > 4 * pe.categories["registers"]["transistors"]
    assert sum(cats.values()) == sum(e["transistors"] for e in arr.report.breakdown.values())


def test_wrong_arguments():
    with pytest.raises(ValueError, match=r"^PE kind must be one of .*not 'int3'$"):
        convention_acc_bits("int3")
    with pytest.raises(TypeError, match=r"^config must be an ArrayConfig, not 'int4'$"):
        array_area("int4")
