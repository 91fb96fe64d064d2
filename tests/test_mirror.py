"""``tests/`` mirrors the source: every module of every package has a test module that
imports it -- ``tests/<folder>/test_<module>.py``, or the one named in :data:`COVERED_BY`
where one test module holds the tests of several small modules (each entry says why)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"sw": "nybble.sw", "hw": "nybble.hw", "synth": "nybble.synth", "sim": "nybble.sim",
           "analysis": "nybble.analysis", "explore": "nybble.explore", "cli": "nybble"}

#: source module -> the test module that tests it (path below tests/)
COVERED_BY = {
    # the error classes: raised and caught throughout; their CLI handling is tested here
    "sw/errors.py": "cli/test_common.py",
    # product units: one test module for the family and its factory
    "hw/shift.py": "hw/test_product.py", "hw/lmul.py": "hw/test_product.py",
    "hw/lut.py": "hw/test_product.py", "hw/units.py": "hw/test_spec.py",
    # the kind registry and the PE base are what the spec test holds to the components
    "hw/kinds.py": "hw/test_spec.py", "hw/pe_base.py": "hw/test_spec.py",
    "hw/layout.py": "hw/test_config.py",
    # arrays and the top are tested by running GEMMs on them (one schedule, three simulators)
    "hw/top.py": "sim/test_host.py",
    "sim/run.py": "sim/test_array.py", "sim/schedule.py": "sim/test_block_array.py",
    "sim/cocotb_array.py": "sim/test_array.py",
    # PE drivers are tested with the PEs they drive
    "sim/pe_check.py": "hw/test_pe.py", "sim/pe_drive.py": "hw/test_pe.py",
    "sim/block_check.py": "hw/test_block_pe.py", "sim/cocotb_runner.py": "hw/test_pe_cocotb.py",
    "sim/fpga_host.py": "hw/test_fpga_top.py",
    "sim/report.py": "cli/test_cmd_cycles.py",
    # analysis helpers tested with the analyses that use them
    "analysis/chains.py": "analysis/test_stability.py",
    "analysis/lloyd_max.py": "analysis/test_rd.py", "analysis/gptq.py": "analysis/test_rd.py",
    "analysis/rate_distortion.py": "analysis/test_rd.py",
    # the CLI: cli/X.py -> tests/cli/test_X.py, except
    # the streaming top: its config with the top; the native harness with the runs through it
    "hw/stream_config.py": "hw/test_stream_top.py",
    "sim/stream_native.py": "sim/test_stream_run.py", "sim/stream_host.py": "hw/test_stream_top.py",
    "cli/__main__.py": "cli/test_common.py", "cli/gemm_block.py": "cli/test_cmd_gemm_block.py",
}


def _module_name(folder, path):
    return FOLDERS[folder] if path.stem == "__init__" else f"{FOLDERS[folder]}.{path.stem}"


def _reexported_by(folder, path):
    """The package itself, when its ``__init__`` imports names from the module."""
    init = ROOT / folder / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8")) if init.exists() else ast.Module([], [])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module == path.stem:
            return {FOLDERS[folder]}
    return set()


def _imported(test_path):
    names = set()
    for node in ast.walk(ast.parse(test_path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_every_module_has_a_test_module_that_imports_it():
    missing = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.stem == "__init__":
                continue
            rel = f"{folder}/{path.name}"
            test = ROOT / "tests" / COVERED_BY.get(rel, f"{folder}/test_{path.stem}.py")
            name = _module_name(folder, path)
            if not test.exists():
                missing.append(f"{rel}: no {test.relative_to(ROOT)}")
            elif folder != "cli" and not ({name} | _reexported_by(folder, path)) & _imported(test):
                missing.append(f"{rel}: {test.relative_to(ROOT)} does not import {name}")
    assert missing == []


def test_cli_commands_are_tested_in_tests_cli():
    for path in sorted((ROOT / "tests").glob("*/test_*.py")):
        if path.parent.name == "cli":
            continue
        text = path.read_text(encoding="utf-8")
        assert "from nybble.__main__ import main" not in text, \
            f"{path.relative_to(ROOT)} runs the CLI: its tests belong in tests/cli/"
