"""Block-scaled PEs: element codes plus per-block scales (MX, NVFP4, ggml Q4_0) in one PE.

::

    a = [ code_0 | ... | code_{lanes-1} | scale_a ]    (scale_a: the row's block scale code,
    b = [ code_0 | ... | code_{lanes-1} | scale_b ]     the same in every k-step of a block)
      |                                                  --> [reg] --> a_out, b_out (forwarded)
      v  lane i                                          valid, first --> [reg] --> *_out
    +-----------+     +-----------+
    | product 0 | ... | product L-1|   exact, on the product grid 2**-g (g = fa + fb)
    +-----------+     +-----------+
            \\ exact adder tree /
             +--> block adder: S = step (first step of a block) or S + step
                  (step counter: steps_per_block = block_size / lanes; reset by ``first``)
                     |  at the block's last step:
                     v
              [ stage-2 regs: S, scale_a, scale_b, first-of-dot-product ]
                     |
                     v  BlockScaler (combinational)
              T = S * mag_a * mag_b (sign a ^ sign b)      E8M0: mag = 1, no multiplier
              c = floor(T * 2**(sh_a + sh_b - frac_a - frac_b - g + F))   one left shift of
                  T by a clamped amount, keeping bits [R, R + W] (floor) + a "far" flag
                     |
                     v
              +--------------------+
              | Accumulator (W)    | --> acc (signed W bits, grid 2**-F), overflow (sticky)
              +--------------------+      first block of a dot product loads, others add

Numerics: ``acc`` is bit for bit :func:`nybble.sw.gemm_block_codes` (the windowed
cross-block accumulator of :mod:`nybble.sw.golden`) with :meth:`BlockScaledPE.golden_kwargs`:
block sums exact; each block's contribution ``floor(S * sa * sb * 2**(F - g))`` (truncated
toward -inf); added in block order into a ``W``-bit register that wraps or saturates.
Per-tensor scales (NVFP4's ``ta``, ``tb``) are applied by the host after the array.

Scale formats (``scale``): ``"e8m0"`` (OCP MX; value ``2**(code - 127)``; a pure exponent
add, no multiplier), ``"e4m3"`` (NVFP4; sign, 4-bit significand with subnormals, exponent;
a 4 x 4 significand multiply, then the 4 x 4 product times the block sum) and ``"fp16"``
(ggml Q4_0's ``d``; an 11 x 11 significand multiply).  Scale codes are decoded from the
:class:`nybble.sw.Format` records like the elements.  NaN codes are not special-cased (the
golden model refuses them).

Timing: one k-step (``lanes`` products) per cycle with ``valid``; the scale fields are read
at the block's last step.  ``latency`` = 2: a block's contribution is in ``acc`` two clock
edges after the cycle of its last step (stage-2 register, then the accumulator).  With
``scaler="serial"`` the scaler is time-shared over the ``steps_per_block`` cycles until the
next block can finish (:class:`SerialBlockScaler`: a multiplier ``steps_per_block`` times
narrower), and ``latency`` = 2 + ``steps_per_block``; the numbers are the same.  The
operand bus is ``lanes * element bits + scale bits`` wide: the array's feeders and systolic
forwarding registers carry the scales alongside the elements.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.sw.formats import check_integral, get_format
from nybble.sw.golden import element_ints
from .accumulator import Accumulator
from .pe_base import PEBase, adder_tree
from .product import decode, signed_width
from .spec import SCALE_FORMATS, BlockScaledSpec, _check_scale
from nybble.sw.errors import ParameterError

__all__ = ["BlockScaledPE", "BlockScaler", "SerialBlockScaler"]


def _scale_fields(scale):
    """``(bits, frac)``: a code's value is ``+-mag * 2**(shift - frac)`` (see
    :func:`_decode_scale`)."""
    fmt = get_format(SCALE_FORMATS[scale])
    return fmt.bits, 127 if scale == "e8m0" else element_ints(fmt)[1]


def _decode_scale(scale, code):
    """``(neg or None, mag (Value or 1), shift (Value))`` of a scale code (see
    :func:`_scale_fields`)."""
    if scale == "e8m0":
        return None, 1, code
    d = decode(get_format(SCALE_FORMATS[scale]), code)
    shift = d.shift if not isinstance(d.shift, int) else Const(d.shift, 1)
    return d.neg, d.mag, shift


def _scale_mag_max(scale):
    if scale == "e8m0":
        return 1
    fmt = get_format(SCALE_FORMATS[scale])
    return (1 << (fmt.man_bits + 1)) - 1


class BlockScaler(wiring.Component):
    """A block sum times two block scales, on the accumulator's window (combinational).

    Ports: ``s`` (``signed(sum_bits)``, the exact block sum on the product grid
    ``2**-grid``), ``scale_a``, ``scale_b`` (scale codes) in; ``p`` (``signed(R + W + 1)``)
    out, where ``p == floor(s * sa * sb * 2**(acc_frac_bits - grid))`` whenever that fits in
    ``R + W + 1`` bits, and otherwise has the right sign and low ``W + 1`` bits zero (wrap) /
    is "far" (the :class:`~.accumulator.Accumulator` flags any ``p`` that needs more than
    ``W + 1`` bits, and saturates it to its sign).  ``R`` = :attr:`t_bits`.

    How: ``T = s * mag_a * mag_b`` (signed), ``u = sh_a + sh_b - frac_a - frac_b - grid +
    F + R`` clamped to ``0 .. W + 1 + R``, ``x = T << u``, ``p = x[R:]``: one left shift, and
    taking bits from ``R`` up floors (an arithmetic right shift by ``R``).  A ``u`` below 0
    gives ``floor(T * 2**(u - R))`` = 0 or -1 because ``|T| <= 2**(R-1)``; a ``u`` above
    ``W + 1 + R`` leaves bits ``R .. R + W`` zero and a nonzero ``T`` far out, as it should.
    """

    def __init__(self, sum_bits, scale, grid, acc_bits, acc_frac_bits):
        self._sum_bits = check_integral("sum_bits", sum_bits, 2)
        self._scale = _check_scale(scale)
        self._grid = int(grid)
        self._w = check_integral("Accumulator width", acc_bits, 2, 4096)
        self._f = int(acc_frac_bits)
        bits, frac = _scale_fields(scale)
        self._scale_bits, self._scale_frac = bits, frac
        mag = _scale_mag_max(scale)
        top = (1 << (self._sum_bits - 1)) * mag * mag
        self._t_bits = signed_width(-top, top)
        self._u_max = self._w + 1 + self._t_bits
        super().__init__(self._ports())

    def _ports(self):
        return {"s": In(signed(self._sum_bits)),
                "scale_a": In(unsigned(self._scale_bits)),
                "scale_b": In(unsigned(self._scale_bits)),
                "p": Out(signed(self._t_bits + self._w + 1))}

    t_bits = property(lambda self: self._t_bits, doc="width R of the scaled sum T")
    shift_range = property(lambda self: self._u_max + 1, doc="distinct shift amounts")

    def _shift(self, m, sha, shb):
        """The clamped shift amount ``uc`` of the scale exponents ``sha``, ``sh_b``."""
        r = self._t_bits
        c = -2 * self._scale_frac - self._grid + self._f + r
        u = Signal(signed(max(len(sha), len(shb)) + 2 + max(abs(c), self._u_max).bit_length()),
                   name="shift_raw")
        m.d.comb += u.eq(sha + shb + c)
        uc = Signal(range(self._u_max + 1), name="shift")
        with m.If(u < 0):
            m.d.comb += uc.eq(0)
        with m.Elif(u > self._u_max):
            m.d.comb += uc.eq(self._u_max)
        with m.Else():
            m.d.comb += uc.eq(u)
        return uc

    def _window(self, t, uc):
        """``p``: bits ``R .. R + W`` of ``t << uc`` (the floor of the scaled sum)."""
        r = self._t_bits
        x = t << uc
        return x[r:r + self._w + 1 + r].as_signed()

    def elaborate(self, platform):
        m = Module()
        na, ma, sha = _decode_scale(self._scale, self.scale_a)
        nb, mb, shb = _decode_scale(self._scale, self.scale_b)
        t = Signal(signed(self._t_bits), name="t")
        if self._scale == "e8m0":
            m.d.comb += t.eq(self.s)
        else:
            mag = Signal(unsigned(2 * len(ma)), name="scale_mag")
            m.d.comb += mag.eq(ma * mb)
            prod = self.s * mag
            m.d.comb += t.eq(Mux(na ^ nb, -prod, prod))
        m.d.comb += self.p.eq(self._window(t, self._shift(m, sha, shb)))
        return m


class SerialBlockScaler(BlockScaler):
    """:class:`BlockScaler` time-shared over ``cycles`` clock cycles: the same ``p``, from a
    multiplier ``cycles`` times narrower.

    ::

        start --> phase 0 .. cycles-1:  T <= (T << k) + s' * mag_a * digit   (digits of mag_b,
                                        most significant first, k bits each; s' = -s when
                                        the scale signs differ)
                  last phase: shift amount and ``first`` latched, ``p_valid`` next cycle
        p = bits R .. R + W of (T << shift)     (as BlockScaler, from registers)

    Ports: ``s``, ``scale_a``, ``scale_b`` (held stable from the cycle with ``start`` through
    the ``cycles - 1`` cycles after it), ``start`` (one cycle), ``first`` (read in the last
    phase) in; ``p``, ``p_valid`` (one cycle, ``cycles`` clock edges after ``start``),
    ``p_first`` out.  A new ``start`` may come ``cycles`` cycles after the previous one (a
    block-scaled PE's blocks take ``steps_per_block`` >= ``cycles`` cycles).  Only for scale
    formats with a significand (e4m3, fp16): an E8M0 scaler is a shift alone.
    """

    def __init__(self, sum_bits, scale, grid, acc_bits, acc_frac_bits, cycles):
        if scale == "e8m0":
            raise ParameterError("A serial block scaler needs scales with a significand (e4m3, "
                                 "fp16), not e8m0 (a shift alone, nothing to time-share)")
        self._cycles = check_integral("Scaler cycles", cycles, 2, 256)
        super().__init__(sum_bits, scale, grid, acc_bits, acc_frac_bits)

    def _ports(self):
        return {**super()._ports(), "start": In(1), "first": In(1), "p_valid": Out(1),
                "p_first": Out(1)}

    cycles = property(lambda self: self._cycles)

    def elaborate(self, platform):
        m = Module()
        n = self._cycles
        na, ma, sha = _decode_scale(self._scale, self.scale_a)
        nb, mb, shb = _decode_scale(self._scale, self.scale_b)
        k = -(-len(mb) // n)                       # bits of mag_b per cycle
        mb_wide = Signal(unsigned(k * n), name="mag_b")
        m.d.comb += mb_wide.eq(mb)
        phase = Signal(range(n), name="phase")
        busy = Signal(name="busy")
        now = Signal(range(n), name="phase_now")
        m.d.comb += now.eq(Mux(self.start, 0, phase))
        active = self.start | busy
        last = active & (now == n - 1)
        # |s| <= 2**(sum_bits - 1): one more bit holds -s
        s_signed = Signal(signed(self._sum_bits + 1), name="s_signed")
        m.d.comb += s_signed.eq(Mux(na ^ nb, -self.s, self.s))
        sm = Signal(signed(len(s_signed) + len(ma)), name="s_mag_a")
        m.d.comb += sm.eq(s_signed * ma)
        word = Signal(range(n), name="digit_index")   # most significant digit first
        m.d.comb += word.eq(n - 1 - now)
        digit = mb_wide.word_select(word, k)
        t = Signal(signed(self._t_bits), name="t")
        partial = sm * digit
        with m.If(self.start):
            m.d.sync += t.eq(partial)
        with m.Elif(busy):
            m.d.sync += t.eq((t << k) + partial)
        with m.If(active):
            m.d.sync += [phase.eq(now + 1), busy.eq(~last)]
        uc = self._shift(m, sha, shb)
        shift = Signal.like(uc, name="shift_held")
        m.d.sync += self.p_valid.eq(last)
        with m.If(last):
            m.d.sync += [shift.eq(uc), self.p_first.eq(self.first)]
        m.d.comb += self.p.eq(self._window(t, shift))
        return m


class BlockScaledPE(PEBase):
    """``lanes`` element products per cycle, exact block sums, block scales applied into a
    windowed fixed-point accumulator (module docstring).

    Parameters
    ----------
    fmt_a, fmt_b : element formats (int / float / pow2; e.g. ``fp4_e2m1``, ``int8_mx``,
        ``int4``).
    lanes : products per cycle; must divide ``block_size``.
    scale : block scale format, ``"e8m0"``, ``"e4m3"`` or ``"fp16"`` (both operands).
    block_size : elements per block along K (a multiple of ``lanes``, at most 256).
    acc_bits : width ``W`` of the cross-block accumulator (default 32).
    acc_frac_bits : its fraction bits ``F``, ``0 .. W - 1`` (default
        :func:`nybble.hw.spec.default_acc_frac_bits`).
    scaler : ``"parallel"`` (default: :class:`BlockScaler`, one block per cycle) or
        ``"serial"`` (:class:`SerialBlockScaler` over the ``steps_per_block`` cycles a block
        takes anyway; e4m3 / fp16 scales, at least 2 steps per block).
    overflow : ``"wrap"`` or ``"saturate"`` (the cross-block accumulator; block sums never
        overflow: the block adder is sized for ``block_size`` largest products).

    ``latency`` = 2 (``"serial"``: 2 + ``steps_per_block``); ``cycles_per_mac`` =
    ``1 / lanes``; ``frac_bits`` = ``F``.
    """

    def __init__(self, fmt_a, fmt_b, lanes=8, *, src_loc_at=0, **options):
        super().__init__(BlockScaledSpec.make(fmt_a, fmt_b, lanes, **options))

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        fa, fb, k = spec.fmt_a, spec.fmt_b, spec.lanes
        wa, wb = fa.bits, fb.bits
        self._forward(m, ("a", "b", "valid", "first"))
        step = Signal(signed(spec.sum_bits), name="step_sum")
        m.d.comb += step.eq(adder_tree(unit.p for unit in self._lane_units(m)))
        scale_a = self.a[k * wa:k * wa + spec.scale_bits]
        scale_b = self.b[k * wb:k * wb + spec.scale_bits]

        # block adder: the step counter restarts at every `first`
        spb = spec.steps_per_block
        total = Signal(signed(spec.sum_bits), name="block_total")
        blk_first = Signal(name="block_first")
        is_last = Signal(name="block_last")
        if spb == 1:
            m.d.comb += [total.eq(step), blk_first.eq(self.first), is_last.eq(1)]
        else:
            cnt = Signal(range(spb), name="step_in_block")
            bsum = Signal(signed(spec.sum_bits), name="block_sum")
            bfirst = Signal(name="block_first_held")
            pos = Signal(range(spb), name="step_pos")
            m.d.comb += [pos.eq(Mux(self.first, 0, cnt)), is_last.eq(pos == spb - 1),
                         total.eq(Mux(pos == 0, 0, bsum) + step),
                         blk_first.eq(Mux(pos == 0, self.first, bfirst))]
            with m.If(self.valid):
                m.d.sync += [cnt.eq(Mux(is_last, 0, pos + 1)), bsum.eq(total),
                             bfirst.eq(blk_first)]

        # stage 2: the finished block, its scales, and whether it starts a dot product
        s2_valid = Signal(name="s2_valid")
        s2_first = Signal(name="s2_first")
        s2_sum = Signal(signed(spec.sum_bits), name="s2_sum")
        s2_sa = Signal(unsigned(spec.scale_bits), name="s2_scale_a")
        s2_sb = Signal(unsigned(spec.scale_bits), name="s2_scale_b")
        done = self.valid & is_last
        m.d.sync += s2_valid.eq(done)
        with m.If(done):
            m.d.sync += [s2_sum.eq(total), s2_sa.eq(scale_a), s2_sb.eq(scale_b),
                         s2_first.eq(blk_first)]

        args = (spec.sum_bits, spec.scale, spec.grid, spec.acc_bits, spec.frac_bits)
        if spec.scaler == "serial":
            # the stage-2 registers hold a block for steps_per_block cycles: the scaler may
            # take that long
            m.submodules.scaler = scaler = SerialBlockScaler(*args, spb)
            m.d.comb += [scaler.start.eq(s2_valid), scaler.first.eq(s2_first)]
            p_valid, p_first = scaler.p_valid, scaler.p_first
        else:
            m.submodules.scaler = scaler = BlockScaler(*args)
            p_valid, p_first = s2_valid, s2_first
        m.d.comb += [scaler.s.eq(s2_sum), scaler.scale_a.eq(s2_sa), scaler.scale_b.eq(s2_sb)]
        m.submodules.accumulator = acc = Accumulator(len(scaler.p), spec.acc_bits,
                                                     spec.overflow_mode)
        m.d.comb += [acc.p.eq(scaler.p), acc.en.eq(p_valid), acc.first.eq(p_first),
                     self.acc.eq(acc.acc), self.overflow.eq(acc.overflow)]
        return m
