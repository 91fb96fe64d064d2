"""``nybble rd``: the command line of :mod:`nybble.analysis.rate_distortion` (its numerics are
tested in ``tests/analysis/``)."""
import json

import pytest


def test_cli_rd_json(run_cli):
    rc, out, err = run_cli(["rd", "--quick", "--json"])
    assert rc == 0, err
    rep = json.loads(out)
    assert set(rep) == {"scalar", "inner_product", "gptq"}
    lm = {r["bits"]: r["mse"] for r in rep["scalar"]["lloyd_max"]}
    assert lm[4] == pytest.approx(0.009501, rel=1e-4)
    assert rep["inner_product"]["critical_rate"] == pytest.approx(0.906, abs=1e-3)


def test_cli_rd_text_and_error(run_cli):
    rc, out, err = run_cli(["rd", "--quick"])
    assert rc == 0 and "Lloyd-Max" in out and "Gamma(R)" in out and "GPTQ+rot" in out
    rc, out, err = run_cli(["rd", "--seed", "-1"])
    assert rc == 2 and "--seed must be >= 0, not -1" in err
