# amaranth: UnusedElaboratable=no

import io
import re

import pytest

from nybble.synth import verilog as verilog_module
from nybble.synth.verilog import (WAIVED_WARNINGS, cached_rtlil, cached_verilog, lint,
                                  source_digest, to_rtlil, to_verilog, top_rtlil, top_verilog,
                                  write_verilog)


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



# --- the Verilog cache -----------------------------------------------------------------------

class _Builds:
    """A ``build`` callable for :func:`cached_verilog` that counts its calls."""

    def __init__(self, make):
        self.make, self.calls = make, 0

    def __call__(self):
        self.calls += 1
        return self.make()


def test_cache_hit_is_identical_and_free(tmp_path, designs):
    build = _Builds(lambda: designs.SignedMac(4))
    text, seconds = cached_verilog("mac", "SignedMac(4)", build, build_dir=tmp_path)
    assert build.calls == 1 and seconds > 0
    assert text == to_verilog(designs.SignedMac(4), name="top")
    (entry,) = (tmp_path / "verilog").glob("mac_*.v")
    assert entry.read_text() == text
    assert (tmp_path / "verilog" / (entry.name + ".sha256")).is_file()
    assert not list((tmp_path / "verilog").glob("*.tmp")) and not list(
        (tmp_path / "verilog").glob(".*"))
    log = io.StringIO()
    again, seconds = cached_verilog("mac", "SignedMac(4)", build, build_dir=tmp_path, log=log)
    assert again == text and seconds == 0.0 and build.calls == 1 and log.getvalue() == ""


def test_cache_key_follows_description_and_sources(tmp_path, designs, monkeypatch):
    build = _Builds(lambda: designs.SignedMac(4))
    cached_verilog("mac", "SignedMac(4)", build, build_dir=tmp_path)
    cached_verilog("mac", "SignedMac(4) again", build, build_dir=tmp_path)
    assert build.calls == 2 and len(list((tmp_path / "verilog").glob("mac_*.v"))) == 2
    monkeypatch.setattr(verilog_module, "source_digest", lambda: "other generator sources")
    cached_verilog("mac", "SignedMac(4)", build, build_dir=tmp_path)
    assert build.calls == 3 and len(list((tmp_path / "verilog").glob("mac_*.v"))) == 3


def test_source_digest_covers_amaranth_version(monkeypatch):
    import amaranth
    digest = source_digest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and source_digest() == digest
    monkeypatch.setattr(amaranth, "__version__", amaranth.__version__ + "+other")
    assert source_digest() != digest


@pytest.mark.parametrize("damage", ["truncate", "edit", "sidecar", "no_sidecar"])
def test_cache_rebuilds_corrupt_entry(tmp_path, designs, damage):
    build = _Builds(lambda: designs.SignedMac(4))
    text, _ = cached_verilog("mac", "SignedMac(4)", build, build_dir=tmp_path)
    (entry,) = (tmp_path / "verilog").glob("mac_*.v")
    sidecar = entry.with_name(entry.name + ".sha256")
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[:len(text) // 2])
    elif damage == "edit":
        entry.write_text(text.replace("module top", "module tip", 1))
    elif damage == "sidecar":
        sidecar.write_text("0" * 64 + "\n")
    else:
        sidecar.unlink()
    log = io.StringIO()
    again, seconds = cached_verilog("mac", "SignedMac(4)", build, build_dir=tmp_path, log=log)
    assert again == text and seconds > 0 and build.calls == 2
    assert log.getvalue() == f"verilog cache: rebuilding corrupt entry {entry}\n"
    assert entry.read_text() == text
    # repaired: the next read is a silent hit
    log = io.StringIO()
    assert cached_verilog("mac", "SignedMac(4)", build, build_dir=tmp_path, log=log) == (text, 0.0)
    assert build.calls == 2 and log.getvalue() == ""


def test_top_verilog_is_cached_per_config_and_reset(tmp_path):
    from nybble.hw.config import ArrayConfig
    config = ArrayConfig(rows=2, cols=2, pe="int4", a_depth=4, b_depth=4, c_depth=4)
    log = io.StringIO()
    text, seconds = top_verilog(config, build_dir=tmp_path, log=log)
    assert log.getvalue() == "generating Verilog for 2x2 int4 ...\n" and seconds > 0
    assert re.search(r"^module top\(", text, re.M) and "input rst;" in text
    log = io.StringIO()
    assert top_verilog(config, build_dir=tmp_path, log=log) == (text, 0.0)
    assert log.getvalue() == ""
    resetless, _ = top_verilog(config, build_dir=tmp_path, log=None, resetless=True)
    assert resetless != text
    assert len(list((tmp_path / "verilog").glob("top_*.v"))) == 2


def test_rtlil_is_cached_beside_the_verilog(tmp_path, designs):
    build = _Builds(lambda: designs.SignedMac(4))
    text, seconds = cached_rtlil("mac", "SignedMac(4)", build, build_dir=tmp_path)
    assert build.calls == 1 and seconds > 0
    assert text == to_rtlil(designs.SignedMac(4), name="top")
    assert re.search(r"^module \\top$", text, re.M)
    assert re.search(r"^  wire width 4 input \d+ +signed \\a$", text, re.M)
    (entry,) = (tmp_path / "verilog").glob("mac_*.il")
    assert entry.read_text() == text and entry.with_name(entry.name + ".sha256").is_file()
    assert cached_rtlil("mac", "SignedMac(4)", build, build_dir=tmp_path) == (text, 0.0)
    # the Verilog of the same description is its own entry
    verilog, _ = cached_verilog("mac", "SignedMac(4)", build, build_dir=tmp_path)
    assert build.calls == 2 and verilog != text
    with pytest.raises(TypeError, match=r"^Component must be an amaranth\.lib\.wiring\."
                                        r"Component, not 1$"):
        to_rtlil(1)


def test_top_rtlil_is_cached_per_config(tmp_path):
    from nybble.hw.config import ArrayConfig
    config = ArrayConfig(rows=2, cols=2, pe="int4", a_depth=4, b_depth=4, c_depth=4)
    log = io.StringIO()
    text, seconds = top_rtlil(config, build_dir=tmp_path, log=log)
    assert log.getvalue() == "generating RTLIL for 2x2 int4 ...\n" and seconds > 0
    # the modules of the Verilog, named alike
    modules = re.findall(r"^module \\(\S+)$", text, re.M)
    verilog, _ = top_verilog(config, build_dir=tmp_path, log=None)
    assert sorted(modules) == sorted(re.findall(r"^module \\?(\S+?) ?\(", verilog, re.M))
    assert "top.array.pe_1_1" in modules
    assert top_rtlil(config, build_dir=tmp_path, log=None) == (text, 0.0)
