# amaranth: UnusedElaboratable=no
"""The weight-stationary streaming top in Amaranth's simulator: GEMMs bit for bit against the
golden model with its cycle, stall and byte counters equal to the cycle model (ragged edges,
several m-chunks), the sticky overflow flag, constructor errors; input-stationary as the
transposed GEMM on the same top, its operand traffic reported per operand.  Jobs back to back
without reset: ``test_stream_top.py``; the native Verilator sweeps: ``sim/test_stream_run.py``."""
import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.hw.stream_config import StreamConfig
from nybble.hw.stream_ws_top import WsStreamTop, ws_hardware, ws_periods
from nybble.sim.memory_model import MemoryModel
from nybble.sim.stream_cycles import plan, stream_cycles
from nybble.sim.stream_run import check_stream_gemm
from nybble.sw.errors import ParameterError, ParameterTypeError

def _codes(rng, cfg, m, n, k):
    fa, fb = cfg.pe_spec.fmt_a, cfg.pe_spec.fmt_b
    return rng.integers(0, fa.n_codes, (m, k)), rng.integers(0, fb.n_codes, (k, n))


CASES = [  # (dataflow, pe, rows, cols, m, n, k, a_words, acc_rows, beat_words, bandwidth,
           #  latency)
    ("ws", "int4", 2, 2, 5, 3, 7, 16, 8, 2, 4, 3),          # one m-chunk, ragged K and N
    ("ws", "int8", 3, 2, 11, 5, 8, 4, 8, 1, "3/2", 2),      # three m-chunks (A half of 4 rows)
    ("ws", "int4", 2, 3, 9, 4, 5, 16, 4, 4, 64, 1),         # m-chunks by the accumulator
    ("is", "int4", 2, 3, 4, 9, 5, 4, 8, 2, 2, 2),           # B^T streams in chunks of 4
    ("ws", "int4_dp4", 2, 2, 5, 3, 19, 16, 8, 2, 4, 3),     # 4 lanes: a k-step is 4 products
    ("is", "int4_dp4", 2, 2, 5, 3, 19, 4, 4, 2, 2, 4),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}_{c[1]}_{c[2]}x{c[3]}")
def test_gemm_is_exact_and_the_model_counts_its_cycles(case, rng):
    df, pe, r, c, m, n, k, aw, acc, g, band, lat = case
    cfg = ArrayConfig(rows=r, cols=c, pe=pe, dataflow=df)
    st = StreamConfig(a_words=aw, b_words=max(r, g), beat_words=g, acc_rows=acc)
    a, b = _codes(rng, cfg, m, n, k)
    chk = check_stream_gemm(cfg, st, MemoryModel(band, lat), a, b, sim="amaranth", log=None)
    assert chk.mismatches == 0 and chk.model_mismatch == {}, (chk.first_mismatch,
                                                                chk.model_mismatch)
    assert chk.run.stall_cycles > 0 and chk.passed and chk.model.dataflow == df
    assert (chk.model.m, chk.model.n, chk.model.k) == (m, n, k)


def test_input_stationary_is_the_transposed_gemm_and_counts_each_operand():
    st = StreamConfig(a_words=4, b_words=2, acc_rows=4)
    mem = MemoryModel(2, 3)
    m, n, k = 6, 9, 5
    ins = stream_cycles(ArrayConfig(rows=2, cols=2, dataflow="is"), st, mem, m, n, k)
    ws_t = stream_cycles(ArrayConfig(rows=2, cols=2, dataflow="ws"), st, mem, n, m, k)
    assert ins.cycles == ws_t.cycles and ins.dataflow == "is" and (ins.m, ins.n) == (m, n)
    # A (M x K, int4) stays: each 2 x 2 tile of A^T fetched once per chunk of 4 rows of B^T
    # (3 chunks); B streams: its K = 5 padded to 3 k-tiles of 2, one word of 2 k-steps
    # (1 byte) per column of B and k-tile, once per tile of 2 rows of A (3 tiles)
    assert ins.a_bytes_read == 3 * (3 * 3 * 2) * 1 == ws_t.b_bytes_read
    assert ins.b_bytes_read == 3 * 3 * 9 * 1 == ws_t.a_bytes_read
    assert ins.bytes_read == ins.a_bytes_read + ins.b_bytes_read


def test_ws_hardware():
    ws = ArrayConfig(rows=2, cols=2, dataflow="ws")
    assert ws_hardware(ws) is ws and ws_hardware(ws.replace(dataflow="is")) == ws
    with pytest.raises(ParameterError, match=r"^dataflow 'is' runs the transposed GEMM on the "
                                             r"weight-stationary array, so the PE kind's "
                                             r"operand formats must be equal; 'int8_int4' "
                                             r"takes int8 x int4$"):
        ws_hardware(ArrayConfig(pe="int8_int4", dataflow="is"))
    with pytest.raises(ParameterError, match=r"^the weight-stationary streaming top runs "
                                             r"dataflow 'ws' or 'is', not 'os'$"):
        ws_hardware(ArrayConfig())


def test_overflow_flag_is_sticky_and_results_saturate():
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=8, overflow="saturate",
                      dataflow="ws")
    st = StreamConfig(a_words=4, b_words=2, beat_words=1, acc_rows=4)
    a, b = np.full((2, 6), 7), np.full((6, 2), 7)      # 6 * 49 = 294 > 127, over 3 k-tiles
    chk = check_stream_gemm(cfg, st, MemoryModel(8, 1), a, b, sim="amaranth", log=None)
    assert chk.run.overflow and chk.passed
    assert np.array_equal(chk.run.result, np.full((2, 2), 127))


def test_constructor_errors():
    ws = ArrayConfig(rows=4, cols=4, dataflow="ws")
    with pytest.raises(ParameterTypeError, match=r"^config must be an ArrayConfig, not 4$"):
        WsStreamTop(4)
    with pytest.raises(ParameterTypeError, match=r"^stream must be a StreamConfig, not 'x'$"):
        WsStreamTop(ws, "x")
    with pytest.raises(ParameterError, match=r"^WsStreamTop runs the weight-stationary "
                                             r"dataflow: ArrayConfig.dataflow must be 'ws', "
                                             r"not 'os'$"):
        WsStreamTop(ArrayConfig())
    with pytest.raises(ParameterError, match=r"^StreamConfig.b_words must hold one weight "
                                             r"tile of 4 words \(rows\) per half, not 2$"):
        WsStreamTop(ws, StreamConfig(b_words=2))
    with pytest.raises(ParameterError, match=r"^scratchpads must be one of amaranth, verilog, "
                                             r"not 'x'$"):
        WsStreamTop(ws, scratchpads="x")
    with pytest.raises(ParameterError, match=r"^StreamConfig.acc_rows must be in 2..1048576, "
                                             r"not 1$"):
        StreamConfig(acc_rows=1)


def test_periods_and_chunks():
    assert ws_periods(4, 4, 1) == (7, 11)        # Q = 3 + 4, P = max(Q + R, R + 2)
    assert ws_periods(2, 2, 2) == (4, 6)         # R*L + 2 = 6
    p = plan(ArrayConfig(rows=2, cols=2, dataflow="ws"),
             StreamConfig(a_words=8, b_words=2, acc_rows=5), 12, 3, 9)
    assert (p.k_chunk, p.m_chunks) == (5, 3)
    assert p.job == dict(m_tiles=3, n_tiles=2, k_steps=5, k_chunk=5, m_len=12, a_addr=0,
                         b_addr=p.b_addr, c_addr=p.c_addr)
