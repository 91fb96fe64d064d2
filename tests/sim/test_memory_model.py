"""The external memory model: the cycle-by-cycle channel equals the closed form on a grid of
burst sizes, beat sizes, bandwidths and latencies; data moves byte-exact; bad parameters are
refused by name."""
from fractions import Fraction

import pytest

from nybble.sim.memory_model import MemoryModel, parse_bandwidth
from nybble.sw.errors import ParameterError, ParameterTypeError

BANDWIDTHS = ("1/3", "1/2", 1, "3/2", 2, 4, 7, 16)


def _last_beat(model, nbytes, beat, start=5):
    ch = model.channel(bytearray(range(256)) * 2)
    ch.accept(start, 3, nbytes, beat)
    c, cycles = start, []
    while ch.busy:
        c += 1
        if ch.beat_due(c):
            cycles.append(c)
            ch.beat(c)
    assert len(cycles) == -(-nbytes // beat) and len(set(cycles)) == len(cycles)
    return c


@pytest.mark.parametrize("bw", BANDWIDTHS)
@pytest.mark.parametrize("latency", (1, 3))
def test_channel_equals_closed_form(bw, latency):
    model = MemoryModel(bw, latency)
    for nbytes in range(1, 41):
        for beat in range(1, 10):
            last = _last_beat(model, nbytes, beat)
            assert last - 5 + 1 == model.transfer_cycles(nbytes, beat), (nbytes, beat)


def test_bandwidth_bounds_the_bytes_per_cycle():
    m = MemoryModel(4, 1)
    assert m.data_cycles(4096 * 8, 16) == 8192        # 4 B/cycle: 32 KiB take 8192 cycles
    assert m.data_cycles(4096 * 2, 16) == 2048
    assert MemoryModel(64, 1).data_cycles(4096 * 8, 16) == 2048   # one beat per cycle at most


def test_reads_and_writes_move_the_bytes():
    store = bytearray(range(32))
    rd = MemoryModel(2, 2).channel(store)
    rd.accept(0, 4, 6, 4)
    beats = []
    for c in range(1, 10):
        if rd.beat_due(c):
            beats.append(rd.read_beat())
            rd.beat(c)
    assert beats == [int.from_bytes(bytes([4, 5, 6, 7]), "little"),
                     int.from_bytes(bytes([8, 9]), "little")] and rd.bytes_moved == 6
    wr = MemoryModel(2, 1).channel(store)
    wr.accept(0, 0, 3, 2)
    wr.beat(1, 0xBBAA)
    wr.beat(2, 0x1CC)                  # the last beat keeps its one byte
    assert store[:4] == bytes([0xAA, 0xBB, 0xCC, 3]) and not wr.busy


def test_bad_parameters():
    with pytest.raises(ParameterError, match=r"^MemoryModel.bandwidth must be a positive number "
                                             r"of bytes per cycle, not 0$"):
        MemoryModel(0, 1)
    with pytest.raises(ParameterError, match=r"^bandwidth must be a positive number of bytes "
                                             r"per cycle, not 'fast'$"):
        parse_bandwidth("fast")
    with pytest.raises(ParameterError, match=r"^MemoryModel.latency must be in 1\.\.1048576 "
                                             r"cycles, not 0$"):
        MemoryModel(1, 0)
    with pytest.raises(ParameterTypeError, match=r"^MemoryModel.latency must be an integer "):
        MemoryModel(1, 1.5)
    ch = MemoryModel(1, 1).channel(bytearray(8))
    with pytest.raises(ParameterError, match=r"^burst 0x6\+4 is outside the 8-byte memory$"):
        ch.accept(0, 6, 4, 2)
    assert parse_bandwidth("3/2") == Fraction(3, 2) and parse_bandwidth(0.5) == Fraction(1, 2)
