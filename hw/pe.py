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
``lut_we``, ``lut_addr``, ``lut_data`` (not forwarded: an array broadcasts it); the bit-serial
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

from dataclasses import dataclass, field
import re

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.sw.formats import check_integral, Format
from nybble.sw.golden import gemm_codes, min_acc_bits, product_format, element_ints
from nybble.sw.quantize import BITMOD_TYPES
from .accumulator import Accumulator, check_overflow
from .product import make_product_unit, _check_format, decode
from .lut import LutTable, LutUnit

__all__ = ["PESignature", "MacPE", "DotProductPE", "BitSerialPE", "PE_KINDS", "PEKind",
           "make_pe", "pe_kind", "dot_product_kind", "BITSERIAL_DTYPES"]

#: Data types of the bit-serial PE, in selector order (``sel`` = index into this tuple).
BITSERIAL_DTYPES = ("int4", "fp4_e2m1", "e3m0") + tuple(BITMOD_TYPES)


class PESignature(wiring.Signature):
    """The operand / control interface every PE shares (module docstring), plus ``extra``."""

    def __init__(self, a_bits, b_bits, acc_bits, extra=None):
        members = {
            "a": In(unsigned(a_bits)), "b": In(unsigned(b_bits)),
            "valid": In(1), "first": In(1),
            "a_out": Out(unsigned(a_bits)), "b_out": Out(unsigned(b_bits)),
            "valid_out": Out(1), "first_out": Out(1),
            "acc": Out(signed(acc_bits)), "overflow": Out(1),
        }
        members.update(extra or {})
        super().__init__(members)


def _fmt_call(fa, fb, k, product="exact", acc_frac_bits=None):
    opts = ""
    if product != "exact":
        opts += f", product={product!r}"
    if acc_frac_bits is not None:
        opts += f", acc_frac_bits={acc_frac_bits}"
    return f"nybble.sw.min_acc_bits({fa.name!r}, {fb.name!r}, {k}{opts})"


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


class _PE(wiring.Component):
    """What every PE has: forwarding registers, an accumulator, the timing properties."""

    def _forward(self, m, names):
        for n in names:
            m.d.sync += getattr(self, f"{n}_out").eq(getattr(self, n))

    acc_bits = property(lambda self: self._acc_bits)
    min_acc_bits = property(lambda self: self._min_acc_bits,
                            doc="the narrowest ``acc_bits`` this PE's parameters accept")
    overflow_mode = property(lambda self: self._overflow)
    frac_bits = property(lambda self: self._frac_bits,
                         doc="``acc`` is an integer on the grid ``2**-frac_bits``")
    fmt_a = property(lambda self: self._fmt_a)
    fmt_b = property(lambda self: self._fmt_b)


