"""The streaming cycle model on its own (its equality with the RTL is held in
``test_stream_run.py`` and ``hw/test_stream_top.py``): what the memory side of 4 bits shows --
a decode GEMV moves half the bytes in int4 that it moves in int8 and takes half the cycles;
a prefill GEMM stays compute-bound because tiles are reused from the scratchpads."""
import pytest

from nybble.hw.config import ArrayConfig
from nybble.hw.stream_config import StreamConfig
from nybble.sim.memory_model import MemoryModel
from nybble.sim.stream_cycles import plan, stream_cycles
from nybble.sw.errors import ParameterError


def _decode(pe):
    return stream_cycles(ArrayConfig(rows=16, cols=16, pe=pe), StreamConfig(),
                         MemoryModel(4, 10), 1, 4096, 4096)


def test_decode_gemv_cycles_follow_the_bytes():
    r4, r8, r16 = (_decode(pe) for pe in ("int4", "int8", "int16"))
    assert all(r.bound == "memory" for r in (r4, r8, r16))
    assert r8.bytes_read == 2 * r4.bytes_read - 0 and r16.bytes_read == 4 * r4.bytes_read
    assert 0.9 < 2 * r4.cycles / r8.cycles < 1.1 and 0.9 < 4 * r4.cycles / r16.cycles < 1.1


def test_block_scaled_decode_moves_its_scales_once_per_block():
    r4 = _decode("int4")
    for pe, bits in (("mxfp4", 4.25), ("nvfp4", 4.5), ("q4_0", 4.5), ("mxint8", 8.25)):
        r = _decode(pe)
        assert r.bound == "memory"
        # B (the weights, 4096 x 4096) dominates: exactly bits / 4 times int4's bytes
        block = ArrayConfig(pe=pe).pe_spec.block_size     # records: 16 columns x block
        assert r.b_writes * 16 * block == 4096 * 4096
        ratio = r.bytes_read / r4.bytes_read
        assert abs(ratio - bits / 4) < 0.01, (pe, ratio)
        assert abs(r.cycles / r4.cycles - bits / 4) < 0.02 * bits / 4, pe


def test_block_scaled_issue_takes_block_over_lanes_cycles_per_record():
    cfg = ArrayConfig(rows=2, cols=2, pe="mxfp4")       # 8 lanes: 4 k-steps a record
    r = stream_cycles(cfg, StreamConfig(a_words=8, b_words=8), MemoryModel(1024, 1), 2, 2,
                      32 * 8)
    assert r.k_chunk == 8 and r.a_reads == 8 * 4 and r.issue_cycles == 32
    events = []
    stream_cycles(cfg, StreamConfig(a_words=8, b_words=8), MemoryModel(1024, 1), 2, 2,
                  32 * 8, events=events)
    assert [e[2] * e[5] for e in events if e[0] == "issue"] == [32]


def test_prefill_is_compute_bound_with_the_default_scratchpads():
    r = stream_cycles(ArrayConfig(rows=16, cols=16, pe="int4"), StreamConfig(),
                      MemoryModel(16, 10), 2048, 4096, 4096)
    assert r.bound == "compute" and r.utilization >= 0.9
    # the A panel (16 rows x K) is read once per row of tiles, B once per tile
    assert r.a_writes == 128 * 4096 and r.b_writes == 128 * 256 * 4096


def test_counts_and_report():
    cfg = ArrayConfig(rows=2, cols=3, pe="int8", acc_bits=20)
    r = stream_cycles(cfg, StreamConfig(a_words=4, b_words=4, beat_words=2),
                      MemoryModel(2, 3), 5, 7, 9)
    # 3 x 3 tiles, K = 9 in chunks of 4, 4, 1: A reloaded every step
    assert (r.tiles, r.steps, r.k_chunk) == (9, 27, 4)
    # C rows below M only: 3 column tiles x (2 + 2 + 1) rows of 8 bytes (3 x 20 bits)
    assert r.bytes_read == 9 * 9 * 2 + 9 * 9 * 3 and r.bytes_written == 15 * 8
    assert r.c_writes == 9 * 6 and r.compute_cycles + r.stall_cycles == r.cycles
    assert set(r.as_dict()) >= {"cycles", "stall_cycles", "utilization", "bytes_per_cycle"}


def test_job_limits():
    with pytest.raises(ParameterError, match=r"^GEMM 1x2097152 @ 2097152x1 needs k_steps = "
                                             r"2097152 on a 4x4 array; the top's job inputs "
                                             r"hold at most 1048575$"):
        plan(ArrayConfig(), StreamConfig(), 1, 1, 1 << 21)
    with pytest.raises(ParameterError, match=r"^GEMM 4x65536 @ 65536x65536 needs \d+ bytes of "
                                             r"external memory; the top's port addresses "
                                             r"4294967296$"):
        plan(ArrayConfig(pe="int16"), StreamConfig(), 4, 65536, 65536)


def test_bad_inputs():
    with pytest.raises(ParameterError, match=r"^memory must be a MemoryModel, not 4$"):
        stream_cycles(ArrayConfig(), StreamConfig(), 4, 1, 1, 1)
    with pytest.raises(ParameterError, match=r"^scratchpad B holds 2 words per half \(8 "
                                             r"bytes in both halves\), less than one weight "
                                             r"tile needs: 4 words per half \(16 bytes\) on a "
                                             r"4x4 int4 array; raise b_words to at least 4$"):
        plan(ArrayConfig(rows=4, cols=4, dataflow="ws"), StreamConfig(b_words=2), 1, 1, 1)
    with pytest.raises(ParameterError, match=r"^the streaming top takes plain and "
                                             r"block-scaled PE kinds, not 'lut_nf4'$"):
        plan(ArrayConfig(pe="lut_nf4"), StreamConfig(), 1, 1, 32)
    # a block record holds block / lanes k-steps: 2R - 1 = 31 k-steps need 8 MXFP4 records
    with pytest.raises(ParameterError, match=r"^scratchpad A holds 4 words per half \(2176 "
                                             r"bytes in both halves\), less than one tile "
                                             r"needs: 8 words per half"):
        plan(ArrayConfig(rows=16, cols=16, pe="mxfp4"), StreamConfig(a_words=4), 16, 16, 512)


def test_events_replay_the_schedule():
    events = []
    r = stream_cycles(ArrayConfig(rows=2, cols=2, pe="int4"), StreamConfig(a_words=4,
                      b_words=4), MemoryModel(2, 3), 3, 4, 6, events=events)
    issues = [e for e in events if e[0] == "issue"]
    assert len(issues) == r.steps and sum(e[2] for e in issues) == r.a_reads
    assert sum(e[3] for e in events if e[0] == "rd") == r.bytes_read
    assert sum(e[3] for e in events if e[0] == "wr") == r.bytes_written
