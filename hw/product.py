"""Product units: the arithmetic of a PE, one exact product of two element codes per cycle.

::

      a (code, fmt_a) ----+    decode from the Format record       +----------------+
                          +--> sign, significand, shift  ------->  | sig_a x sig_b  |--+
      b (code, fmt_b) ----+    (kind, exp_bits, man_bits, bias)    | or shift / LUT |  |
                                                                   +----------------+  |
                                                   sign, << (shift_a + shift_b) <------+
                                                                   |
                                                                   v
                                               p : signed, exact, on the grid 2**-frac_bits

Every unit is a :class:`amaranth.lib.wiring.Component` with the signature of
:class:`ProductUnitSignature`: ``a`` and ``b`` (unsigned codes of ``fmt_a.bits`` /
``fmt_b.bits``) in, ``p`` out.  ``p`` is the exact product as a two's-complement integer on
the grid ``2**-frac_bits``; ``frac_bits`` and the range of ``p`` are those of
:func:`nybble.sw.product_format` (the LUT unit's grid is its table's, see :mod:`.lut`), and
``p`` is exactly as wide as that range needs.  Units are combinational (``latency`` 0):
nothing is rounded, nothing overflows.

No value table is written here: integer, float and power-of-two operands are decoded from
the fields of their :class:`nybble.sw.Format` record (``kind``, ``signed``, ``exp_bits``,
``man_bits``, ``bias``, ``radix``, ``frac_bits``); codebooks are read from
:func:`nybble.sw.element_ints`.  NaN / Inf codes are not special-cased: the units treat them as
ordinary exponent / mantissa patterns, and the golden model refuses them, so they are never
checked.

:func:`nybble.hw.units.make_product_unit` picks the unit for a format pair (and
:func:`nybble.hw.units.product_grid` tells its grid and range without building it):

=====================  ===================================  ======================  =========
fmt_a x fmt_b          unit                                 hardware                module
=====================  ===================================  ======================  =========
int/float x int/float  :class:`MultiplierUnit`              one multiplier          product
pow2 x pow2            :class:`~.shift.ShiftUnit`           one-hot shift, no mul   shift
int/float x pow2       :class:`~.shift.BarrelShiftUnit`     barrel shift, no mul    shift
int x codebook         :class:`~.lut.LutUnit`               16-entry table + mul    lut
float x float (lmul)   :class:`~.lmul.LMulUnit`             adders only             lmul
=====================  ===================================  ======================  =========
"""

from amaranth.hdl import Const, Module, Mux, Shape, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.sw.formats import get_format, Format
from nybble.sw.golden import product_format, element_ints
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["ProductUnitSignature", "ProductUnit", "MultiplierUnit", "signed_width", "Decoded",
           "decode", "check_format"]


def signed_width(lo, hi):
    """Bits of the narrowest two's-complement signal holding every integer in ``lo..hi``."""
    lo, hi = int(lo), int(hi)
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def check_format(name, fmt):
    if not isinstance(fmt, (str, Format)):
        raise ParameterTypeError(f"{name} must be a format name or a nybble.sw.Format, not {fmt!r}")
    return get_format(fmt)


class ProductUnitSignature(wiring.Signature):
    """``a: In(fmt_a.bits)``, ``b: In(fmt_b.bits)``, ``p: Out(signed(p_bits))`` (+ extras)."""

    def __init__(self, a_bits, b_bits, p_bits, extra=None):
        members = {"a": In(unsigned(a_bits)), "b": In(unsigned(b_bits)),
                   "p": Out(signed(p_bits))}
        members.update(extra or {})
        super().__init__(members)


class Decoded:
    """One operand decoded from its Format record: ``value * 2**frac_bits == (-1)**neg * mag
    << shift`` (``neg`` a 1-bit Value or ``None`` when ``mag`` is already signed).

    ``mag``: the significand (unsigned, with the hidden bit), or the signed code of an integer
    format; ``shift``: an unsigned Value, or the Python int 0; ``onehot``: True when ``mag`` is
    a single bit (power-of-two formats), so that a product needs no multiplier.
    """

    def __init__(self, neg, mag, shift, onehot=False):
        self.neg, self.mag, self.shift, self.onehot = neg, mag, shift, onehot


def decode(fmt, code):
    """Decode ``code`` (a Value of ``fmt.bits`` bits) of an int / float / pow2 format."""
    fmt = get_format(fmt)
    f = element_ints(fmt)[1]
    if fmt.kind == "int":
        # element_ints puts integer codes on their own grid: the code *is* the integer
        return Decoded(None, code.as_signed() if fmt.signed else code, 0)
    if fmt.kind == "float":
        m, e_bits = fmt.man_bits, fmt.exp_bits
        e = code[m:m + e_bits]
        hidden = e.any()
        mag = code[:m] | (hidden << m) if m else hidden
        # value = sig * 2**(eff - bias - m), eff = max(e, 1); on the grid 2**-f that is
        # sig << (eff - 1 + off) with off = f - (bias - 1 + m) >= 0
        off = f - (fmt.bias - 1 + m)
        if off < 0:
            raise ParameterError(f"format {fmt.name}: frac_bits {f} is coarser than its smallest "
                             f"subnormal 2**-{fmt.bias - 1 + m}")
        eff_m1 = Mux(hidden, (e - 1)[:e_bits], 0)
        shift = eff_m1 + off if off else eff_m1
        return Decoded(code[fmt.bits - 1] if fmt.signed else Const(0, 1), mag, shift)
    if fmt.kind == "pow2":
        e_bits = fmt.exp_bits
        e = code[:e_bits]
        hidden = e.any()
        log2r = fmt.radix.bit_length() - 1
        if fmt.radix != 1 << log2r:
            raise ParameterError(f"format {fmt.name}: radix {fmt.radix} is not a power of two")
        # value = radix**(e - bias) = 1 << (log2r * (e - 1) + off) on the grid 2**-f
        off = log2r * (1 - fmt.bias) + f
        if off < 0:
            raise ParameterError(f"format {fmt.name}: frac_bits {f} is coarser than its smallest "
                             "power")
        e_m1 = Mux(hidden, (e - 1)[:e_bits], 0)
        shift = const_mul(e_m1, log2r)
        shift = shift + off if off else shift
        return Decoded(code[e_bits] if fmt.signed else Const(0, 1), hidden, shift, onehot=True)
    raise ParameterError(f"format {fmt.name} (kind {fmt.kind!r}) cannot be decoded by gates; "
                     "codebooks go through the LUT unit")


