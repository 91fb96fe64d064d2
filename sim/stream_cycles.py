"""The exact cycle model of a :class:`~nybble.hw.stream_top.StreamTop`, stalls included.

It replays the three engines of the top (reader, issuer, writer; :mod:`nybble.hw.stream_top`)
as recurrences over the steps ``(mt, nt, kc)`` of a job, with burst times from the memory
model's closed form (:meth:`nybble.sim.memory_model.MemoryModel.transfer_cycles`); tests hold
``cycles`` and ``stall_cycles`` equal to the RTL's counters.  Cycle 0 is the one in which
``start`` is taken.

* reader: step ``s`` requests at ``max(end of the previous burst + 1, e[s-2] + 1)`` (its
  halves free once the issuer ended step ``s - 2`` in cycle ``e[s-2]``): A (when the step
  needs a new A chunk), then B, each occupying the read channel ``L + D`` cycles; ``lb[s]``
  is the cycle of its last beat;
* issuer: step ``s`` starts at ``max(e[s-1] + 1, lb[s] + 1)`` and, for a tile's first step
  (and the final flush), also at or after ``f[u-1] + 2R - 1`` and ``wl[u-3] + 1``; it then
  issues its ``n`` words back to back, ``W`` k-steps each (``W = block / lanes`` for a
  block-scaled kind's block records, else 1).  Cycles before ``lb[s] + 1`` (or ``wl[u-3] + 1``)
  spent waiting are stalls;
* writer: tile ``u``'s results are all in the C buffer in cycle ``F + 2R + C + L_pe - 1``
  (``F``: the cycle the next tile's first k-step, or the flush, was issued); its write
  request (the tile's rows below M) goes out at ``max(that, wl[u-1] + 1)`` and ends
  ``L + D`` cycles later (``wl[u]``).

``cycles = wl[T-1]``.  ``S``, ``k_chunk`` and the scratchpad sizes count words (block
records for block-scaled kinds).  The host picks ``k_chunk = min(S, a_words, b_words)``
(:func:`plan`):
when the whole K fits, an A chunk is loaded once per ``mt`` and reused by every ``nt``.

Weight-stationary (:class:`~nybble.hw.stream_ws_top.WsStreamTop`; :class:`WsStreamPlan`,
``k_chunk`` = rows per m-chunk ``= min(M, a_words, acc_rows)``), steps ``(mc, nt, kt)`` of
``n`` rows, ``(Q, P)`` of :func:`~nybble.hw.stream_ws_top.ws_periods`:

* reader: as above, A (the step's ``n`` rows, every step: a row of A holds one k-tile) then B
  (one weight tile, ``R`` words); ``lb[s]`` its last beat;
* shifter: ``X[s] = max(lb[s] + 1, I[s-1] + Q, X[s-1] + R)`` (``X[0] = lb[0] + 1``);
* issuer: ``I[s] = max(T0, X[s] + R, wl[g-2] + 1 for a group's first step)`` with
  ``T0 = I[s-1] + max(P, n[s-1])`` (1 for the first step); ``I[s] - T0`` are stalls; the
  rows go out in ``I[s] .. I[s] + n - 1``;
* writer: group ``g``'s last row is in the accumulator from ``I + n + R*L + C`` (its last
  step's ``I``); its write request at ``max(that, wl[g-1] + 1)``, ``wl[g]`` its last beat.
"""

from dataclasses import dataclass, replace
from functools import lru_cache

from nybble.hw.stream_config import StreamConfig, word_bytes
from nybble.hw.layout import JOB_BITS
from nybble.hw.stream_top import ADDR_BITS, StreamLayout
from nybble.hw.stream_ws_top import ws_hardware, ws_periods
from nybble.sw.errors import ParameterError
from .memory_model import MemoryModel
from .schedule import BlockOsSchedule, OsSchedule, schedule_for

__all__ = ["StreamPlan", "WsStreamPlan", "StreamCycles", "plan", "stream_cycles"]


