"""The CLI's shared plumbing (:mod:`nybble.common`, :mod:`nybble.__main__`): one strict JSON
document, one-line errors with the right exit status, under ``nybble`` and ``python -m nybble``
alike."""
import argparse
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from nybble.__main__ import main
from nybble.common import UsageError, config_from_args, emit, to_json
from nybble.sw.errors import ToolError


def test_json_is_strict(capsys):
    payload = {"nan": float("nan"), "inf": np.float64("inf"), "i": np.int64(3),
               "a": np.arange(3), "ok": np.bool_(True), "nested": [{"x": -math.inf}]}
    emit(argparse.Namespace(json=True), payload, "text")
    out = capsys.readouterr().out
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    assert doc == {"nan": None, "inf": None, "i": 3, "a": [0, 1, 2], "ok": True,
                   "nested": [{"x": None}]}
    assert json.loads(to_json([1.5])) == [1.5]


def test_text_without_json(capsys):
    emit(argparse.Namespace(json=False), {"x": 1}, "hello")
    assert capsys.readouterr().out == "hello\n"


@pytest.mark.parametrize("module", [True, False])
def test_usage_error_is_one_line_exit_2(module):
    cmd = [sys.executable, "-m", "nybble"] if module else [sys.executable, "-c",
                                                          "import sys; from nybble.__main__ "
                                                          "import main; sys.exit(main())"]
    p = subprocess.run(cmd + ["gemm", "--array", "16by16"], capture_output=True, text=True)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == ("nybble gemm: error: --array must look like ROWSxCOLS (e.g. 16x16), "
                        "not '16by16'\n")


def test_library_errors_exit_2_tool_errors_1_bugs_keep_their_traceback(monkeypatch, capsys):
    import nybble.cmd_formats as fm

    def raising(exc):
        def run(args):
            raise exc
        return run

    for exc, code in ((UsageError("--x must be 1"), 2), (ValueError("not ours"), None),
                      (ToolError("verilator failed"), 1)):
        monkeypatch.setattr(fm, "run", raising(exc))
        if code is None:   # a plain ValueError is a bug: it propagates
            with pytest.raises(ValueError, match="not ours"):
                main(["formats", "int4"])
            continue
        assert main(["formats", "int4"]) == code
        assert capsys.readouterr().err == f"nybble formats: error: {exc}\n"


def test_config_from_args():
    args = argparse.Namespace(array="4x2", pe="int4_dp4", acc_bits=20, overflow="saturate",
                              dataflow="ws", depth=None)
    cfg = config_from_args(args)
    assert (cfg.rows, cfg.cols, cfg.pe, cfg.acc_bits, cfg.dataflow) == (4, 2, "int4_dp4", 20,
                                                                        "ws")
    assert cfg.a_depth == 4096
    args.depth = 64
    assert config_from_args(args, pe="int4").a_depth == 64


def test_ctrl_c_is_one_line(monkeypatch, capsys):
    import nybble.cmd_formats as fm

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fm, "run", interrupted)
    assert main(["formats"]) == 130
    assert capsys.readouterr().err == "nybble formats: interrupted\n"
