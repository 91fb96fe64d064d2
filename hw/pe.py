"""The PE library: MAC, dot-product and bit-serial processing elements, one interface.

::

    MacPE / DotProductPE (lanes = 1 / k)                 BitSerialPE

      a --+--> [reg] --> a_out                     a, b, sel --+--> [reg] --> a_out, b_out, sel_out
      b --+--> [reg] --> b_out                        valid ---+--> [reg] --> valid_out, first_out
      valid, first ----> [reg] --> valid_out, first_out            |
      |                                                 accept: hold a, decode b by sel
      v  lane i: a[i*wa +: wa], b[i*wb +: wb]                        (sign, odd significand, shift)
    +------------+   +------------+                                 |
    | product 0  |...| product k-1|  (make_product_unit)            v  one significand bit per cycle
    +------------+   +------------+                      +-(a << (shift + i)) if bit i
           \\ floor to the acc grid /                                |
            +--> adder tree (exact) --> [pipeline regs]             v
                          |                               +-------------+
                          v                               | Accumulator | --> acc, overflow
                   +-------------+                        +-------------+
                   | Accumulator | --> acc, overflow      ready: a new MAC can be accepted
                   +-------------+

Every PE has the shape of :class:`PESignature`, so one array generator hosts any of them:

==============  ======  ====================================================================
port            dir     meaning
==============  ======  ====================================================================
``a``           in      activation code(s): lane ``i`` in bits ``[i*wa, (i+1)*wa)``
``b``           in      weight code(s), same packing (``wb`` bits per lane)
``valid``       in      this cycle carries a MAC (``lanes`` MACs); otherwise nothing changes
``first``       in      (with ``valid``) this MAC starts a new dot product: the accumulator
                        loads instead of adding and the overflow flag clears -- back-to-back
                        dot products need no reset
``a_out`` ...   out     ``a``, ``b``, ``valid``, ``first`` registered (one cycle): systolic
                        forwarding to the neighbour PEs
``acc``         out     ``signed(acc_bits)`` on the grid ``2**-frac_bits`` (see ``frac_bits``)
``overflow``    out     sticky since the last ``first``: the exact sum left the accumulator's
                        range (see :mod:`.accumulator`)
==============  ======  ====================================================================

Side-band ports, present only where the PE needs them: LUT PEs have the table write port
``lut_we``, ``lut_addr``, ``lut_data`` (not forwarded: an array broadcasts it), or with
``lut_table="array"`` the table itself as the input ``lut_entries`` (``2**wb`` signed entries
held once by the array and broadcast as wires: the PE keeps only its read mux); the bit-serial
PE has ``sel`` / ``sel_out`` (data-type selector, forwarded like an operand) and ``ready``.

Timing.  ``latency``: clock edges from a cycle with ``valid`` to the cycle where ``acc`` holds
its result (1 for a MAC / dot-product PE, +1 with ``pipeline=1``; for the bit-serial PE the
number of cycles of the data type).  ``cycles_per_mac``: 1 for a MAC PE, ``1/lanes`` for a
dot-product PE, the data type's bit count for the bit-serial PE (a dict per data type).

Numerics.  ``acc`` is bit for bit :func:`nybble.sw.gemm_codes` with the PE's options, which
:meth:`golden_kwargs` returns (``acc_bits``, ``overflow``, ``acc_frac_bits``, ``product``,
``lanes``) and :meth:`model` applies.  Products are exact (or L-Mul, when asked) and summed
exactly in the adder tree; the only rounding anywhere is the optional fixed-point window
(``acc_frac_bits`` coarser than the product grid: each product truncated toward -inf), used
by the bf16 baseline.

Construction errors (``TypeError`` / ``ValueError``) name the parameter; an accumulator too
narrow for one accumulation step names :func:`nybble.sw.min_acc_bits`.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib.wiring import In, Out

from .accumulator import Accumulator
from .bitserial import BitSerialDecoder
from .lut import LutTable
from .pe_base import PEBase, adder_tree
from .product import decode
from .spec import BITSERIAL_DTYPES, BitSerialSpec, DotProductSpec
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["MacPE", "DotProductPE", "BitSerialPE", "BITSERIAL_DTYPES"]


class DotProductPE(PEBase):
    """``lanes`` product units -> exact adder tree -> one accumulator.

    Parameters
    ----------
    fmt_a, fmt_b : activation and weight formats (names or :class:`nybble.sw.Format`).
    lanes : products per cycle (>= 1; the library builds 2, 4, 8, 16).
    acc_bits : accumulator width; default: no overflow for 256 steps
        (``min_acc_bits(fmt_a, fmt_b, 256 * lanes, ...)``), 64 with a coarse window.
    overflow : ``"wrap"`` or ``"saturate"``.
    acc_frac_bits : accumulator grid ``2**-acc_frac_bits``; default the exact product grid.
        A coarser grid is a fixed-point window: each product is truncated toward -inf to it
        (an arithmetic right shift, no logic).
    product : ``"exact"`` or ``"lmul"`` (L-Mul, for two floats of one format).
    pipeline : 0 or 1 register stage between the adder tree and the accumulator.
    psum : True adds the input ``psum``: the accumulator computes ``psum + step`` instead of
        ``acc + step`` (the partial-sum chain of a weight-stationary array).
    lut_bits, lut_frac_bits : table entry width / grid for codebook weights (:mod:`.lut`).
    lut_table : ``"pe"`` (default: the table's registers in this PE, written through
        ``lut_we`` / ``lut_addr`` / ``lut_data``) or ``"array"`` (the table comes in on
        ``lut_entries``; the array holds one and broadcasts it).

    ``latency`` = 1 + ``pipeline``; ``cycles_per_mac`` = 1 / ``lanes``.
    """

    def __init__(self, fmt_a, fmt_b, lanes=4, *, src_loc_at=0, **options):
        spec = DotProductSpec.make(fmt_a, fmt_b, lanes, **options)
        extra = {}
        if spec.is_lut and spec.lut_table == "array":
            extra = {"lut_entries": In(signed(spec.lut_bits)).array(spec.fmt_b.n_codes)}
        elif spec.is_lut:
            extra = {"lut_we": In(1), "lut_addr": In(unsigned(spec.fmt_b.bits)),
                     "lut_data": In(signed(spec.lut_bits))}
        if spec.has_psum:
            extra["psum"] = In(signed(spec.acc_bits))
        super().__init__(spec, extra)

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        wb = spec.fmt_b.bits
        self._forward(m, ("a", "b", "valid", "first"))
        if spec.is_lut and spec.lut_table == "array":
            entries = self.lut_entries
        elif spec.is_lut:
            m.submodules.table = table = LutTable(wb, spec.lut_bits, spec.table_init)
            m.d.comb += [table.we.eq(self.lut_we), table.waddr.eq(self.lut_addr),
                         table.wdata.eq(self.lut_data)]
            entries = table.table
        terms = []
        for unit in self._lane_units(m, **spec.unit_options):
            if spec.is_lut:
                m.d.comb += [unit.table[j].eq(entries[j]) for j in range(1 << wb)]
            d = spec.frac_bits - unit.frac_bits
            # window: a constant shift; >> on a signed value floors (toward -inf)
            terms.append(unit.p << d if d > 0 else unit.p >> -d if d < 0 else unit.p)
        tree = adder_tree(terms)
        total = Signal(signed(max(2, len(tree))), name="step_sum")
        m.d.comb += total.eq(tree)
        en, first = self.valid, self.first
        if spec.pipeline:
            total_r = Signal.like(total, name="step_sum_r")
            en_r, first_r = Signal(name="valid_r"), Signal(name="first_r")
            m.d.sync += [total_r.eq(total), en_r.eq(en), first_r.eq(first)]
            total, en, first = total_r, en_r, first_r
        m.submodules.accumulator = acc = Accumulator(len(total), spec.acc_bits,
                                                     spec.overflow_mode, psum=spec.has_psum)
        m.d.comb += [acc.p.eq(total), acc.en.eq(en), acc.first.eq(first),
                     self.acc.eq(acc.acc), self.overflow.eq(acc.overflow)]
        if spec.has_psum:
            psum = self.psum
            if spec.pipeline:  # keep the partial sum aligned with the registered step
                psum_r = Signal.like(self.psum, name="psum_r")
                m.d.sync += psum_r.eq(self.psum)
                psum = psum_r
            m.d.comb += acc.psum.eq(psum)
        return m


class MacPE(DotProductPE):
    """A one-lane PE: ``a x b`` into the accumulator every cycle with ``valid``.

    Same parameters as :class:`DotProductPE` without ``lanes``; ``latency`` 1 (2 with
    ``pipeline=1``), ``cycles_per_mac`` 1.
    """

    def __init__(self, fmt_a, fmt_b, *, src_loc_at=0, **kwargs):
        if "lanes" in kwargs:
            raise ParameterTypeError("MacPE has one lane; use DotProductPE for more")
        super().__init__(fmt_a, fmt_b, 1, **kwargs)


class BitSerialPE(PEBase):
    """Bit-serial mixed-data-type PE (BitMoD-style): the activation is held, the weight's
    significand is consumed one bit per cycle, the data type is chosen per MAC at run time.

    Each weight code is decoded, for the data type ``dtypes[sel]``, into a sign, an odd
    significand ``mag`` and a shift, straight from :func:`nybble.sw.element_ints` of that
    format (``value = (-1)**neg * mag << shift`` on the accumulator grid).  On cycle ``i`` of a
    MAC, if bit ``i`` of ``mag`` is set, ``+-(a << (shift + i))`` enters the accumulator.  A MAC
    takes as many cycles as the widest significand of its data type:

    ===================  ======  ===============================================
    data type (``sel``)  cycles  significands (odd parts of |value|)
    ===================  ======  ===============================================
    int4 (0)             3       1, 3, 5, 7 (8 = 1 << 3)
    fp4_e2m1 (1)         2       1, 3
    e3m0 (2)             1       1
    bitmod_er_pos (3)    3       1, 3, 5 (10 = 5 << 1)
    bitmod_er_neg (4)    3       as er_pos
    bitmod_ea_pos (5)    2       1, 3 (16 = 1 << 4)
    bitmod_ea_neg (6)    2       as ea_pos
    ===================  ======  ===============================================

    (the table is for the default ``dtypes``; :attr:`cycles_per_mac` gives it for any.)
    A ``sel`` outside ``0 .. len(dtypes) - 1`` gives a zero product in one cycle.

    Parameters
    ----------
    fmt_a : activation format, an integer format (default ``"int8"``).
    dtypes : weight data types, selector order (default :data:`BITSERIAL_DTYPES`): int, float,
        pow2 formats and codebooks of 4-bit codes with dyadic values.
    acc_bits, overflow : as :class:`DotProductPE`; the accumulator grid is
        ``2**-(frac_bits(fmt_a) + max frac_bits(dtypes))`` (2 fraction bits by default).

    Handshake: ``ready`` is high when a MAC can be accepted; ``valid`` while not ``ready`` is
    ignored.  The first significand bit is added on the clock edge that accepts the MAC, the
    others on the ``cycles - 1`` edges after it, so ``acc`` holds the result ``cycles`` edges
    after the cycle with ``valid`` (the latency, per data type) and ``ready`` rises in the
    cycle after the last bit: one MAC per ``cycles`` cycles (1 for e3m0: ``ready`` stays high).
    Operands are forwarded (``a_out``, ``b_out``, ``sel_out``, ``valid_out``, ``first_out``)
    one cycle after they arrive, whether accepted or not.

    The variant an array hosts (``lockstep=True`` in the spec) is
    :class:`nybble.hw.bitserial.LockstepBitSerialPE`: it takes weights decoded once per
    column by the same :class:`~nybble.hw.bitserial.BitSerialDecoder` this PE uses.
    """

    def __init__(self, fmt_a="int8", dtypes=BITSERIAL_DTYPES, *, src_loc_at=0, **options):
        spec = BitSerialSpec.make(fmt_a, dtypes, **options)
        if spec.lockstep:
            raise ParameterError("BitSerialPE is the stand-alone (handshake) PE; an array's "
                                 "lockstep PE is LockstepBitSerialPE, not BitSerialPE with "
                                 "lockstep=True")
        super().__init__(spec, {"sel": In(unsigned(spec.sel_bits)),
                                "sel_out": Out(unsigned(spec.sel_bits)), "ready": Out(1)})

    def _decode(self, m):
        """The decode ROM (:class:`BitSerialDecoder`): (``sel``, ``b``) -> sign, odd
        significand, shift, cycles."""
        m.submodules.decoder = dec = BitSerialDecoder(self._spec)
        m.d.comb += [dec.sel.eq(self.sel), dec.b.eq(self.b)]
        return dec.w.neg, dec.w.mag, dec.w.shift, dec.w.cycles

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        fa = spec.fmt_a
        self._forward(m, ("a", "b", "sel", "valid", "first"))
        d_neg, d_mag, d_sh, d_cyc = self._decode(m)
        # serial state
        a_reg = Signal(signed(fa.bits) if fa.signed else unsigned(fa.bits), name="a_held")
        neg_reg = Signal(name="neg_held")
        mag_reg = Signal(len(d_mag), name="mag_left")
        sh_reg = Signal(len(d_sh), name="shift_now")
        left = Signal(len(d_cyc), name="cycles_left")  # cycles still to run after this one
        busy = Signal()
        m.d.comb += [busy.eq(left != 0), self.ready.eq(~busy)]
        accept = Signal()
        m.d.comb += accept.eq(self.valid & ~busy)
        a_in = decode(fa, self.a).mag
        cur_a = Mux(accept, a_in, a_reg)
        cur_neg = Mux(accept, d_neg, neg_reg)
        cur_mag = Mux(accept, d_mag, mag_reg)
        cur_sh = Mux(accept, d_sh, sh_reg)
        shifted = cur_a << cur_sh
        term = Signal(signed(len(shifted) + 2), name="term")
        m.d.comb += term.eq(Mux(cur_mag[0], Mux(cur_neg, -shifted, shifted), 0))
        with m.If(accept):
            m.d.sync += [a_reg.eq(self.a), neg_reg.eq(d_neg), mag_reg.eq(d_mag >> 1),
                         sh_reg.eq(d_sh + 1), left.eq(d_cyc - 1)]
        with m.Elif(busy):
            m.d.sync += [mag_reg.eq(mag_reg >> 1), sh_reg.eq(sh_reg + 1), left.eq(left - 1)]
        m.submodules.accumulator = acc = Accumulator(len(term), spec.acc_bits,
                                                     spec.overflow_mode)
        m.d.comb += [acc.p.eq(term), acc.en.eq(accept | busy),
                     acc.first.eq(accept & self.first),
                     self.acc.eq(acc.acc), self.overflow.eq(acc.overflow)]
        return m
