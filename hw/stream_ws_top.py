r"""A weight-stationary streaming top: weight tiles held in the PEs, rows of A streamed through.

::

     external memory (sim: nybble.sim.memory_model)
        |  read request / beats (the port of hw.stream_top)      ^ write request, write beats
        v                                                        |  (one row of C accumulators)
     reader --> A scratchpad [half 0 | half 1]  (A rows)      writer <-- accumulator
            \-> B scratchpad [half 0 | half 1]  (weight tiles)         [half 0 | half 1]
                    |                     |                        ^ psum read  | write
                    v                     v                        |            |
                 issuer (A rows)      shifter (w_in, w_shift)      |            |
                    \___________> WeightStationaryArray (hw.array) -+------------+

The same port, job inputs and host protocol as :class:`~nybble.hw.stream_top.StreamTop`
(:data:`~nybble.hw.stream_top.STREAM_JOB_FIELDS`), read for this dataflow as: ``m_tiles`` =
``MC`` m-chunks of ``k_chunk`` rows of A (the last one shorter: ``m_len - mc * k_chunk``),
``n_tiles`` = ``NT`` column tiles, ``k_steps`` = ``KT`` k-tiles of ``R`` k-steps.  The work
is a list of *steps* ``(mc, nt, kt)`` in that loop order; the steps of one ``(mc, nt)`` form a
*group*, whose partial sums stay in one accumulator half (Gemmini's accumulator) over its
``KT`` k-tiles.

External memory (bytes, little endian): A word ``(kt, m)`` (row ``m``'s k-steps ``kt*R + i``
for PE rows ``i``, the words of :class:`~nybble.sim.schedule.WsSchedule`) at ``a_addr +
(kt*M + m) * wa``; B word ``(nt, t)`` (k-step ``t`` of columns ``nt*C + j``) at ``b_addr +
(nt*KT*R + t) * wb``; the results of group ``g`` (its ``n`` rows of ``C`` accumulators,
packed) follow those of group ``g - 1`` from ``c_addr`` on, one row per ``wc`` bytes.

Four engines:

* **reader**: step ``s`` waits until the issuer has issued every row of step ``s - 2`` (its
  halves are free), then requests the step's ``n`` A rows and then its ``R`` B words (one
  weight tile); ``loaded`` counts steps in.
* **shifter**: shifts step ``s``'s weights into the array (``R`` cycles, k-step ``R - 1``
  first) once they are loaded and ``Q = (R-1)*L + C`` cycles after step ``s - 1``'s first row
  was issued (every PE has then swapped that step's weights in).
* **issuer**: issues step ``s``'s rows back to back, one per cycle, once its weights are
  shifted, at least ``P = max(Q + R, R*L + 2)`` cycles after step ``s - 1``'s first row (a
  partial sum is back in the accumulator before the next k-tile reads it), after the rows of
  step ``s - 1``, and, for a group's first step, once the writer has emptied the half
  (group ``g - 2`` written).  A cycle in which only memory holds it (the weights not loaded
  in time, or the half not yet written out) counts as a stall.
* **writer**: once the last row of a group's last k-tile is in the accumulator, writes the
  group's rows, one row per beat.

Row ``m`` of a step issued in cycle ``t`` reaches the array in ``t + 1`` (scratchpad read);
column ``j`` reads its partial sum in ``t + j`` (nothing for ``kt = 0``) and writes the new
one at the end of ``t + 1 + R*L + j``.  ``cycles``: launch to the last write beat (the cycle
after ``start`` is 1); ``stall_cycles`` as above.  The exact timing:
:func:`nybble.sim.stream_cycles.stream_cycles`.
"""

from amaranth.hdl import Module, Mux, Signal

from .array import WeightStationaryArray
from .config import ArrayConfig
from .layout import JOB_BITS
from .scratchpad import Scratchpad
from .stream_top import ADDR_BITS, STEP_BITS, StreamPortTop
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["WsStreamTop", "ws_periods", "ws_hardware"]