@dataclass(frozen=True)
class StreamPlan:
    """How a GEMM runs on a streaming top: the OS schedule, ``k_chunk`` and the byte layout
    of its operands and results in external memory."""

    schedule: OsSchedule
    k_chunk: int
    a_word_bytes: int
    b_word_bytes: int
    row_bytes: int
    beat_words: int
    a_addr: int
    b_addr: int
    c_addr: int
    steps_per_word: int = 1

    @property
    def words(self):
        """Scratchpad words per tile (the job's ``k_steps``): k-steps, or block records of
        ``steps_per_word`` k-steps each for block-scaled kinds."""
        return self.schedule.k_steps // self.steps_per_word

    @property
    def chunks(self):
        return -(-self.words // self.k_chunk)

    @property
    def c_rows(self):
        """Rows of accumulators the job writes back (with the rows past M of OS tiles)."""
        s = self.schedule
        return s.tiles * s.rows

    @property
    def memory_bytes(self):
        return self.c_addr + self.c_rows * self.row_bytes

    @property
    def job_sizes(self):
        """``(m_tiles, n_tiles, k_steps)``: the job inputs that count the work."""
        s = self.schedule
        return s.m_tiles, s.n_tiles, self.words

    @property
    def job(self):
        m_tiles, n_tiles, k_steps = self.job_sizes
        return dict(m_tiles=m_tiles, n_tiles=n_tiles, k_steps=k_steps,
                    k_chunk=self.k_chunk, m_len=self.schedule.m, a_addr=self.a_addr,
                    b_addr=self.b_addr, c_addr=self.c_addr)


@dataclass(frozen=True)
class WsStreamPlan(StreamPlan):
    """A :class:`StreamPlan` of the weight-stationary top: ``schedule`` a
    :class:`~nybble.sim.schedule.WsSchedule`, ``k_chunk`` the rows of A per m-chunk; the
    results of group ``(mc, nt)`` follow group ``(mc, nt - 1)``'s in the C region.
    ``transposed``: an input-stationary GEMM ``A @ B`` run as ``B^T @ A^T`` (the schedule's
    A is ``B^T``, its B, the stationary weights, ``A^T``; its results ``C^T``)."""

    transposed: bool = False

    @property
    def m_chunks(self):
        return -(-self.schedule.m // self.k_chunk)

    @property
    def c_rows(self):
        return self.schedule.m * self.schedule.n_tiles

    @property
    def job_sizes(self):
        return self.m_chunks, self.schedule.n_tiles, self.schedule.k_tiles


def _align(x, a=64):
    return -(-x // a) * a


def plan(config, stream, m, n, k):
    """The :class:`StreamPlan` of an ``m x k @ k x n`` GEMM on ``config`` with scratchpads
    ``stream``; refuses a config whose scratchpad halves cannot hold the ``2R - 1`` k-steps
    of one tile, naming the size needed."""
    if not isinstance(stream, StreamConfig):
        raise ParameterError(f"stream must be a StreamConfig, not {stream!r}")
    if config.dataflow == "ws":
        return _ws_plan(config, stream, m, n, k)
    if config.dataflow == "is":
        return _ws_plan(ws_hardware(config), stream, n, m, k, transposed=True)
    s = schedule_for(config, m, n, k)
    if type(s) not in (OsSchedule, BlockOsSchedule) or getattr(config.pe_spec, "is_lut", False):
        raise ParameterError(f"the streaming top takes plain and block-scaled PE kinds, not "
                             f"{config.pe!r}")
    lay = StreamLayout(config, stream)
    spw = lay.steps_per_word
    words = s.k_steps // spw
    # a tile's words, or the 2R - 1 k-steps of the shadow drain's spacing
    need = min(words, -(-(2 * config.rows - 1) // spw))
    for name, have, wb in (("a", stream.a_words, lay.a_word_bytes),
                           ("b", stream.b_words, lay.b_word_bytes)):
        if have < need:
            raise ParameterError(
                f"scratchpad {name.upper()} holds {have} words per half ({2 * have * wb} "
                f"bytes in both halves), less than one tile needs: {need} words per half "
                f"({2 * need * wb} bytes) on a {config.rows}x{config.cols} {config.pe} array; "
                f"raise {name}_words to at least {need}")
    k_chunk = min(words, stream.a_words, stream.b_words)
    a_bytes = s.m_tiles * words * lay.a_word_bytes
    b_bytes = s.n_tiles * words * lay.b_word_bytes
    p = StreamPlan(s, k_chunk, lay.a_word_bytes, lay.b_word_bytes, lay.row_bytes,
                   stream.beat_words, 0, _align(a_bytes), _align(a_bytes) + _align(b_bytes),
                   spw)
    _check_job(p, m, n, k, config, (("m_tiles", s.m_tiles), ("n_tiles", s.n_tiles),
                                    ("k_steps", words)))
    return p


def _check_job(p, m, n, k, config, fields):
    for name, value in fields:
        if value >= 1 << JOB_BITS:
            raise ParameterError(f"GEMM {m}x{k} @ {k}x{n} needs {name} = {value} on a "
                                 f"{config.rows}x{config.cols} array; the top's job inputs "
                                 f"hold at most {(1 << JOB_BITS) - 1}")
    if p.memory_bytes > 1 << ADDR_BITS:
        raise ParameterError(f"GEMM {m}x{k} @ {k}x{n} needs {p.memory_bytes} bytes of external "
                             f"memory; the top's port addresses {1 << ADDR_BITS}")


def _ws_plan(config, stream, m, n, k, transposed=False):
    """:func:`plan` of the weight-stationary top: a B half holds one weight tile (``R``
    words), an m-chunk is as many rows as an A half and an accumulator half hold."""
    s = schedule_for(config, m, n, k)
    spec = config.pe_spec
    if spec.family in ("bitserial", "block") or getattr(spec, "is_lut", False):
        raise ParameterError(f"the weight-stationary streaming top takes plain PE kinds, not "
                             f"{config.pe!r}")
    lay = StreamLayout(config, stream)
    if stream.b_words < config.rows:
        have, need = stream.b_words, config.rows
        raise ParameterError(
            f"scratchpad B holds {have} words per half ({2 * have * lay.b_word_bytes} bytes "
            f"in both halves), less than one weight tile needs: {need} words per half "
            f"({2 * need * lay.b_word_bytes} bytes) on a {config.rows}x{config.cols} "
            f"{config.pe} array; raise b_words to at least {need}")
    m_chunk = min(s.m, stream.a_words, stream.acc_rows)
    a_bytes = s.k_tiles * s.m * lay.a_word_bytes
    b_bytes = s.n_tiles * s.k_tiles * s.rows * lay.b_word_bytes
    p = WsStreamPlan(s, m_chunk, lay.a_word_bytes, lay.b_word_bytes, lay.row_bytes,
                     stream.beat_words, 0, _align(a_bytes), _align(a_bytes) + _align(b_bytes),
                     transposed=transposed)
    _check_job(p, m, n, k, config, (("m_tiles", p.m_chunks), ("n_tiles", s.n_tiles),
                                    ("k_steps", s.k_tiles), ("m_len", s.m)))
    return p


@dataclass(frozen=True)
class StreamCycles:
    """Cycles and traffic of one GEMM on a streaming top (module docstring).

    ``cycles`` (total), ``stall_cycles`` (the issuer waiting for memory), ``compute_cycles``
    (the rest); ``ideal_cycles = M*N*K / (rows*cols*lanes)``; ``utilization`` ideal / total;
    scratchpad traffic in words (``a_writes`` ... ``c_reads``: C counts accumulators written by
    the drain and rows read by the writer); external bytes read / written at the port and
    ``bytes_per_cycle`` (both directions over ``cycles``); ``first_load_cycles``: the
    issuer's wait for the first step's operands; ``read_busy_cycles`` / ``write_busy_cycles``:
    cycles the read / write channel is occupied by bursts; ``issue_cycles``: ``tiles *
    max(S, 2R - 1)``, what the array needs with no stall; ``bound``: ``"memory"`` when a
    channel is busier than the array (``max(read, write busy) > issue_cycles``), else
    ``"compute"``.  ``dataflow``: ``"os"``, ``"ws"`` or ``"is"``; ``a_bytes_read`` /
    ``b_bytes_read``: the bytes of the GEMM's A and B operands among ``bytes_read`` (for
    ``"is"`` the top's A scratchpad holds ``B^T`` rows and its B scratchpad ``A^T`` tiles: the
    scratchpad counts are the top's, these two the GEMM's).  ``weight-stationary``:
    ``k_chunk`` is the rows of A per m-chunk, ``tiles`` the steps, ``issue_cycles`` the sum
    over steps of ``max(n, P)``; C counts accumulators written and rows read (partial sums
    read back, and the writer's).
    """

    m: int
    n: int
    k: int
    cycles: int
    stall_cycles: int
    compute_cycles: int
    ideal_cycles: float
    utilization: float
    tiles: int
    steps: int
    k_chunk: int
    a_writes: int
    b_writes: int
    a_reads: int
    b_reads: int
    c_writes: int
    c_reads: int
    bytes_read: int
    bytes_written: int
    bytes_per_cycle: float
    first_load_cycles: int
    read_busy_cycles: int
    write_busy_cycles: int
    issue_cycles: int
    bound: str
    dataflow: str = "os"
    a_bytes_read: int = 0
    b_bytes_read: int = 0

    def as_dict(self):
        return dict(self.__dict__)


def stream_cycles(config, stream, memory, m, n, k, *, events=None):
    """:class:`StreamCycles` of an ``m x k @ k x n`` GEMM on ``config`` + ``stream`` with
    external memory ``memory`` (a :class:`~nybble.sim.memory_model.MemoryModel`).

    ``events``: a list to append the job's events to (:mod:`.stream_trace` expands them):
    ``("rd", cycle, addr, bytes, beat_bytes)`` a read burst taken, ``("wr", ...)`` a write
    burst taken, ``("issue", cycle, n, a_word, b_word)`` ``n`` k-steps issued from cycle on,
    reading scratchpad words ``a_word + i`` and ``b_word + i``."""
    if not isinstance(memory, MemoryModel):
        raise ParameterError(f"memory must be a MemoryModel, not {memory!r}")
    p = plan(config, stream, m, n, k)
    if isinstance(p, WsStreamPlan):
        r = _ws_cycles(p, stream, memory, events)
        if p.transposed:     # the GEMM's dimensions and operands, not the transposed job's
            r = replace(r, m=m, n=n, k=k, dataflow="is", a_bytes_read=r.b_bytes_read,
                        b_bytes_read=r.a_bytes_read)
        return r
    s = p.schedule
    R, C, L = s.rows, s.cols, s.latency
    S, KCH, KC = p.words, p.k_chunk, p.chunks
    W = p.steps_per_word
    G = p.beat_words
    chunked = KCH < S
    lengths = [min(KCH, S - kc * KCH) for kc in range(KC)]
    tx = lru_cache(maxsize=None)(memory.transfer_cycles)     # few distinct bursts

    T = s.tiles
    e = [0, 0]              # e[s-2], e[s-1] (cycle 0: launch)
    reader_next = 1         # first cycle the read channel may take a request
    f_prev = None           # first-issue cycle of the previous tile
    wl = []                 # last write beat per tile
    cap = []                # C tile complete
    stalls = read_busy = 0
    a_words_in = b_words_in = 0
    first_load = None
    step = 0

    def write_tile(u):
        req = max(cap[u], wl[u - 1] + 1 if u else 0)
        nbytes = tile_rows(u) * p.row_bytes
        if events is not None:
            events.append(("wr", req, p.c_addr + u * R * p.row_bytes, nbytes, p.row_bytes))
        wl.append(req + tx(nbytes, p.row_bytes) - 1)

    def tile_rows(u):
        """Rows of tile ``u`` below M: the ones written back."""
        return min(R, s.m - (u // s.n_tiles) * R)

    def burst(t, addr, words, word_bytes_):
        """A read burst of ``words`` taken in cycle ``t``: the cycle the next can be."""
        if events is not None:
            events.append(("rd", t, addr, words * word_bytes_, G * word_bytes_))
        return t + tx(words * word_bytes_, G * word_bytes_)

    def tile_first_ok(u):
        lo = f_prev + 2 * R - 1 if f_prev is not None else 0
        mem = wl[u - 3] + 1 if u >= 3 else 0
        return lo, mem

    for mt in range(s.m_tiles):
        for nt in range(s.n_tiles):
            u = mt * s.n_tiles + nt
            for kc, nk in enumerate(lengths):
                # reader
                t = max(reader_next, e[0] + 1 if step >= 2 else 0)
                t0 = t
                k0 = kc * KCH
                if chunked or (nt == 0 and kc == 0):
                    t = burst(t, p.a_addr + (mt * S + k0) * p.a_word_bytes, nk, p.a_word_bytes)
                    a_words_in += nk
                t = burst(t, p.b_addr + (nt * S + k0) * p.b_word_bytes, nk, p.b_word_bytes)
                b_words_in += nk
                lb = t - 1
                reader_next = t
                read_busy += t - t0
                if first_load is None:
                    first_load = lb
                # issuer
                ready = lb + 1
                lo = e[1] + 1
                if kc == 0:
                    pad, mem = tile_first_ok(u)
                    ready = max(ready, mem)
                    start = max(lo, ready, pad)
                    if u:
                        cap.append(start + 2 * R + C + L - 1)
                        write_tile(u - 1)
                    f_prev = start
                else:
                    start = max(lo, ready)
                stalls += max(0, ready - lo)
                if events is not None:
                    a_slot = step % 2 if chunked else mt % 2
                    events.append(("issue", start, nk, a_slot * stream.a_words,
                                   (step % 2) * stream.b_words, W))
                e = [e[1], start + nk * W - 1]
                step += 1
    # flush
    pad, mem = tile_first_ok(T)
    lo = e[1] + 1
    stalls += max(0, mem - lo)
    flush = max(lo, pad, mem)
    cap.append(flush + 2 * R + C + L - 1)
    write_tile(T - 1)
    cycles = wl[-1]
    bytes_read = a_words_in * p.a_word_bytes + b_words_in * p.b_word_bytes
    rows_out = sum(tile_rows(u) for u in range(T))
    bytes_written = rows_out * p.row_bytes
    ideal = s.m * s.n * s.k / (R * C * s.lanes)
    issue = T * max(S * W, 2 * R - 1)
    write_busy = sum(tx(tile_rows(u) * p.row_bytes, p.row_bytes) for u in range(T))
    return StreamCycles(
        m=s.m, n=s.n, k=s.k, cycles=cycles, stall_cycles=stalls,
        compute_cycles=cycles - stalls, ideal_cycles=ideal, utilization=ideal / cycles,
        tiles=T, steps=step, k_chunk=KCH, a_writes=a_words_in, b_writes=b_words_in,
        a_reads=T * S * W, b_reads=T * S * W, c_writes=T * R * C, c_reads=rows_out,
        bytes_read=bytes_read, bytes_written=bytes_written,
        bytes_per_cycle=(bytes_read + bytes_written) / cycles,
        first_load_cycles=first_load, read_busy_cycles=read_busy, write_busy_cycles=write_busy,
        issue_cycles=issue, bound="memory" if max(read_busy, write_busy) > issue else "compute",
        a_bytes_read=a_words_in * p.a_word_bytes, b_bytes_read=b_words_in * p.b_word_bytes)


def _ws_cycles(p, stream, memory, events):
    """:func:`stream_cycles` of a :class:`WsStreamPlan` (module docstring)."""
    s = p.schedule
    R, C, L = s.rows, s.cols, s.latency
    Q, P = ws_periods(R, C, L)
    M, MCH, NT, KT, G = s.m, p.k_chunk, s.n_tiles, s.k_tiles, p.beat_words
    tx = lru_cache(maxsize=None)(memory.transfer_cycles)     # few distinct bursts

    def burst(t, addr, nbytes, beat):
        if events is not None:
            events.append(("rd", t, addr, nbytes, beat))
        return t + tx(nbytes, beat)

    reader_next, sh_free = 1, 0
    ends = [0, 0]                 # last-row issue cycle of steps s-2, s-1
    i_prev = n_prev = None
    wl = []                       # last write beat per group
    stalls = read_busy = write_busy = issue_cycles = rows_in = step = 0
    first_load = None
    for mc in range(p.m_chunks):
        n = min(MCH, M - mc * MCH)
        for nt in range(NT):
            g = mc * NT + nt
            prev = None
            kt = 0
            while kt < KT:
                t0 = t = max(reader_next, ends[0] + 1 if step >= 2 else 0)
                t = burst(t, p.a_addr + (kt * M + mc * MCH) * p.a_word_bytes,
                          n * p.a_word_bytes, G * p.a_word_bytes)
                t = burst(t, p.b_addr + (nt * KT + kt) * R * p.b_word_bytes,
                          R * p.b_word_bytes, G * p.b_word_bytes)
                reader_next, lb = t, t - 1
                read_busy += t - t0
                rows_in += n
                if first_load is None:
                    first_load = lb
                x = lb + 1 if step == 0 else max(lb + 1, i_prev + Q, sh_free)
                sh_free = x + R
                lo = 1 if step == 0 else i_prev + max(P, n_prev)
                ready = x + R
                if kt == 0 and g >= 2:
                    ready = max(ready, wl[g - 2] + 1)
                start = max(lo, ready)
                stalls += start - lo
                if events is not None:
                    half = step % 2
                    b_half = -(-R // G) * G
                    events.append(("scratch", "B", x, R, half * b_half + R - 1, -1))
                    events.append(("scratch", "A", start, n, half * stream.a_words, 1))
                ends = [ends[1], start + n - 1]
                issue_cycles += max(P, n)
                i_prev, n_prev = start, n
                step += 1
                if events is None and 0 < kt < KT - 2:
                    # inside a group a step's update is shift-invariant in time, so once
                    # every state time moved by the same lam, each further step moves them
                    # by lam again, with the same stalls and busy cycles: jump to the last
                    state = (reader_next, ends[0], ends[1], sh_free, stalls, read_busy)
                    if prev is not None:
                        d = [a - b for a, b in zip(state, prev)]
                        if d[0] == d[1] == d[2] == d[3] == start - prev_start:
                            skip = KT - 2 - kt
                            lam = d[0]
                            reader_next += skip * lam
                            ends = [ends[0] + skip * lam, ends[1] + skip * lam]
                            sh_free += skip * lam
                            i_prev += skip * lam
                            stalls += skip * d[4]
                            read_busy += skip * d[5]
                            rows_in += skip * n
                            issue_cycles += skip * max(P, n)
                            step += skip
                            kt += skip
                    prev, prev_start = state, start
                if kt == KT - 1:
                    req = max(start + n + R * L + C, wl[-1] + 1 if wl else 0)
                    nbytes = n * p.row_bytes
                    if events is not None:
                        events.append(("wr", req, p.c_addr + mc * MCH * NT * p.row_bytes
                                       + nt * n * p.row_bytes, nbytes, p.row_bytes))
                    wl.append(req + tx(nbytes, p.row_bytes) - 1)
                    write_busy += tx(nbytes, p.row_bytes)
                kt += 1
    cycles = wl[-1]
    bytes_read = rows_in * p.a_word_bytes + step * R * p.b_word_bytes
    bytes_written = M * NT * p.row_bytes
    ideal = s.m * s.n * s.k / (R * C * s.lanes)
    return StreamCycles(
        m=s.m, n=s.n, k=s.k, cycles=cycles, stall_cycles=stalls,
        compute_cycles=cycles - stalls, ideal_cycles=ideal, utilization=ideal / cycles,
        tiles=NT * KT * p.m_chunks, steps=step, k_chunk=MCH, a_writes=rows_in,
        b_writes=step * R, a_reads=rows_in, b_reads=step * R, c_writes=rows_in * C,
        c_reads=rows_in, bytes_read=bytes_read, bytes_written=bytes_written,
        bytes_per_cycle=(bytes_read + bytes_written) / cycles,
        first_load_cycles=first_load, read_busy_cycles=read_busy, write_busy_cycles=write_busy,
        issue_cycles=issue_cycles, bound="memory" if max(read_busy, write_busy) > issue_cycles
        else "compute", dataflow="ws", a_bytes_read=rows_in * p.a_word_bytes,
        b_bytes_read=step * R * p.b_word_bytes)
