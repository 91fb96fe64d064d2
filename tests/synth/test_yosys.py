import dataclasses
import re
import time

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.synth.verilog import to_rtlil, to_verilog
from nybble.synth.yosys import (AreaReport, FpgaReport, _generic_script, synth_area,
                                synth_fpga_area)


def _tiny_liberty():
    """A Liberty library of BUF, INV, NAND2, NOR2 and DFF with made-up areas (um^2).

    ABC's default Liberty mapping (`&nf`) needs timing tables and a buffer cell; without
    them it writes no netlist and Yosys fails with "Can't open ABC output file".
    """
    table = ('index_1("0.01, 0.1"); index_2("0.01, 0.1"); '
             'values("0.1, 0.2", "0.2, 0.3");')

    def gate(name, area, inputs, function, sense):
        pins = "".join(f"    pin({p}) {{ direction : input; capacitance : 0.01; }}\n"
                       for p in inputs)
        arcs = "".join(
            f'      timing() {{ related_pin : "{p}"; timing_sense : {sense};\n'
            + "".join(f"        {kind}(delay_2x2) {{ {table} }}\n"
                      for kind in ("cell_rise", "cell_fall", "rise_transition",
                                   "fall_transition"))
            + "      }\n"
            for p in inputs)
        return (f"  cell({name}) {{\n    area : {area};\n{pins}"
                f'    pin(Y) {{ direction : output; function : "{function}";\n{arcs}    }}\n'
                f"  }}\n")

    return (
        "library(tiny) {\n"
        "  delay_model : table_lookup;\n"
        '  time_unit : "1ns"; voltage_unit : "1V"; current_unit : "1uA";\n'
        '  pulling_resistance_unit : "1kohm"; capacitive_load_unit (1, pf);\n'
        "  lu_table_template(delay_2x2) {\n"
        "    variable_1 : total_output_net_capacitance;\n"
        "    variable_2 : input_net_transition;\n"
        '    index_1("0.01, 0.1"); index_2("0.01, 0.1");\n'
        "  }\n"
        + gate("BUF", 1.0, "A", "A", "positive_unate")
        + gate("INV", 1.0, "A", "!A", "negative_unate")
        + gate("NAND2", 1.5, "AB", "!(A&B)", "negative_unate")
        + gate("NOR2", 1.5, "AB", "!(A|B)", "negative_unate")
        + "  cell(DFF) {\n    area : 6.0;\n"
        '    ff(IQ, IQN) { clocked_on : "CLK"; next_state : "D"; }\n'
        "    pin(CLK) { direction : input; clock : true; capacitance : 0.01; }\n"
        "    pin(D) { direction : input; capacitance : 0.01; }\n"
        '    pin(Q) { direction : output; function : "IQ"; }\n'
        "  }\n"
        "}\n")


# --- generic flow ----------------------------------------------------------------------------

@pytest.mark.synth
def test_area_grows_with_operand_width(mac4_verilog, mac8_verilog, shared_cache):
    mac4 = synth_area(mac4_verilog, "top", cache_dir=shared_cache)
    mac8 = synth_area(mac8_verilog, "top", cache_dir=shared_cache)
    for report in (mac4, mac8):
        assert isinstance(report, AreaReport)
        assert report.cells > 0 and report.transistors > 0
        assert report.cells == sum(report.cell_types.values())
        assert report.transistors_exact
        assert report.area_um2 is None
        # 16 accumulator bits, as plain D flip-flops (enables unmapped into muxes).
        assert report.cell_types["$_DFF_P_"] == 16
    assert mac8.transistors > mac4.transistors
    assert mac8.cells > mac4.cells


@pytest.mark.synth
def test_rtl_multipliers(mac4_verilog, shift_verilog, shared_cache):
    assert synth_area(mac4_verilog, "top", cache_dir=shared_cache).rtl_multipliers == 1
    assert synth_area(shift_verilog, "top", cache_dir=shared_cache).rtl_multipliers == 0


