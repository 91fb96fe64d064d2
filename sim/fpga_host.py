"""The host side of :mod:`nybble.hw.fpga_top`'s byte protocol: encode commands, run a GEMM.

The same code drives the Amaranth simulation of :class:`~nybble.hw.fpga_top.UartHost` /
:class:`~nybble.hw.fpga_top.HostBridge` and a board on a serial port: a :class:`GemmJob`
is a list of ``(request bytes, reply length)`` steps; :meth:`GemmJob.run` sends them over
any object with ``write(bytes)`` and ``read(n) -> bytes`` (a ``serial.Serial`` from
pyserial, for instance) and returns the exact accumulators, the RTL's cycle count and its
overflow flag.  Operand layout and result addresses come from :mod:`.schedule`, as for every
other driver.
"""

from dataclasses import dataclass, field

import numpy as np

from nybble.hw.fpga_top import (CMD_INFO, CMD_READ, CMD_RUN, CMD_WRITE, INFO_MAGIC,
                                JOB_FIELD_BYTES, REPLY_ERROR)
from nybble.hw.top import WR_A, WR_B
from .schedule import chunks_to_ints, schedule_for

__all__ = ["encode_info", "encode_write", "encode_run", "encode_read", "decode_info",
           "decode_run", "decode_read", "GemmJob", "ProtocolError"]

_MAX_COUNT = 0xFFFF


class ProtocolError(RuntimeError):
    """The board answered something the protocol does not allow."""


def _le(value, nbytes, what):
    value = int(value)
    if not 0 <= value < 1 << (8 * nbytes):
        raise ValueError(f"{what} must be in 0..{(1 << (8 * nbytes)) - 1}, not {value}")
    return value.to_bytes(nbytes, "little")


def encode_info():
    return bytes([CMD_INFO])


def encode_write(sel, addr, words, wr_bytes):
    """WRITE ``words`` (ints) to buffer ``sel`` from ``addr`` on; at most 65535 words."""
    words = [int(w) for w in words]
    if len(words) > _MAX_COUNT:
        raise ValueError(f"One WRITE carries at most {_MAX_COUNT} words, not {len(words)}")
    body = b"".join(_le(w, wr_bytes, "Buffer word") for w in words)
    return (bytes([CMD_WRITE]) + _le(sel, 1, "Buffer select") + _le(addr, 2, "Address")
            + _le(len(words), 2, "Word count") + body)


def encode_run(m_tiles, n_tiles, k_len, m_len):
    return bytes([CMD_RUN]) + b"".join(
        _le(v, JOB_FIELD_BYTES, name) for v, name in
        ((m_tiles, "m_tiles"), (n_tiles, "n_tiles"), (k_len, "k_len"), (m_len, "m_len")))


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


@dataclass
class GemmJob:
    """One GEMM on a board running :class:`~nybble.hw.fpga_top.HostBridge` for ``config``.

    ``steps``: ``(request, reply_length)`` in order; :meth:`finish` turns the replies into the
    result.  Build with :meth:`for_gemm`."""

    config: object
    schedule: object
    acc_bytes: int
    steps: list = field(default_factory=list)
    _reads: list = field(default_factory=list, repr=False)

    @classmethod
    def for_gemm(cls, config, a_codes, b_codes, *, wr_bytes, col_bits):
        """Steps that load A and B, run, and read every result of ``a_codes @ b_codes``.

        ``wr_bytes`` / ``col_bits``: from the bridge (:meth:`HostBridge.info_bytes`, or an
        INFO reply)."""
        a_codes, b_codes = np.asarray(a_codes), np.asarray(b_codes)
        if a_codes.ndim != 2 or b_codes.ndim != 2 or a_codes.shape[1] != b_codes.shape[0]:
            raise ValueError(f"a_codes and b_codes must be M x K and K x N, not "
                             f"{a_codes.shape} and {b_codes.shape}")
        m, k = a_codes.shape
        n = b_codes.shape[1]
        sched = schedule_for(config, m, n, k)
        sched.check_fits(config)
        fmt_a, fmt_b = config.formats[:2]
        job = cls(config, sched, -(-config.acc_bits // 8))
        for sel, words in ((WR_A, chunks_to_ints(sched.a_words(a_codes, fmt_a))),
                           (WR_B, chunks_to_ints(sched.b_words(b_codes, fmt_b)))):
            for start in range(0, len(words), _MAX_COUNT):
                chunk = words[start:start + _MAX_COUNT]
                job.steps.append((encode_write(sel, start, chunk, wr_bytes), 1))
        j = sched.job
        job.steps.append((encode_run(j["m_tiles"], j["n_tiles"], j["k_len"], j["m_len"]), 6))
        for start, count in _runs(sched.result_addresses(col_bits)):
            job._reads.append(len(job.steps))
            job.steps.append((encode_read(start, count), count * job.acc_bytes))
        return job

    def finish(self, replies):
        """``replies`` (one ``bytes`` per step) -> ``(result, cycles, overflow)``: the (M, N)
        accumulators (ints on the PE's grid), the RTL's cycle count and overflow flag."""
        if len(replies) != len(self.steps):
            raise ProtocolError(f"{len(self.steps)} replies expected, got {len(replies)}")
        overflow, cycles = None, None
        values = []
        for i, ((request, length), reply) in enumerate(zip(self.steps, replies)):
            reply = bytes(reply)
            if len(reply) != length:
                raise ProtocolError(f"step {i} (command {request[0]:#04x}) expected "
                                    f"{length} reply bytes, got {len(reply)}: {reply.hex()}")
            if request[0] == CMD_WRITE and reply != bytes([CMD_WRITE]):
                raise ProtocolError(f"WRITE was answered {reply.hex()}"
                                    + (" (command not understood)"
                                       if reply == bytes([REPLY_ERROR]) else ""))
            elif request[0] == CMD_RUN:
                overflow, cycles = decode_run(reply)
            elif request[0] == CMD_READ:
                values += decode_read(reply, self.acc_bytes)
        mask = (1 << self.config.acc_bits) - 1
        result = self.schedule.unpack_results([v & mask for v in values],
                                              self.config.acc_bits)
        return result, cycles, overflow

    def run(self, transport):
        """Send every step over ``transport`` (``write(bytes)``, ``read(n) -> bytes``) and
        return :meth:`finish` of the replies."""
        replies = []
        for request, length in self.steps:
            transport.write(request)
            reply = transport.read(length) if length else b""
            if len(reply) != length:
                raise ProtocolError(f"timed out: command {request[0]:#04x} expected {length} "
                                    f"reply bytes, got {len(reply)}")
            replies.append(reply)
        return self.finish(replies)