def const_mul(x, c):
    """``x * c`` for a constant ``c >= 1`` as a sum of shifts (no multiplier cell)."""
    terms = [x << i if i else x for i in range(int(c).bit_length()) if (c >> i) & 1]
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _apply_sign(neg, x):
    """``-x if neg else x`` as a signed Value (``neg`` None: ``x`` is already signed)."""
    if neg is None:
        return x
    return Mux(neg, -x, x)


def _shift_sum(sa, sb):
    if isinstance(sa, int) and isinstance(sb, int):
        return sa + sb
    if isinstance(sa, int):
        return sb + sa if sa else sb
    if isinstance(sb, int):
        return sa + sb if sb else sa
    return sa + sb


def _shl(x, sh):
    return x << sh if not isinstance(sh, int) else (x << sh if sh else x)


class ProductUnit(wiring.Component):
    """Base class: holds the format pair, the output grid and the range of ``p``.

    Attributes: ``fmt_a``, ``fmt_b`` (:class:`nybble.sw.Format`), ``frac_bits`` (``p`` is on
    the grid ``2**-frac_bits``), ``p_min`` / ``p_max`` (range of ``p``), ``latency`` (0).
    """

    latency = 0

    @classmethod
    def grid(cls, fmt_a, fmt_b, **options):
        """``(frac_bits, p_min, p_max)`` of this unit for ``fmt_a`` x ``fmt_b`` (Format
        records), or ``ValueError`` when the unit does not take the pair -- pure, no
        component is built (:func:`nybble.hw.units.product_grid`)."""
        raise NotImplementedError

    def __init__(self, fmt_a, fmt_b, *, extra=None, **grid_options):
        """``fmt_a`` x ``fmt_b`` (names or Format records); ``grid_options`` go to
        :meth:`grid`, ``extra`` adds ports to the signature."""
        self._fmt_a = check_format("fmt_a", fmt_a)
        self._fmt_b = check_format("fmt_b", fmt_b)
        frac_bits, p_min, p_max = self.grid(self._fmt_a, self._fmt_b, **grid_options)
        self._frac_bits = int(frac_bits)
        self._p_min, self._p_max = int(p_min), int(p_max)
        p_bits = signed_width(self._p_min, self._p_max)
        super().__init__(ProductUnitSignature(self._fmt_a.bits, self._fmt_b.bits, p_bits,
                                              extra))

    fmt_a = property(lambda self: self._fmt_a)
    fmt_b = property(lambda self: self._fmt_b)
    frac_bits = property(lambda self: self._frac_bits)
    p_min = property(lambda self: self._p_min)
    p_max = property(lambda self: self._p_max)

    @property
    def p_bits(self):
        return Shape.cast(self.p.shape()).width


class MultiplierUnit(ProductUnit):
    """Exact product of two integer or float elements (any mix): one multiplier.

    Floats are decoded to (sign, significand with hidden bit, exponent); the significands
    (``man_bits + 1`` bits each, or the signed integer code) are multiplied, the sign applied
    and the result shifted left by ``(eff_a - 1) + (eff_b - 1)``.  ``p`` is exact on the grid
    ``2**-product_format(fmt_a, fmt_b)[0]``.  Combinational.

    Example: fp4 e2m1 x e2m1 multiplies two 2-bit significands (a 2x2 multiplier), shifts by
    0..4 and gives a 9-bit ``p`` in quarter units, ``|p| <= 144`` (value <= 36).
    """

    @classmethod
    def grid(cls, fmt_a, fmt_b):
        for name, f in (("fmt_a", fmt_a), ("fmt_b", fmt_b)):
            if f.kind not in ("int", "float"):
                raise ParameterError(f"MultiplierUnit takes int or float formats; {name} is "
                                 f"{f.name} (kind {f.kind!r})")
        return product_format(fmt_a, fmt_b)

    def elaborate(self, platform):
        m = Module()
        da, db = decode(self._fmt_a, self.a), decode(self._fmt_b, self.b)
        mag = da.mag * db.mag
        if da.neg is None and db.neg is None:
            prod = mag
        else:
            neg = da.neg if db.neg is None else db.neg if da.neg is None else da.neg ^ db.neg
            prod = _apply_sign(neg, mag)
        m.d.comb += self.p.eq(_shl(prod, _shift_sum(da.shift, db.shift)))
        return m
