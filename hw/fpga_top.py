"""An :class:`~nybble.hw.top.ArrayTop` behind a two-wire UART: what goes on an FPGA board.

::

    rx --> [UartRx] --bytes--> +------------+ --wr_*--> +-------------------------------+
                               | HostBridge |  job/start | ArrayTop: A/B buffers,         |
    tx <-- [UartTx] <-bytes--- | (commands) | <--done--- | sequencer, array, C banks     |
                               +------------+ --rd_addr->| (host write / read ports)     |
                                              <-rd_data- +-------------------------------+

The array's host interface (hundreds of wires for a 16-bit buffer word, a 32-bit result, four
20-bit job sizes) stays on chip; the board sees ``rx``, ``tx`` and its clock.

Byte protocol (:class:`HostBridge`; multi-byte fields little-endian; the host sends a command
and waits for its reply before the next one; :mod:`nybble.sim.fpga_host` speaks it):

=======  ==========  ===============================================  =========================
byte     name        then                                             reply
=======  ==========  ===============================================  =========================
``00``   INFO        --                                               8 bytes: ``4E 01`` rows
                                                                      cols lanes wr_bytes
                                                                      acc_bytes col_bits
``01``   WRITE       sel (1), addr (2), count (2), count words of     ``01``
                     ``wr_bytes`` each, to buffer ``sel``
                     (0 A, 1 B, 3 LUT) at addr, addr + 1, ...
``02``   RUN         m_tiles, n_tiles, k_len, m_len (3 bytes each)    ``02``, overflow (1),
                     -- starts the job                                cycles (4), when done
``03``   READ        addr (2), count (2): result addresses            count x ``acc_bytes``
                     addr .. addr + count - 1 (``rd_addr`` of the     (two's complement,
                     array top)                                       sign-extended; none
                                                                      for count 0)
other    --          --                                               ``FF``
=======  ==========  ===============================================  =========================

Result reads use the array top's synchronous read port with ``read_latency=2``: each C bank
(block RAM on iCE40 and ECP5) has a register right behind it, before the column multiplexer,
so the block RAM's clock-to-out (5.6 ns on an ECP5) meets no logic; the bridge holds the
address for two clock edges, registers the word on the next one and replies with it.
"""

from amaranth.build import ResourceError
from amaranth.hdl import Cat, Const, Elaboratable, Module, Signal, signed
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from nybble.sw.formats import check_integral
from .config import ArrayConfig
from .layout import JOB_FIELDS, TopLayout
from .top import ArrayTop
from .uart import UartRx, UartTx
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["HostBridge", "UartHost", "BoardTop", "PeProbeTop", "uart_divisor", "CMD_INFO", "CMD_WRITE", "CMD_RUN",
           "CMD_READ", "REPLY_ERROR", "INFO_MAGIC", "PROTOCOL_VERSION", "HEADER_BYTES",
           "JOB_FIELD_BYTES", "DEFAULT_BAUD"]

CMD_INFO, CMD_WRITE, CMD_RUN, CMD_READ = 0x00, 0x01, 0x02, 0x03
REPLY_ERROR = 0xFF
INFO_MAGIC = 0x4E  # "N"
PROTOCOL_VERSION = 1
#: Header bytes after each command byte.
HEADER_BYTES = {CMD_INFO: 0, CMD_WRITE: 5, CMD_RUN: 12, CMD_READ: 4}
JOB_FIELD_BYTES = 3
DEFAULT_BAUD = 115200

_ADDR_FIELD_BITS = 16


def _check_config(config):
    if not isinstance(config, ArrayConfig):
        raise ParameterTypeError(f"config must be an ArrayConfig, not {config!r}")
    return config


