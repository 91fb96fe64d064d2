"""Systolic arrays of any PE kind: output-stationary, with input skew and a shadow drain.

Output-stationary (``OutputStationaryArray``), R x C PEs::

            b[0]      b[1]   ...  b[C-1]          (column j delayed j cycles: input skew)
             |         |            |
   a[0] -> PE(0,0) -> PE(0,1) ... PE(0,C-1)       a, valid, first move right one PE per cycle
   a[1] ->[1]PE(1,0) -> ...                       b moves down one PE per cycle
    ...        |                                  PE(i,j) sees k-step t at cycle t + i + j
   a[R-1]->[R-1] ...                PE(R-1,C-1)

   drain: every PE has a shadow register; when the ``first`` of the next tile (or the flush
   token: first without valid) reaches its accumulator, the finished sum is copied into the
   shadow register.  Shadow registers shift *up* one row per cycle and leave at the top of
   each column (``out_valid[j]``, ``out_data[j]``).  PE(i,j) finishes i + j cycles after
   PE(0,0) and its value needs i more cycles to leave, so values leave column j every second
   cycle in row order 0, 1, ..., R-1 and never collide as long as consecutive captures are at
   least 2R - 1 cycles apart (the sequencer's tile period ``max(K steps, 2R - 1)``).

Timing (cycle 0 = the operands of k-step 0 at the array's inputs): PE(i,j) takes k-step t at
cycle t + i + j; with a PE of latency L, a tile whose flush / next ``first`` enters at cycle F
has PE(i,j) captured at the edge ending cycle F + i + j + L - 1 and its value at the top
output during cycle F + 2i + j + L.
"""

from contextlib import nullcontext

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .bitserial import BitSerialDecoder, step_bits
from .config import ArrayConfig
from .lut import LutTable
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["OutputStationaryArray", "WeightStationaryArray", "clock_enabled", "delayed",
           "delayed_together"]


def delayed(m, sig, n, name, en=None):
    """``sig`` through ``n`` registers (skew lines), clock-enabled by ``en`` when given."""
    for s in range(n):
        r = Signal.like(sig, name=f"{name}_d{s}")
        with clock_enabled(m, en):
            m.d.sync += r.eq(sig)
        sig = r
    return sig


def delayed_together(m, sigs, n, name, en):
    """``sigs`` through ``n`` clock-enabled registers, packed: one register per stage holds
    them all.  Bit for bit :func:`delayed` of each; in simulation an enabled register costs a
    shadow copy per cycle (Verilator), so one wide register is cheaper than several narrow
    ones -- the flip-flops and their enables are the same in gates."""
    line = delayed(m, Cat(*sigs), n, name, en)
    out, lo = [], 0
    for sig in sigs:
        out.append(line[lo:lo + len(sig)])
        lo += len(sig)
    return out


def clock_enabled(m, en):
    """``with clock_enabled(m, en):`` -- sync statements under it update only while ``en`` (no
    condition at all when ``en`` is None: the single-cycle kinds' netlists stay as they are)."""
    return m.If(en) if en is not None else nullcontext()


