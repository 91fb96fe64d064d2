"""Bit-serial building blocks: the weight decoder and the lockstep PE that arrays host.

A bit-serial array decodes each weight once, at the top of its column, and forwards the
decoded weight down the column with the activations' wavefront::

     b[j], sel[j] (after the column's skew)
          |
   +----------------------+
   | BitSerialDecoder     |   (sel, code) -> neg, odd significand mag, shift, cycles
   +----------------------+   (the decode ROM: one per column, not one per PE)
          | w (SerialWeight)
          v
   a --> LockstepBitSerialPE(0, j) --> a_out
          | w_out                       cycle ``step`` of a beat: if mag bit ``step``,
          v                             +-(a << (shift + step)) enters the accumulator
   a --> LockstepBitSerialPE(1, j) --> ...

The decoded weight is :func:`serial_weight_layout` of the PE's spec; its values come
straight from :attr:`nybble.hw.spec.BitSerialSpec.decode` (``value * 2**weight_grid ==
(-1)**neg * mag << shift``), so the decoder restates no table.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .accumulator import Accumulator
from .product import decode
from .spec import BitSerialSpec
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["serial_weight_layout", "BitSerialDecoder", "LockstepBitSerialPE", "max_shift_amount",
           "step_bits"]


def _check_spec(spec):
    if not isinstance(spec, BitSerialSpec):
        raise ParameterTypeError(f"spec must be a BitSerialSpec, not {spec!r}")
    return spec


def serial_weight_layout(spec):
    """The decoded weight of ``spec``'s data types: ``neg`` (1 bit), ``mag`` (the odd
    significand, as many bits as the slowest type's cycles), ``shift`` (wide enough for
    ``shift + step``) and ``cycles`` (the type's cycles per MAC)."""
    spec = _check_spec(spec)
    return data.StructLayout({
        "neg": 1,
        "mag": max(c for _, c in spec.decode),
        # shift + step stays below 2**width
        "shift": max(1, max_shift_amount(spec).bit_length()),
        "cycles": max(1, max(c for _, c in spec.decode).bit_length()),
    })


def max_shift_amount(spec):
    """The largest ``shift + step`` of a MAC that adds a term: the widest decoded shift plus
    the slowest type's last step."""
    spec = _check_spec(spec)
    return max(r[2] for rows, _ in spec.decode for r in rows) + spec.latency - 1


def step_bits(spec):
    """Width of the array's cycle-in-beat counter ``step`` (0 .. latency - 1)."""
    return max(1, (_check_spec(spec).latency - 1).bit_length())


class BitSerialDecoder(wiring.Component):
    """The decode ROM (combinational): weight code ``b`` of data type ``dtypes[sel]`` ->
    ``w`` (:func:`serial_weight_layout`).  A ``sel`` past the data types decodes to a zero
    weight of one cycle.

    Ports: ``sel`` ``In(sel_bits)``, ``b`` ``In(b_bits)``, ``w`` ``Out(SerialWeight)``.
    """

    def __init__(self, spec):
        self._spec = _check_spec(spec)
        super().__init__({"sel": In(unsigned(spec.sel_bits)), "b": In(unsigned(spec.b_bits)),
                          "w": Out(serial_weight_layout(spec))})

    spec = property(lambda self: self._spec)

    def elaborate(self, platform):
        m = Module()
        layout = serial_weight_layout(self._spec)
        b_bits = len(self.b)
        # one flat table indexed by (sel, b), each entry the whole decoded word: a simulator
        # compiles it to one lookup (nested per-field cases became branch chains); the same
        # function in gates
        with m.Switch(Cat(self.b, self.sel)):
            for s, (rows, cyc) in enumerate(self._spec.decode):
                for code, (neg, mag, sh) in enumerate(rows):
                    with m.Case((s << b_bits) | code):
                        m.d.comb += self.w.eq(layout.const(
                            {"neg": neg, "mag": mag, "shift": sh, "cycles": cyc}))
            with m.Default():
                m.d.comb += self.w.eq(layout.const({"cycles": 1}))
        return m


class LockstepBitSerialPE(wiring.Component):
    """The bit-serial PE of a lockstep array: takes a decoded weight, holds nothing.

    The array keeps every input stable for a *beat* and counts its cycles in ``step``
    (0, 1, ...); on cycle ``step`` of a valid MAC, if bit ``step`` of ``w.mag`` is set,
    ``+-(a << (w.shift + step))`` enters the accumulator (``first`` loads it at ``step ==
    0``; past the MAC's own ``w.cycles`` it adds 0).  ``a``, ``w``, ``valid``, ``first`` are
    forwarded (``*_out``) on ``advance`` (the array's end of a beat, when the slowest valid MAC
    in the array is done): one beat per ``advance``.  ``acc`` after a beat is
    bit for bit :meth:`BitSerialSpec.model` of the MACs so far (``acc_bits``, ``overflow``
    as the spec says; grid ``2**-frac_bits``).

    Ports: ``a`` ``In(a_bits)``, ``w`` ``In(SerialWeight)``, ``valid``, ``first``, ``step``
    ``In(step_bits)``, ``advance``; ``a_out``, ``w_out``, ``valid_out``, ``first_out``,
    ``acc`` ``Out(signed(acc_bits))``, ``overflow``.
    """

    def __init__(self, spec, *, src_loc_at=0):
        spec = _check_spec(spec)
        if not spec.lockstep:
            raise ParameterError("LockstepBitSerialPE needs a BitSerialSpec made with "
                                 "lockstep=True, not lockstep=False")
        self._spec = spec
        wl = serial_weight_layout(spec)
        super().__init__({
            "a": In(unsigned(spec.a_bits)), "w": In(wl), "valid": In(1), "first": In(1),
            "step": In(unsigned(step_bits(spec))), "advance": In(1),
            "a_out": Out(unsigned(spec.a_bits)), "w_out": Out(wl), "valid_out": Out(1),
            "first_out": Out(1), "acc": Out(signed(spec.acc_bits)), "overflow": Out(1)},
            src_loc_at=1 + src_loc_at)

    spec = property(lambda self: self._spec)
    latency = property(lambda self: self._spec.latency, doc="the slowest data type's cycles")

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        w = self.w
        # one register for everything forwarded: a single enabled update per PE (simulators
        # copy one word per beat instead of four; the same flip-flops and enables in gates)
        fwd_layout = data.StructLayout({"a": len(self.a), "w": len(w.as_value()), "valid": 1,
                                        "first": 1})
        fwd = Signal(fwd_layout, name="forward")
        with m.If(self.advance):
            m.d.sync += fwd.eq(Cat(self.a, w, self.valid, self.first))
        m.d.comb += [self.a_out.eq(fwd.a), self.w_out.eq(fwd.w), self.valid_out.eq(fwd.valid),
                     self.first_out.eq(fwd.first)]
        amount = Signal.like(w.shift, name="shift_now")
        m.d.comb += amount.eq(w.shift + self.step)
        # a MAC that adds shifts by at most the widest shift plus the last step: the shifter
        # and the accumulator's input are only that wide (the decoded field alone would allow
        # 2**width - 1).  The sign is applied to the activation before the shift (a_bits + 1
        # bits instead of the shifted term): (-a) << n == -(a << n), exact at this width
        widest = max_shift_amount(spec)
        a = decode(spec.fmt_a, self.a).mag
        signed_a = Mux(w.neg, -a, a)
        term = Signal(signed(len(signed_a) + widest), name="term")
        m.d.comb += term.eq(Mux(w.mag.bit_select(self.step, 1),
                                (signed_a << amount)[:len(term)].as_signed(), 0))
        m.submodules.accumulator = acc = Accumulator(len(term), spec.acc_bits,
                                                     spec.overflow_mode)
        # en is the whole beat of a valid MAC: past the MAC's own cycles its significand bits
        # are 0 (a type's cycles are its widest odd significand's bits), so the accumulator
        # adds 0 -- no change, no overflow -- and no compare with w.cycles is needed
        m.d.comb += [acc.p.eq(term), acc.en.eq(self.valid),
                     acc.first.eq(self.valid & self.first & (self.step == 0)),
                     self.acc.eq(acc.acc), self.overflow.eq(acc.overflow)]
        return m
