"""The external memory behind a :class:`~nybble.hw.stream_top.StreamTop`: bandwidth and latency.

One definition, three implementations held equal by tests: :class:`MemoryChannel` (Python,
drives the top in Amaranth's simulator), :data:`CPP_CHANNEL` (the same in the native
Verilator harness, :mod:`.stream_native`) and :meth:`MemoryModel.transfer_cycles` (closed
form, for :mod:`.stream_cycles`).

A memory has two independent channels, read and write (as AXI has), each serving one burst
at a time.  A burst is a request ``(addr, bytes, beat_bytes)`` taken in a cycle ``t`` in
which the channel is idle (``req_ready``); its beats carry ``beat_bytes`` bytes each (the last
one the rest).  With bandwidth ``BW`` bytes per cycle (a positive rational) and latency ``L``
cycles (>= 1), beat ``i`` moves in cycle

    ``due(i) = max(due(i-1) + 1, t + L + ceil(cum(i) / BW) - 1)``,  ``due(-1) = t + L - 1``

(``cum(i)``: bytes of beats ``0..i``; at most one beat per cycle: the port is one beat
wide), or later if the top is not ready (write beats wait for ``valid``).  The channel is
busy from ``t`` to the cycle of its last beat and takes the next request the cycle after.
So a burst that is never held up occupies its channel for ``L + D`` cycles,
``D = max(f(B - 1) + 1, ceil(bytes / BW))`` with ``B`` beats and
``f(k) = max(k, ceil(k * beat_bytes / BW))``.  Bytes are counted as they cross the port.
"""

from dataclasses import dataclass
from fractions import Fraction
import numbers

from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["MemoryModel", "MemoryChannel", "CPP_CHANNEL", "parse_bandwidth"]


