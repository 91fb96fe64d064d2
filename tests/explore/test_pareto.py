import pytest

from nybble.explore.pareto import (Constraint, baseline_of, best_point, default_objective,
                                   numeric, parse_constraints, pareto_front)
from nybble.sw.errors import ParameterError


def test_parse_constraints_and_aliases():
    cs = parse_constraints("area<=2e6, cosine>=0.99,macs_per_s>1e9")
    assert cs == [Constraint("transistors", "<=", 2e6, "area<=2e6"),
                  Constraint("cosine_layer_min", ">=", 0.99, "cosine>=0.99"),
                  Constraint("macs_per_s", ">", 1e9, "macs_per_s>1e9")]
    assert parse_constraints(None) == [] and parse_constraints("  ") == []


@pytest.mark.parametrize("text, match", [
    ("area=<2e6", r"constraint 'area=<2e6' must look like COLUMN OP NUMBER with OP one of "
                  r"<=, >=, <, >, =="),
    ("size<=3", r"constraint 'size<=3': unknown column 'size'; use one of area, cosine"),
    ("area<=big", r"constraint 'area<=big': 'big' is not a number"),
    ("area<=inf", r"constraint 'area<=inf': the bound must be finite"),
    ("area<=1,", r"constraint '' must look like COLUMN OP NUMBER"),
])
def test_parse_constraint_errors(text, match):
    with pytest.raises(ParameterError, match=match):
        parse_constraints(text)


ROWS = [
    {"label": "a", "pe_formats": "int4 x int4", "transistors": 1e6, "cosine_layer_min": 0.90,
     "macs_per_cycle_per_mtransistor": 60.0},
    {"label": "b", "pe_formats": "int8 x int8", "transistors": 2e6, "cosine_layer_min": 0.99,
     "macs_per_cycle_per_mtransistor": 30.0},
    {"label": "c", "pe_formats": "int16 x int16", "transistors": 4e6, "cosine_layer_min": 0.98,
     "macs_per_cycle_per_mtransistor": 10.0},
    {"label": "d", "pe_formats": "int8 x int4", "transistors": "missing: bit-serial",
     "cosine_layer_min": 0.95, "macs_per_cycle_per_mtransistor": "missing: bit-serial"},
]


def test_pareto_front_and_baselines():
    assert pareto_front(ROWS, "cosine_layer_min", "macs_per_cycle_per_mtransistor") == [0, 1]
    assert [baseline_of(r) for r in ROWS] == [None, "int8", "int16", None]
    assert numeric(ROWS[3], "transistors") is None and numeric(ROWS[0], "transistors") == 1e6
    assert default_objective(ROWS) == "macs_per_cycle_per_mtransistor"


def test_best_point_says_why_the_others_lost():
    v = best_point(ROWS, parse_constraints("area<=3e6,cosine>=0.95"))
    assert v["best"] == 1
    assert v["reasons"][0] == "cosine_layer_min = 0.9 breaks cosine>=0.95"
    assert v["reasons"][1].startswith("best: highest macs_per_cycle_per_mtransistor (30)")
    assert v["reasons"][2] == "transistors = 4e+06 breaks area<=3e6"
    assert v["reasons"][3] == "transistors is missing: bit-serial"
    none = best_point(ROWS, parse_constraints("cosine>=0.999"))
    assert none["best"] is None
    v = best_point(ROWS, parse_constraints("cosine>=0.95"), "transistors")
    assert v["best"] == 2 and "transistors 2e+06 < 4e+06 of the best" in v["reasons"][1]
    with pytest.raises(ParameterError, match="objective: unknown column 'speed'"):
        best_point(ROWS, [], "speed")


def test_equal_points_stand_once_on_the_front():
    rows = [dict(ROWS[0]), dict(ROWS[0], label="a2"), dict(ROWS[1])]
    assert pareto_front(rows, "cosine_layer_min", "macs_per_cycle_per_mtransistor") == [0, 2]
