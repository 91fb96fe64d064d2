"""``nybble fpga``: argument errors (the real builds are in tests/synth/test_fpga.py), and one
real build of the array top beside its lone PE (slow)."""
import json

import pytest

from nybble.__main__ import main


@pytest.mark.parametrize("argv, message", [
    (["--board", "de0", "--array", "4x4", "--pe", "int4"],
     "--board must be one of icebreaker, ice40-hx8k-b-evn, icestick, ulx3s-12f, ulx3s-25f, "
     "ulx3s-45f, ulx3s-85f, not 'de0'"),
    (["--board", "icebreaker", "--array", "4x4", "--pe", "int3"], "PE kind must be one of"),
    (["--board", "icebreaker", "--array", "4x4", "--pe", "bitserial"],
     "--pe 'bitserial' is bit-serial; the board build hosts MAC and dot-product PEs"),
    (["--board", "icebreaker", "--array", "4x4", "--pe", "int4", "--dsp", "maybe"],
     "--dsp must be one of auto, on, off, not 'maybe'"),
    (["--board", "icebreaker", "--array", "0x4", "--pe", "int4"],
     "ArrayConfig.rows must be in 1..256, not 0"),
    (["--board", "icebreaker", "--array", "4x4", "--pe", "int4", "--baud", "6000000"],
     "Baud rate 6000000 is too fast for a 12 MHz clock"),
])
def test_bad_input(argv, message, tmp_path, capsys):
    assert main(["fpga", *argv, "--build-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.synth
def test_array_top_beside_the_lone_pe(tmp_path, capsys):
    argv = ["fpga", "--board", "icebreaker", "--array", "2x2", "--pe", "int4", "--depth", "64",
            "--build-dir", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    lone = doc["lone_pe"]
    assert lone["device"] == doc["device"] == "iCE40UP5K" and lone["acc_bits"] == 32
    assert doc["pe_fmax_mhz"] == lone["fmax_mhz"] > 12
    assert doc["fmax_ratio"] == round(doc["fmax_mhz"] / doc["pe_fmax_mhz"], 3)
    assert lone["build_dir"] != doc["build_dir"]
    assert main(argv) == 0  # both cached now
    text = capsys.readouterr().out
    assert f"lone PE: {lone['fmax_mhz']:.1f} MHz on the same device" in text
    assert f"array top / PE = {doc['fmax_ratio']:.2f} (cached)" in text
