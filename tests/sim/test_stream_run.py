"""The streaming tops on the native Verilator harness: one cached build runs GEMMs of every size
(no recompilation), bit for bit against the golden model, with its cycle and stall counters
and the bytes at its port equal to the cycle model on a sweep of shapes, bandwidths and
latencies, some compute-bound and some memory-bound (output-, weight- and input-stationary:
ragged edges, several m-chunks)."""
import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.hw.stream_config import StreamConfig
from nybble.sim.memory_model import MemoryModel
from nybble.hw.stream_top import StreamLayout
from nybble.sim.stream_native import build_stream_native, run_stream_native
from nybble.sim.stream_run import (check_stream_gemm, memory_image, read_results,
                                   stream_verilog)
from nybble.sim.stream_cycles import plan
from nybble.sw import quantize
from nybble.sw.errors import ParameterError, ToolError

BANDWIDTHS = ("1/2", 1, 2, 3, 4, 16)


def _codes(rng, cfg, m, n, k):
    return (rng.integers(0, cfg.pe_spec.fmt_a.n_codes, (m, k)),
            rng.integers(0, cfg.pe_spec.fmt_b.n_codes, (k, n)))


def _sweep(cfg, st, rng, points, max_dim, max_k, max_m=None):
    """``points`` random GEMMs on one build, each bit for bit and counted as the model counts;
    some compute-bound, some memory-bound.  A weight-stationary ``cfg``: M up to ``max_m``,
    every fourth point input-stationary (the same build runs the transposed GEMM)."""
    bounds, builds = set(), []
    ws = cfg.dataflow != "os"
    for i in range(points):
        if ws:
            cfg = cfg.replace(dataflow="is" if i % 4 == 3 else "ws")
            m = int(rng.integers(1, max_m + 1))
            n = int(rng.integers(1, max_dim + 1))
        else:
            m, n = (int(x) for x in rng.integers(1, max_dim + 1, 2))
        k = int(rng.integers(1, max_k + 1))
        mem = MemoryModel(BANDWIDTHS[i % len(BANDWIDTHS)], int(rng.integers(1, 9)))
        if i % 3 == 0 and ws:   # long m-chunks, fast memory: compute-bound
            m, mem = 2 * st.a_words - 1, MemoryModel(64, 1)
        elif i % 3 == 0:   # one A panel reused by every tile, fast memory: compute-bound
            # (one word a beat: a B burst of S words takes S + 1 cycles, so S <= 2R - 2
            # k-steps, the tile's drain spacing, leave the array the busier)
            k = min(st.a_words, st.b_words) if st.beat_words > 1 else cfg.rows
            m, mem = cfg.rows, MemoryModel(16, 1)
        a, b = _codes(rng, cfg, m, n, k)
        chk = check_stream_gemm(cfg, st, mem, a, b, sim="verilator", log=None)
        assert chk.mismatches == 0, (m, n, k, mem, chk.first_mismatch)
        assert chk.model_mismatch == {}, (m, n, k, mem, chk.model_mismatch)
        bounds.add(chk.model.bound)
        builds.append(chk.run.cached_build)
    assert bounds == {"compute", "memory"}
    assert all(builds[1:])          # one build for every size, bandwidth and latency
    return points


def test_one_build_every_size_and_the_model_on_32_points(rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="int4")
    st = StreamConfig(a_words=8, b_words=8, beat_words=2)
    assert _sweep(cfg, st, rng, 32, 7, 24) >= 30


@pytest.mark.slow
@pytest.mark.parametrize("pe, rows, cols, beat", [("int8", 3, 2, 1), ("int16", 4, 4, 4),
                                                  ("int4", 4, 4, 2)])
def test_model_sweep_on_more_configs(pe, rows, cols, beat, rng):
    cfg = ArrayConfig(rows=rows, cols=cols, pe=pe)
    st = StreamConfig(a_words=16, b_words=8, beat_words=beat)
    _sweep(cfg, st, rng, 16, 11, 40)