class _Array(wiring.Component):
    """What both dataflows share: the config, its PE spec, the common ports."""

    def __init__(self, config, operand_ports):
        if not isinstance(config, ArrayConfig):
            raise ParameterTypeError(f"config must be an ArrayConfig, not {config!r}")
        self._config = config
        spec = config.pe_spec
        sig = {
            "a": In(unsigned(spec.a_bits)).array(config.rows),
            "valid": In(1), "first": In(1),
            **operand_ports(spec),
            "out_valid": Out(1).array(config.cols),
            "out_data": Out(signed(config.acc_bits)).array(config.cols),
            "overflow": Out(1),
        }
        if getattr(spec, "is_lut", False):
            sig.update(lut_we=In(1), lut_addr=In(unsigned(spec.fmt_b.bits)),
                       lut_data=In(signed(spec.lut_bits)))
        if self.lockstep:
            sig.update(sel=In(unsigned(spec.sel_bits)).array(config.cols),
                       advance=Out(1), beat_start=Out(1))
        super().__init__(sig)

    config = property(lambda self: self._config)
    spec = property(lambda self: self._config.pe_spec)
    latency = property(lambda self: self.spec.latency)
    lanes = property(lambda self: self.spec.lanes)
    frac_bits = property(lambda self: self.spec.frac_bits)
    lockstep = property(lambda self: getattr(self.spec, "lockstep", False),
                        doc="multi-cycle PEs kept in step by ``advance`` (bit-serial)")

    def _pes(self, m):
        """The R x C PEs as submodules ``pe_<i>_<j>``; LUT kinds: the write port broadcast
        to every PE's table, or (``lut_table="array"``) one table, ``lut_table``, whose
        entries are broadcast to every PE's read mux."""
        cfg = self._config
        spec = cfg.pe_spec
        shared = None
        if getattr(spec, "lut_table", None) == "array":
            m.submodules.lut_table = shared = LutTable(spec.fmt_b.bits, spec.lut_bits,
                                                       spec.table_init)
            m.d.comb += [shared.we.eq(self.lut_we), shared.waddr.eq(self.lut_addr),
                         shared.wdata.eq(self.lut_data)]
        pes = [[cfg.build_pe() for _ in range(cfg.cols)] for _ in range(cfg.rows)]
        for i, row in enumerate(pes):
            for j, pe in enumerate(row):
                m.submodules[f"pe_{i}_{j}"] = pe
                if shared is not None:
                    m.d.comb += [pe.lut_entries[e].eq(shared.table[e])
                                 for e in range(len(shared.table))]
                elif hasattr(self, "lut_we"):
                    m.d.comb += [pe.lut_we.eq(self.lut_we), pe.lut_addr.eq(self.lut_addr),
                                 pe.lut_data.eq(self.lut_data)]
        return pes

    def _feed_rows(self, m, pes, stride, en=None):
        """Row i's ``a``, ``valid``, ``first`` enter PE(i, 0) ``i * stride`` cycles (beats,
        with ``en``) late (the input skew) and move right one PE per cycle."""
        for i, row in enumerate(pes):
            if en is not None:
                a, valid, first = delayed_together(m, (self.a[i], self.valid, self.first),
                                                   i * stride, f"row{i}", en)
                m.d.comb += [row[0].a.eq(a), row[0].valid.eq(valid), row[0].first.eq(first)]
            else:
                for name in ("a", "valid", "first"):
                    src = self.a[i] if name == "a" else getattr(self, name)
                    m.d.comb += getattr(row[0], name).eq(
                        delayed(m, src, i * stride, f"{name[0]}{i}", en))
            for pe, nxt in zip(row, row[1:]):
                m.d.comb += [nxt.a.eq(pe.a_out), nxt.valid.eq(pe.valid_out),
                             nxt.first.eq(pe.first_out)]