class DotProductPE(_PE):
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

    ``latency`` = 1 + ``pipeline``; ``cycles_per_mac`` = 1 / ``lanes``.
    """

    def __init__(self, fmt_a, fmt_b, lanes=4, *, acc_bits=None, overflow="wrap",
                 acc_frac_bits=None, product="exact", pipeline=0, lut_bits=16,
                 lut_frac_bits=None, psum=False):
        fa = _check_format("fmt_a", fmt_a)
        fb = _check_format("fmt_b", fmt_b)
        self._fmt_a, self._fmt_b = fa, fb
        self._lanes = check_integral("Lane count", lanes, 1, 256)
        self._overflow = check_overflow(overflow)
        self._pipeline = check_integral("Pipeline depth", pipeline, 0, 1)
        if product not in ("exact", "lmul"):
            raise ValueError(f"Product must be one of 'exact', 'lmul', not {product!r}")
        self._product = product
        self._psum = _check_bool("psum", psum)
        self._unit_args = dict(product=product, lut_bits=lut_bits, lut_frac_bits=lut_frac_bits)
        proto = make_product_unit(fa, fb, table_port=True, **self._unit_args)
        proto._MustUse__silence = True  # built only to read its widths and grid
        self._is_lut = isinstance(proto, LutUnit)
        self._unit_frac, self._p_min, self._p_max = proto.frac_bits, proto.p_min, proto.p_max
        exact_grid = product_format(fa, fb, product=product)[0]
        if acc_frac_bits is not None:
            acc_frac_bits = check_integral("acc_frac_bits", acc_frac_bits, -4096, 4096)
        # the golden model's window: given, or the unit's own grid when it differs (a LUT
        # table on 2**-14 for a dyadic user codebook)
        self._golden_frac = acc_frac_bits if acc_frac_bits is not None else (
            self._unit_frac if self._unit_frac != exact_grid else None)
        self._frac_bits = self._golden_frac if self._golden_frac is not None else exact_grid
        coarse = self._frac_bits < self._unit_frac
        k = self._lanes
        need = min_acc_bits(fa, fb, k, product=product, acc_frac_bits=self._golden_frac)
        call = _fmt_call(fa, fb, k, product, self._golden_frac)
        what = (f"one {fa.name} x {fb.name} product" if k == 1 else
                f"one step of {k} {fa.name} x {fb.name} products")
        if coarse:
            need = min(need, self._frac_bits + 2)
            call += f" or acc_frac_bits + 2 = {self._frac_bits + 2}"
        if acc_bits is None:
            acc_bits = 64 if coarse else min_acc_bits(
                fa, fb, 256 * k, product=product, acc_frac_bits=self._golden_frac)
        acc_bits = check_integral("Accumulator width", acc_bits, 2, 4096)
        if acc_bits < need:
            raise ValueError(f"Accumulator width must be at least {need} bits ({call}) to "
                             f"hold {what}, not {acc_bits}")
        self._acc_bits = acc_bits
        self._min_acc_bits = need
        extra = {}
        if self._is_lut:
            extra = {"lut_we": In(1), "lut_addr": In(unsigned(fb.bits)),
                     "lut_data": In(signed(proto.lut_bits))}
            self._lut_bits, self._lut_frac_bits = proto.lut_bits, proto.lut_frac_bits
            self._table_init = proto.table_init
        if self._psum:
            extra["psum"] = In(signed(acc_bits))
        super().__init__(PESignature(fa.bits * k, fb.bits * k, acc_bits, extra))

    lanes = property(lambda self: self._lanes)
    has_psum = property(lambda self: self._psum,
                        doc="True: ``acc <= psum + step`` (weight-stationary cell), not "
                            "``acc + step``")
    product = property(lambda self: self._product)
    pipeline = property(lambda self: self._pipeline)

    @property
    def latency(self):
        """Clock edges from a cycle with ``valid`` to ``acc`` holding its result."""
        return 1 + self._pipeline

    @property
    def cycles_per_mac(self):
        """Cycles per multiply-accumulate: ``1 / lanes`` (one dot-product step per cycle)."""
        return 1 / self._lanes

    @property
    def macs_per_cycle(self):
        return self._lanes

    @property
    def formats(self):
        return (self._fmt_a.name, self._fmt_b.name)

    @property
    def lut_bits(self):
        return self._lut_bits if self._is_lut else None

    @property
    def table_init(self):
        """Reset contents of the LUT (integers on ``2**-lut_frac_bits``), None without one."""
        return list(self._table_init) if self._is_lut else None

    def golden_kwargs(self):
        """Keyword arguments of :func:`nybble.sw.gemm_codes` that make it compute ``acc``."""
        return dict(fmt_a=self._fmt_a, fmt_b=self._fmt_b, acc_bits=self._acc_bits,
                    overflow=self._overflow, acc_frac_bits=self._golden_frac,
                    product=self._product, lanes=self._lanes)

    def model(self, a_codes, b_codes):
        """Bit-exact model: what ``acc`` holds after the dot products ``a_codes @ b_codes``
        (``(M, K)`` and ``(K, N)`` codes, one ``first`` at k = 0, K a multiple of ``lanes``)
        -- :func:`nybble.sw.gemm_codes` with :meth:`golden_kwargs`."""
        kw = self.golden_kwargs()
        return gemm_codes(a_codes, b_codes, kw.pop("fmt_a"), kw.pop("fmt_b"), **kw)

    def elaborate(self, platform):
        m = Module()
        fa, fb, k = self._fmt_a, self._fmt_b, self._lanes
        wa, wb = fa.bits, fb.bits
        self._forward(m, ("a", "b", "valid", "first"))
        if self._is_lut:
            m.submodules.table = table = LutTable(wb, self._lut_bits, self._table_init)
            m.d.comb += [table.we.eq(self.lut_we), table.waddr.eq(self.lut_addr),
                         table.wdata.eq(self.lut_data)]
        terms = []
        for i in range(k):
            unit = make_product_unit(fa, fb, table_port=self._is_lut, **self._unit_args)
            m.submodules[f"product_{i}"] = unit
            m.d.comb += [unit.a.eq(self.a[i * wa:(i + 1) * wa]),
                         unit.b.eq(self.b[i * wb:(i + 1) * wb])]
            if self._is_lut:
                m.d.comb += [unit.table[j].eq(table.table[j]) for j in range(1 << wb)]
            d = self._frac_bits - unit.frac_bits
            # window: a constant shift; >> on a signed value floors (toward -inf)
            terms.append(unit.p << d if d > 0 else unit.p >> -d if d < 0 else unit.p)
        # exact adder tree: pairwise, every level one bit wider
        while len(terms) > 1:
            nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms = nxt
        total = Signal(signed(max(2, len(terms[0]))), name="step_sum")
        m.d.comb += total.eq(terms[0])
        en, first = self.valid, self.first
        if self._pipeline:
            total_r = Signal.like(total, name="step_sum_r")
            en_r, first_r = Signal(name="valid_r"), Signal(name="first_r")
            m.d.sync += [total_r.eq(total), en_r.eq(en), first_r.eq(first)]
            total, en, first = total_r, en_r, first_r
        m.submodules.accumulator = acc = Accumulator(len(total), self._acc_bits, self._overflow,
                                                     psum=self._psum)
        m.d.comb += [acc.p.eq(total), acc.en.eq(en), acc.first.eq(first),
                     self.acc.eq(acc.acc), self.overflow.eq(acc.overflow)]
        if self._psum:
            psum = self.psum
            if self._pipeline:  # keep the partial sum aligned with the registered step
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

    def __init__(self, fmt_a, fmt_b, **kwargs):
        if "lanes" in kwargs:
            raise TypeError("MacPE has one lane; use DotProductPE for more")
        super().__init__(fmt_a, fmt_b, 1, **kwargs)

    @property
    def cycles_per_mac(self):
        return 1


def _serial_decode(dtypes, grid):
    """Per data type: ``(rows, cycles)``; ``rows[code] = (neg, odd_mag, shift)`` with
    ``value * 2**grid == (-1)**neg * odd_mag << shift``; cycles = widest ``odd_mag``."""
    out = []
    for d in dtypes:
        ints, f = element_ints(d)
        rows = []
        for v in ints:
            v = int(v) << (grid - f)
            mag, sh = abs(v), 0
            while mag and not mag & 1:
                mag >>= 1
                sh += 1
            rows.append((int(v < 0), mag, sh))
        out.append((rows, max(1, max(r[1].bit_length() for r in rows))))
    return out


class BitSerialPE(_PE):
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
    """

    def __init__(self, fmt_a="int8", dtypes=BITSERIAL_DTYPES, *, acc_bits=None,
                 overflow="wrap"):
        fa = _check_format("fmt_a", fmt_a)
        if fa.kind != "int":
            raise ValueError(f"BitSerialPE takes an integer activation, not {fa.name} "
                             f"(kind {fa.kind!r})")
        if isinstance(dtypes, (str, Format)) or not hasattr(dtypes, "__iter__"):
            raise TypeError(f"dtypes must be a sequence of format names, not {dtypes!r}")
        dtypes = tuple(dtypes)
        dts = tuple(_check_format("dtype", d) for d in dtypes)
        self._dtype_names = tuple(d if isinstance(d, str) else d.name for d in dtypes)
        if not dts:
            raise ValueError("dtypes must name at least one format")
        for d in dts:
            if d.bits != dts[0].bits or d.frac_bits is None or d.kind == "scale":
                raise ValueError(f"BitSerialPE data types must be dyadic formats of one code "
                                 f"width; {d.name} does not fit")
        self._fmt_a, self._fmt_b = fa, dts[0]
        self._dtypes = dts
        self._overflow = check_overflow(overflow)
        fa_grid = element_ints(fa)[1]
        wgrid = max(element_ints(d)[1] for d in dts)
        self._wgrid = wgrid
        self._frac_bits = fa_grid + wgrid
        self._decode = _serial_decode(dts, wgrid)
        need, worst = 0, dts[0]
        for d in dts:
            n = min_acc_bits(fa, d, 1, acc_frac_bits=self._frac_bits)
            if n > need:
                need, worst = n, d
        if acc_bits is None:
            acc_bits = max(min_acc_bits(fa, d, 256, acc_frac_bits=self._frac_bits) for d in dts)
        acc_bits = check_integral("Accumulator width", acc_bits, 2, 4096)
        if acc_bits < need:
            raise ValueError(
                f"Accumulator width must be at least {need} bits "
                f"({_fmt_call(fa, worst, 1, acc_frac_bits=self._frac_bits)}) to hold one "
                f"{fa.name} x {worst.name} product, not {acc_bits}")
        self._acc_bits = acc_bits
        self._min_acc_bits = need
        self._sel_bits = max(1, (len(dts) - 1).bit_length())
        super().__init__(PESignature(fa.bits, dts[0].bits, acc_bits, {
            "sel": In(unsigned(self._sel_bits)), "sel_out": Out(unsigned(self._sel_bits)),
            "ready": Out(1),
        }))

    dtypes = property(lambda self: self._dtype_names,
                      doc="the weight data types as named, in selector order")
    sel_bits = property(lambda self: self._sel_bits)

    @property
    def formats(self):
        return (self._fmt_a.name, "|".join(self.dtypes))

    @property
    def cycles_per_mac(self):
        """``{data type: cycles per MAC}``."""
        return {d: c for d, (_, c) in zip(self._dtype_names, self._decode)}

    @property
    def latency(self):
        """Worst case over the data types (``cycles_per_mac`` gives each)."""
        return max(self.cycles_per_mac.values())

    lanes = 1

    def golden_kwargs(self):
        return dict(fmt_a=self._fmt_a, acc_bits=self._acc_bits, overflow=self._overflow,
                    acc_frac_bits=self._frac_bits)

    def model(self, a_codes, b_codes, sel):
        """Bit-exact model: ``acc`` after the dot products ``a_codes @ b_codes`` where weight
        row ``k`` has data type ``dtypes[sel[k]]`` -- :func:`nybble.sw.gemm_codes` with one
        format per k and ``acc_frac_bits`` = this PE's grid."""
        fmts = [self._dtypes[int(s)] for s in np.asarray(sel).ravel()]
        kw = self.golden_kwargs()
        return gemm_codes(a_codes, b_codes, kw.pop("fmt_a"), fmts, **kw)

    def elaborate(self, platform):
        m = Module()
        fa = self._fmt_a
        self._forward(m, ("a", "b", "sel", "valid", "first"))
        mag_bits = max(c for _, c in self._decode)
        max_sh = max(r[2] for rows, _ in self._decode for r in rows)
        sh_bits = max(1, (max_sh + mag_bits).bit_length())
        cnt_bits = max(1, mag_bits.bit_length())
        # decode ROM: (sel, code) -> neg, mag, shift, cycles
        d_neg = Signal(name="dec_neg")
        d_mag = Signal(mag_bits, name="dec_mag")
        d_sh = Signal(sh_bits, name="dec_shift")
        d_cyc = Signal(cnt_bits, name="dec_cycles")
        with m.Switch(self.sel):
            for s, (rows, cyc) in enumerate(self._decode):
                with m.Case(s):
                    m.d.comb += d_cyc.eq(cyc)
                    with m.Switch(self.b):
                        for code, (neg, mag, sh) in enumerate(rows):
                            if neg or mag or sh:
                                with m.Case(code):
                                    m.d.comb += [d_neg.eq(neg), d_mag.eq(mag), d_sh.eq(sh)]
            with m.Default():
                m.d.comb += d_cyc.eq(1)
        # serial state
        a_reg = Signal(signed(fa.bits) if fa.signed else unsigned(fa.bits), name="a_held")
        neg_reg = Signal(name="neg_held")
        mag_reg = Signal(mag_bits, name="mag_left")
        sh_reg = Signal(sh_bits, name="shift_now")
        left = Signal(cnt_bits, name="cycles_left")  # cycles still to run after this one
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
        m.submodules.accumulator = acc = Accumulator(len(term), self._acc_bits, self._overflow)
        m.d.comb += [acc.p.eq(term), acc.en.eq(accept | busy),
                     acc.first.eq(accept & self.first),
                     self.acc.eq(acc.acc), self.overflow.eq(acc.overflow)]
        return m


