"""L-Mul product unit: a floating-point "multiplier" made of adders (Luo & Sun 2024).

::

    s_a ^ s_b ---------------------------------------------------------+
    h_a & h_b --> (2^(2m) + 2^(2m-l)) --+                              |
    h_a ? M_b << m : 0 -----------------+--> lsig (adders) --> << ((eff_a-1) + (eff_b-1)) --> +-p
    h_b ? M_a << m : 0 -----------------+

For two floats of one format with ``m`` mantissa bits, the mantissa product ``M_a M_b`` is
replaced by the constant ``2^-l(m)`` (``l(m)`` = m for m <= 3, 3 for m = 4, 4 above):
exactly :func:`nybble.sw.lmul.lmul_product`, whose docstring states the integer form, how a
mantissa overflow is kept (an extra significand bit; no renormalisation, no rounding) and
what happens to zero and subnormals.  ``p`` is on the exact product grid
``2**-(2 * frac_bits)``; its range is ``product_format(fmt, fmt, product="lmul")``.
Combinational (``latency`` 0); no multiplier cell.
"""

from amaranth.hdl import Module, Mux

from nybble.sw.golden import product_format
from nybble.sw.lmul import lmul_offset_bits
from .product import ProductUnit, decode, _shift_sum, _shl
from nybble.sw.errors import ParameterError

__all__ = ["LMulUnit"]


class LMulUnit(ProductUnit):
    """L-Mul approximate product of two elements of one float format (fp8 e4m3, fp4 e2m1)."""

    @classmethod
    def grid(cls, fmt_a, fmt_b):
        if fmt_a is not fmt_b or fmt_a.kind != "float" or fmt_a.man_bits < 1:
            raise ParameterError(f"LMulUnit takes two operands of one float format with a "
                             f"mantissa, not {fmt_a.name} x {fmt_b.name}")
        return product_format(fmt_a, fmt_b, product="lmul")

    def __init__(self, fmt_a, fmt_b):
        super().__init__(fmt_a, fmt_b)
        self._offset_bits = lmul_offset_bits(self._fmt_a.man_bits)

    offset_bits = property(lambda self: self._offset_bits)

    def elaborate(self, platform):
        m = Module()
        man = self._fmt_a.man_bits
        da, db = decode(self._fmt_a, self.a), decode(self._fmt_b, self.b)
        ha, hb = da.mag[man], db.mag[man]
        ma, mb = da.mag[:man], db.mag[:man]
        offset = (1 << (2 * man)) + (1 << (2 * man - self._offset_bits))
        lsig = Mux(ha & hb, offset, 0) + Mux(ha, mb << man, 0) + Mux(hb, ma << man, 0)
        mag = _shl(lsig, _shift_sum(da.shift, db.shift))
        m.d.comb += self.p.eq(Mux(da.neg ^ db.neg, -mag, mag))
        return m
