"""Shift-only product units: power-of-two weights need no multiplier.

::

    ShiftUnit (pow2 x pow2, e.g. e3m0 x e3m0)      BarrelShiftUnit (int/float x pow2)

    s_a ^ s_b ------------------------+            x = a (int code) or +-significand (float)
    e_a, e_b -> (e_a-1)+(e_b-1)+off --+            e_w -> shift --+
                    |                 |                            v
               1 << shift (one-hot)   |            x << shift (barrel shifter)
                    |                 v                            |
      both nonzero? ---> +-onehot --> p             weight nonzero? ---> +-(...) --> p

A power-of-two element is ``+-radix**(e - bias)`` (``e`` = 0 is zero): its product with anything
is a sign flip and a shift.  The decode comes from the :class:`nybble.sw.Format` record
(``exp_bits``, ``bias``, ``radix``), so ``e3m0``, ``e3m0_b<bias>`` and the radix-4 ``fp4_r4``
all work.  Combinational (``latency`` 0).  The netlist contains no multiplier cell: shifts
(``$shl``/``$sshl``), muxes and one negation (an incrementer) only.
"""

from amaranth.hdl import Module, Mux

from .product import ProductUnit, decode, _shift_sum, _shl
from nybble.sw.golden import product_format
from nybble.sw.errors import ParameterError

__all__ = ["ShiftUnit", "BarrelShiftUnit"]


class ShiftUnit(ProductUnit):
    """Exact product of two power-of-two elements: sign XOR, exponent add, one-hot shift.

    e3m0 x e3m0 (bias 3): ``p = +-(1 << (e_a + e_b - 2))`` on the grid ``2**-4``, a 14-bit
    signed ``p`` (|value| 2^-4 .. 2^8), 0 when either exponent field is 0.
    """

    @classmethod
    def grid(cls, fmt_a, fmt_b):
        for name, f in (("fmt_a", fmt_a), ("fmt_b", fmt_b)):
            if f.kind != "pow2":
                raise ParameterError(f"ShiftUnit takes power-of-two formats; {name} is {f.name} "
                                 f"(kind {f.kind!r})")
        return product_format(fmt_a, fmt_b)

    def elaborate(self, platform):
        m = Module()
        da, db = decode(self._fmt_a, self.a), decode(self._fmt_b, self.b)
        onehot = _shl(da.mag & db.mag, _shift_sum(da.shift, db.shift))
        m.d.comb += self.p.eq(Mux(da.neg ^ db.neg, -onehot, onehot))
        return m


class BarrelShiftUnit(ProductUnit):
    """Exact product of an int / float element and a power-of-two element: a barrel shift.

    int8 x e3m0 (bias 3): ``p = +-(a << (e_b - 1))`` on the grid ``2**-2`` (0 when the
    weight's exponent field is 0), a 15-bit signed ``p``.  Either operand may be the
    power-of-two one.
    """

    @classmethod
    def grid(cls, fmt_a, fmt_b):
        kinds = {fmt_a.kind, fmt_b.kind}
        if "pow2" not in kinds or not kinds <= {"pow2", "int", "float"} or \
                fmt_a.kind == fmt_b.kind:
            raise ParameterError(f"BarrelShiftUnit takes one power-of-two and one int or float "
                             f"format, not {fmt_a.name} x {fmt_b.name}")
        return product_format(fmt_a, fmt_b)

    def elaborate(self, platform):
        m = Module()
        da, db = decode(self._fmt_a, self.a), decode(self._fmt_b, self.b)
        pw, x = (da, db) if da.onehot else (db, da)
        shifted = _shl(x.mag, _shift_sum(x.shift, pw.shift))
        neg = pw.neg if x.neg is None else pw.neg ^ x.neg
        signed_val = Mux(neg, -shifted, shifted)
        m.d.comb += self.p.eq(Mux(pw.mag, signed_val, 0))
        return m
