"""IEEE-style floating-point PEs: multiply, normalise, round to nearest even, accumulate in FP32.

::

    MAC (lanes = 1)                              dot product (lanes = k)

    a, b --> decode (sign, significand,          a_i, b_i --> k exact product units (.product)
             exponent) --> sig_a x sig_b                      --> exact adder tree (fixed point)
             (exact: mag, exp)                                --> sign, |sum|, exp = -grid
                    \\                                        /
                     +--> Fp32Round (RNE, subnormals, Inf) --+   g: the step's FP32 value
                                         |      NaN / Inf of the operands override g
                                         v
                  acc (FP32 register) --> Fp32Adder (RNE) --> first ? g : acc + g --> acc
                                                                          (one clock edge)

The arithmetic -- rounding points, subnormals (kept), zeros, NaN / Inf, order -- is that of
:mod:`nybble.sw.ieee_fp`, bit for bit: ``g = fp32_rne(exact sum of the step's products)``,
``acc = g`` on ``first``, else ``acc = fp32_rne(acc + g)``.  ``acc`` is the FP32 pattern (the
common ``signed(32)`` port); ``overflow`` is high while it is Inf or NaN.  Latency 1: the whole
step (product, rounding, FP32 add) is one combinational path into the accumulator register.

Components:

* :class:`Fp32Round` -- ``(-1)**neg * mag * 2**exp`` to FP32: leading-zero count, a left shift
  limited so the exponent does not fall below FP32's subnormal range (a right shift with a
  sticky bit when the value is below it), round to nearest even on guard and sticky bits;
  the rounding carry ripples into the exponent field (a subnormal becomes normal, the largest
  finite value becomes Inf).
* :class:`Fp32Adder` -- IEEE FP32 addition: operands ordered by magnitude, the smaller
  aligned with 3 extra bits and a sticky (jam) bit, added or subtracted, then :class:`Fp32Round`.
* :class:`Fp32Accumulator` -- the FP32 register with its :class:`Fp32Adder` (``first`` loads).
* :class:`FloatProductUnit` -- the MAC's exact product: significand multiply, exponent add.
* :class:`IeeeDotProductPE` / :class:`IeeeMacPE` -- the PEs (:class:`.spec.IeeeFpSpec`).

Submodule names follow the other PEs (``nybble.synth.area`` categories): ``product_<i>``
(multipliers), ``round`` (with the PE's own logic: exact adder tree, normalise and round,
NaN / Inf), ``accumulator`` (FP32 adder and register).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.sw.formats import check_integral
from nybble.sw.golden import element_ints
from nybble.sw.ieee_fp import FP32_INF, FP32_NAN, check_float_format
from .pe_base import PEBase, adder_tree
from .product import decode, signed_width
from .spec import IeeeFpSpec
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["Fp32Round", "Fp32Adder", "Fp32Accumulator", "FloatProductUnit", "IeeeDotProductPE",
           "IeeeMacPE", "float_specials"]

_EMIN_SUB = -149        # weight of FP32's least significant subnormal bit


def _leading_zeros(m, value, width, name):
    """A Signal holding the number of leading zeros of ``value`` (``width`` bits; ``width``
    when it is 0), as a priority chain."""
    lz = Signal(range(width + 1), name=name)
    m.d.comb += lz.eq(width)
    for i in range(width):  # later assignments win: the highest set bit decides
        with m.If(value[i]):
            m.d.comb += lz.eq(width - 1 - i)
    return lz


class Fp32Round(wiring.Component):
    """``bits`` = the FP32 pattern of ``(-1)**neg * mag * 2**exp``, rounded to nearest even.

    ``mag``: unsigned, ``mag_bits`` wide; ``exp``: signed, any value in ``exp_min ..
    exp_max``.  ``mag == 0`` gives +0; a nonzero value that rounds to zero keeps its sign;
    subnormal results are kept; a magnitude that rounds to ``2**128`` or more gives a signed
    Inf (:func:`nybble.sw.ieee_fp.round_fp32`).  Combinational.
    """

    def __init__(self, mag_bits, exp_min, exp_max):
        self._mag_bits = check_integral("mag_bits", mag_bits, 1, 4096)
        self._exp_min = check_integral("exp_min", exp_min, -(1 << 20), 1 << 20)
        self._exp_max = check_integral("exp_max", exp_max, self._exp_min, 1 << 20)
        super().__init__({
            "neg": In(1), "mag": In(unsigned(self._mag_bits)),
            "exp": In(signed(signed_width(self._exp_min, self._exp_max))),
            "bits": Out(unsigned(32)),
        })

    def elaborate(self, platform):
        m = Module()
        pad = max(0, 26 - self._mag_bits)         # room for 24 bits, guard and one more
        w = self._mag_bits + pad
        mag = Cat(Const(0, pad), self.mag) if pad else self.mag
        exp = self.exp - pad
        lz = _leading_zeros(m, mag, w, "lz")
        # the largest left shift that keeps the last kept bit at or above 2**-149
        lim_lo, lim_hi = self._exp_min - pad + w + 125, self._exp_max - pad + w + 125
        lim = Signal(signed(signed_width(lim_lo, lim_hi)), name="shift_limit")
        m.d.comb += lim.eq(exp + (w + 125))
        sh = Signal(signed(signed_width(min(lim_lo, 0), max(lim_hi, w))), name="shift")
        m.d.comb += sh.eq(Mux(lim < lz, lim, lz))
        norm = Signal(unsigned(w), name="normalised")
        sticky_r = Signal(name="sticky_right")
        if lim_hi > 0:
            left = (mag << sh.as_unsigned()[:max(1, w.bit_length())])[:w]
        else:
            left = Const(0, w)
        if lim_lo < 0:      # values below 2**-149 * 2**24: shift right, keep a sticky bit
            rs = Signal(range(w + 1), name="right_shift")
            m.d.comb += rs.eq(Mux(-sh > w, w, -sh))
            ext = Signal(unsigned(2 * w), name="right_ext")
            m.d.comb += ext.eq(Cat(Const(0, w), mag) >> rs)
            m.d.comb += [norm.eq(Mux(sh < 0, ext[w:], left)),
                         sticky_r.eq((sh < 0) & ext[:w].any())]
        else:
            m.d.comb += norm.eq(left)
        sig = norm[w - 24:]
        guard = norm[w - 25]
        sticky = norm[:w - 25].any() | sticky_r
        # exponent field when sig[23] is set (else the value is subnormal: field 0)
        lsb = Signal(signed(signed_width(min(lim_lo, 0) - 200, lim_hi + 200)), name="lsb_exp")
        m.d.comb += lsb.eq(exp - sh + (w - 24))
        field = Signal(signed(len(lsb) + 25), name="field")
        m.d.comb += field.eq(Mux(sig[23], ((lsb + 150) << 23) | sig[:23], sig[:23]))
        rounded = Signal(signed(len(field) + 1), name="rounded")
        m.d.comb += rounded.eq(field + (guard & (sticky | sig[0])))
        out = Signal(31, name="magnitude_bits")
        m.d.comb += out.eq(Mux(rounded >= FP32_INF, FP32_INF, rounded[:31]))
        m.d.comb += self.bits.eq(Mux(self.mag == 0, 0, Cat(out, self.neg)))
        return m


class Fp32Adder(wiring.Component):
    """``s`` = IEEE FP32 ``x + y`` (bit patterns), round to nearest even, subnormals kept.

    ``x + (-x)`` is +0, ``(-0) + (-0)`` is -0; NaN in, or ``Inf + (-Inf)``, gives the canonical
    NaN ``0x7FC00000``; otherwise an Inf operand gives that Inf; overflow gives Inf
    (:func:`nybble.sw.ieee_fp.fp32_add`).  Combinational.
    """

    def __init__(self):
        super().__init__({"x": In(32), "y": In(32), "s": Out(32)})

    def elaborate(self, platform):
        m = Module()
        x, y = self.x, self.y
        swap = x[:31] < y[:31]
        big = Signal(32, name="big")
        small = Signal(32, name="small")
        m.d.comb += [big.eq(Mux(swap, y, x)), small.eq(Mux(swap, x, y))]

        def unpack(v):
            e = v[23:31]
            return e, Mux(e == 0, 1, e), Cat(v[:23], e != 0)

        _, eff_b, sig_b = unpack(big)
        _, eff_s, sig_s = unpack(small)
        d = Signal(8, name="exp_diff")
        m.d.comb += d.eq(eff_b - eff_s)
        dcl = Mux(d > 28, 28, d)
        ext = Signal(54, name="aligned_ext")          # small << 3, aligned, 27 bits below it
        m.d.comb += ext.eq(Cat(Const(0, 30), sig_s) >> dcl)
        aligned = ext[27:54] | ext[:27].any()      # the sticky bit jammed into the LSB
        total = Signal(28, name="sig_sum")
        b27 = Cat(Const(0, 3), sig_b)
        m.d.comb += total.eq(Mux(big[31] ^ small[31], b27 - aligned, b27 + aligned))
        m.submodules.round = rnd = Fp32Round(28, 1 - 153, 254 - 153)
        m.d.comb += [rnd.neg.eq(big[31]), rnd.mag.eq(total), rnd.exp.eq(eff_b - 153)]

        def special(v):
            e_max = v[23:31].all()
            return e_max & v[:23].any(), e_max & ~v[:23].any()

        x_nan, x_inf = special(x)
        y_nan, y_inf = special(y)
        both_neg_zero = (x == 0x80000000) & (y == 0x80000000)
        with m.If(x_nan | y_nan | (x_inf & y_inf & (x[31] ^ y[31]))):
            m.d.comb += self.s.eq(FP32_NAN)
        with m.Elif(x_inf):
            m.d.comb += self.s.eq(x)
        with m.Elif(y_inf):
            m.d.comb += self.s.eq(y)
        with m.Elif(both_neg_zero):
            m.d.comb += self.s.eq(0x80000000)
        with m.Else():
            m.d.comb += self.s.eq(rnd.bits)
        return m


class Fp32Accumulator(wiring.Component):
    """The FP32 accumulator register and its adder: on a clock edge with ``en``, ``acc``
    takes ``g`` (``first``) or ``fp32_rne(acc + g)`` (:class:`Fp32Adder`); ``non_finite`` is
    high while ``acc`` is Inf or NaN.  Latency 1."""

    def __init__(self):
        super().__init__({"g": In(32), "en": In(1), "first": In(1), "acc": Out(32),
                          "non_finite": Out(1)})

    def elaborate(self, platform):
        m = Module()
        acc = Signal(32, name="acc_fp32")
        m.submodules.adder = add = Fp32Adder()
        m.d.comb += [add.x.eq(acc), add.y.eq(self.g)]
        with m.If(self.en):
            m.d.sync += acc.eq(Mux(self.first, self.g, add.s))
        m.d.comb += [self.acc.eq(acc), self.non_finite.eq(acc[23:31].all())]
        return m


class FloatProductUnit(wiring.Component):
    """The exact product of two float codes as ``(-1)**neg * mag * 2**exp``: significands
    (hidden bit included) multiplied, exponents added (:func:`.product.decode`); NaN / Inf
    codes come out as ordinary patterns (the PE overrides them).  Combinational.
    ``exp_min`` / ``exp_max``: the range of ``exp``."""

    def __init__(self, fmt_a, fmt_b):
        self._fa = check_float_format("fmt_a", fmt_a)
        self._fb = check_float_format("fmt_b", fmt_b)
        self._f_ab = element_ints(self._fa)[1] + element_ints(self._fb)[1]
        # decode's shift is at most (2**exp_bits - 2) + frac_bits per operand
        sh_max = (1 << self._fa.exp_bits) + (1 << self._fb.exp_bits) - 4 + self._f_ab
        self.exp_min, self.exp_max = -self._f_ab, sh_max - self._f_ab
        mag_bits = self._fa.man_bits + self._fb.man_bits + 2
        super().__init__({"a": In(self._fa.bits), "b": In(self._fb.bits), "neg": Out(1),
                          "mag": Out(mag_bits),
                          "exp": Out(signed(signed_width(self.exp_min, self.exp_max)))})

    def elaborate(self, platform):
        m = Module()
        da, db = decode(self._fa, self.a), decode(self._fb, self.b)
        m.d.comb += [self.neg.eq(da.neg ^ db.neg), self.mag.eq(da.mag * db.mag),
                     self.exp.eq(da.shift + db.shift - self._f_ab)]
        return m


def float_specials(fmt, code):
    """``(nan, inf, zero)`` 1-bit Values for ``code`` of the float format ``fmt``, from its
    value table's pattern: IEEE (all-ones exponent: Inf / NaN), ``fn`` (only
    S.1..1.1..1 is NaN, as e4m3fn) or none."""
    m_bits, e_bits = fmt.man_bits, fmt.exp_bits
    e = code[m_bits:m_bits + e_bits]
    man = code[:m_bits]
    emax = (1 << e_bits) - 1
    top = emax << m_bits
    zero = ~code[:fmt.bits - 1].any()
    if fmt.values[top] == float("inf"):
        return e.all() & man.any(), e.all() & ~man.any(), zero
    if fmt.nan_codes:
        if fmt.nan_codes != (top | ((1 << m_bits) - 1), (1 << (fmt.bits - 1)) | top | ((1 << m_bits) - 1)):
            raise ParameterError(f"format {fmt.name}: NaN codes {fmt.nan_codes} are neither "
                                 "IEEE's nor e4m3fn's")
        return e.all() & man.all(), Const(0, 1), zero
    return Const(0, 1), Const(0, 1), zero


class IeeeDotProductPE(PEBase):
    """``lanes`` float products, summed exactly, rounded once to FP32 (RNE), added to an FP32
    accumulator (RNE) -- :mod:`nybble.sw.ieee_fp`; module docstring for the datapath.

    Parameters
    ----------
    fmt_a, fmt_b : float formats (``fp8_e4m3``, ``fp8_e5m2``, ``fp16``, ``bf16``, ...).
    lanes : products per cycle (1: a MAC, :class:`IeeeMacPE`).
    acc_bits : 32 (the only value: an FP32 accumulator).
    overflow : ``"ieee"`` (the only value: IEEE 754 overflow to Inf).

    ``latency`` 1, ``cycles_per_mac`` ``1 / lanes``; ``acc`` is the FP32 pattern, ``overflow``
    is high while it is Inf or NaN.
    """

    def __init__(self, fmt_a, fmt_b, lanes=4, *, src_loc_at=0, **options):
        super().__init__(IeeeFpSpec.make(fmt_a, fmt_b, lanes, **options))

    def _step_value(self, m):
        """The step's exact sum rounded to FP32 (``Fp32Round``'s ``bits``), NaN / Inf aside."""
        spec = self._spec
        if spec.lanes == 1:    # one product: sig x sig and its exponent, then one rounding
            m.submodules.product_0 = prod = FloatProductUnit(spec.fmt_a, spec.fmt_b)
            m.d.comb += [prod.a.eq(self.a), prod.b.eq(self.b)]
            rnd = Fp32Round(len(prod.mag), prod.exp_min, prod.exp_max)
            m.d.comb += [rnd.neg.eq(prod.neg), rnd.mag.eq(prod.mag), rnd.exp.eq(prod.exp)]
        else:                  # lanes: exact fixed-point products and sum, then one rounding
            tree = adder_tree(u.p for u in self._lane_units(m))
            total = Signal(signed(len(tree)), name="step_sum")
            m.d.comb += total.eq(tree)
            rnd = Fp32Round(len(total), -spec.unit_frac, -spec.unit_frac)
            m.d.comb += [rnd.neg.eq(total < 0), rnd.mag.eq(Mux(total < 0, -total, total)),
                         rnd.exp.eq(-spec.unit_frac)]
        m.submodules.round = rnd
        return rnd.bits

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        fa, fb = spec.fmt_a, spec.fmt_b
        self._forward(m, ("a", "b", "valid", "first"))
        nan = Const(0, 1)
        pos_inf, neg_inf = Const(0, 1), Const(0, 1)
        for i in range(spec.lanes):
            ca = self.a[i * fa.bits:(i + 1) * fa.bits]
            cb = self.b[i * fb.bits:(i + 1) * fb.bits]
            a_nan, a_inf, a_zero = float_specials(fa, ca)
            b_nan, b_inf, b_zero = float_specials(fb, cb)
            inf = (a_inf | b_inf) & ~(a_zero | b_zero)
            neg = ca[fa.bits - 1] ^ cb[fb.bits - 1]
            nan = nan | a_nan | b_nan | (a_inf & b_zero) | (a_zero & b_inf)
            pos_inf = pos_inf | (inf & ~neg)
            neg_inf = neg_inf | (inf & neg)
        rounded = self._step_value(m)
        g = Signal(32, name="step_fp32")
        with m.If(nan | (pos_inf & neg_inf)):
            m.d.comb += g.eq(FP32_NAN)
        with m.Elif(pos_inf | neg_inf):
            m.d.comb += g.eq(Cat(Const(FP32_INF, 31), neg_inf))
        with m.Else():
            m.d.comb += g.eq(rounded)
        m.submodules.accumulator = acc = Fp32Accumulator()
        m.d.comb += [acc.g.eq(g), acc.en.eq(self.valid), acc.first.eq(self.first),
                     self.acc.eq(acc.acc), self.overflow.eq(acc.non_finite)]
        return m


class IeeeMacPE(IeeeDotProductPE):
    """The one-lane :class:`IeeeDotProductPE`: ``acc = fp32_rne(acc + fp32_rne(a x b))``."""

    def __init__(self, fmt_a, fmt_b, *, src_loc_at=0, **kwargs):
        if "lanes" in kwargs:
            raise ParameterTypeError("IeeeMacPE has one lane; use IeeeDotProductPE for more")
        super().__init__(fmt_a, fmt_b, 1, **kwargs)