class HostBridge(wiring.Component):
    """Byte-stream command interpreter in front of an :class:`ArrayTop` (module docstring).

    Ports: ``rx_data``/``rx_valid``/``rx_ready`` (bytes from the host), ``tx_data``/
    ``tx_valid``/``tx_ready`` (bytes to the host), ``busy`` (a job runs).  The array top is
    the submodule ``top``.  Raises ``ValueError`` when a buffer or result address does not
    fit the protocol's 16-bit address field.
    """

    def __init__(self, config):
        self._config = _check_config(config)
        self._layout = lay = TopLayout.of(config)
        for what, bits in (("buffer address (largest of a_depth, b_depth, c_depth)",
                            lay.addr_bits),
                           ("result address (c_depth x columns)", lay.rd_addr_bits)):
            if bits > _ADDR_FIELD_BITS:
                raise ParameterError(f"The host protocol's {what} must fit in "
                                 f"{_ADDR_FIELD_BITS} bits, not {bits}; lower the depths")
        self.wr_bytes = -(-lay.wr_bits // 8)
        self.acc_bytes = -(-config.acc_bits // 8)
        super().__init__({
            "rx_data": In(8), "rx_valid": In(1), "rx_ready": Out(1),
            "tx_data": Out(8), "tx_valid": Out(1), "tx_ready": In(1),
            "busy": Out(1),
        })

    config = property(lambda self: self._config)
    layout = property(lambda self: self._layout)

    def info_bytes(self):
        """The reply to INFO."""
        cfg, lay = self._config, self._layout
        return bytes([INFO_MAGIC, PROTOCOL_VERSION, cfg.rows, cfg.cols, lay.lanes,
                      self.wr_bytes, self.acc_bytes, lay.col_bits])

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = ArrayTop(self._config, read_latency=2)
        acc_bytes, wr_bytes = self.acc_bytes, self.wr_bytes
        hdr_max = max(HEADER_BYTES.values())
        resp_bytes = max(8, 6, acc_bytes)

        cmd = Signal(8)
        is_info, has_header = Signal(), Signal()
        hdr = Signal(8 * hdr_max)
        idx = Signal(range(max(hdr_max, wr_bytes) + 1))
        hdr_len = Signal(range(hdr_max + 1))
        word = Signal(8 * wr_bytes)
        sel = Signal(2)
        addr = Signal(_ADDR_FIELD_BITS)
        # the result word, registered: from the top's registered bank data only its column
        # multiplexer runs to here
        rd_word = Signal(signed(self._config.acc_bits))
        m.d.sync += rd_word.eq(top.rd_data)
        count = Signal(16)
        resp = Signal(8 * resp_bytes)
        resp_left = Signal(range(resp_bytes + 1))
        start = Signal()
        jobs = [Signal(8 * JOB_FIELD_BYTES, name=f"job_{n}") for n in JOB_FIELDS]

        m.d.comb += [
            top.wr_addr.eq(addr), top.wr_data.eq(word), top.wr_sel.eq(sel),
            top.rd_addr.eq(addr), top.start.eq(start),
            *(getattr(top, n).eq(j) for n, j in zip(JOB_FIELDS, jobs)),
            self.tx_data.eq(resp[:8]), self.busy.eq(top.busy),
        ]
        with m.Switch(cmd):
            for c, n in HEADER_BYTES.items():
                if n:
                    with m.Case(c):
                        m.d.comb += hdr_len.eq(n)
            with m.Default():
                m.d.comb += hdr_len.eq(0)

        def field(offset, nbytes):
            return hdr[8 * offset:8 * (offset + nbytes)]

        def reply(value, nbytes):
            m.d.sync += [resp.eq(value), resp_left.eq(nbytes)]

        with m.FSM():
            with m.State("IDLE"):
                # the command byte is only registered here, and decoded into two flags: no path
                # runs from the UART's byte through the decode into the reply registers
                m.d.comb += self.rx_ready.eq(1)
                with m.If(self.rx_valid):
                    m.d.sync += [cmd.eq(self.rx_data), idx.eq(0),
                                 is_info.eq(self.rx_data == CMD_INFO),
                                 has_header.eq((self.rx_data == CMD_WRITE) |
                                               (self.rx_data == CMD_RUN) |
                                               (self.rx_data == CMD_READ))]
                    m.next = "DECODE"
            with m.State("DECODE"):
                with m.If(is_info):
                    reply(int.from_bytes(self.info_bytes(), "little"), 8)
                    m.next = "SEND"
                with m.Elif(has_header):
                    m.next = "HEADER"
                with m.Else():
                    reply(REPLY_ERROR, 1)
                    m.next = "SEND"
            with m.State("HEADER"):
                m.d.comb += self.rx_ready.eq(1)
                with m.If(self.rx_valid):
                    with m.Switch(idx):
                        for i in range(hdr_max - 1):
                            with m.Case(i):
                                m.d.sync += hdr[8 * i:8 * (i + 1)].eq(self.rx_data)
                        with m.Default():
                            m.d.sync += hdr[8 * (hdr_max - 1):].eq(self.rx_data)
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx + 1 == hdr_len):
                        m.next = "EXEC"
            with m.State("EXEC"):
                m.d.sync += idx.eq(0)
                with m.Switch(cmd):
                    with m.Case(CMD_WRITE):
                        m.d.sync += [sel.eq(field(0, 1)), addr.eq(field(1, 2)),
                                     count.eq(field(3, 2))]
                        with m.If(field(3, 2) == 0):
                            reply(CMD_WRITE, 1)
                            m.next = "SEND"
                        with m.Else():
                            m.next = "WDATA"
                    with m.Case(CMD_RUN):
                        m.d.sync += [j.eq(field(JOB_FIELD_BYTES * n, JOB_FIELD_BYTES))
                                     for n, j in enumerate(jobs)]
                        m.d.sync += start.eq(1)
                        m.next = "STARTING"
                    with m.Default():  # CMD_READ
                        m.d.sync += [addr.eq(field(0, 2)), count.eq(field(2, 2))]
                        with m.If(field(2, 2) == 0):
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "RLOAD"
            with m.State("WDATA"):
                m.d.comb += self.rx_ready.eq(1)
                with m.If(self.rx_valid):
                    with m.Switch(idx):
                        for i in range(wr_bytes - 1):
                            with m.Case(i):
                                m.d.sync += word[8 * i:8 * (i + 1)].eq(self.rx_data)
                        with m.Default():
                            m.d.sync += word[8 * (wr_bytes - 1):].eq(self.rx_data)
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == wr_bytes - 1):
                        m.next = "WSTROBE"
            with m.State("WSTROBE"):
                m.d.comb += top.wr_en.eq(1)
                m.d.sync += [addr.eq(addr + 1), count.eq(count - 1), idx.eq(0)]
                with m.If(count == 1):
                    reply(CMD_WRITE, 1)
                    m.next = "SEND"
                with m.Else():
                    m.next = "WDATA"
            with m.State("STARTING"):
                # `start` is high during this cycle; the top is busy from the next one
                m.d.sync += start.eq(0)
                m.next = "RUNNING"
            with m.State("RUNNING"):
                with m.If(~top.busy & top.done):
                    reply(Cat(Const(CMD_RUN, 8), top.overflow, Const(0, 7), top.cycles), 6)
                    m.next = "SEND"
            with m.State("RLOAD"):
                # the synchronous read port takes `addr` at the end of this cycle
                m.next = "RBANK"
            with m.State("RBANK"):
                m.next = "RWORD"  # the bank's data register takes the word
            with m.State("RWORD"):
                m.next = "RDATA"  # `rd_word` takes the word
            with m.State("RDATA"):
                reply(rd_word, acc_bytes)
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += self.tx_valid.eq(1)
                with m.If(self.tx_ready):
                    m.d.sync += [resp.eq(resp >> 8), resp_left.eq(resp_left - 1)]
                    with m.If(resp_left == 1):
                        with m.If((cmd == CMD_READ) & (count != 1)):
                            m.d.sync += [addr.eq(addr + 1), count.eq(count - 1)]
                            m.next = "RLOAD"
                        with m.Else():
                            m.next = "IDLE"
        return m