def test_weight_stationary_sweep(rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", dataflow="ws")
    st = StreamConfig(a_words=16, b_words=2, beat_words=2, acc_rows=16)
    assert _sweep(cfg, st, rng, 16, 7, 7, max_m=40) == 16


@pytest.mark.slow
# (one word a beat cannot be compute-bound here: a row of A takes its beat's cycle and the
# weights and latency come on top; the Amaranth cases run beat_words = 1)
@pytest.mark.parametrize("pe, rows, cols, beat", [("int8", 3, 2, 2), ("int16", 4, 4, 4),
                                                  ("int4", 4, 4, 2), ("fp4_e2m1", 4, 2, 2),
                                                  ("int4", 4, 4, 4)])
def test_weight_stationary_sweep_on_more_configs(pe, rows, cols, beat, rng):
    cfg = ArrayConfig(rows=rows, cols=cols, pe=pe, dataflow="ws")
    st = StreamConfig(a_words=32, b_words=8, beat_words=beat, acc_rows=24)
    assert _sweep(cfg, st, rng, 30, 6 * rows, 6 * rows, max_m=100) == 30


def test_adversarial_extremes_int8(rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="int8", acc_bits=24)
    st = StreamConfig(a_words=8, b_words=8, beat_words=2)
    # int8 code 128 is -128: the largest products, every sign
    a = np.full((3, 17), 128)
    b = np.where(rng.random((17, 3)) < 0.5, 128, 127)
    chk = check_stream_gemm(cfg, st, MemoryModel(3, 2), a, b, sim="verilator", log=None)
    assert chk.passed


def test_results_come_from_the_memory_image():
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=12)
    st = StreamConfig(a_words=4, b_words=4, beat_words=2)
    p = plan(cfg, st, 3, 3, 2)
    store = memory_image(cfg, p, np.ones((3, 2), int), np.ones((2, 3), int))
    # 4-bit codes two per byte: a 2-row A word is one byte
    assert p.a_word_bytes == 1 and store[p.a_addr] == 0x11
    # a C row: two 12-bit accumulators in 3 bytes; write 5 and -1 into tile 0 row 0
    assert p.row_bytes == 3
    store[p.c_addr:p.c_addr + 3] = (5 | (0xFFF << 12)).to_bytes(3, "little")
    got = read_results(cfg, p, store[p.c_addr:])
    assert got[0, 0] == 5 and got[0, 1] == -1 and got.shape == (3, 3)


def test_a_scratchpad_too_small_is_refused_with_the_size_needed():
    cfg = ArrayConfig(rows=4, cols=4, pe="int8")
    with pytest.raises(ParameterError, match=r"^scratchpad A holds 2 words per half \(16 bytes "
                                             r"in both halves\), less than one tile needs: 7 "
                                             r"words per half \(56 bytes\) on a 4x4 int8 array; "
                                             r"raise a_words to at least 7$"):
        plan(cfg, StreamConfig(a_words=2, b_words=8, beat_words=2), 4, 4, 9)


def test_native_timeout_is_an_error(tmp_path):
    cfg = ArrayConfig(rows=2, cols=2, pe="int4")
    st = StreamConfig(a_words=8, b_words=8, beat_words=2)
    verilog, _ = stream_verilog(cfg, st, log=None)
    build = build_stream_native(verilog, StreamLayout(cfg, st), log=None)
    p = plan(cfg, st, 2, 2, 3)
    store = memory_image(cfg, p, np.ones((2, 3), int), np.ones((3, 2), int))
    with pytest.raises(ToolError, match=r"^native stream simulation did not finish within 3 "
                                        r"cycles$"):
        run_stream_native(build, store, p.job, MemoryModel(1, 1), max_cycles=3,
                          out_range=(p.c_addr, p.memory_bytes), workdir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.cocotb
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_cocotb_testbench(dataflow, rng):
    cfg = ArrayConfig(rows=2, cols=3, pe="int8", dataflow=dataflow)
    st = StreamConfig(a_words=4, b_words=4, beat_words=2, acc_rows=4)
    a, b = _codes(rng, cfg, 3, 4, 9)
    chk = check_stream_gemm(cfg, st, MemoryModel("3/2", 2), a, b, sim="cocotb", log=None)
    assert chk.mismatches == 0 and chk.model_mismatch == {}, chk.first_mismatch


def _block_operands(rng, scheme, m, n, k):
    x = rng.standard_normal((m, k)) * np.exp(rng.uniform(-3, 3, (m, 1)))
    y = rng.standard_normal((k, n)) * np.exp(rng.uniform(-3, 3, (1, n)))
    return quantize(x, scheme, axis=-1), quantize(y, scheme, axis=0)


@pytest.mark.slow
@pytest.mark.parametrize("pe", ["mxfp4", "nvfp4", "q4_0", "mxint8"])
def test_block_scaled_sweep_on_verilator(pe, rng):
    """Per kind, 8 points on one build: bit for bit, and cycles, stalls and bytes equal to
    the model, compute- and memory-bound."""
    cfg = ArrayConfig(rows=2, cols=3, pe=pe, acc_bits=40)
    st = StreamConfig(a_words=4, b_words=2, beat_words=2)
    block = cfg.pe_spec.block_size
    bounds, builds = set(), []
    for i in range(8):
        m, n = (int(x) for x in rng.integers(1, 7, 2))
        # ggml's Q4_0 has no partial blocks; the others pad K to whole blocks
        k = block * int(rng.integers(1, 5)) if pe == "q4_0" else int(rng.integers(1, 140))
        mem = MemoryModel(BANDWIDTHS[i % len(BANDWIDTHS)], int(rng.integers(1, 9)))
        if i % 3 == 0:   # one A panel reused by every tile, fast memory: compute-bound
            m, k, mem = cfg.rows, 2 * block, MemoryModel(64, 1)
        chk = check_stream_gemm(cfg, st, mem, *_block_operands(rng, pe, m, n, k),
                                sim="verilator", log=None)
        assert chk.passed, (pe, m, n, k, mem, chk.first_mismatch, chk.model_mismatch)
        bounds.add(chk.model.bound)
        builds.append(chk.run.cached_build)
    assert bounds == {"compute", "memory"} and all(builds[1:])