def ws_hardware(config):
    """The weight-stationary config whose top runs ``config``: itself for ``"ws"``; for
    ``"is"`` (input-stationary) the same array as ``"ws"``: the host runs
    ``C^T = B^T A^T``, so ``A^T`` is the stationary operand (the weight tiles) and ``B^T``
    streams, which needs a kind whose two operand formats are the same."""
    if not isinstance(config, ArrayConfig):
        raise ParameterTypeError(f"config must be an ArrayConfig, not {config!r}")
    if config.dataflow == "is":
        fa, fb = config.pe_spec.fmt_a, config.pe_spec.fmt_b
        if fa.name != fb.name:
            raise ParameterError(f"dataflow 'is' runs the transposed GEMM on the "
                                 f"weight-stationary array, so the PE kind's operand formats "
                                 f"must be equal; {config.pe!r} takes {fa.name} x {fb.name}")
        return config.replace(dataflow="ws")
    if config.dataflow != "ws":
        raise ParameterError(f"the weight-stationary streaming top runs dataflow 'ws' or "
                             f"'is', not {config.dataflow!r}")
    return config


def ws_periods(rows, cols, latency):
    """``(Q, P)`` of a weight-stationary streaming top (module docstring): the cycles from a
    step's first row to the next step's first weight shift, and to its first row."""
    q = (rows - 1) * latency + cols
    return q, max(q + rows, rows * latency + 2)


