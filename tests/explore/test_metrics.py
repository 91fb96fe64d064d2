import pytest

from nybble.explore.accuracy import numerics_of, workload_accuracy
from nybble.explore.metrics import (ARRAY_DEPTH, METRICS, Context, area, cycles, evaluate_point,
                                    is_missing, merit, point_config)
from nybble.explore.points import DesignPoint
from nybble.explore.workload import load_workload
from nybble.sim.report import run_workload
from nybble.synth.area import array_area, convention_acc_bits

NO_AREA = tuple(m for m in METRICS if m is not area)


def _ctx(workload, pes, **kw):
    acc = {numerics_of(pe).key: workload_accuracy(pe, workload) for pe in pes}
    return Context(workload, acc, **kw)


def test_cycles_equal_the_cycle_model_report(tiny_topology):
    w = load_workload(tiny_topology)
    for point in (DesignPoint("int4", 4, 4, "os"), DesignPoint("int8_dp4", 2, 8, "ws"),
                  DesignPoint("mxfp4", 4, 2, "os")):
        got = cycles(point, _Bare(w), {})
        ref = run_workload(point_config(point), list(w.layers)).totals
        assert got["cycles"] == ref["cycles"]
        assert got["macs_per_cycle"] == pytest.approx(ref["macs_per_cycle"])
        assert got["utilization"] == pytest.approx(ref["utilization"])
        assert [l["cycles"] for l in got["layer_cycles"]] == \
            [l["cycles"] for l in run_workload(point_config(point), list(w.layers)).layers]


class _Bare:
    def __init__(self, workload):
        self.workload = workload


def test_point_config_is_the_cost_convention():
    c = point_config(DesignPoint("fp8_e4m3", 4, 4, "ws", clock_mhz=250))
    assert c.acc_bits == convention_acc_bits("fp8_e4m3") and c.dataflow == "ws"
    assert (c.a_depth, c.b_depth, c.c_depth) == (ARRAY_DEPTH,) * 3 and c.clock_mhz == 250


def test_row_without_area_says_what_is_missing(tiny_topology):
    w = load_workload(tiny_topology)
    ctx = _ctx(w, ["int4", "bitserial"], metrics=NO_AREA)
    row = evaluate_point(DesignPoint("int4", 4, 4, "os", 10.0, 500.0), ctx)
    assert row["label"] == "int4 4x4 os @10GB/s @500MHz" and row["pe_formats"] == "int4 x int4"
    assert row["latency_s"] == pytest.approx(row["cycles"] / 500e6)
    assert row["macs_per_s"] == pytest.approx(w.macs / row["latency_s"])
    assert is_missing(row["stall_cycles"]) and "memory model" in row["stall_cycles"]
    assert is_missing(row["energy_j"]) and is_missing(row["inferences_per_j"])
    assert row["macs_per_cycle_per_mtransistor"] == \
        "missing: transistors (its metric was not run)"
    assert row["cosine_layer_min"] == ctx.accuracy[numerics_of("int4").key]["layer_cosine_min"]
    no_clock = evaluate_point(DesignPoint("int4", 4, 4), ctx)
    assert no_clock["clock_mhz"].startswith("missing: a clock estimate")
    assert no_clock["latency_s"] == no_clock["clock_mhz"]
    serial = evaluate_point(DesignPoint("bitserial", 4, 4, clock_mhz=100.0), ctx)
    assert serial["cycles"].startswith("missing: bit-serial arrays")
    assert serial["macs_per_s"] == serial["cycles"]
    assert serial["cosine_layer_min"] > 0


def test_merit_arithmetic():
    row = {"transistors": 2e6, "macs_per_cycle": 10.0, "macs_per_s": 4e9, "area_mm2": 0.5,
           "inferences_per_j": "missing: the energy model"}
    m = merit(None, None, row)
    assert m["macs_per_cycle_per_mtransistor"] == 5.0
    assert m["macs_per_s_per_mtransistor"] == 2e9 and m["macs_per_s_per_mm2"] == 8e9
    assert m["inferences_per_j"] == "missing: the energy model"


def test_bitserial_area_is_missing_without_synthesis():
    got = area(DesignPoint("bitserial", 2, 2), None, {})
    assert all(v.startswith("missing: bit-serial arrays") for v in got.values())


@pytest.mark.slow
@pytest.mark.synth
def test_area_is_the_cost_array_synthesis(tmp_path, tiny_topology):
    w = load_workload(tiny_topology)
    ctx = _ctx(w, ["int4"], cache_dir=str(tmp_path / "yosys"), build_dir=str(tmp_path / "b"))
    point = DesignPoint("int4", 1, 2, "os")
    row = evaluate_point(point, ctx)
    ref = array_area(point_config(point), cache_dir=str(tmp_path / "yosys"),
                     build_dir=str(tmp_path / "b"))
    assert row["transistors"] == ref.transistors and row["cells"] == ref.cells
    assert row["macs_per_cycle_per_mtransistor"] == pytest.approx(
        row["macs_per_cycle"] / (ref.transistors / 1e6))
    assert is_missing(row["area_um2"])


def test_lmul_accuracy_is_missing(tiny_topology):
    from nybble.sw.errors import ParameterError
    w = load_workload(tiny_topology)
    assert numerics_of("lmul_fp4_e2m1") is None
    with pytest.raises(ParameterError, match="approximate \\(L-Mul\\) products"):
        workload_accuracy("lmul_fp4_e2m1", w)
    row = evaluate_point(DesignPoint("lmul_fp4_e2m1", 2, 2), Context(w, {}, metrics=NO_AREA))
    assert row["cosine_layer_min"] == "missing: an accuracy model of L-Mul's approximate products"
    assert isinstance(row["cycles"], int)
