"""``ArrayTop``: an array with its operand buffers, result buffers and sequencer.

::

   host write port ---> A buffer (word: one k-step for every PE row)  --+
   (wr_sel, wr_addr,    B buffer (word: one k-step for every column)  --+--> sequencer --> array
    wr_data)            LUT table (LUT PEs)                           -----------------> (all PEs)
                                                                                          |
   host read port  <--- C banks (one per column; written by the array's drain) <---------+

The host loads A and B (and the LUT), sets the job size (``m_tiles``, ``n_tiles``, ``k_len``
in k-steps), pulses ``start`` and waits for ``done``; it never drives operands per cycle.
The host read port is synchronous (block RAM on an FPGA): ``rd_data`` holds the result at
the ``rd_addr`` of the previous clock edge -- or of the edge before it with
``read_latency=2``, which registers each bank's read data before the column multiplexer (the
FPGA build: :class:`~nybble.hw.fpga_top.HostBridge`).

Host interface widths: :class:`~.layout.TopLayout`.  Buffer layout (computed once in
:mod:`nybble.sim.schedule`, used by every driver):

* A word ``mt * k_len + t`` = codes ``A[mt*R + i, t*lanes + l]`` for rows i, lanes l
  (row i, lane l at bits ``(i * lanes + l) * wa``);
* B word ``nt * k_len + t`` = codes ``B[t*lanes + l, nt*C + j]`` (column j, lane l at bits
  ``(j * lanes + l) * wb``);
* results: column bank j, address ``tile * R + i`` for tile ``mt * n_tiles + nt``; the host
  reads ``rd_addr = (address << col_bits) | j``.

Sequencer (output-stationary): tile t (``mt``-major, ``nt``-minor) issues its k-steps at
cycles ``t*P .. t*P + k_len - 1`` of the job, ``P = max(k_len, 2*rows - 1)`` (the drain needs
``2R - 1`` cycles between captures); the flush token follows at ``T*P``.  The array sees an
issue ``D = OPERAND_READ_CYCLES`` (2) cycles later: the block-RAM read, then a register (no
path runs from block-RAM read data into the PEs).  ``cycles`` counts from the first issue to
the last result written, inclusive: ``T*P + 2R + C + L + D - 2`` (see
:func:`nybble.sim.cycles.gemm_cycles`).

Bit-serial PEs (lockstep array): the same sequencer counts *beats* (it, the buffer reads and
the array move on the array's ``advance``), B words carry each column's data-type selector
after its weight code, and results are written once per beat; the cycles follow from the
weights' data types (:class:`nybble.sim.schedule.BitSerialOsSchedule`).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from amaranth.hdl import ClockDomain

from .array import OutputStationaryArray, WeightStationaryArray, clock_enabled, delayed
from .config import ArrayConfig
from .layout import JOB_BITS, OPERAND_READ_CYCLES, WR_A, WR_B, WR_LUT, TopLayout
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["ArrayTop", "ResetlessTop"]


class ArrayTop(wiring.Component):
    """Array + buffers + sequencer with the host interface of :mod:`nybble.sim.native`."""

    def __init__(self, config, *, read_latency=1):
        if not isinstance(config, ArrayConfig):
            raise ParameterTypeError(f"config must be an ArrayConfig, not {config!r}")
        if read_latency not in (1, 2) or isinstance(read_latency, bool):
            raise ParameterError(f"read_latency must be 1 or 2, not {read_latency!r}")
        self._config = config
        self._read_latency = int(read_latency)
        self._layout = lay = TopLayout.of(config)
        super().__init__({
            "wr_en": In(1), "wr_sel": In(2), "wr_addr": In(lay.addr_bits),
            "wr_data": In(lay.wr_bits),
            "m_tiles": In(JOB_BITS), "n_tiles": In(JOB_BITS), "k_len": In(JOB_BITS),
            "m_len": In(JOB_BITS),
            "start": In(1), "done": Out(1), "busy": Out(1), "overflow": Out(1),
            "cycles": Out(32),
            "rd_addr": In(lay.rd_addr_bits), "rd_data": Out(signed(config.acc_bits)),
        })

    config = property(lambda self: self._config)
    read_latency = property(lambda self: self._read_latency,
                            doc="clock edges from ``rd_addr`` to its word on ``rd_data``")
    layout = property(lambda self: self._layout, doc="the host interface (:class:`TopLayout`)")
    latency = property(lambda self: self._layout.latency)
    lanes = property(lambda self: self._layout.lanes)
    frac_bits = property(lambda self: self._layout.frac_bits)

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self._config, self._layout
        C = cfg.cols
        # the array is made here, at elaboration: a top built only for its ports builds none
        array_cls = OutputStationaryArray if cfg.dataflow == "os" else WeightStationaryArray
        m.submodules.array = arr = array_cls(cfg)

        m.submodules.a_buf = a_buf = Memory(shape=unsigned(lay.a_word_bits), depth=cfg.a_depth,
                                            init=[])
        m.submodules.b_buf = b_buf = Memory(shape=unsigned(lay.b_word_bits), depth=cfg.b_depth,
                                            init=[])
        a_wr, b_wr = a_buf.write_port(), b_buf.write_port()
        a_rd, b_rd = a_buf.read_port(), b_buf.read_port()
        m.d.comb += [
            a_wr.addr.eq(self.wr_addr), a_wr.data.eq(self.wr_data),
            a_wr.en.eq(self.wr_en & (self.wr_sel == WR_A)),
            b_wr.addr.eq(self.wr_addr), b_wr.data.eq(self.wr_data),
            b_wr.en.eq(self.wr_en & (self.wr_sel == WR_B)),
        ]
        if hasattr(arr, "lut_we"):
            m.d.comb += [arr.lut_we.eq(self.wr_en & (self.wr_sel == WR_LUT)),
                         arr.lut_addr.eq(self.wr_addr), arr.lut_data.eq(self.wr_data)]

        launch = Signal()
        m.d.comb += launch.eq(self.start & ~self.busy)
        cyc, last = Signal(32), Signal(32)
        with m.If(launch):
            m.d.sync += [cyc.eq(0), last.eq(0), self.done.eq(0)]
        with m.Elif(self.busy):
            m.d.sync += cyc.eq(cyc + 1)
        m.d.comb += self.cycles.eq(last)

        # result banks: one per column, written in arrival order by per-column pointers
        banks = []
        for j in range(C):
            bank = Memory(shape=signed(cfg.acc_bits), depth=cfg.c_depth, init=[])
            m.submodules[f"c_bank_{j}"] = bank
            banks.append(bank)
        # synchronous host read ports: ``rd_data`` one cycle after ``rd_addr`` (block RAM)
        host_rd = [bank.read_port() for bank in banks]
        if cfg.dataflow == "os":
            writes = self._os_sequencer(m, arr, a_rd, b_rd, banks, launch)
        else:
            writes = self._ws_sequencer(m, arr, a_rd, b_rd, banks, launch)
        with m.If(Cat(*writes).any() & self.busy):
            m.d.sync += last.eq(cyc + 1)

        rd_word = self.rd_addr[lay.col_bits:]
        rd_col = 0
        if lay.col_bits:  # the column of the word being read, as the banks' data arrives
            rd_col = Signal(lay.col_bits)
            m.d.sync += rd_col.eq(self.rd_addr[:lay.col_bits])
        bank_data = [rp.data for rp in host_rd]
        if self._read_latency == 2:
            # a register right behind each block RAM: its clock-to-out (5.6 ns on an ECP5)
            # meets no logic before a register
            bank_data = [delayed(m, d, 1, f"c_bank_{j}_data") for j, d in enumerate(bank_data)]
            if lay.col_bits:
                rd_col = delayed(m, rd_col, 1, "rd_col")
        out = bank_data[0]
        for j, rp in enumerate(host_rd):
            m.d.comb += rp.addr.eq(rd_word)
            if j:
                out = Mux(rd_col == j, bank_data[j], out)
        m.d.comb += self.rd_data.eq(out)

        ovf = Signal()
        with m.If(launch):
            m.d.sync += ovf.eq(0)
        # lockstep: a PE's flag, once set, holds until a ``first`` clears it on a beat's first
        # edge, so sampling on beat starts sees every one and the flag at ``done`` is the
        # same (a simulator then evaluates the R*C-input OR once per beat, not every cycle)
        if arr.lockstep:
            with m.Elif(arr.beat_start):
                with m.If(arr.overflow & self.busy):
                    m.d.sync += ovf.eq(1)
        else:
            with m.Elif(arr.overflow & self.busy):
                m.d.sync += ovf.eq(1)
        m.d.comb += self.overflow.eq(ovf)
        return m

    def _finish(self, m, issuing_done, drain_cycles, en=None):
        """After the last issue, wait ``drain_cycles`` (beats, with ``en``) and raise
        ``done``."""
        draining = Signal()
        drain_left = Signal(range(drain_cycles + 2))
        with clock_enabled(m, en):
            with m.If(issuing_done):
                m.d.sync += [draining.eq(1), drain_left.eq(drain_cycles)]
            with m.If(draining):
                m.d.sync += drain_left.eq(drain_left - 1)
                with m.If(drain_left == 0):
                    m.d.sync += [draining.eq(0), self.done.eq(1)]
        return draining

    def _os_sequencer(self, m, arr, a_rd, b_rd, banks, launch):
        """Output-stationary schedule (module docstring).  A lockstep (bit-serial) array
        stretches it: the sequencer, the buffer reads and the array's pipeline move one beat
        per ``arr.advance``, the result writes once per beat (on ``arr.beat_start``, when the
        drain moves)."""
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        kw = JOB_BITS
        adv = arr.advance if arr.lockstep else None
        beat = arr.beat_start if arr.lockstep else None
        running, flushing = Signal(), Signal()
        kk = Signal(kw + 1)          # cycle within the tile period
        mt, nt = Signal(kw), Signal(kw)
        a_base, b_base = Signal(2 * kw), Signal(2 * kw)
        issue_valid, issue_first = Signal(), Signal()
        m.d.comb += [
            a_rd.addr.eq(a_base + kk), b_rd.addr.eq(b_base + kk),
            issue_valid.eq(running & (kk < self.k_len)),
            issue_first.eq((running & (kk == 0)) | flushing),
        ]
        if adv is not None:
            m.d.comb += [a_rd.en.eq(adv), b_rd.en.eq(adv)]
        # the last k-step of a period, last column tile, last row tile: registered flags, so
        # no path runs through an increment and three chained compares
        period_in = Mux(self.k_len > 2 * R - 1, self.k_len, 2 * R - 1)
        k_last = _last_flag(m, "kk", kk, period_in, launch, running, adv)
        n_last = _last_flag(m, "nt", nt, self.n_tiles, launch, running & k_last, adv)
        m_last = _last_flag(m, "mt", mt, self.m_tiles, launch, running & k_last & n_last, adv)
        with clock_enabled(m, adv):
            with m.If(launch):
                m.d.sync += [running.eq(1), kk.eq(0), mt.eq(0), nt.eq(0), a_base.eq(0),
                             b_base.eq(0)]
            with m.If(running):
                with m.If(k_last):
                    m.d.sync += kk.eq(0)
                    with m.If(n_last):
                        m.d.sync += [nt.eq(0), b_base.eq(0), mt.eq(mt + 1),
                                     a_base.eq(a_base + self.k_len)]
                        with m.If(m_last):
                            m.d.sync += [running.eq(0), flushing.eq(1)]
                    with m.Else():
                        m.d.sync += [nt.eq(nt + 1), b_base.eq(b_base + self.k_len)]
                with m.Else():
                    m.d.sync += kk.eq(kk + 1)
            with m.If(flushing):
                m.d.sync += flushing.eq(0)
        draining = self._finish(m, flushing, 2 * R + C + 3 + OPERAND_READ_CYCLES, adv)
        m.d.comb += self.busy.eq(running | flushing | draining)

        # the operands reach the array OPERAND_READ_CYCLES after their read (block-RAM read,
        # then a register); the controls follow them
        a_data, b_data = self._read_data(m, a_rd, b_rd, adv)
        wa, wb = len(arr.a[0]), len(arr.b[0])
        m.d.comb += [arr.valid.eq(delayed(m, issue_valid, OPERAND_READ_CYCLES, "issue_valid",
                                          adv)),
                     arr.first.eq(delayed(m, issue_first, OPERAND_READ_CYCLES, "issue_first",
                                          adv))]
        m.d.comb += [arr.a[i].eq(a_data[i * wa:(i + 1) * wa]) for i in range(R)]
        if arr.lockstep:   # column j's field: weight code, then data-type selector
            ws = len(arr.sel[0])
            for j in range(C):
                lo = j * (wb + ws)
                m.d.comb += [arr.b[j].eq(b_data[lo:lo + wb]),
                             arr.sel[j].eq(b_data[lo + wb:lo + wb + ws])]
        else:
            m.d.comb += [arr.b[j].eq(b_data[j * wb:(j + 1) * wb]) for j in range(C)]
        writes = []
        for j, bank in enumerate(banks):
            wp = bank.write_port()
            ptr = Signal(range(cfg.c_depth + 1), name=f"c_ptr_{j}")
            write = arr.out_valid[j] if beat is None else arr.out_valid[j] & beat
            with m.If(launch):
                m.d.sync += ptr.eq(0)
            with m.Elif(write):
                m.d.sync += ptr.eq(ptr + 1)
            m.d.comb += [wp.addr.eq(ptr), wp.data.eq(arr.out_data[j]), wp.en.eq(write)]
            writes.append(write)
        return writes

    def _ws_sequencer(self, m, arr, a_rd, b_rd, banks, launch):
        """Weight-stationary schedule (:class:`nybble.sim.schedule.WsSchedule`): preload the
        first tile's weights (R cycles), then tiles (kt-major, nt-minor) of ``m_len`` rows
        each, one every ``P`` cycles, the next tile's weights shifting in from cycle ``Q`` of
        the period.  Job inputs: ``m_len`` = M, ``n_tiles``, ``k_len`` = k-tiles."""
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        L = self._layout.latency
        kw = JOB_BITS
        Q = (R - 1) * L + C
        p_min = max(R * L + C + R - L, R * L + 2)
        pre, gap, running = Signal(), Signal(), Signal()
        pre_cnt = Signal(range(R + 1))
        kk = Signal(kw + 1)
        period = Signal(kw + 1)
        kt, nt = Signal(kw), Signal(kw)
        a_base = Signal(2 * kw)            # kt * M
        b_tile = Signal(2 * kw)            # (nt * KT + kt) * R: this tile's first B word
        b_next = Signal(2 * kw)            # the next tile's
        kt_next, nt_next = Signal(kw), Signal(kw)
        has_next = Signal()
        kt_stride = Signal(2 * kw)         # KT * R
        m.d.comb += kt_stride.eq(self.k_len * R)
        # the tile after (kt, nt): (kt, nt + 1), or (kt + 1, 0)
        nxt_wrap = Signal()
        m.d.comb += nxt_wrap.eq(nt + 1 == self.n_tiles)

        issue_valid, issue_first, issue_use = Signal(), Signal(), Signal()
        pre_read = Signal()
        b_addr = Signal(2 * kw)
        m.d.comb += [
            issue_valid.eq(running & (kk < self.m_len)),
            issue_first.eq(running & (kk == 0)),
            issue_use.eq(kt != 0),
            a_rd.addr.eq(a_base + kk),
        ]
        # B reads: the first tile's weights during `pre`, the next tile's at kk in [Q, Q+R)
        in_window = Signal()
        m.d.comb += in_window.eq(running & has_next & (kk >= Q) & (kk < Q + R))
        with m.If(pre):
            m.d.comb += [pre_read.eq(1), b_addr.eq(b_tile + (R - 1) - pre_cnt)]
        with m.Elif(in_window):
            m.d.comb += [pre_read.eq(1), b_addr.eq(b_next + (R - 1) - (kk - Q))]
        m.d.comb += b_rd.addr.eq(b_addr)

        with m.If(launch):
            m.d.sync += [pre.eq(1), pre_cnt.eq(0), kt.eq(0), nt.eq(0), a_base.eq(0),
                         b_tile.eq(0), kk.eq(0),
                         period.eq(Mux(self.m_len > p_min, self.m_len, p_min))]
        with m.If(pre):
            with m.If(pre_cnt == R - 1):
                m.d.sync += [pre.eq(0), gap.eq(1)]
            with m.Else():
                m.d.sync += pre_cnt.eq(pre_cnt + 1)
        with m.If(gap):
            m.d.sync += [gap.eq(0), running.eq(1), kk.eq(0)]
        # the next tile, known at every cycle of the current one
        m.d.comb += [
            kt_next.eq(Mux(nxt_wrap, kt + 1, kt)),
            nt_next.eq(Mux(nxt_wrap, 0, nt + 1)),
            has_next.eq(~(nxt_wrap & (kt + 1 == self.k_len))),
            b_next.eq(Mux(nxt_wrap, (kt + 1) * R, b_tile + kt_stride)),
        ]
        done_issuing = Signal()
        with m.If(running):
            with m.If(kk + 1 == period):
                m.d.sync += kk.eq(0)
                with m.If(has_next):
                    m.d.sync += [kt.eq(kt_next), nt.eq(nt_next), b_tile.eq(b_next)]
                    with m.If(nxt_wrap):
                        m.d.sync += a_base.eq(a_base + self.m_len)
                with m.Else():
                    m.d.sync += running.eq(0)
                    m.d.comb += done_issuing.eq(1)
            with m.Else():
                m.d.sync += kk.eq(kk + 1)
        draining = self._finish(m, done_issuing, R * L + C + 3 + OPERAND_READ_CYCLES)
        m.d.comb += self.busy.eq(pre | gap | running | draining)

        # operands arrive OPERAND_READ_CYCLES after their read (block-RAM read, register)
        stages = OPERAND_READ_CYCLES
        a_data, b_data = self._read_data(m, a_rd, b_rd)
        wa, wb = len(arr.a[0]), len(arr.w_in[0])
        m.d.comb += [arr.valid.eq(delayed(m, issue_valid, stages, "issue_valid")),
                     arr.first.eq(delayed(m, issue_first, stages, "issue_first")),
                     arr.w_shift.eq(delayed(m, pre_read, stages, "w_shift"))]
        m.d.comb += [arr.a[i].eq(a_data[i * wa:(i + 1) * wa]) for i in range(R)]
        m.d.comb += [arr.w_in[j].eq(b_data[j * wb:(j + 1) * wb]) for j in range(C)]

        # partial sums: column j reads (nt, m) from its bank j cycles after the row's issue;
        # the data, registered like the operands, meets the row at PE(0, j).  The bottom
        # writes it back OPERAND_READ_CYCLES + R*L cycles after the read: the next k-tile
        # may read it in that very cycle (the period's R*L + 2), so the read port is
        # transparent to the write port
        writes = []
        req, use = issue_valid, issue_use
        for j, bank in enumerate(banks):
            if j:
                req_j, use_j = Signal(name=f"psum_req_{j}"), Signal(name=f"psum_use_{j}")
                m.d.sync += [req_j.eq(req), use_j.eq(use)]
                req, use = req_j, use_j
            wp = bank.write_port()
            rp = bank.read_port(transparent_for=(wp,))
            use_r = delayed(m, use, 1, f"psum_use_{j}_read")
            m.d.comb += arr.psum_in[j].eq(delayed(m, Mux(use_r, rp.data, 0), stages - 1,
                                                  f"psum_{j}_read"))
            m.d.comb += rp.addr.eq(self._row_pointer(m, f"psum_rd_{j}", req, launch))
            m.d.comb += [wp.addr.eq(self._row_pointer(m, f"psum_wr_{j}", arr.out_valid[j],
                                                      launch)),
                         wp.data.eq(arr.out_data[j]), wp.en.eq(arr.out_valid[j])]
            writes.append(arr.out_valid[j])
        return writes

    @staticmethod
    def _read_data(m, a_rd, b_rd, en=None):
        """The A and B read data through ``OPERAND_READ_CYCLES - 1`` registers (beats, with
        ``en``)."""
        return tuple(delayed(m, rd.data, OPERAND_READ_CYCLES - 1, f"{name}_read", en)
                     for name, rd in (("a", a_rd), ("b", b_rd)))

    def _row_pointer(self, m, name, step, launch):
        """``nt * M + m`` for the rows of tiles in order: counts ``step`` pulses, wrapping
        after ``n_tiles`` tiles of ``m_len`` rows (the next k-tile revisits them)."""
        cfg = self._config
        row = Signal(JOB_BITS, name=f"{name}_row")
        tile = Signal(JOB_BITS, name=f"{name}_tile")
        base = Signal(range(cfg.c_depth + 1), name=f"{name}_base")
        with m.If(launch):
            m.d.sync += [row.eq(0), tile.eq(0), base.eq(0)]
        with m.Elif(step):
            with m.If(row + 1 == self.m_len):
                m.d.sync += row.eq(0)
                with m.If(tile + 1 == self.n_tiles):
                    m.d.sync += [tile.eq(0), base.eq(0)]
                with m.Else():
                    m.d.sync += [tile.eq(tile + 1), base.eq(base + self.m_len)]
            with m.Else():
                m.d.sync += row.eq(row + 1)
        return base + row


def _last_flag(m, name, counter, length, launch, step, en=None):
    """A register equal to ``counter == length - 1`` for a counter that starts at 0 on
    ``launch`` and on each ``step`` counts up, wrapping to 0 after ``length - 1`` (``length``
    >= 1, read at ``launch``).  It compares ``counter`` with a register holding ``length - 2``
    one step ahead: the counter's wrap decision costs one compare of two registers instead
    of an increment and a compare."""
    last = Signal(name=f"{name}_last")
    one = Signal(name=f"{name}_len_is_1")
    minus_2 = Signal(len(counter), name=f"{name}_len_minus_2")
    with clock_enabled(m, en):
        with m.If(launch):
            m.d.sync += [one.eq(length == 1), last.eq(length == 1), minus_2.eq(length - 2)]
        with m.Elif(step):
            m.d.sync += last.eq(Mux(last, one, counter == minus_2))
    return last


class ResetlessTop(wiring.Component):
    """``ArrayTop`` in a reset-less clock domain: the same ports, ``clk`` explicit, no ``rst``.

    Every register starts from its declared initial value instead.  Used for the native
    Verilator build: a synchronous reset is an input that every register's next-state logic
    reads, which makes Verilator re-evaluate all of it on every ``eval()`` (it nearly halves
    simulation speed on a 16x16 array)."""

    def __init__(self, top):
        if not isinstance(top, ArrayTop):
            raise ParameterTypeError(f"top must be an ArrayTop, not {top!r}")
        self._top = top
        members = dict(top.signature.members)
        members["clk"] = In(1)
        super().__init__(members)

    config = property(lambda self: self._top.config)
    inner = property(lambda self: self._top)

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain("sync", reset_less=True)
        m.d.comb += cd.clk.eq(self.clk)
        m.submodules.top = top = self._top
        for name, member in top.signature.members.items():
            outer, inner = getattr(self, name), getattr(top, name)
            if member.flow == wiring.In:
                m.d.comb += inner.eq(outer)
            else:
                m.d.comb += outer.eq(inner)
        return m
