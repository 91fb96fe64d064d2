"""``nybble formats``: the spec blocks, strict JSON, the README table."""
import json

import pytest

from nybble.__main__ import main
from nybble.sw import format_names, get_format


def test_json_lists_every_value(capsys):
    assert main(["formats", "int4", "fp4_e2m1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in doc] == ["int4", "float4_e2m1fn"]
    assert len(doc[1]["values"]) == 16 and doc[1]["values"][7] == 6.0


def test_text_and_markdown(capsys):
    assert main(["formats", "e3m0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("e3m0") and "values 0x0:0" in out
    assert main(["formats", "--markdown"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| format |") and len(table) == 2 + len(format_names()) + 1


def test_unknown_format_is_one_line(capsys):
    assert main(["formats", "fp5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nybble formats: error: unknown format 'fp5'; valid formats: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize("name", ["fp8_e4m3", "nf4"])
def test_every_code_is_listed(name, capsys):
    main(["formats", name, "--json"])
    assert len(json.loads(capsys.readouterr().out)[0]["values"]) == get_format(name).n_codes
