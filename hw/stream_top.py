r"""A streaming array top: fixed double-buffered scratchpads fed through an external-memory port.

::

     external memory (sim: nybble.sim.memory_model)
        |  read request (addr, bytes, beat bytes)          ^ write request, write beats
        v  read beats: beat_words packed words             |  (one row of C accumulators)
     reader --> A scratchpad [half 0 | half 1]             |
            \-> B scratchpad [half 0 | half 1]          writer <-- C buffer [tile 0 | tile 1]
                    |  one A word + one B word per cycle           ^ drain (out_valid/out_data)
                    v                                              |
                 issuer --> OutputStationaryArray (hw.array) ------+

Job (run-time inputs, so one build serves every GEMM size): ``m_tiles``, ``n_tiles``,
``k_steps`` (S: scratchpad words per tile, i.e. k-steps, or blocks for block-scaled kinds),
``k_chunk`` (words per scratchpad half the host chose, ``<= a_words,
b_words``), ``m_len`` (M: rows of C past it are not written back), byte addresses
``a_addr``, ``b_addr``, ``c_addr``.  The work is a list of *steps*
``(mt, nt, kc)`` in that loop order (``kc`` chunks of ``k_chunk`` k-steps, the last one
shorter); tile ``u = mt * n_tiles + nt`` is ``kc = 0 .. KC-1``.

External memory (bytes, little endian): A word ``(mt, t)`` at ``a_addr + (mt*S + t) * wa``,
B word ``(nt, t)`` at ``b_addr + (nt*S + t) * wb`` (``wa``, ``wb``: the words padded to whole
bytes, the schedule's words of :class:`~nybble.sim.schedule.OsSchedule`), C row ``i`` of tile
``u`` (``cols`` accumulators, ``acc_bits`` each, packed) at ``c_addr + (u*R + i) * wc``.

Three engines, each a counter machine:

* **reader**: step ``s`` waits until the issuer has finished step ``s - 2`` (its halves are
  free), then requests A (only when the step needs a new A chunk: ``k_chunk < S``, or the
  first step of an ``mt``) and B, one request at a time; ``loaded`` counts steps in.
* **issuer**: issues one k-step per cycle from the scratchpads into the array when step
  ``s`` is loaded (a block-scaled kind's word, a block record, gives ``steps_per_word``
  k-steps: its elements one k-step at a time, each with the record's scale codes;
  :class:`StreamLayout`); a tile's first k-step (and the final flush) additionally waits until the
  C tile it will displace is written out and until ``2R - 1`` cycles after the previous tile's
  first (the shadow drain's spacing).  A cycle it waits for memory counts as a stall.
* **writer**: once a tile's ``R x C`` results are in the C buffer, writes its rows below
  ``m_len``, one row per beat.

``cycles``: launch to the last write beat (the cycle after ``start`` is 1); ``stall_cycles``:
cycles the issuer waited for memory.  The exact timing is :mod:`nybble.sim.stream_cycles`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import OutputStationaryArray
from .config import ArrayConfig
from .layout import JOB_BITS, TopLayout
from .scratchpad import BACKENDS as SCRATCHPAD_BACKENDS, Scratchpad
from .stream_config import StreamConfig, word_bytes
from .top import ResetlessTop
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["StreamTop", "StreamPortTop", "ResetlessStreamTop", "StreamLayout", "ADDR_BITS", "STREAM_JOB_FIELDS"]

ADDR_BITS = 32
COUNT_BITS = 48
STEP_BITS = 32
#: the job inputs of a streaming top, in the order hosts send them
STREAM_JOB_FIELDS = ("m_tiles", "n_tiles", "k_steps", "k_chunk", "m_len", "a_addr", "b_addr",
                     "c_addr")


class StreamLayout:
    """Widths and byte sizes of a streaming top's memory port, from the two configs.

    A scratchpad *word* is what travels through the port as one unit (padded to whole
    bytes): for plain PE kinds one k-step of every PE row (A) / column (B), the array word of
    :class:`~nybble.hw.layout.TopLayout`; for block-scaled kinds one *block record*:
    ``steps_per_word = block_size / lanes`` k-steps of element codes (``a_step_bits`` = rows x
    lanes x element bits each, k-step ``t`` at bits ``t * a_step_bits``, PE row ``i``'s lanes
    at ``i * lanes * element bits`` within it), then one block scale code per row
    (``scale_bits`` each, row ``i`` at ``steps_per_word * a_step_bits + i * scale_bits``).  So
    the scale crosses the port and sits in the scratchpad once per block (MXFP4 on 16 rows:
    4 x 64 + 16 = 272 bytes per 16 x 32 elements, 4.25 bits per element); the issuer expands
    a record into ``steps_per_word`` array words (lanes codes then the scale, per PE).
    """

    def __init__(self, config, stream):
        lay = TopLayout.of(config)
        spec = config.pe_spec
        self.rows, self.cols, self.acc_bits = config.rows, config.cols, config.acc_bits
        self.dataflow = config.dataflow
        if spec.family == "block":
            self.steps_per_word = spec.block_size // spec.lanes
            self.scale_bits = spec.scale_bits
            self.a_step_bits = config.rows * spec.lanes * spec.fmt_a.bits
            self.b_step_bits = config.cols * spec.lanes * spec.fmt_b.bits
            self.a_word_bits = (self.steps_per_word * self.a_step_bits
                                + config.rows * spec.scale_bits)
            self.b_word_bits = (self.steps_per_word * self.b_step_bits
                                + config.cols * spec.scale_bits)
        else:
            self.steps_per_word, self.scale_bits = 1, 0
            self.a_step_bits = self.a_word_bits = lay.a_word_bits
            self.b_step_bits = self.b_word_bits = lay.b_word_bits
        self.a_word_bytes = word_bytes(self.a_word_bits)
        self.b_word_bytes = word_bytes(self.b_word_bits)
        self.beat_words = stream.beat_words
        self.rd_data_bits = 8 * stream.beat_words * max(self.a_word_bytes, self.b_word_bytes)
        self.row_bytes = word_bytes(config.cols * config.acc_bits)
        self.wr_data_bits = 8 * self.row_bytes
        self.a_words, self.b_words = stream.a_words, stream.b_words
        elements = spec.lanes * self.steps_per_word
        #: bits per element at the port (padding and block scales included)
        self.a_bits_per_element = 8 * self.a_word_bytes / (config.rows * elements)
        self.b_bits_per_element = 8 * self.b_word_bytes / (config.cols * elements)


class StreamPortTop(wiring.Component):
    """What the streaming tops share (this one and the weight-stationary
    :class:`~nybble.hw.stream_ws_top.WsStreamTop`): their parameter checks, one port
    signature (:class:`StreamTop` lists it), the job control and the read beats' word fields.
    A subclass checks its dataflow and kinds in ``_check_kind(config, stream)``."""

    def __init__(self, config, stream=None, *, scratchpads="amaranth"):
        if scratchpads not in SCRATCHPAD_BACKENDS:
            raise ParameterError(f"scratchpads must be one of {', '.join(SCRATCHPAD_BACKENDS)}, "
                                 f"not {scratchpads!r}")
        self._scratchpads = scratchpads
        if not isinstance(config, ArrayConfig):
            raise ParameterTypeError(f"config must be an ArrayConfig, not {config!r}")
        stream = StreamConfig() if stream is None else stream
        if not isinstance(stream, StreamConfig):
            raise ParameterTypeError(f"stream must be a StreamConfig, not {stream!r}")
        self._check_kind(config, stream)
        self._config, self._stream = config, stream
        self._layout = lay = StreamLayout(config, stream)
        job = {name: In(ADDR_BITS if name.endswith("addr") else JOB_BITS)
               for name in STREAM_JOB_FIELDS}
        super().__init__({
            **job,
            "start": In(1), "done": Out(1), "busy": Out(1), "overflow": Out(1),
            "cycles": Out(COUNT_BITS), "stall_cycles": Out(COUNT_BITS),
            "mem_rd_req_valid": Out(1), "mem_rd_req_ready": In(1),
            "mem_rd_addr": Out(ADDR_BITS), "mem_rd_bytes": Out(ADDR_BITS),
            "mem_rd_beat_bytes": Out(16),
            "mem_rd_valid": In(1), "mem_rd_ready": Out(1),
            "mem_rd_data": In(lay.rd_data_bits),
            "mem_wr_req_valid": Out(1), "mem_wr_req_ready": In(1),
            "mem_wr_addr": Out(ADDR_BITS), "mem_wr_bytes": Out(ADDR_BITS),
            "mem_wr_beat_bytes": Out(16),
            "mem_wr_valid": Out(1), "mem_wr_ready": In(1),
            "mem_wr_data": Out(lay.wr_data_bits),
        })

    config = property(lambda self: self._config)
    stream = property(lambda self: self._stream)
    layout = property(lambda self: self._layout)

    def _check_kind(self, config, stream):
        raise NotImplementedError

    def _job_control(self, m):
        """``busy`` / ``done`` and the cycle counter; returns ``(launch, cyc, stalls,
        last_cyc)``: ``launch`` is ``start`` taken, ``cycles`` shows ``last_cyc`` and
        ``stall_cycles`` ``stalls`` (the caller counts them)."""
        launch = Signal()
        m.d.comb += launch.eq(self.start & ~self.busy)
        cyc, stalls = Signal(COUNT_BITS), Signal(COUNT_BITS)
        last_cyc = Signal(COUNT_BITS)
        with m.If(launch):
            m.d.sync += [self.busy.eq(1), self.done.eq(0), cyc.eq(0), stalls.eq(0)]
        with m.Elif(self.busy):
            m.d.sync += cyc.eq(cyc + 1)
        m.d.comb += [self.cycles.eq(last_cyc), self.stall_cycles.eq(stalls)]
        return launch, cyc, stalls, last_cyc

    def _writer(self, m, launch, cyc, last_cyc, *, w_data, w_row, w_base, w_fire, written,
                captured, groups, out_words, chunk, w_rows, step_bytes):
        """The writer: once ``captured > written``, writes the next group of results (an OS
        tile, a WS m-chunk x column tile), ``w_rows`` rows of ``out_words`` (one row per
        beat; the caller points the result RAMs at ``w_row``), then moves ``w_base`` on by
        ``step_bytes``; ``chunk`` rows a group (fewer in the last row of groups, below
        ``m_len``); after ``groups`` groups the job is done."""
        lay = self._layout
        w_nt, w_row0 = Signal(JOB_BITS, name="w_nt"), Signal(JOB_BITS + 1, name="w_row0")
        w_left = Signal(JOB_BITS + 1)
        m.d.comb += [w_left.eq(self.m_len - w_row0), w_rows.eq(Mux(w_left < chunk, w_left,
                                                                    chunk))]
        m.d.comb += [
            self.mem_wr_req_valid.eq(self.busy & ~w_data & (captured > written)),
            self.mem_wr_addr.eq(self.c_addr + w_base),
            self.mem_wr_bytes.eq(w_rows * lay.row_bytes),
            self.mem_wr_beat_bytes.eq(lay.row_bytes),
            self.mem_wr_valid.eq(w_data),
            self.mem_wr_data.eq(Cat(*(w.as_unsigned() for w in out_words))),
        ]
        with m.If(launch):
            m.d.sync += [w_data.eq(0), written.eq(0), w_base.eq(0), w_nt.eq(0), w_row0.eq(0)]
        with m.If(self.mem_wr_req_valid & self.mem_wr_req_ready):
            m.d.sync += [w_data.eq(1), w_row.eq(0)]
        with m.If(w_fire):
            m.d.sync += w_row.eq(w_row + 1)
            with m.If(w_row + 1 == w_rows):
                m.d.sync += [w_data.eq(0), written.eq(written + 1),
                             w_base.eq(w_base + step_bytes)]
                with m.If(w_nt + 1 == self.n_tiles):
                    m.d.sync += [w_nt.eq(0), w_row0.eq(w_row0 + chunk)]
                with m.Else():
                    m.d.sync += w_nt.eq(w_nt + 1)
                with m.If(written + 1 == groups):
                    m.d.sync += [self.done.eq(1), self.busy.eq(0), last_cyc.eq(cyc + 1)]

    def _fill_scratchpads(self, m, r_active, r_data, r_is_b, r_beat, a, b):
        """Read beats into the scratchpads: ``a`` / ``b`` are ``(pad, slot, rows)`` (the
        half ``slot`` of ``rows`` rows each); beat ``r_beat`` of the burst in flight
        (``r_is_b``: of B) goes to row ``r_beat`` of its half.  Returns ``beat_in``."""
        lay = self._layout
        beat_in = Signal()
        m.d.comb += beat_in.eq(r_active & r_data & self.mem_rd_valid)
        for (pad, slot, rows), word_bytes_, word_bits, en in (
                (a, lay.a_word_bytes, lay.a_word_bits, ~r_is_b),
                (b, lay.b_word_bytes, lay.b_word_bits, r_is_b)):
            m.d.comb += [pad.w_addr.eq(Mux(slot, rows, 0) + r_beat),
                         pad.w_data.eq(self._beat_words(word_bytes_, word_bits)),
                         pad.w_en.eq(beat_in & en)]
        return beat_in

    def _beat_words(self, word_bytes_, word_bits):
        """The ``beat_words`` words of a read beat, each ``word_bits`` of its
        ``word_bytes_`` bytes, concatenated (a scratchpad row)."""
        G = self._layout.beat_words
        return Cat(*(self.mem_rd_data[g * 8 * word_bytes_:g * 8 * word_bytes_ + word_bits]
                     for g in range(G)))


class StreamTop(StreamPortTop):
    """Output-stationary array + scratchpads + reader / issuer / writer (module docstring).

    Ports: the job inputs (:data:`STREAM_JOB_FIELDS`), ``start``/``done``/``busy``,
    ``overflow`` (sticky over the job), ``cycles``/``stall_cycles``; the read channel
    ``mem_rd_req_*`` (valid/ready; ``addr``, ``bytes``, ``beat_bytes``) and its beats
    ``mem_rd_valid``/``mem_rd_ready``/``mem_rd_data``; the write channel ``mem_wr_req_*``
    and ``mem_wr_valid``/``mem_wr_ready``/``mem_wr_data``.  ``mem_rd_ready`` is always 1:
    the reader only requests into a free scratchpad half, so it takes every beat.

    ``scratchpads``: the A / B scratchpads' :class:`~nybble.hw.scratchpad.Scratchpad`
    backend, ``"amaranth"`` (Amaranth's simulator) or ``"verilog"`` (Verilog builds: append
    :data:`~nybble.hw.scratchpad.SCRATCHPAD_VERILOG`; conversion time independent of their
    depth).
    """

    def _check_kind(self, config, stream):
        if config.dataflow != "os":
            raise ParameterError(f"StreamTop runs the output-stationary dataflow only: "
                                 f"ArrayConfig.dataflow must be 'os', not {config.dataflow!r}")
        spec = config.pe_spec
        if spec.family == "bitserial" or getattr(spec, "is_lut", False):
            raise ParameterError(f"StreamTop takes plain and block-scaled PE kinds, not "
                                 f"{config.pe!r} (LUT and bit-serial kinds need operand "
                                 "side channels it does not stream)")

    def elaborate(self, platform):
        m = Module()
        cfg, lay = self._config, self._layout
        R, C, G = cfg.rows, cfg.cols, lay.beat_words
        lg = G.bit_length() - 1
        m.submodules.array = arr = OutputStationaryArray(cfg)

        a_rows, b_rows = lay.a_words // G, lay.b_words // G
        m.submodules.a_pad = a_pad = Scratchpad(G * lay.a_word_bits, 2 * a_rows,
                                                backend=self._scratchpads)
        m.submodules.b_pad = b_pad = Scratchpad(G * lay.b_word_bits, 2 * b_rows,
                                                backend=self._scratchpads)

        S, KCH = self.k_steps, self.k_chunk
        chunked = Signal()
        m.d.comb += chunked.eq(KCH < S)

        launch, cyc, stalls, last_cyc = self._job_control(m)

        def walker(prefix):
            """(mt, nt, k0) counters walking the steps; ``n`` the chunk length; ``advance``
            statements for the step after; ``last`` whether this is the last step;
            ``tile_wrap`` whether the step ends a tile; ``next_a`` whether the next step
            needs a new A chunk."""
            mt, nt = Signal(JOB_BITS, name=f"{prefix}_mt"), Signal(JOB_BITS, name=f"{prefix}_nt")
            k0 = Signal(JOB_BITS, name=f"{prefix}_k0")
            n = Signal(JOB_BITS, name=f"{prefix}_n")
            rest = Signal(JOB_BITS, name=f"{prefix}_rest")
            m.d.comb += [rest.eq(S - k0), n.eq(Mux(KCH < rest, KCH, rest))]
            k_wrap, n_wrap = Signal(name=f"{prefix}_k_wrap"), Signal(name=f"{prefix}_n_wrap")
            m_wrap = Signal(name=f"{prefix}_m_wrap")
            m.d.comb += [k_wrap.eq(k0 + KCH >= S), n_wrap.eq(nt + 1 == self.n_tiles),
                         m_wrap.eq(mt + 1 == self.m_tiles)]
            with m.If(launch):
                m.d.sync += [mt.eq(0), nt.eq(0), k0.eq(0)]

            def advance():
                with m.If(k_wrap):
                    m.d.sync += k0.eq(0)
                    with m.If(n_wrap):
                        m.d.sync += [nt.eq(0), mt.eq(mt + 1)]
                    with m.Else():
                        m.d.sync += nt.eq(nt + 1)
                with m.Else():
                    m.d.sync += k0.eq(k0 + KCH)
            return dict(mt=mt, nt=nt, k0=k0, n=n, advance=advance,
                        last=k_wrap & n_wrap & m_wrap, tile_wrap=k_wrap,
                        next_a=chunked | (k_wrap & n_wrap))

        # -- reader ------------------------------------------------------------------------
        rw = walker("rd")
        r_active, r_data, r_is_b = Signal(), Signal(), Signal()
        r_step, loaded = Signal(STEP_BITS), Signal(STEP_BITS)
        issued = Signal(STEP_BITS)
        r_beat = Signal(JOB_BITS)
        r_a_base, r_b_base = Signal(ADDR_BITS), Signal(ADDR_BITS)
        r_beats = Signal(JOB_BITS)
        m.d.comb += r_beats.eq((rw["n"] + (G - 1)) >> lg)
        r_free = Signal()   # the halves of step r_step are free: step r_step - 2 issued
        m.d.comb += r_free.eq((r_step < 2) | (issued + 1 >= r_step))
        r_a_slot, r_b_slot = Signal(), Signal()
        m.d.comb += [r_b_slot.eq(r_step[0]), r_a_slot.eq(Mux(chunked, r_step[0], rw["mt"][0]))]
        m.d.comb += [
            self.mem_rd_req_valid.eq(r_active & ~r_data & r_free),
            self.mem_rd_addr.eq(Mux(r_is_b,
                                    self.b_addr + (r_b_base + rw["k0"]) * lay.b_word_bytes,
                                    self.a_addr + (r_a_base + rw["k0"]) * lay.a_word_bytes)),
            self.mem_rd_bytes.eq(rw["n"] * Mux(r_is_b, lay.b_word_bytes, lay.a_word_bytes)),
            self.mem_rd_beat_bytes.eq(Mux(r_is_b, G * lay.b_word_bytes, G * lay.a_word_bytes)),
            self.mem_rd_ready.eq(1),
        ]

        beat_in = self._fill_scratchpads(m, r_active, r_data, r_is_b, r_beat,
                                         (a_pad, r_a_slot, a_rows), (b_pad, r_b_slot, b_rows))
        with m.If(launch):
            m.d.sync += [r_active.eq(1), r_data.eq(0), r_is_b.eq(0), r_step.eq(0),
                         loaded.eq(0), r_a_base.eq(0), r_b_base.eq(0)]
        with m.If(self.mem_rd_req_valid & self.mem_rd_req_ready):
            m.d.sync += [r_data.eq(1), r_beat.eq(0)]
        with m.If(beat_in):
            m.d.sync += r_beat.eq(r_beat + 1)
            with m.If(r_beat + 1 == r_beats):
                m.d.sync += r_data.eq(0)
                with m.If(~r_is_b):
                    m.d.sync += r_is_b.eq(1)
                with m.Else():
                    m.d.sync += [loaded.eq(loaded + 1), r_step.eq(r_step + 1),
                                 r_is_b.eq(~rw["next_a"])]
                    rw["advance"]()
                    with m.If(rw["tile_wrap"]):
                        with m.If(rw["nt"] + 1 == self.n_tiles):
                            m.d.sync += [r_b_base.eq(0), r_a_base.eq(r_a_base + S)]
                        with m.Else():
                            m.d.sync += r_b_base.eq(r_b_base + S)
                    with m.If(rw["last"]):
                        m.d.sync += r_active.eq(0)

        # -- issuer ------------------------------------------------------------------------
        iw = walker("is")
        i_active, flush_pending = Signal(), Signal()
        i_step, i_tile = Signal(STEP_BITS), Signal(STEP_BITS)
        i_idx = Signal(JOB_BITS)
        # block-scaled kinds: a word (block record) is issued as steps_per_word k-steps
        # (plain kinds: no counter at all -- a zero-width signal is an illegal Verilog range)
        W = lay.steps_per_word
        i_sub = Signal(range(W), name="i_sub") if W > 1 else Const(0, 1)
        word_end = Signal()
        m.d.comb += word_end.eq(i_sub == W - 1)
        written = Signal(STEP_BITS)
        gap = Signal(range(2 * R), init=2 * R - 1)
        tile_first, c_ok, gap_ok, mem_ok = Signal(), Signal(), Signal(), Signal()
        issue, flush = Signal(), Signal()
        m.d.comb += [
            tile_first.eq((iw["k0"] == 0) & (i_idx == 0) & (i_sub == 0)),
            c_ok.eq(written + 2 >= i_tile),
            gap_ok.eq(gap == 2 * R - 1),
            mem_ok.eq((loaded > i_step) & (~tile_first | c_ok)),
            issue.eq(i_active & mem_ok & (~tile_first | gap_ok)),
            flush.eq(flush_pending & c_ok & gap_ok),
        ]
        with m.If(self.busy & ((i_active & ~mem_ok) | (flush_pending & ~c_ok))):
            m.d.sync += stalls.eq(stalls + 1)
        with m.If(launch):
            m.d.sync += [i_active.eq(1), flush_pending.eq(0), i_step.eq(0), i_tile.eq(0),
                         i_idx.eq(0), issued.eq(0), gap.eq(2 * R - 1)]
            if W > 1:
                m.d.sync += i_sub.eq(0)
        with m.Elif((issue & tile_first) | flush):
            m.d.sync += gap.eq(1)
        with m.Elif(gap != 2 * R - 1):
            m.d.sync += gap.eq(gap + 1)
        with m.If(flush):
            m.d.sync += flush_pending.eq(0)
        if W > 1:
            with m.If(issue):
                m.d.sync += i_sub.eq(Mux(word_end, 0, i_sub + 1))
        with m.If(issue & word_end):
            with m.If(i_idx + 1 == iw["n"]):
                m.d.sync += [i_idx.eq(0), issued.eq(issued + 1), i_step.eq(i_step + 1)]
                iw["advance"]()
                with m.If(iw["tile_wrap"]):
                    m.d.sync += i_tile.eq(i_tile + 1)
                with m.If(iw["last"]):
                    m.d.sync += [i_active.eq(0), flush_pending.eq(1)]
            with m.Else():
                m.d.sync += i_idx.eq(i_idx + 1)
        i_a_slot = Signal()
        m.d.comb += i_a_slot.eq(Mux(chunked, i_step[0], iw["mt"][0]))
        row = i_idx >> lg
        m.d.comb += [
            a_pad.r_addr.eq(Mux(i_a_slot, a_rows, 0) + row),
            b_pad.r_addr.eq(Mux(i_step[0], b_rows, 0) + row),
        ]
        # scratchpads read in one cycle: the controls and the word select follow one later
        v_r, f_r = Signal(), Signal()
        sel_r = Signal(max(1, lg))
        sub_r = Signal(range(W), name="sub_r") if W > 1 else None
        m.d.sync += [v_r.eq(issue), f_r.eq((issue & tile_first) | flush),
                     sel_r.eq(i_idx[:lg] if lg else 0)]
        if W > 1:
            m.d.sync += sub_r.eq(i_sub)
        m.d.comb += [arr.valid.eq(v_r), arr.first.eq(f_r)]
        a_word = a_pad.r_data.word_select(sel_r, lay.a_word_bits) if G > 1 else a_pad.r_data
        b_word = b_pad.r_data.word_select(sel_r, lay.b_word_bits) if G > 1 else b_pad.r_data
        m.d.comb += [arr.a[i].eq(f) for i, f in enumerate(self._pe_fields(a_word, sub_r, "a"))]
        m.d.comb += [arr.b[j].eq(f) for j, f in enumerate(self._pe_fields(b_word, sub_r, "b"))]

        # -- C buffer: per-column banks of two tiles, written in drain order ----------------
        captured = Signal(STEP_BITS)
        w_data, w_row = Signal(), Signal(range(R + 1))
        w_base = Signal(ADDR_BITS)
        w_fire = Signal()
        m.d.comb += w_fire.eq(self.mem_wr_valid & self.mem_wr_ready)
        w_slot = written[0]
        w_rd_row = Signal(range(R + 1))
        m.d.comb += w_rd_row.eq(Mux(w_data, w_row + w_fire, 0))
        row_words = []
        for j in range(C):
            bank = Memory(shape=signed(cfg.acc_bits), depth=2 * R, init=[])
            m.submodules[f"c_bank_{j}"] = bank
            wp, rp = bank.write_port(), bank.read_port()
            ptr = Signal(range(2 * R), name=f"c_ptr_{j}")
            with m.If(launch):
                m.d.sync += ptr.eq(0)
            with m.Elif(arr.out_valid[j]):
                m.d.sync += ptr.eq(Mux(ptr == 2 * R - 1, 0, ptr + 1))
            m.d.comb += [wp.addr.eq(ptr), wp.data.eq(arr.out_data[j]),
                         wp.en.eq(arr.out_valid[j]),
                         rp.addr.eq(w_slot * R + w_rd_row)]
            row_words.append(rp.data)
            if j == C - 1:
                with m.If(launch):
                    m.d.sync += captured.eq(0)
                with m.Elif(arr.out_valid[j] & ((ptr == R - 1) | (ptr == 2 * R - 1))):
                    m.d.sync += captured.eq(captured + 1)

        # -- writer ------------------------------------------------------------------------
        tiles = Signal(2 * JOB_BITS)
        m.d.comb += tiles.eq(self.m_tiles * self.n_tiles)
        # rows of the tile that hold results: R, fewer in the last row of tiles (M < R*m_tiles)
        w_rows = Signal(range(R + 1))
        self._writer(m, launch, cyc, last_cyc, w_data=w_data, w_row=w_row, w_base=w_base,
                     w_fire=w_fire, written=written, captured=captured, groups=tiles,
                     out_words=row_words, chunk=R, w_rows=w_rows,
                     step_bytes=R * lay.row_bytes)

        ovf = Signal()    # sticky over the job
        m.d.sync += ovf.eq(Mux(launch, 0, ovf | (arr.overflow & self.busy)))
        m.d.comb += self.overflow.eq(ovf)
        return m

    def _pe_fields(self, word, sub, side):
        """The array's operand of each PE row (``side`` ``"a"``) or column (``"b"``) from a
        scratchpad word: its slice, or for a block record (:class:`StreamLayout`) k-step
        ``sub``'s lanes of that PE, then the PE's block scale code."""
        lay, spec = self._layout, self._config.pe_spec
        n = lay.rows if side == "a" else lay.cols
        if lay.steps_per_word == 1 and not lay.scale_bits:
            w = spec.a_bits if side == "a" else spec.b_bits
            return [word[i * w:(i + 1) * w] for i in range(n)]
        step_bits = lay.a_step_bits if side == "a" else lay.b_step_bits
        lane_bits = step_bits // n
        steps = word[:lay.steps_per_word * step_bits]
        step = steps.word_select(sub, step_bits) if lay.steps_per_word > 1 else steps
        scales = word[lay.steps_per_word * step_bits:]
        sb = lay.scale_bits
        return [Cat(step[i * lane_bits:(i + 1) * lane_bits], scales[i * sb:(i + 1) * sb])
                for i in range(n)]


class ResetlessStreamTop(ResetlessTop):
    """:class:`StreamTop` (or :class:`~nybble.hw.stream_ws_top.WsStreamTop`) in a reset-less clock domain, ``clk`` explicit: the native build
    (:class:`~nybble.hw.top.ResetlessTop` says why; its ``elaborate`` wires this one too)."""

    def __init__(self, top):
        if not isinstance(top, StreamPortTop):
            raise ParameterTypeError(f"top must be a StreamTop or WsStreamTop, not {top!r}")
        self._top = top
        # ResetlessTop.__init__ checks for an ArrayTop: build the signature here instead
        wiring.Component.__init__(self, {**top.signature.members, "clk": In(1)})
