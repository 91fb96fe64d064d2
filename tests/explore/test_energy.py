"""Energy of design points: the PE's netlist energy on the workload's codes, idle PE-cycles,
SRAM and DRAM traffic, per layer and per inference."""
import concurrent.futures

import numpy as np
import pytest

import nybble.explore.run as run_module
from nybble.explore import cross_product, explore, load_workload
from nybble.explore.accuracy import layer_operands, per_channel_scheme
from nybble.explore.energy import (IDLE_STEPS, SAMPLE_MACS, energy_steps, layer_energy,
                                   pe_workload_energy, stream_traffic, words_of)
from nybble.explore.metrics import (METRICS, Context, area, evaluate_point, is_missing,
                                    point_config)
from nybble.explore.points import DesignPoint
from nybble.hw.kinds import pe_kind
from nybble.hw.stream_config import StreamConfig
from nybble.sim.cycles import gemm_cycles
from nybble.sim.energy import pe_energy
from nybble.sim.memory_energy import dram_pj_per_byte, sram_pj_per_byte
from nybble.sim.memory_model import MemoryModel
from nybble.sim.stream_cycles import stream_cycles
from nybble.sim.workloads import Layer
from nybble.sw.quantize import quantize
from nybble.synth.acc_policy import policy_acc_bits

NO_AREA = tuple(m for m in METRICS if m is not area)

#: what a PE's energy run returns, with round numbers (the arithmetic tests)
FAKE_PE = {"pe": "int4", "acc_bits": 20, "pj_per_mac": 0.5, "idle_pj_per_cycle": 0.1,
           "sampled_macs": 1, "checked_steps": 1, "model": "test"}


