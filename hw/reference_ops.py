"""Reference operators for energy anchors: integer add / multiply, floating-point multiply.

Small combinational circuits (no clock, no registers) that match the operators of the
published energy anchors (Horowitz, ISSCC 2014: 8/32-bit integer add and multiply, fp16/fp32
multiply), so the energy model is held against the same operations it is calibrated on::

    a, b --> [ operator ] --> y

* :class:`IntAdder` (``bits``): two's-complement ``a + b``, ``bits + 1``-bit result.
* :class:`IntMultiplier` (``bits``): signed ``a * b``, ``2 * bits``-bit result.
* :class:`FloatMultiplier` (``exp_bits``, ``man_bits``): IEEE-style product of two *normal*
  numbers whose product is normal: sign XOR, exponent add, ``(man_bits + 1)``-bit significand
  multiply, one-bit normalisation, round to nearest, ties to even. Subnormals, infinities,
  NaN and exponent overflow are not handled (the stimulus keeps to the normal range); so it is
  the multiplier's datapath, not a full IEEE unit.

:data:`REFERENCE_OPERATORS` names each by its Horowitz anchor; its
:meth:`ReferenceOperator.model` is bit-exact on unsigned port values (numpy arrays; numpy's
float16 / float32 arithmetic for the float multipliers).
"""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Module, Mux, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.sw.errors import ParameterError
from nybble.sw.formats import check_integral

__all__ = ["IntAdder", "IntMultiplier", "FloatMultiplier", "ReferenceOperator",
           "REFERENCE_OPERATORS", "reference_operator"]


def _to_signed(u, bits):
    u = np.asarray(u, dtype=np.int64)
    return np.where(u >= 1 << (bits - 1), u - (1 << bits), u)


