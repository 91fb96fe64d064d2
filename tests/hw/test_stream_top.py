# amaranth: UnusedElaboratable=no
"""The streaming top in Amaranth's simulator: int4 / int8 / int16 GEMMs bit for bit against the
golden model, its cycle, stall and byte counters equal to the cycle model, jobs back to back
without reset on one top, the sticky overflow flag; block-scaled kinds (MXFP4, NVFP4, Q4_0,
MXINT8) with their scales once per block at the port; constructor and config errors."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from nybble.hw.config import ArrayConfig
from nybble.hw.stream_config import StreamConfig
from nybble.hw.stream_top import StreamTop
from nybble.sim.check import golden_for
from nybble.sim.memory_model import MemoryModel
from nybble.sim.stream_cycles import plan, stream_cycles
from nybble.sim.stream_run import (check_stream_gemm, memory_image, read_results,
                                   run_stream_amaranth)
from nybble.sim.host import AmaranthPorts
from nybble.sim.stream_host import StreamHost
from nybble.sw import quantize
from nybble.sw.errors import ParameterError, ParameterTypeError, ToolError


def _codes(rng, cfg, m, n, k):
    fa, fb = cfg.pe_spec.fmt_a, cfg.pe_spec.fmt_b
    return rng.integers(0, fa.n_codes, (m, k)), rng.integers(0, fb.n_codes, (k, n))


CASES = [  # (pe, rows, cols, m, n, k, a_words, b_words, beat_words, bandwidth, latency)
    ("int4", 2, 3, 5, 7, 9, 4, 8, 2, "3/2", 3),      # K chunked: A reloaded every step
    ("int8", 3, 2, 4, 5, 6, 8, 8, 1, 16, 1),          # compute side limits
    ("int16", 2, 2, 3, 3, 20, 8, 4, 4, 2, 2),         # memory-bound, chunks of 4
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_gemm_is_exact_and_the_model_counts_its_cycles(case, rng):
    pe, r, c, m, n, k, aw, bw, g, band, lat = case
    cfg = ArrayConfig(rows=r, cols=c, pe=pe)
    st = StreamConfig(a_words=aw, b_words=bw, beat_words=g)
    a, b = _codes(rng, cfg, m, n, k)
    chk = check_stream_gemm(cfg, st, MemoryModel(band, lat), a, b, sim="amaranth", log=None)
    assert chk.mismatches == 0 and chk.model_mismatch == {}, (chk.first_mismatch,
                                                                chk.model_mismatch)
    assert chk.run.stall_cycles > 0 and chk.passed


def test_jobs_back_to_back_on_one_top(rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=16)
    st = StreamConfig(a_words=4, b_words=4, beat_words=2)
    _back_to_back(cfg, st, MemoryModel(4, 2), ((3, 2, 5), (1, 4, 2), (4, 3, 11)),
                  lambda m, n, k: _codes(rng, cfg, m, n, k))


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_weight_stationary_jobs_back_to_back_on_one_top(dataflow, rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", dataflow=dataflow)
    st = StreamConfig(a_words=4, b_words=2, beat_words=2, acc_rows=4)
    _back_to_back(cfg, st, MemoryModel(2, 2), ((3, 2, 4), (6, 3, 5), (1, 1, 1)),
                  lambda m, n, k: _codes(rng, cfg, m, n, k))


def _back_to_back(cfg, st, mem, shapes, operands):
    """Jobs of ``shapes`` (``operands(m, n, k)`` gives each one's a, b) back to back on one
    simulated top, no reset: each bit for bit and counted as the model counts."""
    jobs, want = [], []
    for m, n, k in shapes:
        a, b = operands(m, n, k)
        p = plan(cfg, st, m, n, k)
        jobs.append((p, memory_image(cfg, p, a, b)))
        want.append((golden_for(cfg, a, b), stream_cycles(cfg, st, mem, m, n, k)))
    for (p, _), run, (gold, model) in zip(jobs, run_stream_amaranth(cfg, st, mem, jobs), want):
        c_bytes, cycles, stalls, overflow, nread, nwritten, _ = run
        assert np.array_equal(read_results(cfg, p, c_bytes), gold)
        assert (cycles, stalls, nread, nwritten) == (model.cycles, model.stall_cycles,
                                                     model.bytes_read, model.bytes_written)
        assert not overflow


def test_overflow_flag_is_sticky_and_results_saturate():
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=8, overflow="saturate")
    st = StreamConfig(a_words=4, b_words=4, beat_words=1)
    a, b = np.full((2, 3), 7), np.full((3, 2), 7)      # 3 * 49 = 147 > 127
    chk = check_stream_gemm(cfg, st, MemoryModel(8, 1), a, b, sim="amaranth", log=None)
    assert chk.run.overflow and chk.passed
    assert np.array_equal(chk.run.result, np.full((2, 2), 127))


def test_host_gives_up_after_max_cycles():
    cfg = ArrayConfig(rows=2, cols=2, pe="int4")
    st = StreamConfig(a_words=4, b_words=4, beat_words=1)
    p = plan(cfg, st, 2, 2, 3)
    store = memory_image(cfg, p, np.ones((2, 3), int), np.ones((3, 2), int))
    top = StreamTop(cfg, st)
    sim = Simulator(top)
    sim.add_clock(1e-8)
    seen = []

    async def bench(ctx):
        with pytest.raises(ToolError, match=r"^the streaming top did not finish within 5 "
                                            r"cycles$"):
            await StreamHost(AmaranthPorts(ctx, top), MemoryModel(1, 1)).run(p.job, store,
                                                                            max_cycles=5)
        seen.append(True)

    sim.add_testbench(bench)
    sim.run()
    assert seen == [True]


def test_constructor_errors():
    with pytest.raises(ParameterTypeError, match=r"^config must be an ArrayConfig, not 4$"):
        StreamTop(4)
    with pytest.raises(ParameterTypeError, match=r"^stream must be a StreamConfig, not 'x'$"):
        StreamTop(ArrayConfig(), "x")
    with pytest.raises(ParameterError, match=r"^StreamTop runs the output-stationary dataflow "
                                             r"only: ArrayConfig.dataflow must be 'os', not 'ws'$"):
        StreamTop(ArrayConfig(dataflow="ws"))
    with pytest.raises(ParameterError, match=r"^scratchpads must be one of amaranth, "
                                             r"verilog, not 'sram'$"):
        StreamTop(ArrayConfig(), scratchpads="sram")
    for pe in ("lut_nf4", "bitserial"):
        with pytest.raises(ParameterError, match=r"^StreamTop takes plain and block-scaled PE "
                                                 rf"kinds, not '{pe}' \(LUT and bit-serial "):
            StreamTop(ArrayConfig(pe=pe))


def test_stream_config_errors_and_sizes():
    with pytest.raises(ParameterError, match=r"^StreamConfig.beat_words must be one of 1, 2, 4, "
                                             r"8, not 3$"):
        StreamConfig(beat_words=3)
    with pytest.raises(ParameterError, match=r"^StreamConfig.a_words must be a multiple of "
                                             r"beat_words=2 in 2\.\.4194304, not 5$"):
        StreamConfig(a_words=5)
    with pytest.raises(ParameterTypeError, match=r"^StreamConfig.b_words must be an integer, "
                                                 r"not 2\.0$"):
        StreamConfig(b_words=2.0)
    top = StreamTop(ArrayConfig(rows=16, cols=16, pe="int4"))
    # 16 int4 codes: 8 bytes a word, two halves of 16384 words: 256 KiB per operand
    assert StreamConfig().scratchpad_bytes(top.layout) == {"a": 262144, "b": 262144,
                                                          "c": 2 * 16 * 64}
    assert top.layout.rd_data_bits == 128 and top.layout.wr_data_bits == 512
    assert StreamConfig(a_words=np.int64(8)).a_words == 8


def _block_operands(rng, scheme, m, n, k):
    x = rng.standard_normal((m, k)) * np.exp(rng.uniform(-3, 3, (m, 1)))
    y = rng.standard_normal((k, n)) * np.exp(rng.uniform(-3, 3, (1, n)))
    return quantize(x, scheme, axis=-1), quantize(y, scheme, axis=0)


BLOCK_CASES = [  # (pe, rows, cols, m, n, k, a_words, b_words, beat_words, bandwidth, latency)
    ("mxfp4", 2, 3, 3, 5, 70, 2, 2, 1, 2, 3),        # K not whole blocks, chunks of 2 records
    ("nvfp4", 2, 2, 4, 3, 40, 4, 2, 2, "1/2", 2),    # e4m3 scales, 2 k-steps a record
    ("q4_0", 3, 2, 2, 3, 64, 2, 2, 2, 16, 1),        # fp16 scales, fast memory
]


@pytest.mark.parametrize("case", BLOCK_CASES, ids=lambda c: c[0])
def test_block_scaled_gemm_is_exact_and_the_model_counts_its_cycles(case, rng):
    pe, r, c, m, n, k, aw, bw, g, band, lat = case
    cfg = ArrayConfig(rows=r, cols=c, pe=pe, acc_bits=40)
    st = StreamConfig(a_words=aw, b_words=bw, beat_words=g)
    a, b = _block_operands(rng, pe, m, n, k)
    chk = check_stream_gemm(cfg, st, MemoryModel(band, lat), a, b, sim="amaranth", log=None)
    assert chk.mismatches == 0 and chk.model_mismatch == {}, (chk.first_mismatch,
                                                                chk.model_mismatch)
    # every record (a block's codes of a tile's rows / columns and their scales, once)
    # crosses the port once per tile that needs it; A once per tile row if K fits
    p, s = chk.run.plan, chk.run.plan.schedule
    assert p.words == s.blocks
    a_loads = s.tiles if p.k_chunk < p.words else s.m_tiles
    assert chk.run.bytes_read == s.blocks * (a_loads * p.a_word_bytes
                                             + s.tiles * p.b_word_bytes)


@pytest.mark.parametrize("pe, bits", [("mxfp4", 4.25), ("nvfp4", 4.5), ("q4_0", 4.5),
                                      ("mxint8", 8.25), ("int4", 4), ("int8", 8)])
def test_bits_per_element_at_the_port(pe, bits):
    lay = StreamTop(ArrayConfig(rows=16, cols=16, pe=pe)).layout
    assert lay.a_bits_per_element == lay.b_bits_per_element == bits
    spec = ArrayConfig(rows=16, cols=16, pe=pe).pe_spec
    if spec.family == "block":
        # a record: block / lanes k-steps of 16 rows x lanes codes, then 16 scale codes
        assert lay.steps_per_word == spec.block_size // spec.lanes
        assert lay.a_word_bits == (spec.block_size * 16 * spec.fmt_a.bits
                                   + 16 * spec.scale_bits)


def test_block_scaled_jobs_back_to_back_on_one_top(rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="mxfp4", acc_bits=40)
    st = StreamConfig(a_words=2, b_words=2, beat_words=1)
    _back_to_back(cfg, st, MemoryModel(5, 2), ((3, 2, 40), (1, 3, 7), (2, 2, 100)),
                  lambda m, n, k: _block_operands(rng, "mxfp4", m, n, k))


def test_block_scaled_overflow_saturates_like_the_golden_model(rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="nvfp4", acc_bits=10, overflow="saturate")
    st = StreamConfig(a_words=2, b_words=2, beat_words=1)
    a, b = _block_operands(rng, "nvfp4", 2, 2, 64)
    chk = check_stream_gemm(cfg, st, MemoryModel(4, 2), a, b, sim="amaranth", log=None)
    assert chk.passed and chk.run.overflow
    assert np.abs(chk.run.result).max() == 2 ** 9 - 1 or chk.run.result.min() == -2 ** 9
