"""Workload reports of the streaming top: per-layer rows from the exact cycle model, totals
weighted by count, tokens per second; LLaMA-7B's decode GEMMs; the roofline PNG."""
import pytest

from nybble.hw.config import ArrayConfig
from nybble.hw.stream_config import StreamConfig
from nybble.sim.memory_model import MemoryModel
from nybble.sim.stream_cycles import stream_cycles
from nybble.sim.stream_report import LAYER_KEYS, roofline_png, stream_workload
from nybble.sim.workloads import Layer, llama_7b_decode
from nybble.sw.errors import ParameterError


def test_decode_layers():
    layers = {l.name: l for l in llama_7b_decode(seq_len=100, batch=3)}
    assert (layers["q_proj"].m, layers["q_proj"].n, layers["q_proj"].k) == (3, 4096, 4096)
    assert (layers["attn_scores"].m, layers["attn_scores"].n, layers["attn_scores"].count) \
        == (1, 100, 96)
    assert (layers["ffn_down"].n, layers["ffn_down"].k) == (4096, 11008)
    with pytest.raises(ParameterError, match=r"^llama_7b_decode.batch must be at least 1, "
                                             r"not 0$"):
        llama_7b_decode(batch=0)


def test_rows_and_totals():
    cfg = ArrayConfig(rows=4, cols=4, pe="int8", clock_mhz=200)
    st, mem = StreamConfig(a_words=64, b_words=64), MemoryModel(8, 5)
    layers = [Layer("x", 5, 9, 70, 2), Layer("y", 17, 3, 8)]
    (rep,) = stream_workload([cfg], st, mem, layers, passes=4, tokens=10)
    rows = rep["layers"]
    assert [set(r) for r in rows] == [set(LAYER_KEYS)] * 2
    ref = stream_cycles(cfg, st, mem, 5, 9, 70)
    assert rows[0]["cycles"] == ref.cycles and rows[0]["total_cycles"] == 2 * ref.cycles
    t = rep["totals"]
    assert t["cycles"] == 2 * ref.cycles + rows[1]["cycles"]
    assert t["macs"] == 2 * 5 * 9 * 70 + 17 * 3 * 8
    assert t["cycles_per_token"] == t["cycles"] * 4 / 10
    assert t["tokens_per_second"] == pytest.approx(200e6 / t["cycles_per_token"])
    assert rep["element_bits"] == [8, 8] and rep["peak_mac_per_cycle"] == 16


def test_roofline_png(tmp_path):
    cfg = ArrayConfig(rows=4, cols=4, pe="int4")
    mem = MemoryModel(2, 3)
    reps = stream_workload([cfg, cfg.replace(pe="int16")], StreamConfig(a_words=64,
                           b_words=64), mem, [Layer("a", 1, 64, 64), Layer("b", 64, 64, 64)])
    path = roofline_png(reps, mem, str(tmp_path / "r.png"))
    assert open(path, "rb").read(4) == b"\x89PNG"
    with pytest.raises(ParameterError, match=r"^roofline_png needs at least one report$"):
        roofline_png([], mem, str(tmp_path / "x.png"))
