import dataclasses
from argparse import Namespace

import pytest

from nybble.explore.accuracy import numerics_of, workload_accuracy
from fractions import Fraction

import numpy as np

from nybble.explore.metrics import (ARRAY_DEPTH, DRAM_LATENCY, METRICS, Context, area, clock,
                                    cycles, dram_bytes_per_cycle, evaluate_point,
                                    evaluate_points, is_missing,
                                    merit, point_config, stalls)
from nybble.explore.points import DesignPoint, cross_product
from nybble.bitserial import cycle_function
from nybble.explore.workload import load_workload
from nybble.hw.stream_config import StreamConfig
from nybble.sim.cycles import gemm_cycles
from nybble.sim.memory_model import MemoryModel
from nybble.sim.report import run_workload
from nybble.sim.run import run_gemm
from nybble.sim.stream_report import stream_workload
from nybble.sim.stream_run import run_stream
from nybble.synth.acc_policy import policy_acc_bits
from nybble.synth.cost import cost_report, cost_sweep

# without synthesis: the area and the estimated clock (points of these tests fix the clock)
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


def test_point_config_is_the_cost_default():
    c = point_config(DesignPoint("fp8_e4m3", 4, 4, "ws", clock_mhz=250))
    assert c.acc_bits == policy_acc_bits("fp8_e4m3", "exact-k", k=4096) and c.dataflow == "ws"
    assert (c.a_depth, c.b_depth, c.c_depth) == (ARRAY_DEPTH,) * 3 == (256,) * 3
    assert c.clock_mhz == 250


def test_bitserial_cycles_are_the_cycles_command(tiny_topology):
    """As ``nybble cycles --pe bitserial`` (default mix 50/30/20 int4/fp4/e3m0) counts them."""
    w = load_workload(tiny_topology)
    point = DesignPoint("bitserial", 2, 4, "os")
    config = point_config(point)
    f, info = cycle_function(Namespace(pe="bitserial", dtype_mix=None,
                                       group=128, seed=0, weights=None), config.pe_spec)
    got = cycles(point, _Bare(w), {})
    assert got["cycles"] == sum(f(config, l.m, l.n, l.k).cycles * l.count for l in w.layers)
    assert got["dtype_mix"].startswith("int4=0.5,fp4_e2m1=0.3,e3m0=0.2")


def test_stalls_are_the_stream_model_at_the_point_clock(tiny_topology):
    w = load_workload(tiny_topology)
    point = DesignPoint("int8", 2, 2, "os", dram_bw_gbps=0.3, clock_mhz=200.0)
    assert dram_bytes_per_cycle(0.3, 200.0) == Fraction(3, 2)
    row = {"clock_mhz": 200.0}
    got = stalls(point, _Bare(w), row)
    ref = stream_workload([point_config(point)], StreamConfig(),
                          MemoryModel(Fraction(3, 2), DRAM_LATENCY), list(w.layers))[0]
    assert got["stalled_cycles"] == ref["totals"]["cycles"] > 0
    assert got["stall_cycles"] == ref["totals"]["stall_cycles"] > 0
    assert got["bytes_read"] == ref["totals"]["bytes_read"]
    # 4-bit operands travel packed: fewer bytes, fewer stalls than int8 at the same bandwidth
    int4 = stalls(DesignPoint("int4", 2, 2, "os", 0.3, 200.0), _Bare(w), row)
    assert int4["bytes_read"] < got["bytes_read"]
    assert int4["stall_cycles"] < got["stall_cycles"]
    # block-scaled kinds run on the streaming top: MXFP4's 4.25 bits per element move more
    # bytes than int4's 4
    mx = stalls(DesignPoint("mxfp4", 2, 2, "os", 0.3, 200.0), _Bare(w), row)
    assert mx["bytes_read"] > int4["bytes_read"] and mx["stalled_cycles"] > 0
    # weight-stationary points run on the weight-stationary streaming top: the same columns
    ws = stalls(DesignPoint("int8", 2, 2, "ws", 0.3, 200.0), _Bare(w), row)
    assert set(ws) == set(got) and ws["stalled_cycles"] > 0 and ws["bytes_read"] > 0
    assert [r["name"] for r in ws["layer_stream"]] == [r["name"] for r in got["layer_stream"]]
    # what the streaming top cannot run says why
    assert stalls(DesignPoint("bitserial", 2, 2, "os", 0.3), _Bare(w), row)[
        "stalled_cycles"].startswith("missing: the streaming top's stall model")


def test_row_without_area_says_what_is_missing(tiny_topology):
    w = load_workload(tiny_topology)
    ctx = _ctx(w, ["int4", "bitserial"], metrics=NO_AREA)
    row = evaluate_point(DesignPoint("int4", 4, 4, "os", 10.0, 500.0), ctx)
    assert row["label"] == "int4 4x4 os @10GB/s @500MHz" and row["pe_formats"] == "int4 x int4"
    assert row["macs_per_s"] == pytest.approx(w.macs / row["latency_s"])
    assert row["latency_s"] == pytest.approx(row["stalled_cycles"] / 500e6)
    assert row["stalled_cycles"] == row["cycles"] + row["stall_cycles"] or \
        row["stalled_cycles"] >= row["cycles"]
    assert is_missing(row["energy_j"]) and is_missing(row["inferences_per_j"])
    assert row["macs_per_cycle_per_mtransistor"] == \
        "missing: transistors (its metric was not run)"
    assert row["cosine_layer_min"] == ctx.accuracy[numerics_of("int4").key]["layer_cosine_min"]
    unlimited = evaluate_point(DesignPoint("int4", 4, 4, clock_mhz=500.0), ctx)
    assert unlimited["latency_s"] == pytest.approx(unlimited["cycles"] / 500e6)
    assert unlimited["stall_cycles"].startswith("missing: a bandwidth")
    serial = evaluate_point(DesignPoint("bitserial", 4, 4, clock_mhz=100.0), ctx)
    assert serial["macs_per_s"] == pytest.approx(w.macs / (serial["cycles"] / 100e6))
    assert serial["cosine_layer_min"] > 0


