"""``nybble format-search``: the command line of :mod:`nybble.analysis.format_search` (its numerics are
tested in ``tests/analysis/``)."""
import json
import re

import numpy as np
import pytest

import zlib


def _rng(tag):
    return np.random.default_rng(zlib.crc32(tag.encode()))


def test_cli_format_search(run_cli, tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, _rng("cli").standard_t(3, (32, 64)))
    rc, out, err = run_cli(["format-search", str(path), "--json"])
    assert rc == 0, err
    res = json.loads(out)
    assert res["bits"] == 4 and len(res["candidates"]) == 4
    assert res["best"]["format"] in {"e2m1", "e3m0"}
    assert {"format", "bias", "mse"} <= set(res["candidates"][0])
    rc, out, err = run_cli(["format-search", str(path), "--granularity", "channel"])
    assert rc == 0 and "best:" in out and "channels" in out


@pytest.mark.parametrize("setup, argv, msg", [
    (None, ["nope.npy"], r"input file 'nope\.npy' does not exist"),
    ("garbage", ["{p}"], r"input file '.*' is not a \.npy array \(numpy\.save writes them\)"),
    ("ok", ["{p}", "--bits", "6"], r"bits must be one of 2, 3, 4, 8"),
    ("ok", ["{p}", "--granularity", "rows"], r"granularity must be one of tensor, channel"),
])
def test_cli_format_search_errors(run_cli, tmp_path, setup, argv, msg):
    p = tmp_path / "x.npy"
    if setup == "garbage":
        p.write_bytes(b"\x00\x01 not numpy")
    elif setup == "ok":
        np.save(p, np.ones((4, 4)))
    rc, out, err = run_cli(["format-search"] + [a.format(p=p) for a in argv])
    assert rc == 2 and out == ""
    assert re.search(r"^nybble format-search: error: " + msg, err), err