@pytest.mark.synth
def test_breakdown_names_submodules(hier_verilog, shared_cache):
    report = synth_area(hier_verilog, "top", cache_dir=shared_cache)
    assert list(report.breakdown) == ["top", "top.multiplier", "top.accumulator"]
    for name, entry in report.breakdown.items():
        assert entry["cells"] > 0 and entry["transistors"] > 0, (name, entry)
        assert entry["instances"] == 1 and entry["area_um2"] is None, (name, entry)
    # The top's own cells: its 16-bit output register (plus the reset muxes).
    assert report.breakdown["top"]["cells"] >= 16
    # The hierarchical total is close to the flattened one (flattening optimises across
    # module boundaries, a little on this design).
    whole = report.subtree("top")
    assert whole["cells"] == sum(e["cells"] for e in report.breakdown.values())
    assert abs(whole["transistors"] - report.transistors) <= 0.1 * report.transistors
    assert report.subtree("top.multiplier")["transistors"] == \
        report.breakdown["top.multiplier"]["transistors"]
    with pytest.raises(KeyError, match=r"No module 'top\.adder_tree' in the breakdown"):
        report.subtree("top.adder_tree")


@pytest.mark.synth
def test_flat_only_has_no_breakdown(hier_verilog, shared_cache):
    flat = synth_area(hier_verilog, "top", hierarchy=False, cache_dir=shared_cache)
    full = synth_area(hier_verilog, "top", cache_dir=shared_cache)
    assert flat.breakdown == {}
    assert (flat.cells, flat.transistors) == (full.cells, full.transistors)


@pytest.mark.synth
def test_blackbox_leaves_a_module_out(hier_verilog, shared_cache):
    full = synth_area(hier_verilog, "top", cache_dir=shared_cache)
    rest = synth_area(hier_verilog, "top", hierarchy=False, cache_dir=shared_cache,
                      blackbox=("top.multiplier",))
    # the black box is not a cell of the result, and costs nothing
    assert not any("multiplier" in t for t in rest.cell_types) and not rest.transistors_exact
    mult = full.breakdown["top.multiplier"]["transistors"]
    assert abs(rest.transistors - (full.transistors - mult)) <= 0.1 * full.transistors


@pytest.mark.synth
def test_logic_depth(mac4_verilog, mac8_verilog, hier_verilog, shared_cache):
    plain = synth_area(mac4_verilog, "top", cache_dir=shared_cache)
    assert plain.logic_depth is None
    d4 = synth_area(mac4_verilog, "top", cache_dir=shared_cache, depth=True).logic_depth
    d8 = synth_area(mac8_verilog, "top", cache_dir=shared_cache, depth=True).logic_depth
    # a multiplier and a 16-bit adder between registers; wider operands, a longer path
    assert 8 < d4 < d8
    # a black box cuts paths: the multiplier's gates leave the longest path
    cut = synth_area(hier_verilog, "top", hierarchy=False, cache_dir=shared_cache,
                     blackbox=("top.multiplier",), depth=True)
    whole = synth_area(hier_verilog, "top", hierarchy=False, cache_dir=shared_cache,
                       depth=True)
    assert cut.logic_depth < whole.logic_depth


@pytest.mark.synth
def test_memories_as_black_boxes(shared_cache):
    from nybble.synth.area import _buffer_probe
    from nybble.synth.verilog import to_verilog
    text = to_verilog(_buffer_probe(8, 16, "sync"))
    gates = synth_area(text, "top", hierarchy=False, cache_dir=shared_cache)
    boxed = synth_area(text, "top", hierarchy=False, cache_dir=shared_cache,
                       memories="blackbox")
    # 128 flip-flops and their read / write multiplexers gone: only the port logic is left
    assert gates.cell_types.get("$_DFF_P_", 0) >= 128
    assert boxed.cell_types.get("$_DFF_P_", 0) < 16 and boxed.transistors < gates.transistors / 8