class IntAdder(wiring.Component):
    """``y = a + b`` on ``bits``-bit two's-complement operands; ``y`` has ``bits + 1`` bits."""

    def __init__(self, bits):
        self._bits = check_integral("Adder width", bits, 2, 64)
        super().__init__({"a": In(unsigned(self._bits)), "b": In(unsigned(self._bits)),
                          "y": Out(unsigned(self._bits + 1))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a.as_signed() + self.b.as_signed())
        return m


class IntMultiplier(wiring.Component):
    """``y = a * b`` on ``bits``-bit two's-complement operands; ``y`` has ``2 * bits``
    bits."""

    def __init__(self, bits):
        self._bits = check_integral("Multiplier width", bits, 2, 32)
        super().__init__({"a": In(unsigned(self._bits)), "b": In(unsigned(self._bits)),
                          "y": Out(unsigned(2 * self._bits))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a.as_signed() * self.b.as_signed())
        return m


#: numpy dtype of each supported float multiplier's format, for :meth:`FloatMultiplier.model`.
_NUMPY_FLOATS = {(5, 10): (np.float16, np.uint16), (8, 23): (np.float32, np.uint32)}


class FloatMultiplier(wiring.Component):
    """Product of two normal ``(exp_bits, man_bits)`` floats, rounded to nearest even
    (module docstring for what is not handled). Ports are the IEEE bit patterns."""

    def __init__(self, exp_bits, man_bits):
        self._e = check_integral("Exponent bits", exp_bits, 2, 11)
        self._m = check_integral("Mantissa bits", man_bits, 1, 52)
        bits = 1 + self._e + self._m
        super().__init__({"a": In(unsigned(bits)), "b": In(unsigned(bits)),
                          "y": Out(unsigned(bits))})

    @property
    def bias(self):
        return (1 << (self._e - 1)) - 1

    def elaborate(self, platform):
        m = Module()
        e, mb = self._e, self._m
        ma, mbb = self.a[:mb], self.b[:mb]
        ea, eb = self.a[mb:mb + e], self.b[mb:mb + e]
        sign = self.a[-1] ^ self.b[-1]
        p = (ma | (1 << mb)) * (mbb | (1 << mb))      # 2 * (mb + 1) bits, leading 1 at top
        norm = p[2 * mb + 1]                           # product in [2, 4): shift right once
        kept = Mux(norm, p[mb + 1:2 * mb + 1], p[mb:2 * mb])
        guard = Mux(norm, p[mb], p[mb - 1])
        sticky = Mux(norm, p[:mb] != 0, (p[:mb - 1] != 0) if mb > 1 else 0)
        round_up = guard & (sticky | kept[0])
        rounded = kept + round_up                      # mb + 1 bits: carry into the exponent
        exp = ea + eb - self.bias + norm + rounded[mb]
        m.d.comb += self.y.eq(Cat(rounded[:mb], exp[:e], sign))
        return m


def _int_add(bits, a, b):
    return (_to_signed(a, bits) + _to_signed(b, bits)) & ((1 << (bits + 1)) - 1)


def _int_mult(bits, a, b):
    mask = (1 << (2 * bits)) - 1
    return np.array([(int(x) * int(y)) & mask
                     for x, y in zip(_to_signed(a, bits), _to_signed(b, bits))], dtype=object)


def _float_mult(exp_bits, man_bits, a, b):
    """Bit pattern of the rounded product (numpy's IEEE arithmetic)."""
    ftype, utype = _NUMPY_FLOATS[(exp_bits, man_bits)]
    fa = np.asarray(a, dtype=np.int64).astype(utype).view(ftype)
    fb = np.asarray(b, dtype=np.int64).astype(utype).view(ftype)
    return (fa * fb).view(utype).astype(np.int64)


def _normal_operands(exp_bits, man_bits, rng, n):
    """``n`` random operand pairs (bit patterns) whose product is normal: exponent fields
    drawn so that their sum minus the bias stays two away from both ends of the range."""
    e, mb = exp_bits, man_bits
    bias, top = (1 << (e - 1)) - 1, (1 << e) - 2
    ea = rng.integers(1, top + 1, n)
    lo = np.maximum(1, bias + 2 - ea)
    hi = np.minimum(top, top - 2 + bias - ea)
    eb = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)

    def pattern(exp):
        man = rng.integers(0, 1 << mb, n)
        sign = rng.integers(0, 2, n)
        return (sign << (e + mb)) | (exp << mb) | man
    return pattern(ea), pattern(eb)


@dataclass(frozen=True)
class ReferenceOperator:
    """One reference operator: ``component`` class and its ``args``, the bit-exact ``model``
    of its output port ``y`` and the operand ``stimulus`` energy is measured on."""
    name: str
    component: type
    args: tuple

    def build(self):
        return self.component(*self.args)

    @property
    def operand_bits(self):
        return self.args[0] if self.component is not FloatMultiplier else 1 + sum(self.args)

    def model(self, a, b):
        """``y`` for operand bit patterns ``a``, ``b`` (arrays)."""
        fn = {IntAdder: _int_add, IntMultiplier: _int_mult,
              FloatMultiplier: _float_mult}[self.component]
        return fn(*self.args, a, b)

    def stimulus(self, rng, n):
        """``n`` operand pairs: uniform bit patterns; for floats, normal numbers whose
        product is normal."""
        if self.component is FloatMultiplier:
            return _normal_operands(*self.args, rng, n)
        return (rng.integers(0, 1 << self.operand_bits, n, dtype=np.uint64),
                rng.integers(0, 1 << self.operand_bits, n, dtype=np.uint64))


#: Horowitz anchor name -> :class:`ReferenceOperator`.
REFERENCE_OPERATORS = {op.name: op for op in (
    ReferenceOperator("8b int add", IntAdder, (8,)),
    ReferenceOperator("32b int add", IntAdder, (32,)),
    ReferenceOperator("8b int mult", IntMultiplier, (8,)),
    ReferenceOperator("32b int mult", IntMultiplier, (32,)),
    ReferenceOperator("16b fp mult", FloatMultiplier, (5, 10)),
    ReferenceOperator("32b fp mult", FloatMultiplier, (8, 23)),
)}


def reference_operator(name):
    """The :class:`ReferenceOperator` called ``name`` (a key of
    :data:`REFERENCE_OPERATORS`)."""
    if name not in REFERENCE_OPERATORS:
        raise ParameterError(f"reference operator must be one of "
                             f"{', '.join(REFERENCE_OPERATORS)}, not {name!r}")
    return REFERENCE_OPERATORS[name]
