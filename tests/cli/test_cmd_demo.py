"""``nybble demo digits``: the command line of :mod:`nybble.analysis.digits` (its numerics are
tested in ``tests/analysis/``)."""

import io
import json
from contextlib import redirect_stdout, redirect_stderr


from nybble.__main__ import main


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_cli_demo_digits():
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["demo", "digits", "--scheme", "nvfp4", "--json"])
    assert rc == 0, err.getvalue()
    res = json.loads(out.getvalue())
    assert [r["scheme"] for r in res["schemes"]] == ["nvfp4"]
    assert res["schemes"][0]["accuracy"] > 0.9