@pytest.mark.synth
def test_second_call_is_cached(mac4_verilog, tmp_path):
    first = synth_area(mac4_verilog, "top", cache_dir=tmp_path)
    start = time.perf_counter()
    second = synth_area(mac4_verilog, "top", cache_dir=tmp_path)
    elapsed = time.perf_counter() - start
    assert not first.cached and second.cached
    assert dataclasses.replace(second, cached=False) == first
    assert elapsed < 0.5, f"cached call took {elapsed:.2f} s"
    # Scratch directories are removed after a successful run.
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.synth
def test_cache_dir_from_environment(mac4_verilog, tmp_path, monkeypatch):
    monkeypatch.setenv("NYBBLE_CACHE", str(tmp_path))
    synth_area(mac4_verilog, "top", hierarchy=False)
    assert len(list((tmp_path / "yosys").glob("*.json"))) == 1


@pytest.mark.synth
def test_bad_verilog_raises_with_yosys_message(tmp_path):
    with pytest.raises(RuntimeError,
                       match=r"^Yosys failed \(exit code 1\): design\.v:2: ERROR: syntax error"):
        synth_area("module top(input a, output b);\n  assign b = a &;\nendmodule\n", "top",
                   cache_dir=tmp_path)


@pytest.mark.synth
def test_unknown_top_raises(mac4_verilog, tmp_path):
    with pytest.raises(RuntimeError,
                       match=r"^Yosys failed \(exit code 1\): ERROR: Module `nothere' not found"):
        synth_area(mac4_verilog, "nothere", cache_dir=tmp_path)


@pytest.mark.synth
def test_liberty_area(hier_verilog, shared_cache, tmp_path):
    liberty = tmp_path / "tiny.lib"
    liberty.write_text(_tiny_liberty())
    report = synth_area(hier_verilog, "top", liberty=liberty, cache_dir=shared_cache)
    plain = synth_area(hier_verilog, "top", cache_dir=shared_cache)
    assert report.area_um2 > 0
    # Cells and transistors stay those of the generic gates.
    assert (report.cells, report.transistors) == (plain.cells, plain.transistors)
    for name, entry in report.breakdown.items():
        assert entry["area_um2"] > 0, (name, entry)
    # 32 flip-flops of 6 um^2 at least.
    assert report.area_um2 >= 32 * 6.0


class _EnableDomains(wiring.Component):
    """``n`` 4-bit registers, each loading ``a + b`` under its own enable ``en[i]``: ``n``
    flip-flop enable domains, as an array's per-PE drain flags make."""

    def __init__(self, n):
        self._n = n
        super().__init__({"a": In(4), "b": In(4), "en": In(n), "q": Out(4).array(n)})

    def elaborate(self, platform):
        m = Module()
        for i in range(self._n):
            with m.If(self.en[i]):
                m.d.sync += self.q[i].eq(self.a + self.b + i)
        return m


@pytest.mark.synth
def test_rtlil_frontend_and_one_abc_run(hier_verilog, designs, shared_cache):
    # the same netlist read from Amaranth's RTLIL: the same gates
    rtlil = to_rtlil(designs.MacWithSubmodules())
    for hierarchy in (True, False):
        a = synth_area(hier_verilog, "top", hierarchy=hierarchy, cache_dir=shared_cache)
        b = synth_area(rtlil, "top", hierarchy=hierarchy, cache_dir=shared_cache,
                       frontend="rtlil")
        assert (b.cells, b.transistors) == (a.cells, a.transistors)
    # the script: synth without its ABC step, then one ABC run with no flip-flop selected
    script = _generic_script("top", False, False, abc_scope="design")
    assert "synth -booth -flatten -top top -noabc\n" in script
    assert re.findall(r"^abc .*$", script, re.M) == ["abc * @registers %d"]
    # eight enable domains: the same flip-flops, logic mapped in one run instead of eight
    text = to_verilog(_EnableDomains(8))
    per_domain = synth_area(text, "top", hierarchy=False, cache_dir=shared_cache)
    whole = synth_area(text, "top", hierarchy=False, cache_dir=shared_cache,
                       abc_scope="design")
    flops = lambda r: sum(n for t, n in r.cell_types.items() if t.startswith("$_DFF"))
    assert flops(whole) == flops(per_domain) == 32
    assert abs(whole.transistors / per_domain.transistors - 1) < 0.1