class UartHost(wiring.Component):
    """:class:`HostBridge` between a :class:`~nybble.hw.uart.UartRx` and a
    :class:`~nybble.hw.uart.UartTx`: ports ``rx`` (in, idle 1), ``tx`` (out, idle 1) and
    ``busy``. ``divisor``: clock cycles per UART bit."""

    def __init__(self, config, divisor):
        self._divisor = check_integral("UART divisor (clock cycles per bit)", divisor, 4,
                                       1 << 24)
        self._bridge = HostBridge(config)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    config = property(lambda self: self._bridge.config)
    bridge = property(lambda self: self._bridge)
    divisor = property(lambda self: self._divisor)

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = UartRx(self._divisor)
        m.submodules.uart_tx = tx = UartTx(self._divisor)
        m.submodules.bridge = bridge = self._bridge
        m.d.comb += [
            rx.rx.eq(self.rx), self.tx.eq(tx.tx),
            bridge.rx_data.eq(rx.data), bridge.rx_valid.eq(rx.valid), rx.ready.eq(bridge.rx_ready),
            tx.data.eq(bridge.tx_data), tx.valid.eq(bridge.tx_valid), bridge.tx_ready.eq(tx.ready),
            self.busy.eq(bridge.busy),
        ]
        return m


def uart_divisor(clock_hz, baud):
    """Clock cycles per UART bit, ``round(clock_hz / baud)``; ``ValueError`` below 4."""
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ParameterError(f"Baud rate {baud} is too fast for a {clock_hz / 1e6:g} MHz "
                         f"clock (at least 4 clock cycles per bit are needed)")
    return divisor


