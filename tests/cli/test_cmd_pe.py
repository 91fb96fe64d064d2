"""``nybble pe-report``: the table and the JSON keys, from real runs."""
import json

import pytest

from nybble.__main__ import main

KEYS = {"pe", "formats", "latency", "cycles_per_mac", "pairs_checked", "mismatches", "cells"}


def test_json_without_synth(capsys):
    assert main(["pe-report", "--kinds", "int4", "lmul_fp4_e2m1", "bitserial", "--json",
                 "--no-synth"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["pe"] for r in rows] == ["int4", "lmul_fp4_e2m1", "bitserial"]
    for r in rows:
        assert KEYS <= set(r) and r["mismatches"] == 0 and r["cells"] is None
    assert rows[0]["formats"] == ["int4", "int4"] and rows[0]["pairs_checked"] == 256
    assert rows[0]["latency"] == 1 and rows[0]["cycles_per_mac"] == 1
    assert rows[1]["lmul_normal_max_rel_error"] == 0.5
    assert rows[2]["cycles_per_mac"]["e3m0"] == 1 and rows[2]["pairs_checked"] == 7 * 4096


def test_ieee_kind(capsys):
    # a random sample of the 16-bit pairs, after the pairs of the special codes
    assert main(["pe-report", "--kinds", "fp16_ieee", "--sample", "16", "--no-synth"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("fp16_ieee"))
    assert row.split()[4:9] == ["fp32", "1", "1", "272", "0"]
    assert main(["pe-report", "--kinds", "bf16_ieee", "--sample", "16", "--no-synth",
                 "--json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)
    assert (r["acc_bits"], r["frac_bits"], r["mismatches"], r["exhaustive"]) == (32, None, 0,
                                                                               False)


@pytest.mark.synth
def test_table_with_cells(capsys):
    assert main(["pe-report", "--kinds", "e3m0", "int4_dp4"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["pe", "formats", "acc", "latency"]
    row = next(line for line in lines if line.startswith("int4_dp4"))
    assert row.split()[-3:-1] == ["1024", "0"]
    assert "0 mismatches" in out


def test_unknown_kind(capsys):
    assert main(["pe-report", "--kinds", "int3", "--no-synth"]) == 2
    assert "PE kind must be one of" in capsys.readouterr().err
