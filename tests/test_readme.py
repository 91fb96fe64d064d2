"""The README's promises: one install line, one test line, a format table in sync."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_format_table_is_generated_from_the_registry():
    from nybble.cmd_formats import markdown_table
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- formats:begin -->\n(.*?)\n<!-- formats:end -->", text, re.S)
    assert m, "README lost its formats markers"
    assert m.group(1).strip() == markdown_table().strip(), \
        "README format table is stale: regenerate with `nybble formats --markdown`"


def test_ci_runs_the_readme_test_command_verbatim():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```\n(.*?)\n```", text, re.S)
    test_cmd = next(b for b in blocks if "pytest" in b).strip()
    install = next(b for b in blocks if "pip install" in b).strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci and install in ci