def _uart_pins(platform, who, hint=""):
    """A new module holding the buffers of the board's ``uart`` 0 pins, and the buffers
    ``(rx, tx)``; checked before any module exists (a module left unused warns)."""
    if platform is None:
        raise ParameterError(f"{who} needs a platform (an amaranth-boards board) to find its "
                             f"UART pins{hint}")
    uart = platform.request("uart", 0, dir="-")
    m = Module()
    m.submodules.rx_buffer = rx_buffer = io.Buffer("i", uart.rx)
    m.submodules.tx_buffer = tx_buffer = io.Buffer("o", uart.tx)
    return m, rx_buffer, tx_buffer


class BoardTop(Elaboratable):
    """The top level for an amaranth-boards platform: :class:`UartHost` on the board's
    ``uart`` 0 at ``baud``, the board's default clock as ``sync``, LED 0 (if any) lit while
    a job runs.

    The UART divisor is ``round(platform.default_clk_frequency / baud)``; a board clock too
    slow for ``baud`` (fewer than 4 cycles per bit) raises ``ValueError``."""

    def __init__(self, config, *, baud=DEFAULT_BAUD):
        self._config = _check_config(config)
        self._baud = check_integral("Baud rate", baud, 300, 1 << 24)

    config = property(lambda self: self._config)
    baud = property(lambda self: self._baud)

    def divisor(self, clock_hz):
        return uart_divisor(clock_hz, self._baud)

    def elaborate(self, platform):
        m, rx_buffer, tx_buffer = _uart_pins(platform, "BoardTop",
                                             "; simulate UartHost instead")
        m.submodules.host = host = UartHost(self._config,
                                            self.divisor(platform.default_clk_frequency))
        m.d.comb += [host.rx.eq(rx_buffer.i), tx_buffer.o.eq(host.tx)]
        try:
            led = platform.request("led", 0, dir="-")
        except ResourceError:  # a board without LEDs: nothing to show busy on
            led = None
        if led is not None:
            m.submodules.led_buffer = led_buffer = io.Buffer("o", led)
            m.d.comb += led_buffer.o.eq(host.busy)
        return m


class PeProbeTop(Elaboratable):
    """One PE of ``config``'s array alone on a board, for its Fmax on the array's own device
    and flow (:func:`nybble.synth.fpga.board_pe_fmax`).

    ::

        uart rx --> shift register (every PE input: a register, as in the array) --> PE
        uart tx <-- XOR fold, 4 bits per stage, each stage registered <-- register <-- outputs

    Every path through the PE runs register to register; the harness around it has no path
    longer than one LUT, and every PE output reaches the pin, so nothing is optimised away.
    Built with :meth:`ArrayConfig.build_pe <nybble.hw.config.ArrayConfig.build_pe>`: the PE
    the array instantiates (kind, accumulator, overflow, options)."""

    def __init__(self, config):
        self._config = _check_config(config)

    config = property(lambda self: self._config)

    def elaborate(self, platform):
        m, rx_buffer, tx_buffer = _uart_pins(platform, "PeProbeTop")
        m.submodules.pe = pe = self._config.build_pe()
        members = pe.signature.members.items()
        inputs = [getattr(pe, n) for n, mem in members if mem.flow == wiring.In]
        outputs = [getattr(pe, n) for n, mem in members if mem.flow == wiring.Out]
        chain = Signal(sum(len(p) for p in inputs), name="pe_inputs")
        m.d.sync += chain.eq(Cat(rx_buffer.i, chain[:-1]))
        offset = 0
        for port in inputs:
            m.d.comb += port.eq(chain[offset:offset + len(port)])
            offset += len(port)
        level = Signal(sum(len(p) for p in outputs), name="pe_outputs")
        m.d.sync += level.eq(Cat(*outputs))
        stage = 0
        while len(level) > 1:
            folded = Signal(-(-len(level) // 4), name=f"pe_fold_{stage}")
            m.d.sync += [folded[i].eq(level[4 * i:4 * i + 4].xor()) for i in range(len(folded))]
            level, stage = folded, stage + 1
        m.d.comb += tx_buffer.o.eq(level)
        return m
