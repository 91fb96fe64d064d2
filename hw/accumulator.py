"""The PE accumulator: the block accumulator of :mod:`nybble.sw.golden`, in gates.

::

            first --+
                    v
    acc ------> [ 0 or acc ] --+
                               +--> s = base + p (exact, acc_bits + 2 bits) --+--> wrap: s mod 2**acc_bits
    p (any width) -> reduce ---+                                            |    saturate: clamp
                  (big: p outside                                           |
                   acc_bits+1 bits)         out of range or big ------------+--> overflow (sticky)
                                                                             |
                                          en: acc, overflow <= ... (one clock edge)

Semantics (``nybble.sw.golden._accumulate``, one product per ``en``): the accumulator is a
two's-complement register of ``acc_bits`` bits.  On a clock edge with ``en``:

* ``base`` is 0 when ``first`` (the product starts a new dot product: *load*, not add; no reset
  is needed between back-to-back jobs) and the register otherwise;
* ``s = base + p`` exactly;
* ``overflow="wrap"``: the register takes ``s mod 2**acc_bits`` (an adder that drops the
  carry); ``overflow="saturate"``: it takes ``s`` clamped to ``[-2**(acc_bits-1),
  2**(acc_bits-1) - 1]``;
* the ``overflow`` flag is sticky: it is set when ``s`` leaves that range, and cleared by
  ``first`` (so it reports overflow within the current dot product, including its first
  product).

``p`` may be wider than the accumulator (a windowed bf16 product, a LUT product with a wide
table): only its low ``acc_bits + 1`` bits enter the adder, and a flag ``big`` (``p`` does not
fit in ``acc_bits + 1`` bits) forces the overflow flag and, when saturating, the clamp to the
sign of ``p`` -- which is exactly what adding the full ``p`` would give, since then
``|s| >= 2**(acc_bits-1)`` whatever the register holds.  Without ``en`` nothing changes.
Latency: the register holds the new sum one clock edge after ``en``.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.sw.formats import check_integral
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["Accumulator", "ACC_OVERFLOW_MODES"]

#: Overflow modes the hardware implements ("error" is a golden-model check only).
ACC_OVERFLOW_MODES = ("wrap", "saturate")


def check_overflow(overflow):
    if not isinstance(overflow, str):
        raise ParameterTypeError(f"Overflow mode must be a string, not {overflow!r}")
    if overflow not in ACC_OVERFLOW_MODES:
        raise ParameterError(f"Overflow mode must be one of 'wrap', 'saturate', not {overflow!r}"
                         + (" (the golden model's 'error' is a check, not hardware; the PE "
                            "raises its overflow flag instead)" if overflow == "error" else ""))
    return overflow


class Accumulator(wiring.Component):
    """Accumulator register with wrap / saturate overflow and a sticky overflow flag.

    Parameters
    ----------
    p_bits : width of the signed product input ``p``.
    acc_bits : width of the signed accumulator ``acc`` (>= 2).
    overflow : ``"wrap"`` or ``"saturate"``.

    psum : with True, ``base`` is the input ``psum`` (``signed(acc_bits)``) instead of the
        register: ``acc <= psum + p`` with the same wrap / saturate rule -- the partial-sum
        adder of a weight-stationary cell.  ``first`` then only clears the overflow flag.

    Ports: ``p`` (``signed(p_bits)``), ``en``, ``first`` in; ``acc`` (``signed(acc_bits)``),
    ``overflow`` out.  Latency 1.
    """

    latency = 1

    def __init__(self, p_bits, acc_bits, overflow="wrap", *, psum=False):
        self._p_bits = check_integral("p_bits", p_bits, 1)
        self._acc_bits = check_integral("Accumulator width", acc_bits, 2, 4096)
        self._overflow = check_overflow(overflow)
        if not isinstance(psum, bool):
            raise ParameterTypeError(f"psum must be a bool, not {psum!r}")
        self._psum = psum
        members = {
            "p": In(signed(self._p_bits)), "en": In(1), "first": In(1),
            "acc": Out(signed(self._acc_bits)), "overflow": Out(1),
        }
        if psum:
            members["psum"] = In(signed(self._acc_bits))
        super().__init__(members)

    acc_bits = property(lambda self: self._acc_bits)
    overflow_mode = property(lambda self: self._overflow)

    def elaborate(self, platform):
        m = Module()
        w = self._acc_bits
        lo, hi = -(1 << (w - 1)), (1 << (w - 1)) - 1
        if self._p_bits > w + 1:
            top = self.p[w:]  # bits that must all equal the sign of p[:w+1]
            big = ~(top.all() | ~top.any())
            p = self.p[:w + 1].as_signed()
        else:
            big = Const(0, 1)
            p = self.p
        # psum mode (weight-stationary cells): the sum continues a partial sum from outside
        base = self.psum if self._psum else Mux(self.first, 0, self.acc)
        s = Signal(signed(w + 2))
        m.d.comb += s.eq(base + p)
        above, below = s > hi, s < lo
        out_of_range = above | below | big
        if self._overflow == "wrap":
            nxt = s[:w].as_signed()
        else:
            neg = self.p[-1]
            nxt = Mux(big, Mux(neg, lo, hi), Mux(above, hi, Mux(below, lo, s)))
        with m.If(self.en):
            m.d.sync += [
                self.acc.eq(nxt),
                self.overflow.eq((self.overflow & ~self.first) | out_of_range),
            ]
        return m
