import json
import re

from nybble.explore.pareto import best_point, parse_constraints
from nybble.explore.report import plot_pareto, scalar_columns, write_report
from nybble.explore.run import ExploreTable

ROWS = [
    {"label": "int4 4x4 os", "pe": "int4", "pe_formats": "int4 x int4", "transistors": 1e6,
     "cosine_layer_min": 0.90, "macs_per_cycle_per_mtransistor": 60.0,
     "inferences_per_j": "missing: the energy model", "layer_cycles": [{"name": "fc1"}]},
    {"label": "int8 4x4 os", "pe": "int8", "pe_formats": "int8 x int8", "transistors": 2e6,
     "cosine_layer_min": 0.99, "macs_per_cycle_per_mtransistor": 30.0,
     "inferences_per_j": "missing: the energy model", "layer_cycles": []},
    {"label": "int16 4x4 os", "pe": "int16", "pe_formats": "int16 x int16", "transistors": 4e6,
     "cosine_layer_min": 0.98, "macs_per_cycle_per_mtransistor": 10.0,
     "inferences_per_j": "missing: the energy model", "layer_cycles": []},
]
TABLE = ExploreTable(ROWS, {"name": "tiny", "phase": None, "macs": 10, "layers": [{}]}, [],
                     {"inferences_per_j": "the energy model"},
                     {"points": 3, "cached": 0, "computed": 3})


def test_write_report_files(tmp_path):
    verdict = best_point(ROWS, parse_constraints("cosine>=0.95"))
    paths = write_report(TABLE, tmp_path, verdict=verdict)
    names = [p.name for p in paths]
    assert names == ["pareto_throughput.png", "explore.csv", "explore.json", "explore.html"]
    assert (tmp_path / "pareto_throughput.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "pareto_energy.png").exists()   # energy is missing
    csv_head = (tmp_path / "explore.csv").read_text().splitlines()[0]
    assert "layer_cycles" not in csv_head and csv_head.startswith("label,pe,")
    doc = json.loads((tmp_path / "explore.json").read_text())
    assert doc["rows"][0]["layer_cycles"] == [{"name": "fc1"}]
    assert doc["constraint"]["best"] == 1
    html = (tmp_path / "explore.html").read_text()
    assert re.search(r"<img src='data:image/png;base64,[A-Za-z0-9+/=]{100,}'>", html)
    assert "class='sortable'" in html and "int16 4x4 os" in html
    assert "the energy model" in html and "best: highest" in html


def test_plot_needs_numbers(tmp_path):
    assert plot_pareto(ROWS, "cosine_layer_min", "inferences_per_j", tmp_path / "e.png",
                       title="t", xlabel="x", ylabel="y") is None
    assert scalar_columns(ROWS)[:3] == ["label", "pe", "pe_formats"]
