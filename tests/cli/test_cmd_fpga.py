"""``nybble fpga``: argument errors (the real builds are in tests/synth/test_fpga.py)."""
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