def test_merit_arithmetic():
    row = {"transistors": 2e6, "macs_per_cycle": 10.0, "macs_per_s": 4e9, "area_mm2": 0.5,
           "inferences_per_j": "missing: the energy model"}
    m = merit(None, None, row)
    assert m["macs_per_cycle_per_mtransistor"] == 5.0
    assert m["macs_per_s_per_mtransistor"] == 2e9 and m["macs_per_s_per_mm2"] == 8e9
    assert m["inferences_per_j"] == "missing: the energy model"


def _drawn_points(n, seed):
    """``n`` points drawn at random from a small sweep (plain kinds: the RTL runs them)."""
    points, _ = cross_product(["int4", "fp4_e2m1", "int8", "e3m0"], ["2x2", "2x4", "4x2"],
                              ["os", "ws"], [None, 0.4], [200.0])
    rng = np.random.default_rng(seed)
    return [points[i] for i in rng.choice(len(points), n, replace=False)]


@pytest.mark.slow
def test_cycles_equal_the_rtl_for_drawn_points(tiny_topology):
    """The explorer's cycles (unlimited bandwidth) equal the array's RTL counter, its
    stalled cycles the streaming top's RTL (native Verilator), for one layer-sized GEMM."""
    w = load_workload(tiny_topology)
    one = dataclasses.replace(w, layers=w.layers[1:])
    rng = np.random.default_rng(1)
    build = "build"  # the Verilator builds of the other RTL tests, cached
    for point in _drawn_points(5, seed=0):
        config = point_config(point)
        layer = one.layers[0]
        a = rng.integers(0, config.pe_spec.fmt_a.n_codes, (layer.m, layer.k))
        b = rng.integers(0, config.pe_spec.fmt_b.n_codes, (layer.k, layer.n))
        row = {"clock_mhz": point.clock_mhz}
        row.update(cycles(point, _Bare(one), row))
        if point.dram_bw_gbps is None:
            assert row["cycles"] == run_gemm(config, a, b, build_dir=build, log=None).cycles
            continue
        got = stalls(point, _Bare(one), row)
        if point.dataflow == "ws":
            assert is_missing(got["stalled_cycles"])
            continue
        memory = MemoryModel(dram_bytes_per_cycle(point.dram_bw_gbps, point.clock_mhz),
                             DRAM_LATENCY)
        rtl = run_stream(config, StreamConfig(), memory, a, b, build_dir=build, log=None)
        assert (got["stalled_cycles"], got["stall_cycles"]) == (rtl.cycles, rtl.stall_cycles)


@pytest.mark.slow
@pytest.mark.synth
def test_area_and_clock_are_the_cost_array_path(tmp_path, tiny_topology):
    """Area and ASIC clock as ``nybble cost --array RxC --pe KIND`` (its library path,
    defaults: exact-k accumulators, 256-word SRAM buffers) reports them."""
    w = load_workload(tiny_topology)
    cache, build = str(tmp_path / "yosys"), str(tmp_path / "b")
    # nybble cost --array builds output-stationary arrays: an os point of the sweep
    point = next(p for p in _drawn_points(8, seed=3) if p.dataflow == "os")
    ctx = _ctx(w, [point.pe], cache_dir=cache, build_dir=build)
    row = evaluate_point(dataclasses.replace(point, clock_mhz=None), ctx)
    sweep = cost_sweep([point.pe], array=(point.rows, point.cols), compare_policies=False,
                       cache_dir=cache, build_dir=build, jobs=1)
    ref = sweep["arrays"][point.pe]
    assert row["transistors"] == ref.transistors and row["cells"] == ref.cells
    assert row["acc_bits"] == ref.acc_bits
    rows, _ = cost_report(sweep, array=(point.rows, point.cols))
    array_row = next(r for r in rows if r["scope"] == "array")
    assert row["clock_mhz"] == array_row["asic_mhz"]
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


def test_points_of_one_array_share_the_bandwidth_free_metrics(tiny_topology):
    w = load_workload(tiny_topology)
    ctx = _ctx(w, ["int4"], metrics=NO_AREA)
    points, _ = cross_product(["int4"], ["4x4"], ["os"], [None, 1.0, 8.0], [100.0, 500.0])
    rows = evaluate_points(points, ctx)
    assert rows == [evaluate_point(p, ctx) for p in points]   # each alone: the same row
    # one evaluation of the cycles and the accuracy for the six points
    assert all(r["layer_cycles"] is rows[0]["layer_cycles"] for r in rows)
    assert all(r["layer_accuracy"] is rows[0]["layer_accuracy"] for r in rows)
    assert len({id(r["layer_stream"]) for r in rows}) == 6 and rows[0]["layer_stream"] == []