def test_synth_area_wrong_arguments():
    with pytest.raises(ValueError, match=r"^Flow must be one of 'generic', not 'asic'$"):
        synth_area("", "top", flow="asic")
    with pytest.raises(TypeError, match=r"^Verilog text must be a string, not b''$"):
        synth_area(b"", "top")
    with pytest.raises(ValueError, match=r"^Top module must be a Verilog identifier .*, not ''$"):
        synth_area("", "")
    with pytest.raises(ValueError, match=r"^Liberty file '/nonexistent\.lib' cannot be read"):
        synth_area("", "top", liberty="/nonexistent.lib")
    with pytest.raises(ValueError, match=r"^Timeout must be a positive number of seconds"):
        synth_area("", "top", timeout=0)
    with pytest.raises(ValueError, match=r"^blackbox must be a sequence of module patterns "
                                         r"\(\[A-Za-z0-9_\$\.\*\]\+\), not 'a b'$"):
        synth_area("", "top", hierarchy=False, blackbox="a b")
    with pytest.raises(ValueError, match=r"^memories must be one of 'gates', 'blackbox', "
                                         r"not 'sram'$"):
        synth_area("", "top", hierarchy=False, memories="sram")
    with pytest.raises(TypeError, match=r"^depth must be a bool, not 1$"):
        synth_area("", "top", depth=1)
    with pytest.raises(ValueError, match=r"^frontend must be one of 'verilog', 'rtlil', "
                                         r"not 'vhdl'$"):
        synth_area("", "top", frontend="vhdl")
    with pytest.raises(ValueError, match=r"^abc_scope must be one of 'domains', 'design', "
                                         r"not 'module'$"):
        synth_area("", "top", hierarchy=False, abc_scope="module")
    for bad in ({"blackbox": ("x",)}, {"abc_scope": "design"}):
        with pytest.raises(ValueError, match=r"^blackbox / memories='blackbox' / "
                                             r"abc_scope='design' need hierarchy=False$"):
            synth_area("", "top", **bad)


# --- FPGA flows ------------------------------------------------------------------------------

@pytest.mark.synth
def test_ice40_without_dsp(mac4_verilog, shared_cache):
    report = synth_fpga_area(mac4_verilog, "top", family="ice40", cache_dir=shared_cache)
    assert isinstance(report, FpgaReport)
    assert (report.family, report.dsp, report.booth) == ("ice40", False, False)
    assert report.luts > 0 and report.ffs == 16
    assert report.dsps == 0 and report.brams == 0
    assert report.cells == sum(report.cell_types.values())


@pytest.mark.synth
def test_ecp5_dsp_switch(mac4_verilog, shared_cache):
    luts = synth_fpga_area(mac4_verilog, "top", family="ecp5", cache_dir=shared_cache)
    dsp = synth_fpga_area(mac4_verilog, "top", family="ecp5", dsp=True,
                          cache_dir=shared_cache)
    assert luts.dsps == 0 and luts.luts > 0
    # synth_ecp5 puts even a 4x4 product into a MULT18X18D when allowed.
    assert dsp.dsps >= 1 and dsp.luts < luts.luts
    again = synth_fpga_area(mac4_verilog, "top", family="ecp5", dsp=True,
                            cache_dir=shared_cache)
    assert again.cached and dataclasses.replace(again, cached=False) == dsp


@pytest.mark.synth
def test_ice40_booth(mac4_verilog, shared_cache):
    plain = synth_fpga_area(mac4_verilog, "top", family="ice40", cache_dir=shared_cache)
    booth = synth_fpga_area(mac4_verilog, "top", family="ice40", booth=True,
                            cache_dir=shared_cache)
    assert booth.booth and not plain.booth
    assert booth.luts > 0 and booth.ffs == plain.ffs == 16


def test_synth_fpga_area_wrong_arguments():
    with pytest.raises(ValueError,
                       match=r"^FPGA family must be one of 'ice40', 'ecp5', not 'gowin'$"):
        synth_fpga_area("", "top", family="gowin")
    with pytest.raises(TypeError, match=r"^DSP must be a bool, not 1$"):
        synth_fpga_area("", "top", dsp=1)
    with pytest.raises(ValueError, match=r"^Booth encoding replaces the multipliers"):
        synth_fpga_area("", "top", dsp=True, booth=True)
