"""A minimal 8N1 UART: one transmitter, one receiver, byte streams on the inside.

::

    data, valid --> [UartTx] --> tx          rx --> [2-FF sync] --> [UartRx] --> data, valid
         ready <--                                                     ready -->

Line format: idle high, one start bit (0), eight data bits least-significant first, one stop
bit (1); ``divisor`` clock cycles per bit (``clock frequency / baud rate``, at least 4).

:class:`UartTx` takes a byte when ``valid & ready`` and sends it; ``ready`` is low for the 10
bit times of a frame.  :class:`UartRx` samples the middle of each bit; a frame whose start bit
is gone at mid-bit (a glitch) or whose stop bit is 0 (framing error) is dropped.  A received
byte waits in ``data`` with ``valid`` until ``ready``; a byte that completes while the previous
one still waits is dropped and sets the sticky ``overrun`` flag (a UART cannot be
back-pressured: the consumer must keep up, one byte per 10 bit times).
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.sw.formats import check_integral

__all__ = ["UartTx", "UartRx", "MIN_DIVISOR"]

#: The smallest ``divisor`` (clock cycles per bit) the receiver can sample reliably.
MIN_DIVISOR = 4


def _check_divisor(divisor):
    return check_integral("UART divisor (clock cycles per bit)", divisor, MIN_DIVISOR,
                          1 << 24)


class UartTx(wiring.Component):
    """Transmitter: ``data``/``valid``/``ready`` byte stream in, ``tx`` line out (idle 1).

    The start bit begins two clock edges after the cycle that accepts the byte (``tx`` is
    registered); every bit lasts ``divisor`` cycles, and ``ready`` rises again in time for
    the next start bit to follow the stop bit directly."""

    def __init__(self, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({"data": In(8), "valid": In(1), "ready": Out(1),
                          "tx": Out(1, init=1)})

    divisor = property(lambda self: self._divisor)

    def elaborate(self, platform):
        m = Module()
        frame = Signal(10, init=0x3FF)          # stop, data[7:0], start: shifted out LSB first
        bits_left = Signal(range(11))
        timer = Signal(range(self._divisor))
        # the last cycle of the stop bit can take the next byte: frames follow back to back
        last = (bits_left == 1) & (timer == 0)
        m.d.comb += self.ready.eq((bits_left == 0) | last)
        with m.If(self.ready & self.valid):
            m.d.sync += [frame.eq(Cat(0, self.data, 1)), bits_left.eq(10),
                         timer.eq(self._divisor - 1)]
        with m.Elif(bits_left != 0):
            with m.If(timer == 0):
                m.d.sync += [frame.eq(Cat(frame[1:], 1)), bits_left.eq(bits_left - 1),
                             timer.eq(self._divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        # registered output (no combinational glitches on the line): one cycle behind `frame`
        m.d.sync += self.tx.eq((bits_left == 0) | frame[0])
        return m


class UartRx(wiring.Component):
    """Receiver: ``rx`` line in (asynchronous: synchronised here), byte stream out."""

    def __init__(self, divisor):
        self._divisor = _check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1),
                          "ready": In(1), "overrun": Out(1)})

    divisor = property(lambda self: self._divisor)

    def elaborate(self, platform):
        m = Module()
        d = self._divisor
        sync1 = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]
        timer = Signal(range(d))
        bit = Signal(range(8))
        shreg = Signal(8)
        with m.If(self.valid & self.ready):
            m.d.sync += self.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(~line):
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
                    with m.Else():
                        m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1),
                                 timer.eq(d - 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(line):
                        with m.If(self.valid & ~self.ready):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.data.eq(shreg), self.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m
