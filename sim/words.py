"""The one word codec: unsigned bit fields <-> wide words, as uint32 chunks or Python ints.

Every driver moves wide words: buffer words of the array top (many codes side by side), PE
operand words (``lanes`` codes plus a scale), write-port words of the native harness, result
words.  Field 0 is always the least significant; a word travels either as ``ceil(bits / 32)``
little-endian uint32 chunks (the native harness's format, numpy-fast) or as a Python int (the
simulators' ports).
"""

import numpy as np
from nybble.sw.errors import ParameterError

__all__ = ["pack_fields", "pack_ints", "chunks_to_ints", "ints_to_chunks", "to_signed"]

_MASK32 = np.uint64(0xFFFFFFFF)


def pack_fields(fields, widths):
    """Pack ``fields`` (``(n, f)`` unsigned ints) into ``(n, ceil(total / 32))`` uint32
    chunks; ``widths`` is one width for every field or ``f`` widths, each 1..64 bits.
    Values are masked to their width."""
    fields = np.asarray(fields)
    if fields.ndim != 2:
        raise ParameterError(f"fields must be an (n, f) array, not shape {fields.shape}")
    n, nf = fields.shape
    widths = [int(widths)] * nf if np.ndim(widths) == 0 else [int(w) for w in widths]
    if len(widths) != nf or any(not 1 <= w <= 64 for w in widths):
        raise ParameterError(f"need {nf} field widths in 1..64, not {widths}")
    total = sum(widths)
    out = np.zeros((n, max(1, -(-total // 32))), dtype=np.uint64)
    fields = fields.astype(np.int64).astype(np.uint64)  # two's complement of negatives
    off = 0
    for q, w in enumerate(widths):
        v = fields[:, q] & np.uint64((1 << w) - 1) if w < 64 else fields[:, q]
        c, s = divmod(off, 32)
        # a field of up to 64 bits spans at most three chunks
        out[:, c] |= (v << np.uint64(s)) & _MASK32
        if s + w > 32:
            out[:, c + 1] |= (v >> np.uint64(32 - s)) & _MASK32
        if s + w > 64:
            out[:, c + 2] |= v >> np.uint64(64 - s)
        off += w
    return out.astype(np.uint32)


def pack_ints(fields, widths):
    """Like :func:`pack_fields`, but one Python int per row."""
    return chunks_to_ints(pack_fields(fields, widths))


def chunks_to_ints(chunks):
    """``(n, w)`` uint32 chunks -> list of ``n`` Python ints."""
    chunks = np.asarray(chunks)
    if chunks.shape[1] <= 2:
        v = chunks[:, 0].astype(np.uint64)
        if chunks.shape[1] == 2:
            v |= chunks[:, 1].astype(np.uint64) << np.uint64(32)
        return [int(x) for x in v]
    return [sum(int(c) << (32 * i) for i, c in enumerate(row)) for row in chunks]


def ints_to_chunks(values, width):
    """Words (uint32 chunk arrays, narrower ones zero-extended, or integers below
    ``2**width``) as ``(n, ceil(width / 32))`` uint32 chunks."""
    nw = max(1, -(-int(width) // 32))
    w = np.asarray(values)
    if w.dtype.kind == "f":
        # numpy turns a list mixing ints >= 2**63 with smaller ones into float64 (rounded)
        w = np.asarray(values, dtype=object)
    if w.ndim == 2 and w.dtype == np.uint32:
        if w.shape[1] > nw:
            raise ParameterError(f"words are {w.shape[1]} chunks wide, the port {nw}")
        return np.pad(w, ((0, 0), (0, nw - w.shape[1])))
    if w.dtype != object and nw <= 2:
        u = w.astype(np.uint64).reshape(-1)
        out = np.empty((u.size, nw), np.uint32)
        out[:, 0] = (u & _MASK32).astype(np.uint32)
        if nw == 2:
            out[:, 1] = (u >> np.uint64(32)).astype(np.uint32)
        return out
    return np.array([[(int(x) >> (32 * i)) & 0xFFFFFFFF for i in range(nw)]
                     for x in w.reshape(-1)], dtype=np.uint32).reshape(-1, nw)


def to_signed(values, bits):
    """Unsigned ``bits``-bit words -> signed ints (int64 array up to 63 bits, else object)."""
    half = 1 << (bits - 1)
    v = [int(x) for x in np.asarray(values, dtype=object).ravel()]
    out = np.array([x - (1 << bits) if x >= half else x for x in v], dtype=object)
    out = out.reshape(np.shape(values))
    return out.astype(np.int64) if bits <= 63 else out
