"""``ArrayTop``: an array with its operand buffers, result buffers and sequencer.

::

   host write port ---> A buffer (word: one k-step for every PE row)  --+
   (wr_sel, wr_addr,    B buffer (word: one k-step for every column)  --+--> sequencer --> array
    wr_data)            LUT table (LUT PEs)                           -----------------> (all PEs)
                                                                                          |
   host read port  <--- C banks (one per column; written by the array's drain) <---------+

The host loads A and B (and the LUT), sets the job size (``m_tiles``, ``n_tiles``, ``k_len``
in k-steps), pulses ``start`` and waits for ``done``; it never drives operands per cycle.

Buffer layout (computed once in :mod:`nybble.sim.schedule`, used by every driver):

* A word ``mt * k_len + t`` = codes ``A[mt*R + i, t*lanes + l]`` for rows i, lanes l
  (row i, lane l at bits ``(i * lanes + l) * wa``);
* B word ``nt * k_len + t`` = codes ``B[t*lanes + l, nt*C + j]`` (column j, lane l at bits
  ``(j * lanes + l) * wb``);
* results: column bank j, address ``tile * R + i`` for tile ``mt * n_tiles + nt``; the host
  reads ``rd_addr = (address << col_bits) | j``.

Sequencer (output-stationary): tile t (``mt``-major, ``nt``-minor) issues its k-steps at
cycles ``t*P .. t*P + k_len - 1`` of the job, ``P = max(k_len, 2*rows - 1)`` (the drain needs
``2R - 1`` cycles between captures); the flush token follows at ``T*P``.  Buffers read in one
cycle, so the array sees an issue one cycle later.  ``cycles`` counts from the first issue to
the last result written, inclusive: ``T*P + 2R + C + L - 1`` (see
:func:`nybble.sim.cycles.gemm_cycles`).
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import OutputStationaryArray
from .config import ArrayConfig

__all__ = ["ArrayTop", "ResetlessTop", "JOB_BITS", "WR_A", "WR_B", "WR_C", "WR_LUT"]

JOB_BITS = 20  # width of m_tiles, n_tiles, k_len, m_len
WR_A, WR_B, WR_C, WR_LUT = 0, 1, 2, 3


def _bits(n):
    return max(1, (int(n) - 1).bit_length())


class ArrayTop(wiring.Component):
    """Array + buffers + sequencer with the host interface of :mod:`nybble.sim.native`."""

    def __init__(self, config):
        if not isinstance(config, ArrayConfig):
            raise TypeError(f"config must be an ArrayConfig, not {config!r}")
        if config.dataflow != "os":
            raise ValueError(f"ArrayConfig.dataflow {config.dataflow!r} is not implemented by "
                             "ArrayTop yet; use 'os'")
        self._config = config
        self._array = OutputStationaryArray(config)
        arr = self._array
        self.a_word_bits = len(arr.a[0]) * config.rows
        self.b_word_bits = len(arr.b[0]) * config.cols
        self.col_bits = _bits(config.cols) if config.cols > 1 else 0
        self.lut_bits = len(arr.lut_data) if hasattr(arr, "lut_data") else 0
        self.wr_bits = max(self.a_word_bits, self.b_word_bits, config.acc_bits, self.lut_bits)
        addr_bits = max(_bits(config.a_depth), _bits(config.b_depth), _bits(config.c_depth))
        self.addr_bits = addr_bits
        self.rd_addr_bits = _bits(config.c_depth) + self.col_bits
        super().__init__({
            "wr_en": In(1), "wr_sel": In(2), "wr_addr": In(addr_bits),
            "wr_data": In(self.wr_bits),
            "m_tiles": In(JOB_BITS), "n_tiles": In(JOB_BITS), "k_len": In(JOB_BITS),
            "m_len": In(JOB_BITS),
            "start": In(1), "done": Out(1), "busy": Out(1), "overflow": Out(1),
            "cycles": Out(32),
            "rd_addr": In(self.rd_addr_bits), "rd_data": Out(signed(config.acc_bits)),
        })

    config = property(lambda self: self._config)
    latency = property(lambda self: self._array.latency)
    lanes = property(lambda self: self._array.lanes)
    frac_bits = property(lambda self: self._array.frac_bits)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        m.submodules.array = arr = self._array

        m.submodules.a_buf = a_buf = Memory(shape=unsigned(self.a_word_bits), depth=cfg.a_depth,
                                            init=[])
        m.submodules.b_buf = b_buf = Memory(shape=unsigned(self.b_word_bits), depth=cfg.b_depth,
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

        # -- sequencer ------------------------------------------------------------------------
        kw = JOB_BITS
        running, flushing, draining = Signal(), Signal(), Signal()
        kk = Signal(kw + 1)          # cycle within the tile period
        period = Signal(kw + 1)
        mt, nt = Signal(kw), Signal(kw)
        a_base, b_base = Signal(2 * kw), Signal(2 * kw)
        drain_left = Signal(range(2 * R + C + 8))
        issue_valid, issue_first = Signal(), Signal()
        cyc = Signal(32)
        last = Signal(32)
        m.d.comb += [
            a_rd.addr.eq(a_base + kk), b_rd.addr.eq(b_base + kk),
            issue_valid.eq(running & (kk < self.k_len)),
            issue_first.eq((running & (kk == 0)) | flushing),
            self.busy.eq(running | flushing | draining),
        ]
        with m.If(self.start & ~self.busy):
            m.d.sync += [running.eq(1), kk.eq(0), mt.eq(0), nt.eq(0), a_base.eq(0),
                         b_base.eq(0), cyc.eq(0), last.eq(0), self.done.eq(0),
                         period.eq(Mux(self.k_len > 2 * R - 1, self.k_len, 2 * R - 1))]
        with m.If(running):
            with m.If(kk + 1 == period):
                m.d.sync += kk.eq(0)
                with m.If(nt + 1 == self.n_tiles):
                    m.d.sync += [nt.eq(0), b_base.eq(0), mt.eq(mt + 1),
                                 a_base.eq(a_base + self.k_len)]
                    with m.If(mt + 1 == self.m_tiles):
                        m.d.sync += [running.eq(0), flushing.eq(1)]
                with m.Else():
                    m.d.sync += [nt.eq(nt + 1), b_base.eq(b_base + self.k_len)]
            with m.Else():
                m.d.sync += kk.eq(kk + 1)
        with m.If(flushing):
            m.d.sync += [flushing.eq(0), draining.eq(1), drain_left.eq(2 * R + C + 4)]
        with m.If(draining):
            m.d.sync += drain_left.eq(drain_left - 1)
            with m.If(drain_left == 0):
                m.d.sync += [draining.eq(0), self.done.eq(1)]
        with m.If(self.busy):
            m.d.sync += cyc.eq(cyc + 1)
        m.d.comb += self.cycles.eq(last)

        # buffers read in one cycle: the controls follow one cycle later
        v_r, f_r = Signal(), Signal()
        m.d.sync += [v_r.eq(issue_valid), f_r.eq(issue_first)]
        wa, wb = len(arr.a[0]), len(arr.b[0])
        m.d.comb += [arr.valid.eq(v_r), arr.first.eq(f_r)]
        m.d.comb += [arr.a[i].eq(a_rd.data[i * wa:(i + 1) * wa]) for i in range(R)]
        m.d.comb += [arr.b[j].eq(b_rd.data[j * wb:(j + 1) * wb]) for j in range(C)]

        # -- result banks -------------------------------------------------------------------
        any_write = Signal()
        writes = []
        rd_word = self.rd_addr[self.col_bits:]
        rd_col = self.rd_addr[:self.col_bits] if self.col_bits else 0
        rd_data = [None] * C
        for j in range(C):
            bank = Memory(shape=signed(cfg.acc_bits), depth=cfg.c_depth, init=[])
            m.submodules[f"c_bank_{j}"] = bank
            wp = bank.write_port()
            rp = bank.read_port(domain="comb")
            ptr = Signal(range(cfg.c_depth + 1), name=f"c_ptr_{j}")
            with m.If(self.start & ~self.busy):
                m.d.sync += ptr.eq(0)
            with m.Elif(arr.out_valid[j]):
                m.d.sync += ptr.eq(ptr + 1)
            m.d.comb += [wp.addr.eq(ptr), wp.data.eq(arr.out_data[j]), wp.en.eq(arr.out_valid[j]),
                         rp.addr.eq(rd_word)]
            writes.append(arr.out_valid[j])
            rd_data[j] = rp.data
        for w in writes:
            any_write = any_write | w
        with m.If(any_write & self.busy):
            m.d.sync += last.eq(cyc + 1)
        out = rd_data[0]
        for j in range(1, C):
            out = Mux(rd_col == j, rd_data[j], out)
        m.d.comb += self.rd_data.eq(out)

        ovf = Signal()
        with m.If(self.start & ~self.busy):
            m.d.sync += ovf.eq(0)
        with m.Elif(arr.overflow & self.busy):
            m.d.sync += ovf.eq(1)
        m.d.comb += self.overflow.eq(ovf)
        return m


class ResetlessTop(wiring.Component):
    """``ArrayTop`` in a reset-less clock domain: the same ports, ``clk`` explicit, no ``rst``.

    Every register starts from its declared initial value instead.  Used for the native
    Verilator build: a synchronous reset is an input that every register's next-state logic
    reads, which makes Verilator re-evaluate all of it on every ``eval()`` (it nearly halves
    simulation speed on a 16x16 array)."""

    def __init__(self, top):
        if not isinstance(top, ArrayTop):
            raise TypeError(f"top must be an ArrayTop, not {top!r}")
        self._top = top
        members = dict(top.signature.members)
        members["clk"] = In(1)
        super().__init__(members)

    config = property(lambda self: self._top.config)
    inner = property(lambda self: self._top)

    def elaborate(self, platform):
        from amaranth.hdl import ClockDomain
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