@pytest.mark.parametrize("kind", ["int4", "int8_dp4"])
def test_energy_steps_are_the_accuracy_codes(tiny_topology, kind):
    w = load_workload(tiny_topology)
    spec = pe_kind(kind).spec(acc_bits=policy_acc_bits(kind))
    a, b, first = energy_steps(spec, w)
    # MAC shares: fc1 (8x32x64 = 16384 MACs) and fc2 (8x16x32 = 4096), whole dot products
    dots = [round(SAMPLE_MACS * 0.8 / 64), round(SAMPLE_MACS * 0.2 / 32)]
    steps = [d * k // spec.lanes for d, k in zip(dots, (64, 32))]
    assert a.shape == b.shape == (sum(steps), spec.lanes) and first.shape == (sum(steps),)
    assert int(first.sum()) == sum(dots)
    for layer, lo, hi in ((w.layers[0], 0, steps[0]), (w.layers[1], steps[0], sum(steps))):
        xa, xb, _ = layer_operands(layer)
        ca = quantize(xa, per_channel_scheme(spec.fmt_a.name), axis=-1).codes
        cb = quantize(xb, per_channel_scheme(spec.fmt_b.name), axis=0).codes
        k = layer.k // spec.lanes
        for d in range(0, (hi - lo) // k, 37):   # every 37th dot product of the layer
            av = a[lo + d * k:lo + (d + 1) * k].reshape(-1)
            bv = b[lo + d * k:lo + (d + 1) * k].reshape(-1)
            assert first[lo + d * k] and not first[lo + d * k + 1:lo + (d + 1) * k].any()
            assert any((av == row).all() for row in ca), (layer.name, d)
            assert any((bv == col).all() for col in cb.T), (layer.name, d)


def test_layer_energy_of_the_whole_buffer_top():
    point = DesignPoint("int4", 4, 4, "os", clock_mhz=500.0)
    config = point_config(point)
    layer = Layer("x", 8, 8, 64)
    g = gemm_cycles(config, 8, 8, 64)
    e = layer_energy(config, FAKE_PE, layer, g.cycles, words_of(g))
    assert e["pe_j"] == pytest.approx(8 * 8 * 64 * 0.5e-12)
    assert e["idle_j"] == pytest.approx((16 * g.cycles - 8 * 8 * 64) * 0.1e-12)
    # A / B words: 4 PEs x 4 bits = 2 bytes, buffers 256 words; C: 20-bit accumulators
    a_word, c_word = 2, 20 / 8
    sram = ((g.a_writes + g.a_reads) * a_word * sram_pj_per_byte(256 * a_word)
            + (g.b_writes + g.b_reads) * a_word * sram_pj_per_byte(256 * a_word)
            + (g.c_writes + g.c_reads) * c_word * sram_pj_per_byte(256 * 4 * c_word))
    assert e["sram_j"] == pytest.approx(sram * 1e-12)
    dram = g.a_writes * a_word + g.b_writes * a_word + g.c_reads * c_word
    low, high = dram_pj_per_byte()
    assert (e["dram_j"], e["dram_high_j"]) == pytest.approx((dram * low * 1e-12,
                                                             dram * high * 1e-12))
    assert e["energy_j"] == pytest.approx(e["pe_j"] + e["idle_j"] + e["sram_j"] + e["dram_j"])
    assert e["energy_j_dram_high"] - e["energy_j"] == pytest.approx(e["dram_j"])


def test_layer_energy_of_the_streaming_top():
    config = point_config(DesignPoint("int4", 4, 4, "os", 1.0, 500.0))
    layer = Layer("x", 8, 8, 64)
    s = stream_cycles(config, StreamConfig(), MemoryModel(2, 10), 8, 8, 64)
    e = layer_energy(config, FAKE_PE, layer, s.cycles, words_of(s),
                     s.bytes_read + s.bytes_written)
    assert e["idle_j"] == pytest.approx((16 * s.cycles - 8 * 8 * 64) * 0.1e-12)
    assert e["dram_j"] == pytest.approx((s.bytes_read + s.bytes_written)
                                        * dram_pj_per_byte()[0] * 1e-12)
    # scratchpads of both halves: 2 x 16384 words of 2 bytes; C: two 4x4 tiles of 20 bits
    spad = 2 * 16384 * 2
    sram = ((s.a_writes + s.a_reads) * 2 * sram_pj_per_byte(spad)
            + (s.b_writes + s.b_reads) * 2 * sram_pj_per_byte(spad)
            + (s.c_writes * 2.5 + s.c_reads * 10) * sram_pj_per_byte(2 * 4 * 10))
    assert e["sram_j"] == pytest.approx(sram * 1e-12)
    assert stream_traffic(config, StreamConfig(), words_of(s))["sram_pj"] == \
        pytest.approx(sram)


def test_energy_metric_sums_its_layers(tiny_topology):
    w = load_workload(tiny_topology)
    ctx = Context(w, {}, metrics=tuple(m for m in NO_AREA if m.__name__ != "accuracy"),
                  energy={"int4": FAKE_PE, "mxfp4": {"pe": "mxfp4", "missing": "refused"}})
    for bw in (None, 1.0):
        row = evaluate_point(DesignPoint("int4", 4, 4, "os", bw, 500.0), ctx)
        layers = row["layer_energy"]
        assert [l["name"] for l in layers] == ["fc1", "fc2"]
        assert row["energy_j"] == pytest.approx(sum(l["energy_j"] for l in layers))
        assert row["energy_pe_j"] == pytest.approx(w.macs * 0.5e-12)
        assert row["energy_j"] == pytest.approx(row["energy_pe_j"] + row["energy_idle_j"]
                                                + row["energy_sram_j"] + row["energy_dram_j"])
        assert row["inferences_per_j"] == pytest.approx(1 / row["energy_j"])
        assert row["macs_per_j"] == pytest.approx(w.macs / row["energy_j"])
        assert row["pj_per_mac"] == pytest.approx(row["energy_j"] / w.macs * 1e12)
        cycles = row["cycles"] if bw is None else row["stalled_cycles"]
        assert row["energy_idle_j"] == pytest.approx((16 * cycles - w.macs) * 0.1e-12)
    assert row["energy_dram_j"] == pytest.approx(
        (row["bytes_read"] + row["bytes_written"]) * dram_pj_per_byte()[0] * 1e-12)
    ws = evaluate_point(DesignPoint("int4", 4, 4, "ws", None, 500.0), ctx)
    assert ws["energy_j"].startswith("missing: energy runs measure the output-stationary PE")
    assert ws["inferences_per_j"] == ws["energy_j"] and ws["layer_energy"] == []
    ws_only = evaluate_point(DesignPoint("int8", 4, 4, "ws", None, 500.0), ctx)
    assert ws_only["energy_j"] == ws["energy_j"]   # the reason, with no run of int8 at all
    block = evaluate_point(DesignPoint("mxfp4", 4, 4, "os", None, 500.0), ctx)
    assert block["energy_j"] == "missing: refused"
    other = evaluate_point(DesignPoint("int8", 4, 4, "os", None, 500.0), ctx)
    assert is_missing(other["energy_j"]) and "energy run was not made" in other["energy_j"]


@pytest.mark.parametrize("kind", ["mxfp4", "bitserial", "lut_nf4", "fp8_e4m3_ieee"])
def test_kinds_the_energy_model_refuses(tiny_topology, kind):
    e = pe_workload_energy(kind, load_workload(tiny_topology))
    assert set(e) == {"pe", "missing"}
    assert e["missing"].startswith("the energy model refuses it (energy runs take MAC and "
                                   "dot-product PE kinds without LUTs")


def test_one_energy_task_per_output_stationary_kind(tiny_topology, cache_root, monkeypatch):
    calls = []

    def fake(pe, workload, weights=None, **kw):
        calls.append(pe)
        return dict(FAKE_PE, pe=pe)
    monkeypatch.setattr(run_module, "pe_workload_energy", fake)
    points, _ = cross_product(["int4", "int8", "mxfp4"], ["2x2", "4x4"], ["os", "ws"],
                              [None, 8.0], [100.0])
    w = load_workload(tiny_topology)
    pool = concurrent.futures.ThreadPoolExecutor(2)   # the fake is seen by threads
    table = explore(points, w, executor=pool, metrics=NO_AREA, progress=False)
    assert sorted(calls) == ["int4", "int8", "mxfp4"]
    for row in table.rows:   # the streaming top runs no mxfp4: no traffic, no energy
        no_stream = row["dram_bw_gbps"] is not None and is_missing(row["stalled_cycles"])
        assert is_missing(row["energy_j"]) == (row["dataflow"] == "ws" or no_stream)
    explore([DesignPoint("int4", 2, 2, "os", None, 300.0)], w, executor=pool, metrics=NO_AREA,
            progress=False)
    assert calls[3:] == ["int4"]   # a new row: its kind's task (cached by content inside)
    pool.shutdown()


@pytest.mark.slow
@pytest.mark.synth
def test_pe_energy_on_the_workload_is_the_netlist_run(tiny_topology, tmp_path, cache_root):
    """int4 at its exact-k accumulator: the explorer's pJ/MAC is the energy command's
    netlist run on the same steps; the explorer's rows carry it."""
    w = load_workload(tiny_topology)
    e = pe_workload_energy("int4", w, build_dir=str(tmp_path))
    assert e["acc_bits"] == policy_acc_bits("int4")
    spec = pe_kind("int4").spec(acc_bits=e["acc_bits"])
    steps = energy_steps(spec, w)
    direct = pe_energy("int4", *steps, acc_bits=e["acc_bits"], build_dir=str(tmp_path))
    assert e["pj_per_mac"] == pytest.approx(direct.pj_per_mac, rel=1e-12)
    assert e["sampled_macs"] == direct.macs and e["checked_steps"] == direct.steps + IDLE_STEPS
    assert e["pj_per_mac"] > 0 and e["idle_pj_per_cycle"] > 0
    table = explore([DesignPoint("int4", 2, 2, "os", 8.0, 100.0)], w, workers=1,
                    metrics=NO_AREA, progress=False, use_cache=False, build_dir=str(tmp_path))
    assert table.rows[0]["pe_pj_per_mac"] == pytest.approx(e["pj_per_mac"])
    assert np.isfinite(table.rows[0]["inferences_per_j"])
    again = pe_workload_energy("int4", w, build_dir=str(tmp_path))
    assert again == e   # from the cache: the same content key
