"""The host side of :mod:`nybble.hw.fpga_top`'s byte protocol: encode commands, run a GEMM.

:class:`SerialHost` has the methods of the array top's host driver
(:class:`nybble.sim.host.ArrayHost`: ``load``, ``run``, ``read``), each sent as one command,
so :func:`nybble.sim.host.run_job` runs a GEMM on a board exactly as on a simulated top.  It
talks through any *transport* with ``async exchange(request, reply_length) -> bytes``: the
Amaranth simulation of :class:`~nybble.hw.fpga_top.HostBridge` / ``UartHost`` in the tests, or
:class:`StreamTransport` around a serial port (``write(bytes)``, ``read(n) -> bytes``, e.g.
pyserial's ``serial.Serial``).  Operand layout and result addresses come from
:mod:`.schedule`, as for every other driver.
"""

from nybble.hw.fpga_top import (CMD_INFO, CMD_READ, CMD_RUN, CMD_WRITE, INFO_MAGIC,
                                JOB_FIELD_BYTES, REPLY_ERROR)
from nybble.hw.layout import JOB_FIELDS
from nybble.sw.errors import ParameterError, ToolError

__all__ = ["encode_info", "encode_write", "encode_run", "encode_read", "decode_info",
           "decode_run", "decode_read", "SerialHost", "StreamTransport", "ProtocolError"]

_MAX_COUNT = 0xFFFF


class ProtocolError(ToolError):
    """The board answered something the protocol does not allow."""


def _le(value, nbytes, what):
    value = int(value)
    if not 0 <= value < 1 << (8 * nbytes):
        raise ParameterError(f"{what} must be in 0..{(1 << (8 * nbytes)) - 1}, not {value}")
    return value.to_bytes(nbytes, "little")


def encode_info():
    return bytes([CMD_INFO])


def encode_write(sel, addr, words, wr_bytes):
    """WRITE ``words`` (ints) to buffer ``sel`` from ``addr`` on; at most 65535 words."""
    words = [int(w) for w in words]
    if len(words) > _MAX_COUNT:
        raise ParameterError(f"One WRITE carries at most {_MAX_COUNT} words, not {len(words)}")
    body = b"".join(_le(w, wr_bytes, "Buffer word") for w in words)
    return (bytes([CMD_WRITE]) + _le(sel, 1, "Buffer select") + _le(addr, 2, "Address")
            + _le(len(words), 2, "Word count") + body)


def encode_run(job):
    """RUN with the job inputs ``job`` (a dict of :data:`~nybble.hw.layout.JOB_FIELDS`)."""
    return bytes([CMD_RUN]) + b"".join(_le(job[name], JOB_FIELD_BYTES, name)
                                       for name in JOB_FIELDS)


def encode_read(addr, count):
    return bytes([CMD_READ]) + _le(addr, 2, "Address") + _le(count, 2, "Read count")


def decode_info(reply):
    """INFO reply -> dict (``rows``, ``cols``, ``lanes``, ``wr_bytes``, ``acc_bytes``,
    ``col_bits``, ``version``)."""
    reply = bytes(reply)
    if len(reply) != 8 or reply[0] != INFO_MAGIC:
        raise ProtocolError(f"INFO reply must be 8 bytes starting with {INFO_MAGIC:#04x}, "
                            f"not {reply.hex()}")
    keys = ("version", "rows", "cols", "lanes", "wr_bytes", "acc_bytes", "col_bits")
    return dict(zip(keys, reply[1:]))


def decode_run(reply):
    """RUN reply -> ``(overflow, cycles)``."""
    reply = bytes(reply)
    if len(reply) != 6 or reply[0] != CMD_RUN:
        raise ProtocolError(f"RUN reply must be 6 bytes starting with {CMD_RUN:#04x}, "
                            f"not {reply.hex()}")
    return bool(reply[1] & 1), int.from_bytes(reply[2:6], "little")


def decode_read(reply, acc_bytes):
    """READ reply -> list of signed ints (``acc_bytes`` each, two's complement)."""
    reply = bytes(reply)
    if len(reply) % acc_bytes:
        raise ProtocolError(f"READ reply of {len(reply)} bytes is not a whole number of "
                            f"{acc_bytes}-byte results")
    return [int.from_bytes(reply[i:i + acc_bytes], "little", signed=True)
            for i in range(0, len(reply), acc_bytes)]


def _runs(addresses):
    """Consecutive runs of ``addresses`` as ``(start, count)``, at most 65535 each."""
    runs = []
    for a in (int(x) for x in addresses):
        if runs and runs[-1][0] + runs[-1][1] == a and runs[-1][1] < _MAX_COUNT:
            runs[-1][1] += 1
        else:
            runs.append([a, 1])
    return [tuple(r) for r in runs]


class StreamTransport:
    """A transport over a byte stream with ``write(bytes)`` and ``read(n) -> bytes`` (a
    serial port); a short read is a timeout."""

    def __init__(self, stream):
        self._stream = stream

    async def exchange(self, request, length):
        self._stream.write(request)
        reply = self._stream.read(length) if length else b""
        if len(reply) != length:
            raise ProtocolError(f"timed out: command {request[0]:#04x} expected {length} "
                                f"reply bytes, got {len(reply)}")
        return bytes(reply)


class SerialHost:
    """The host driver's methods (``load``, ``run``, ``read``) as commands over a transport
    (module docstring).  ``info``: the board's INFO reply (:meth:`connect` reads it);
    ``acc_bits``: the array's accumulator width (default ``8 * acc_bytes``; results are
    returned modulo ``2**acc_bits``, as the port host returns them)."""

    def __init__(self, transport, info, *, acc_bits=None):
        self.transport, self.info = transport, dict(info)
        self.acc_bits = 8 * self.info["acc_bytes"] if acc_bits is None else int(acc_bits)

    @classmethod
    async def connect(cls, transport, *, acc_bits=None):
        """Ask the board for INFO and return a host for it."""
        return cls(transport, decode_info(await transport.exchange(encode_info(), 8)),
                   acc_bits=acc_bits)

    async def idle(self):
        pass  # the bridge holds the top's inputs idle between commands

    async def load(self, sel, words, start=0):
        words = [int(w) for w in words]
        for at in range(0, len(words), _MAX_COUNT):
            request = encode_write(sel, start + at, words[at:at + _MAX_COUNT],
                                   self.info["wr_bytes"])
            reply = await self.transport.exchange(request, 1)
            if reply != bytes([CMD_WRITE]):
                raise ProtocolError(f"WRITE was answered {reply.hex()}"
                                    + (" (command not understood)"
                                       if reply == bytes([REPLY_ERROR]) else ""))

    async def run(self, job):
        return decode_run(await self.transport.exchange(encode_run(job), 6))[::-1]

    async def read(self, addresses):
        """The results at ``addresses``, unsigned (``< 2**acc_bits``)."""
        acc_bytes, mask = self.info["acc_bytes"], (1 << self.acc_bits) - 1
        values = []
        for start, count in _runs(addresses):
            reply = await self.transport.exchange(encode_read(start, count), count * acc_bytes)
            values += [v & mask for v in decode_read(reply, acc_bytes)]
        return values
