"""``nybble demo digits``: the command line of :mod:`nybble.analysis.digits` (its numerics are
tested in ``tests/analysis/``)."""
import json


def test_cli_demo_digits(run_cli):
    rc, out, err = run_cli(["demo", "digits", "--scheme", "nvfp4", "--json"])
    assert rc == 0, err
    res = json.loads(out)
    assert [r["scheme"] for r in res["schemes"]] == ["nvfp4"]
    assert res["schemes"][0]["accuracy"] > 0.9