class WsStreamTop(StreamPortTop):
    """Weight-stationary array + scratchpads + accumulator + reader / shifter / issuer /
    writer (module docstring); the ports of :class:`~nybble.hw.stream_top.StreamTop`.

    ``scratchpads``: the scratchpads' and accumulator halves'
    :class:`~nybble.hw.scratchpad.Scratchpad` backend (``"amaranth"`` or ``"verilog"``).
    """

    def _check_kind(self, config, stream):
        if config.dataflow != "ws":
            raise ParameterError(f"WsStreamTop runs the weight-stationary dataflow: "
                                 f"ArrayConfig.dataflow must be 'ws', not {config.dataflow!r}")
        spec = config.pe_spec
        if spec.family in ("bitserial", "block") or getattr(spec, "is_lut", False):
            raise ParameterError(f"WsStreamTop takes plain PE kinds, not {config.pe!r}")
        if stream.b_words < config.rows:
            raise ParameterError(f"StreamConfig.b_words must hold one weight tile of "
                                 f"{config.rows} words (rows) per half, not {stream.b_words}")

    def elaborate(self, platform):
        m = Module()
        cfg, lay, stream = self._config, self._layout, self._stream
        R, C, G = cfg.rows, cfg.cols, lay.beat_words
        L = cfg.pe_spec.latency
        Q, P = ws_periods(R, C, L)
        lg = G.bit_length() - 1
        m.submodules.array = arr = WeightStationaryArray(cfg)
        pad = lambda width, depth: Scratchpad(width, depth, backend=self._scratchpads)
        a_rows, b_rows = lay.a_words // G, -(-R // G)
        m.submodules.a_pad = a_pad = pad(G * lay.a_word_bits, 2 * a_rows)
        m.submodules.b_pad = b_pad = pad(G * lay.b_word_bits, 2 * b_rows)
        H = stream.acc_rows

        MC, NT, KT, MCH, M = (self.m_tiles, self.n_tiles, self.k_steps, self.k_chunk,
                              self.m_len)
        groups = Signal(2 * JOB_BITS)
        m.d.comb += groups.eq(MC * NT)

        launch, cyc, stalls, last_cyc = self._job_control(m)

        def walker(prefix):
            """(mc, nt, kt) counters walking the steps; ``n`` the rows of the step (its
            m-chunk's), ``a_row`` = ``kt*M + mc*k_chunk`` (the step's first A word),
            ``b_word`` = ``(nt*KT + kt)*R`` (its first B word); ``advance`` statements for the
            step after; ``last`` / ``group_end`` whether the step is the job's / its group's
            last."""
            mc, nt, kt = (Signal(JOB_BITS, name=f"{prefix}_{x}") for x in ("mc", "nt", "kt"))
            m0 = Signal(JOB_BITS + 1, name=f"{prefix}_m0")
            a_row = Signal(2 * JOB_BITS + 1, name=f"{prefix}_a_row")
            b_word = Signal(2 * JOB_BITS + 8, name=f"{prefix}_b_word")
            n, rest = Signal(JOB_BITS, name=f"{prefix}_n"), Signal(JOB_BITS + 1, name=f"{prefix}_rest")
            k_wrap, n_wrap = Signal(name=f"{prefix}_k_wrap"), Signal(name=f"{prefix}_n_wrap")
            m_wrap = Signal(name=f"{prefix}_m_wrap")
            m.d.comb += [rest.eq(M - m0), n.eq(Mux(MCH < rest, MCH, rest)),
                         k_wrap.eq(kt + 1 == KT), n_wrap.eq(nt + 1 == NT),
                         m_wrap.eq(mc + 1 == MC)]
            with m.If(launch):
                m.d.sync += [mc.eq(0), nt.eq(0), kt.eq(0), m0.eq(0), a_row.eq(0),
                             b_word.eq(0)]

            def advance():
                with m.If(k_wrap):
                    m.d.sync += kt.eq(0)
                    with m.If(n_wrap):
                        m.d.sync += [nt.eq(0), mc.eq(mc + 1), m0.eq(m0 + MCH),
                                     a_row.eq(m0 + MCH), b_word.eq(0)]
                    with m.Else():
                        m.d.sync += [nt.eq(nt + 1), a_row.eq(m0), b_word.eq(b_word + R)]
                with m.Else():
                    m.d.sync += [kt.eq(kt + 1), a_row.eq(a_row + M), b_word.eq(b_word + R)]
            return dict(kt=kt, n=n, a_row=a_row, b_word=b_word, advance=advance,
                        last=k_wrap & n_wrap & m_wrap, group_end=k_wrap)

        # -- reader ------------------------------------------------------------------------
        rw = walker("rd")
        r_active, r_data, r_is_b = Signal(), Signal(), Signal()
        r_step, loaded, issued = Signal(STEP_BITS), Signal(STEP_BITS), Signal(STEP_BITS)
        r_beat, r_beats = Signal(JOB_BITS), Signal(JOB_BITS)
        m.d.comb += r_beats.eq(Mux(r_is_b, (R + G - 1) >> lg, (rw["n"] + (G - 1)) >> lg))
        r_free = Signal()   # the halves of step r_step are free: step r_step - 2 issued
        m.d.comb += r_free.eq((r_step < 2) | (issued + 1 >= r_step))
        m.d.comb += [
            self.mem_rd_req_valid.eq(r_active & ~r_data & r_free),
            self.mem_rd_addr.eq(Mux(r_is_b, self.b_addr + rw["b_word"] * lay.b_word_bytes,
                                    self.a_addr + rw["a_row"] * lay.a_word_bytes)),
            self.mem_rd_bytes.eq(Mux(r_is_b, R * lay.b_word_bytes,
                                     rw["n"] * lay.a_word_bytes)),
            self.mem_rd_beat_bytes.eq(Mux(r_is_b, G * lay.b_word_bytes, G * lay.a_word_bytes)),
            self.mem_rd_ready.eq(1),
        ]

        beat_in = self._fill_scratchpads(m, r_active, r_data, r_is_b, r_beat,
                                         (a_pad, r_step[0], a_rows), (b_pad, r_step[0], b_rows))
        with m.If(launch):
            m.d.sync += [r_active.eq(1), r_data.eq(0), r_is_b.eq(0), r_step.eq(0),
                         loaded.eq(0)]
        with m.If(self.mem_rd_req_valid & self.mem_rd_req_ready):
            m.d.sync += [r_data.eq(1), r_beat.eq(0)]
        with m.If(beat_in):
            m.d.sync += r_beat.eq(r_beat + 1)
            with m.If(r_beat + 1 == r_beats):
                m.d.sync += [r_data.eq(0), r_is_b.eq(~r_is_b)]
                with m.If(r_is_b):
                    m.d.sync += [loaded.eq(loaded + 1), r_step.eq(r_step + 1)]
                    rw["advance"]()
                    with m.If(rw["last"]):
                        m.d.sync += r_active.eq(0)

        # -- shifter -----------------------------------------------------------------------
        started = Signal(STEP_BITS)          # steps whose first row is issued
        since = Signal(range(P + 1))         # cycles since the last first row, up to P
        shifted = Signal(STEP_BITS)          # steps whose weights are in the PEs' next_w
        sh_active = Signal()
        sh_cnt = Signal(range(max(2, R)))
        sh_go = Signal()
        m.d.comb += sh_go.eq(self.busy & ~sh_active & (loaded > shifted)
                             & ((shifted == 0) | ((started == shifted) & (since >= Q))))
        sh_shift = Signal()
        m.d.comb += sh_shift.eq(sh_go | sh_active)
        sh_idx = Signal(range(max(2, R)))           # the tile's word being shifted (k-step R-1 first)
        m.d.comb += sh_idx.eq(Mux(sh_active, R - 1 - sh_cnt, R - 1))
        with m.If(launch):
            m.d.sync += [shifted.eq(0), sh_active.eq(0)]
        with m.Elif(sh_shift):
            with m.If(Mux(sh_active, sh_cnt, 0) == R - 1):
                m.d.sync += [sh_active.eq(0), shifted.eq(shifted + 1)]
            with m.Else():
                m.d.sync += [sh_active.eq(1), sh_cnt.eq(Mux(sh_active, sh_cnt, 0) + 1)]

        # -- issuer ------------------------------------------------------------------------
        iw = walker("is")
        i_active, in_rows = Signal(), Signal()
        i_step, i_group = Signal(STEP_BITS), Signal(STEP_BITS)
        i_row = Signal(JOB_BITS)
        written = Signal(STEP_BITS)
        gap_ok, mem_ok, begin, issue = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            gap_ok.eq((started == 0) | (since == P)),
            mem_ok.eq((shifted > i_step) & ((iw["kt"] != 0) | (written + 1 >= i_group))),
            begin.eq(i_active & ~in_rows & gap_ok & mem_ok),
            issue.eq(begin | in_rows),
        ]
        with m.If(self.busy & i_active & ~in_rows & gap_ok & ~mem_ok):
            m.d.sync += stalls.eq(stalls + 1)
        row = Signal(JOB_BITS)
        m.d.comb += row.eq(Mux(in_rows, i_row, 0))
        with m.If(launch):
            m.d.sync += [i_active.eq(1), in_rows.eq(0), i_step.eq(0), i_group.eq(0),
                         issued.eq(0), started.eq(0), since.eq(P)]
        with m.Elif(begin):
            m.d.sync += [started.eq(started + 1), since.eq(1)]
        with m.Elif(since != P):
            m.d.sync += since.eq(since + 1)
        with m.If(issue):
            with m.If(row + 1 == iw["n"]):
                m.d.sync += [in_rows.eq(0), issued.eq(issued + 1), i_step.eq(i_step + 1)]
                iw["advance"]()
                with m.If(iw["group_end"]):
                    m.d.sync += i_group.eq(i_group + 1)
                with m.If(iw["last"]):
                    m.d.sync += i_active.eq(0)
            with m.Else():
                m.d.sync += [in_rows.eq(1), i_row.eq(row + 1)]
        m.d.comb += [
            a_pad.r_addr.eq(Mux(i_step[0], a_rows, 0) + (row >> lg)),
            b_pad.r_addr.eq(Mux(shifted[0], b_rows, 0) + (sh_idx >> lg)),
        ]
        # the scratchpads read in one cycle: the controls and word selects follow one later
        v_r, f_r, sh_r = Signal(), Signal(), Signal()
        a_sel, b_sel = Signal(max(1, lg)), Signal(max(1, lg))
        m.d.sync += [v_r.eq(issue), f_r.eq(begin), sh_r.eq(sh_shift),
                     a_sel.eq(row[:lg] if lg else 0), b_sel.eq(sh_idx[:lg] if lg else 0)]
        a_word = a_pad.r_data.word_select(a_sel, lay.a_word_bits) if G > 1 else a_pad.r_data
        b_word = b_pad.r_data.word_select(b_sel, lay.b_word_bits) if G > 1 else b_pad.r_data
        wa, wb = len(arr.a[0]), len(arr.w_in[0])
        m.d.comb += [arr.valid.eq(v_r), arr.first.eq(f_r), arr.w_shift.eq(sh_r)]
        m.d.comb += [arr.a[i].eq(a_word[i * wa:(i + 1) * wa]) for i in range(R)]
        m.d.comb += [arr.w_in[j].eq(b_word[j * wb:(j + 1) * wb]) for j in range(C)]

        # -- accumulator: per half and column a RAM of acc_rows partial sums ---------------
        # a row's accumulator address, whether it reads a partial sum (kt > 0) and whether
        # it ends its group travel down one chain: column j reads at tap j, writes at tap
        # 1 + R*L + j
        depth = 1 + R * L + C
        abits = max(1, (H - 1).bit_length())
        tap_addr = [Signal(abits, name="acc_addr_0")]
        tap_half = [Signal(name="acc_half_0")]
        tap_use = [Signal(name="acc_use_0")]
        tap_end = [Signal(name="acc_end_0")]
        m.d.comb += [tap_addr[0].eq(row), tap_half[0].eq(i_group[0]),
                     tap_use[0].eq(issue & (iw["kt"] != 0)),
                     tap_end[0].eq(issue & iw["group_end"] & (row + 1 == iw["n"]))]
        for d in range(1, depth):
            for taps, name in ((tap_addr, "addr"), (tap_half, "half"), (tap_use, "use"),
                               (tap_end, "end")):
                r = Signal.like(taps[0], name=f"acc_{name}_{d}")
                m.d.sync += r.eq(taps[-1])
                taps.append(r)

        w_data, w_row = Signal(), Signal(JOB_BITS)
        w_base, w_fire = Signal(ADDR_BITS), Signal()
        m.d.comb += w_fire.eq(self.mem_wr_valid & self.mem_wr_ready)
        w_half = written[0]
        w_rd_row = Signal(JOB_BITS)
        m.d.comb += w_rd_row.eq(Mux(w_data, w_row + w_fire, 0))
        row_words = [[None] * C for _ in range(2)]
        for h in range(2):
            for j in range(C):
                bank = pad(cfg.acc_bits, max(2, H))
                m.submodules[f"acc_{h}_{j}"] = bank
                w_tap = 1 + R * L + j
                use_j = Signal(name=f"psum_use_{h}_{j}")
                m.d.comb += use_j.eq(tap_use[j] & (tap_half[j] == h))
                m.d.comb += [
                    bank.w_addr.eq(tap_addr[w_tap]),
                    bank.w_data.eq(arr.out_data[j]),
                    bank.w_en.eq(arr.out_valid[j] & (tap_half[w_tap] == h)),
                    # the writer never reads a half while the issuer's rows read it
                    bank.r_addr.eq(Mux(use_j, tap_addr[j], w_rd_row)),
                ]
                row_words[h][j] = bank.r_data
        for j in range(C):
            use_r = Signal(name=f"psum_use_{j}_r")
            half_r = Signal(name=f"psum_half_{j}_r")
            m.d.sync += [use_r.eq(tap_use[j]), half_r.eq(tap_half[j])]
            m.d.comb += arr.psum_in[j].eq(
                Mux(use_r, Mux(half_r, row_words[1][j], row_words[0][j]), 0))
        captured = Signal(STEP_BITS)
        with m.If(launch):
            m.d.sync += captured.eq(0)
        with m.Elif(tap_end[1 + R * L + C - 1]):
            m.d.sync += captured.eq(captured + 1)

        # -- writer ------------------------------------------------------------------------
        w_rows = Signal(JOB_BITS)
        self._writer(m, launch, cyc, last_cyc, w_data=w_data, w_row=w_row, w_base=w_base,
                     w_fire=w_fire, written=written, captured=captured, groups=groups,
                     out_words=[Mux(w_half, row_words[1][j], row_words[0][j])
                                for j in range(C)],
                     chunk=MCH, w_rows=w_rows, step_bytes=w_rows * lay.row_bytes)

        ovf = Signal()    # sticky over the job
        m.d.sync += ovf.eq(Mux(launch, 0, ovf | (arr.overflow & self.busy)))
        m.d.comb += self.overflow.eq(ovf)
        return m