# -- the kind table ------------------------------------------------------------------------


@dataclass(frozen=True)
class PEKind:
    """One entry of :data:`PE_KINDS`: which PE class, which formats, which options."""
    name: str
    pe: str                      # "mac", "dp", "bitserial" or "block" (block-scaled)
    formats: tuple               # (fmt_a, fmt_b); bitserial: (fmt_a, dtypes...)
    options: dict = field(default_factory=dict)
    lanes: int = 1
    description: str = ""

    def build(self, **overrides):
        opts = {**self.options, **overrides}
        if self.pe == "block":
            from .block_pe import BlockScaledPE
            return BlockScaledPE(self.formats[0], self.formats[1], self.lanes, **opts)
        if self.pe == "bitserial":
            return BitSerialPE(self.formats[0], self.formats[1:], **opts)
        if self.pe == "mac":
            return MacPE(self.formats[0], self.formats[1], **opts)
        return DotProductPE(self.formats[0], self.formats[1], self.lanes, **opts)


def _kinds():
    k = {}

    def add(name, fa, fb, description, **options):
        k[name] = PEKind(name, "mac", (fa, fb), options, 1, description)

    add("int4", "int4", "int4", "int4 x int4 MAC (signed multiplier)")
    add("uint4", "uint4", "uint4", "uint4 x uint4 MAC (unsigned multiplier)")
    add("fp4_e2m1", "fp4_e2m1", "fp4_e2m1",
        "fp4 e2m1 x e2m1: 2x2 significand multiply, exact in quarter units")
    add("e3m0", "e3m0", "e3m0", "e3m0 x e3m0: sign XOR, exponent add, one-hot shift")
    add("int4_e3m0", "int4", "e3m0", "int4 activation x e3m0 weight: barrel shift")
    add("int8_e3m0", "int8", "e3m0", "int8 activation x e3m0 weight: barrel shift")
    add("lut_nf4", "int8", "nf4", "int8 activation x NF4 codebook (16 x 16-bit table, 2^-14)")
    k["bitserial"] = PEKind("bitserial", "bitserial", ("int8",) + BITSERIAL_DTYPES, {}, 1,
                            "bit-serial int8 x {int4, fp4, e3m0, BitMoD} weights")
    add("int8", "int8", "int8", "int8 x int8 baseline")
    add("int16", "int16", "int16", "int16 x int16 baseline")
    add("fp8_e4m3", "fp8_e4m3", "fp8_e4m3", "fp8 e4m3 baseline, exact (Kulisch) accumulator")
    add("bf16", "bf16", "bf16",
        "bf16 baseline, 64-bit window with 32 fraction bits (products floored)",
        acc_frac_bits=32, acc_bits=64)
    add("fp16", "fp16", "fp16", "fp16 baseline, exact (Kulisch) accumulator")
    add("lmul_fp8_e4m3", "fp8_e4m3", "fp8_e4m3", "fp8 e4m3 L-Mul (adders only)",
        product="lmul")
    add("lmul_fp4_e2m1", "fp4_e2m1", "fp4_e2m1", "fp4 e2m1 L-Mul (adders only)",
        product="lmul")
    for base, lanes in (("int4", 2), ("int4", 4), ("int4", 8), ("int4", 16),
                        ("fp4_e2m1", 4), ("e3m0", 4), ("int8_e3m0", 4), ("lut_nf4", 4),
                        ("int8", 4)):
        kk = dot_product_kind(base, lanes, _table=k)
        k[kk.name] = kk
    _block_kinds(k)
    return k