def _ceil_div(a, b):
    return -(-a // b)


def parse_bandwidth(value, name="bandwidth"):
    """``value`` (int, float, Fraction or a string such as ``"4"``, ``"0.5"``, ``"3/2"``)
    as a positive :class:`~fractions.Fraction` of bytes per cycle (denominator <= 1000)."""
    try:
        bw = Fraction(str(value) if isinstance(value, str) else value).limit_denominator(1000)
    except (ValueError, TypeError, ZeroDivisionError):
        raise ParameterError(f"{name} must be a positive number of bytes per cycle, "
                             f"not {value!r}") from None
    if bw <= 0:
        raise ParameterError(f"{name} must be a positive number of bytes per cycle, "
                             f"not {value!r}")
    return bw


@dataclass(frozen=True)
class MemoryModel:
    """External memory: ``bandwidth`` bytes per cycle per channel (rational), ``latency``
    cycles from a request to its first beat (>= 1)."""

    bandwidth: Fraction = Fraction(16)
    latency: int = 10

    def __post_init__(self):
        object.__setattr__(self, "bandwidth", parse_bandwidth(self.bandwidth, "MemoryModel.bandwidth"))
        lat = self.latency
        if isinstance(lat, bool) or not isinstance(lat, numbers.Integral):
            raise ParameterTypeError(f"MemoryModel.latency must be an integer number of "
                                     f"cycles, not {lat!r}")
        if not 1 <= int(lat) <= 1 << 20:
            raise ParameterError(f"MemoryModel.latency must be in 1..{1 << 20} cycles, not {lat}")
        object.__setattr__(self, "latency", int(lat))

    def _bytes_cycles(self, nbytes):
        """``ceil(nbytes / BW)``."""
        bw = self.bandwidth
        return _ceil_div(nbytes * bw.denominator, bw.numerator)

    def data_cycles(self, nbytes, beat_bytes):
        """``D``: cycles from the first possible beat to the last of a burst (module
        docstring)."""
        beats = _ceil_div(nbytes, beat_bytes)
        k = beats - 1
        f = max(k, self._bytes_cycles(k * beat_bytes))
        return max(f + 1, self._bytes_cycles(nbytes))

    def transfer_cycles(self, nbytes, beat_bytes):
        """Cycles a burst that is never held up occupies its channel: ``latency + D``."""
        return self.latency + self.data_cycles(nbytes, beat_bytes)

    def channel(self, store, log=None):
        """A :class:`MemoryChannel` of this memory over the bytearray ``store`` (``log``:
        a list that collects every beat)."""
        return MemoryChannel(self, store, log)


class MemoryChannel:
    """One channel of a :class:`MemoryModel`, cycle by cycle (the Amaranth simulator path).

    Each cycle: read :attr:`req_ready` and :meth:`beat_due`, drive the top, then report what
    happened with :meth:`accept` (a request taken) and :meth:`beat` (a beat moved); the
    cycle number ``cycle`` is the caller's.
    """

    def __init__(self, model, store, log=None):
        self.model, self.store = model, store
        self.busy = False
        self.bytes_moved = 0
        self.log = log   # a list: (cycle, address, bytes) of every beat is appended

    @property
    def req_ready(self):
        return not self.busy

    def accept(self, cycle, addr, nbytes, beat_bytes):
        if nbytes <= 0 or beat_bytes <= 0:
            raise ParameterError(f"a burst needs bytes > 0 and beat_bytes > 0, not "
                                 f"{nbytes}, {beat_bytes}")
        if addr < 0 or addr + nbytes > len(self.store):
            raise ParameterError(f"burst {addr:#x}+{nbytes} is outside the {len(self.store)}"
                                 f"-byte memory")
        self.busy, self.t, self.addr = True, cycle, addr
        self.nbytes, self.beat_bytes, self.i = nbytes, beat_bytes, 0
        self.due = self._due(cycle + self.model.latency - 1)

    def _due(self, prev):
        cum = min((self.i + 1) * self.beat_bytes, self.nbytes)
        return max(prev + 1, self.t + self.model.latency + self.model._bytes_cycles(cum) - 1)

    def beat_due(self, cycle):
        """True when a beat may move in ``cycle``."""
        return self.busy and cycle >= self.due

    def _span(self):
        lo = self.addr + self.i * self.beat_bytes
        return lo, min(lo + self.beat_bytes, self.addr + self.nbytes)

    def read_beat(self):
        """The current beat's bytes as a little-endian int (read channel)."""
        lo, hi = self._span()
        return int.from_bytes(self.store[lo:hi], "little")

    def beat(self, cycle, data=None):
        """The current beat moved in ``cycle``; ``data`` (an int) is stored for a write."""
        lo, hi = self._span()
        if self.log is not None:
            self.log.append((cycle, lo, hi - lo))
        if data is not None:
            self.store[lo:hi] = (int(data) & ((1 << 8 * (hi - lo)) - 1)).to_bytes(hi - lo,
                                                                                  "little")
        self.bytes_moved += hi - lo
        self.i += 1
        if self.i * self.beat_bytes >= self.nbytes:
            self.busy = False
        else:
            self.due = self._due(cycle)


#: The same channel in C++ for the native harness (:mod:`.stream_native`); ``bw_num`` /
#: ``bw_den`` is the bandwidth, ``lat`` the latency.
CPP_CHANNEL = r"""
struct Channel {
    uint64_t bw_num, bw_den, lat;
    bool busy = false;
    uint64_t t = 0, addr = 0, nbytes = 0, beat = 0, i = 0, due = 0, moved = 0;
    uint64_t bytes_cycles(uint64_t n) const { return (n * bw_den + bw_num - 1) / bw_num; }
    uint64_t next_due(uint64_t prev) const {
        uint64_t cum = (i + 1) * beat; if (cum > nbytes) cum = nbytes;
        uint64_t d = t + lat + bytes_cycles(cum) - 1;
        return d > prev + 1 ? d : prev + 1;
    }
    void accept(uint64_t cycle, uint64_t a, uint64_t n, uint64_t bb) {
        busy = true; t = cycle; addr = a; nbytes = n; beat = bb; i = 0;
        due = next_due(cycle + lat - 1);
    }
    bool beat_due(uint64_t cycle) const { return busy && cycle >= due; }
    uint64_t lo() const { return addr + i * beat; }
    uint64_t hi() const { uint64_t h = lo() + beat; return h < addr + nbytes ? h : addr + nbytes; }
    void moved_beat(uint64_t cycle) {
        moved += hi() - lo(); i++;
        if (i * beat >= nbytes) busy = false; else due = next_due(cycle);
    }
};
"""
