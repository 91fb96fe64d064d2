"""Per-cycle address traces of one GEMM on the streaming top, as SCALE-Sim writes them.

:func:`write_traces` expands the events of the exact cycle model
(:func:`~.stream_cycles.stream_cycles` ``events=``) into CSV files, one row per cycle with
traffic (cycle 0: the cycle ``start`` is taken, as the RTL counts):

* ``A_SCRATCHPAD_READ.csv``, ``B_SCRATCHPAD_READ.csv``: ``cycle, word`` -- the scratchpad
  word the issuer reads (word = ``half * words_per_half + word within the chunk``; a
  block-scaled kind's word, a block record, is read in each of its ``block / lanes``
  k-steps);
* ``DRAM_READ.csv``, ``DRAM_WRITE.csv``: ``cycle, address, bytes`` -- a beat crossing the
  memory port (byte address of its first byte, its byte count: elements packed, so a beat of
  int4 words carries two codes per byte).

The DRAM beat times follow the memory model (:mod:`.memory_model`), in closed form per burst.
"""

import csv
import os

import numpy as np

from nybble.sw.errors import ParameterError
from .stream_cycles import stream_cycles

__all__ = ["write_traces", "beat_cycles", "TRACE_FILES", "MAX_TRACE_ROWS"]

TRACE_FILES = ("A_SCRATCHPAD_READ.csv", "B_SCRATCHPAD_READ.csv", "DRAM_READ.csv",
               "DRAM_WRITE.csv")
#: traces longer than this many rows in total are refused (a LLaMA-size layer has 10^8)
MAX_TRACE_ROWS = 20_000_000


def beat_cycles(memory, t, nbytes, beat_bytes):
    """``(cycles, addresses offsets, bytes)`` of the beats of a burst taken in cycle ``t``
    that is never held up: ``due(i) = i + max(t + L, max_{j<=i}(x_j - j))`` with
    ``x_j = t + L + ceil(cum_j / BW) - 1`` (the memory model's recursion, unrolled)."""
    beats = -(-nbytes // beat_bytes)
    i = np.arange(beats, dtype=np.int64)
    cum = np.minimum((i + 1) * beat_bytes, nbytes)
    bw = memory.bandwidth
    x = t + memory.latency + (-(-cum * bw.denominator // bw.numerator)) - 1
    due = i + np.maximum(t + memory.latency, np.maximum.accumulate(x - i))
    offsets = i * beat_bytes
    return due, offsets, np.minimum(beat_bytes, nbytes - offsets)


def write_traces(config, stream, memory, m, n, k, directory):
    """Write the :data:`TRACE_FILES` of an ``m x k @ k x n`` GEMM into ``directory``;
    returns ``{file name: rows}``."""
    events = []
    r = stream_cycles(config, stream, memory, m, n, k, events=events)
    rows = r.a_reads + r.b_reads + sum(-(-e[3] // e[4]) for e in events if e[0] in ("rd", "wr"))
    if rows > MAX_TRACE_ROWS:
        raise ParameterError(f"the traces of a {m}x{k} @ {k}x{n} GEMM would have {rows:,} "
                             f"rows; at most {MAX_TRACE_ROWS:,}: trace a smaller GEMM")
    os.makedirs(directory, exist_ok=True)
    reads = {"A": [], "B": []}
    dram = {"rd": [], "wr": []}
    for ev in events:
        if ev[0] == "issue":
            _, start, nk, a_word, b_word, spw = ev
            i = np.arange(nk * spw)
            cyc = start + i
            reads["A"].append(np.stack([cyc, a_word + i // spw], 1))
            reads["B"].append(np.stack([cyc, b_word + i // spw], 1))
        elif ev[0] == "scratch":     # weight-stationary: a side's words, one per cycle
            _, side, start, count, first, stride = ev
            i = np.arange(count)
            reads[side].append(np.stack([start + i, first + stride * i], 1))
        else:
            kind, t, addr, nbytes, beat = ev
            due, off, size = beat_cycles(memory, t, nbytes, beat)
            dram[kind].append(np.stack([due, addr + off, size], 1))
    out = {}
    for name, parts, header in (
            ("A_SCRATCHPAD_READ.csv", reads["A"], ("cycle", "word")),
            ("B_SCRATCHPAD_READ.csv", reads["B"], ("cycle", "word")),
            ("DRAM_READ.csv", dram["rd"], ("cycle", "address", "bytes")),
            ("DRAM_WRITE.csv", dram["wr"], ("cycle", "address", "bytes"))):
        table = np.concatenate(parts) if parts else np.zeros((0, len(header)), np.int64)
        with open(os.path.join(directory, name), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(table.tolist())
        out[name] = len(table)
    return out