def _block_kinds(k):
    """Block-scaled kinds (:mod:`.block_pe`): 8 lanes each; the scale format and the block
    size are options (an :class:`~.config.ArrayConfig` may change the block size)."""
    for name, fmt, scale, block, what in (
            ("mxfp4", "fp4_e2m1", "e8m0", 32, "OCP MXFP4: fp4 e2m1, E8M0 scale per 32"),
            ("mxint8", "int8_mx", "e8m0", 32, "OCP MXINT8: int8 (2^-6), E8M0 scale per 32"),
            ("nvfp4", "fp4_e2m1", "e4m3", 16, "NVFP4: fp4 e2m1, E4M3 scale per 16"),
            ("q4_0", "int4", "fp16", 32, "ggml Q4_0: int4, fp16 scale per 32")):
        k[name] = PEKind(name, "block", (fmt, fmt), dict(scale=scale, block_size=block), 8,
                         f"{what}; 8 lanes, windowed cross-block accumulator")


def dot_product_kind(base, lanes, *, _table=None):
    """The :class:`PEKind` of ``lanes`` lanes of the MAC kind ``base`` (``"int4_dp4"``)."""
    table = PE_KINDS if _table is None else _table
    lanes = check_integral("Lane count", lanes, 2, 256)
    if base not in table or table[base].pe != "mac":
        raise ValueError(f"Dot-product base kind must be a MAC kind ("
                         f"{', '.join(n for n, v in table.items() if v.pe == 'mac')}), "
                         f"not {base!r}")
    b = table[base]
    return PEKind(f"{base}_dp{lanes}", "dp", b.formats, dict(b.options), lanes,
                  f"{lanes} lanes of {base} into an adder tree")


#: ``name -> PEKind``: every PE of the library.  ``<mac kind>_dp<k>`` works for any k too.
PE_KINDS = _kinds()

_DP_RE = re.compile(r"^(.+)_dp(\d+)$")


def pe_kind(name):
    """The :class:`PEKind` called ``name`` (``PE_KINDS`` or ``<mac kind>_dp<k>``)."""
    if not isinstance(name, str):
        raise TypeError(f"PE kind must be a string, not {name!r}")
    if name in PE_KINDS:
        return PE_KINDS[name]
    mt = _DP_RE.match(name)
    if mt and mt.group(1) in PE_KINDS:
        return dot_product_kind(mt.group(1), int(mt.group(2)))
    raise ValueError(f"PE kind must be one of {', '.join(PE_KINDS)} (or <kind>_dp<k>), "
                     f"not {name!r}")


def make_pe(kind, **overrides):
    """Build the PE of ``kind`` (a name from :data:`PE_KINDS`), options overridden."""
    return pe_kind(kind).build(**overrides)