class OutputStationaryArray(_Array):
    """R x C output-stationary array (module docstring).

    Ports
    -----
    a : ``In(lanes * wa).array(R)`` -- row operands for this cycle (before skew)
    b : ``In(lanes * wb).array(C)`` -- column operands (before skew)
    valid, first : ``In(1)`` -- this cycle carries a k-step / starts a tile (``first``
        without ``valid`` is the flush token that drains the last tile)
    out_valid, out_data : ``Out(1).array(C)``, ``Out(signed(acc_bits)).array(C)``
    lut_we, lut_addr, lut_data : the LUT write port, broadcast to every PE (LUT kinds only;
        with the PE option ``lut_table="array"`` it writes the array's one table instead,
        whose entries are broadcast to every PE as wires)
    sel : ``In(sel_bits).array(C)`` -- bit-serial PEs: each column's data-type selector,
        skewed with ``b``; after the skew one :class:`~.bitserial.BitSerialDecoder` per
        column decodes (``sel``, ``b``) and the decoded weight travels down the column
    advance, beat_start : ``Out(1)`` -- bit-serial PEs (lockstep): the beat ends this cycle
        (the slowest valid MAC in the array is done) / this is a beat's first cycle

    ``latency`` is the PE's; ``lanes`` k-steps... one k-step is ``lanes`` products.

    Lockstep (bit-serial PEs, multi-cycle MACs): the timing above holds in *beats* instead
    of cycles, with a PE latency of one beat.  The skew lines and every PE's forwarding
    registers move only on ``advance``; a beat lasts until the slowest MAC in the array is
    done (``advance``, from each column's recent entries: :meth:`_lockstep`), ``beat_step``
    counts its cycles for the PEs; the drain (capture, shift, ``out_valid``) moves on
    ``beat_start``, the edge on which a ``first`` MAC loads its accumulator, so the finished
    sum is captured before it is overwritten.  The top gates its sequencer and buffer reads by
    ``advance``, writes results and samples the overflow flags on ``beat_start``.
    """

    def __init__(self, config):
        if isinstance(config, ArrayConfig) and config.dataflow != "os":
            raise ParameterError(f"OutputStationaryArray needs ArrayConfig.dataflow 'os', not "
                             f"{config.dataflow!r}")
        super().__init__(config, lambda spec: {
            "b": In(unsigned(spec.b_bits)).array(config.cols)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        L = self.spec.latency
        pes = self._pes(m)
        advance = beat_start = None
        if self.lockstep:
            advance, beat_start = self._lockstep(m, pes)
            L = 1  # in beats
        delay = lambda sig, n, name: delayed(m, sig, n, name, advance)

        # input skew: row i (a, valid, first) by i cycles, column j (b) by j cycles
        self._feed_rows(m, pes, 1, advance)
        for j in range(C):
            if self.lockstep:
                # the weight is decoded once, at the top of its column, and travels down
                # decoded: one decode ROM per column instead of one per PE
                b, sel = delayed_together(m, (self.b[j], self.sel[j]), j, f"col{j}", advance)
                m.submodules[f"decoder_{j}"] = dec = BitSerialDecoder(self.spec)
                m.d.comb += [dec.b.eq(b), dec.sel.eq(sel), pes[0][j].w.eq(dec.w)]
            else:
                m.d.comb += pes[0][j].b.eq(delay(self.b[j], j, f"b{j}"))
            port = "w" if self.lockstep else "b"
            for i in range(R - 1):
                m.d.comb += getattr(pes[i + 1][j], port).eq(getattr(pes[i][j], f"{port}_out"))

        # drain: capture when a tile boundary reaches the accumulator; shift up
        overflow_terms = []
        for j in range(C):
            # has_tile: the accumulator holds a tile's sum
            if self.lockstep:
                # one enabled register per PE's drain state (see delayed_together)
                slots = [Signal(data.StructLayout({"data": signed(cfg.acc_bits), "valid": 1,
                                                   "has_tile": 1}), name=f"drain_{i}_{j}")
                         for i in range(R)]
                shadow, svalid = [s.data for s in slots], [s.valid for s in slots]
                has_tile = [s.has_tile for s in slots]
            else:
                shadow = [Signal(signed(cfg.acc_bits), name=f"shadow_{i}_{j}")
                          for i in range(R)]
                svalid = [Signal(name=f"shadow_valid_{i}_{j}") for i in range(R)]
                has_tile = [Signal(name=f"has_tile_{i}_{j}") for i in range(R)]
            for i in range(R):
                pe = pes[i][j]
                # the PE's own first / valid, delayed to the accumulator's stage
                cap_first = delay(pe.first, L - 1, f"capf_{i}_{j}")
                cap_valid = delay(pe.valid, L - 1, f"capv_{i}_{j}")
                busy = has_tile[i]
                above_v = svalid[i + 1] if i + 1 < R else 0
                above_d = shadow[i + 1] if i + 1 < R else 0
                # lockstep: the drain moves on a beat's first cycle, the edge on which a
                # ``first`` MAC loads the accumulator (later in the beat the old sum is gone)
                with clock_enabled(m, beat_start):
                    with m.If(cap_first):
                        m.d.sync += busy.eq(cap_valid)
                    with m.Elif(cap_valid):
                        m.d.sync += busy.eq(1)
                    with m.If(cap_first & busy):
                        m.d.sync += [shadow[i].eq(pe.acc), svalid[i].eq(1)]
                    with m.Else():
                        m.d.sync += [shadow[i].eq(above_d), svalid[i].eq(above_v)]
                overflow_terms.append(pe.overflow)
            m.d.comb += [self.out_valid[j].eq(svalid[0]), self.out_data[j].eq(shadow[0])]
        # any PE's flag (the top makes it sticky over the job); Cat().any() keeps the
        # expression flat for the simulator instead of a 256-deep chain of ORs
        m.d.comb += self.overflow.eq(Cat(*overflow_terms).any())
        return m

    def _lockstep(self, m, pes):
        """Bit-serial PEs in lockstep: ``step`` counts the cycles of the current beat,
        ``advance`` ends it once the slowest valid MAC in the array is done.  Returns
        ``(advance, beat_start)``.

        The MAC in PE(i, j) entered column j at its top PE i beats ago (weights move down
        the column; every row's ``valid`` is the same issue stream skewed by row and column),
        so the MACs in the array are each column's last R entries.  Per column and MAC
        length L > 1 a counter holds how many more beats an entry of at least L cycles stays
        below the top PE: the beat length follows from C entries and counters instead of a
        compare in every PE and an R*C-input AND (which a simulator evaluates every cycle).
        """
        spec = self.spec
        rows = self._config.rows
        step = Signal(step_bits(spec), name="beat_step")
        ends = []
        for length in range(2, spec.latency + 1):
            long_macs = []
            for j, top in enumerate(pes[0]):
                entry = top.valid & (top.w.cycles >= length)
                left = Signal(range(max(rows, 2)), name=f"len{length}_left_{j}")
                with m.If(self.advance):
                    m.d.sync += left.eq(Mux(entry, rows - 1, Mux(left == 0, 0, left - 1)))
                long_macs.append(entry | (left != 0))
            # a MAC of >= length cycles somewhere: the beat lasts until step length - 1
            ends.append(~Cat(*long_macs).any() | (step >= length - 1))
        m.d.comb += [self.advance.eq(Cat(*ends).all()), self.beat_start.eq(step == 0)]
        m.d.sync += step.eq(Mux(self.advance, 0, step + 1))
        flat = [pe for row in pes for pe in row]
        m.d.comb += [x for pe in flat for x in (pe.step.eq(step), pe.advance.eq(self.advance))]
        return self.advance, self.beat_start


class WeightStationaryArray(_Array):
    """R x C weight-stationary array: weights held in the PEs, activations flow right,
    partial sums flow down.

    ::

        w_in[j] (B word of one k-step) --> next_w chain down column j (w_shift)
                 psum_in[j]
                     |
        a[i] ->[i*L] PE(i,j) --a--> PE(i,j+1)      PE(i,j) weight: active_w (swapped from
                     |                              next_w when the tile's first row arrives)
                   psum  (acc = psum + a . w, wrap / saturate: the PE's accumulator rule)
                     v
                 out_data[j], out_valid[j]  (bottom of column j)

    Row i of the array holds k-step ``kt*R + i`` of the current k-tile; activation row m of A
    enters row i at cycle ``m + i*L`` (skew), meets the partial sum of (m, column j) coming
    down, and the finished partial sum leaves the bottom of column j ``R*L + j`` cycles after
    row m entered row 0.  ``psum_in[j]`` must carry the partial sum of the same (m, j) when
    row m reaches PE(0, j) (the top reads it from the result banks, or 0 for the first
    k-tile).  ``first`` (with ``valid``) marks a tile's first row: each PE swaps its next
    weight in as that row passes.  Weights of the next tile shift in through ``w_in`` /
    ``w_shift``, bottom row first, while the current tile runs.
    """

    def __init__(self, config):
        if isinstance(config, ArrayConfig) and config.dataflow != "ws":
            raise ParameterError(f"WeightStationaryArray needs ArrayConfig.dataflow 'ws' (its PEs "
                             f"take partial sums), not {config.dataflow!r}")
        super().__init__(config, lambda spec: {
            "w_in": In(unsigned(spec.b_bits)).array(config.cols), "w_shift": In(1),
            "psum_in": In(signed(config.acc_bits)).array(config.cols)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        L = self.spec.latency
        pes = self._pes(m)
        delay = lambda sig, n, name: delayed(m, sig, n, name)

        self._feed_rows(m, pes, L)
        overflow_terms = []
        for i in range(R):
            for j in range(C):
                pe = pes[i][j]
                m.d.comb += pe.psum.eq(self.psum_in[j] if i == 0 else pes[i - 1][j].acc)
                overflow_terms.append(pe.overflow & pe.valid)
        # weights: a shift chain of next weights per column, swapped in by the tile marker
        for j in range(C):
            nxt_w = [Signal(len(self.w_in[j]), name=f"next_w_{i}_{j}") for i in range(R)]
            with m.If(self.w_shift):
                m.d.sync += nxt_w[0].eq(self.w_in[j])
                m.d.sync += [nxt_w[i].eq(nxt_w[i - 1]) for i in range(1, R)]
            for i in range(R):
                pe = pes[i][j]
                act_w = Signal(len(self.w_in[j]), name=f"active_w_{i}_{j}")
                swap = pe.first & pe.valid
                m.d.comb += pe.b.eq(Mux(swap, nxt_w[i], act_w))
                with m.If(swap):
                    m.d.sync += act_w.eq(nxt_w[i])
            bottom = pes[R - 1][j]
            m.d.comb += [self.out_valid[j].eq(delay(bottom.valid, L, f"ov{j}")),
                         self.out_data[j].eq(bottom.acc)]
        m.d.comb += self.overflow.eq(Cat(*overflow_terms).any())
        return m
