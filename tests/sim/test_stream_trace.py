"""Address traces of the streaming top: the DRAM beats equal the ones the RTL moved in
Amaranth's simulator (cycle, address, bytes), the scratchpad reads one per issued k-step
(a block-scaled kind's record once per k-step it holds)."""
import csv

import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.hw.stream_config import StreamConfig
from nybble.sim.memory_model import MemoryModel
from nybble.sim.stream_cycles import plan
from nybble.sim.stream_run import memory_image, run_stream_amaranth
from nybble.sim.stream_trace import MAX_TRACE_ROWS, TRACE_FILES, beat_cycles, write_traces
from nybble.sw import quantize
from nybble.sw.errors import ParameterError


def _rows(path):
    with open(path) as f:
        return [tuple(int(x) for x in row) for row in list(csv.reader(f))[1:]]


@pytest.mark.parametrize("bw, lat", [("3/2", 2), (16, 1)])
def test_dram_traces_are_the_rtl_beats(tmp_path, rng, bw, lat):
    cfg = ArrayConfig(rows=2, cols=3, pe="int8")
    st = StreamConfig(a_words=4, b_words=4, beat_words=2)
    mem = MemoryModel(bw, lat)
    m, n, k = 3, 5, 7
    p = plan(cfg, st, m, n, k)
    store = memory_image(cfg, p, rng.integers(0, 256, (m, k)), rng.integers(0, 256, (k, n)))
    logs = []
    (run,) = run_stream_amaranth(cfg, st, mem, [(p, store)], beat_logs=logs)
    counts = write_traces(cfg, st, mem, m, n, k, str(tmp_path))
    assert sorted(counts) == sorted(TRACE_FILES)
    assert _rows(tmp_path / "DRAM_READ.csv") == logs[0]["rd"]
    assert _rows(tmp_path / "DRAM_WRITE.csv") == logs[0]["wr"]
    a = _rows(tmp_path / "A_SCRATCHPAD_READ.csv")
    assert len(a) == counts["A_SCRATCHPAD_READ.csv"] == 4 * 7    # 2 x 2 tiles, 7 k-steps
    assert max(c for c, _ in a) < run[1]


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_weight_stationary_traces_are_the_rtl_beats(tmp_path, rng, dataflow):
    cfg = ArrayConfig(rows=2, cols=3, pe="int8", dataflow=dataflow)
    st = StreamConfig(a_words=4, b_words=2, beat_words=2, acc_rows=4)
    mem = MemoryModel("3/2", 2)
    m, n, k = 5, 4, 7
    p = plan(cfg, st, m, n, k)
    store = memory_image(cfg, p, rng.integers(0, 256, (m, k)), rng.integers(0, 256, (k, n)))
    logs = []
    (run,) = run_stream_amaranth(cfg, st, mem, [(p, store)], beat_logs=logs)
    counts = write_traces(cfg, st, mem, m, n, k, str(tmp_path))
    assert _rows(tmp_path / "DRAM_READ.csv") == logs[0]["rd"]
    assert _rows(tmp_path / "DRAM_WRITE.csv") == logs[0]["wr"]
    # ws: 5 rows of A (m-chunks of 4 and 1) x 2 column tiles x 4 k-tiles issued, a weight
    # tile of 2 words shifted per step (2 x 2 x 4 steps); is: the 4 columns of B (one chunk)
    # x 2 tiles of 3 rows of A x 4 k-tiles, 2 x 4 steps
    rows, tiles = (5 * 2 * 4, 2 * 2 * 4) if dataflow == "ws" else (4 * 2 * 4, 2 * 4)
    assert counts["A_SCRATCHPAD_READ.csv"] == rows
    assert counts["B_SCRATCHPAD_READ.csv"] == 2 * tiles
    assert max(c for c, _ in _rows(tmp_path / "A_SCRATCHPAD_READ.csv")) < run[1]


def test_beat_cycles_closed_form():
    due, off, size = beat_cycles(MemoryModel(3, 2), 10, 10, 4)
    # cumulative bytes 4, 8, 10 at 3 B/cycle: ceil 2, 3, 4 -> cycles 13, 14, 15
    assert due.tolist() == [13, 14, 15] and off.tolist() == [0, 4, 8]
    assert size.tolist() == [4, 4, 2]


def test_too_long_is_refused(tmp_path):
    with pytest.raises(ParameterError, match=r"^the traces of a 4096x4096 @ 4096x4096 GEMM "
                                             rf"would have [\d,]+ rows; at most "
                                             rf"{MAX_TRACE_ROWS:,}: trace a smaller GEMM$"):
        write_traces(ArrayConfig(rows=16, cols=16), StreamConfig(), MemoryModel(16, 10),
                     4096, 4096, 4096, str(tmp_path))


def test_block_scaled_traces_are_the_rtl_beats(tmp_path, rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="nvfp4", acc_bits=40)
    st = StreamConfig(a_words=2, b_words=2, beat_words=1)
    mem = MemoryModel(3, 2)
    m, n, k = 3, 2, 40
    a = quantize(rng.standard_normal((m, k)), "nvfp4", axis=-1)
    b = quantize(rng.standard_normal((k, n)), "nvfp4", axis=0)
    p = plan(cfg, st, m, n, k)
    logs = []
    run_stream_amaranth(cfg, st, mem, [(p, memory_image(cfg, p, a, b))], beat_logs=logs)
    counts = write_traces(cfg, st, mem, m, n, k, str(tmp_path))
    assert _rows(tmp_path / "DRAM_READ.csv") == logs[0]["rd"]
    assert _rows(tmp_path / "DRAM_WRITE.csv") == logs[0]["wr"]
    # 2 x 1 tiles, 3 records (blocks of 16) of 2 k-steps each: every record read twice
    a_reads = _rows(tmp_path / "A_SCRATCHPAD_READ.csv")
    assert counts["A_SCRATCHPAD_READ.csv"] == 2 * 3 * 2
    assert [w for _, w in a_reads[:4]] == [0, 0, 1, 1]
