"""The operand schedule of a GEMM on an :class:`~nybble.hw.top.ArrayTop`, computed once.

Every driver (native Verilator, cocotb, Amaranth simulator) lays out operands and reads
results with this module, and the cycle model takes its counts from it, so they cannot drift
apart.  The RTL sequencer implements the same schedule; tests hold the two equal.

Output-stationary, ``R x C`` PEs of ``lanes`` lanes and latency ``L``, a GEMM
``(M x K) @ (K x N)``:

* ``k_steps = ceil(K / lanes)`` (K padded with the weight format's zero code);
* ``m_tiles = ceil(M / R)``, ``n_tiles = ceil(N / C)`` (edges padded, results dropped);
* tiles ``T = m_tiles * n_tiles`` in ``mt``-major order, one every ``P = max(k_steps, 2R - 1)``
  cycles (the shadow drain needs 2R - 1 cycles between captures);
* ``cycles = T * P + 2R + C + L + D - 2``: from the first buffer read to the last result
  written, inclusive (``D`` = :data:`~nybble.hw.layout.OPERAND_READ_CYCLES` cycles of buffer
  read and read register, ``i + j`` skew, ``L`` PE latency, ``i`` drain hops, 1 cycle write).

Weight-stationary (:class:`WsSchedule`): PE row i holds k-step ``kt*R + i`` of k-tile ``kt``
(``KT = ceil(k_steps / R)``), column j output column ``nt*C + j``; tiles ``T = KT * n_tiles``
in ``kt``-major order, each streaming the M rows of A, one every
``P = max(M, R*L + C + R - L, R*L + 2)`` cycles (the next tile's weights shift in behind the
running one; a partial sum is written back before the next k-tile reads it);
``cycles = R + (T - 1) * P + M + R*L + C + D`` (R cycles of first-weight preload, one gap,
then the tiles; the last row reaches the array ``D`` cycles after its read and leaves column
C-1 after the skew and R*L cycles of partial-sum chain).

Block-scaled PEs (:class:`BlockOsSchedule`): the output-stationary schedule with K padded to
whole blocks (``k_steps = ceil(K / block) * block / lanes``; the padding elements are the
element format's zero code and carry their block's scale, so they add exactly nothing) and
the block scale codes in the operand words: a PE's operand field is ``lanes`` element codes
then the row's (A) / column's (B) block scale code, written into every k-step word of its
block.  Rows / columns past M / N get zero elements and scale code 0.

Bit-serial PEs (:class:`BitSerialOsSchedule`, lockstep array of
:class:`nybble.hw.bitserial.LockstepBitSerialPE`): the output-stationary schedule counted in
*beats*; all registers of the array and the sequencer move once per beat, and a beat lasts as many cycles
as the slowest MAC in the array during it (3 for int4, 2 for fp4, 1 for e3m0, 1 with no MAC).
PE(i, j) holds, in beat ``u``, the MAC issued in beat ``u - 1 - i - j``, so the beat lengths
follow from the data types of the weights (``sel``, K x N) in closed form:
``cycles = sum(beat lengths before the last write's beat) + 1`` with the last write in beat
``T * P + 2R + C + D - 2``; the ``D - 1`` beats of read register at the start hold no MAC
(one cycle each).  Columns past N are padded with a selector that takes one cycle.

Buffers: :func:`fit_config` raises a config's buffer depths to what a GEMM needs.
"""

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from nybble.hw.layout import OPERAND_READ_CYCLES
from nybble.sw import encode, get_format
from nybble.sw.formats import check_integral
from .words import pack_fields, to_signed
from nybble.sw.errors import ParameterError

__all__ = ["OsSchedule", "WsSchedule", "BlockOsSchedule", "BitSerialOsSchedule", "schedule_for",
           "fit_config",
           "MIN_DEPTH"]

#: Buffer depth (words) :func:`fit_config` never goes below, so that small GEMMs share one
#: build of the array.
MIN_DEPTH = 4096


@dataclass(frozen=True)
class OsSchedule:
    """Output-stationary schedule of one GEMM (module docstring)."""

    rows: int
    cols: int
    lanes: int
    latency: int
    m: int
    n: int
    k: int

    @property
    def k_steps(self):
        return -(-self.k // self.lanes)

    @property
    def m_tiles(self):
        return -(-self.m // self.rows)

    @property
    def n_tiles(self):
        return -(-self.n // self.cols)

    @property
    def tiles(self):
        return self.m_tiles * self.n_tiles

    @property
    def period(self):
        return max(self.k_steps, 2 * self.rows - 1)

    @property
    def cycles(self):
        return (self.tiles * self.period + 2 * self.rows + self.cols + self.latency
                + OPERAND_READ_CYCLES - 2)

    @property
    def ideal_cycles(self):
        return self.m * self.n * self.k / (self.rows * self.cols * self.lanes)

    # -- buffer traffic (words) ------------------------------------------------------------
    @property
    def a_writes(self):
        return self.m_tiles * self.k_steps

    @property
    def b_writes(self):
        return self.n_tiles * self.k_steps

    @property
    def a_reads(self):
        return self.tiles * self.k_steps

    @property
    def b_reads(self):
        return self.tiles * self.k_steps

    @property
    def c_writes(self):
        return self.tiles * self.rows * self.cols

    @property
    def c_reads(self):
        return self.c_writes

    def check_fits(self, config):
        """Raise ``ValueError`` if the operands or results exceed the config's buffers."""
        for name, need, have in (("a_depth", self.a_writes, config.a_depth),
                                 ("b_depth", self.b_writes, config.b_depth),
                                 ("c_depth", self.c_words, config.c_depth)):
            if need > have:
                raise ParameterError(
                    f"GEMM {self.m}x{self.k} @ {self.k}x{self.n} needs {need} words of "
                    f"{name.split('_')[0].upper()} buffer on a {self.rows}x{self.cols} array, "
                    f"but ArrayConfig.{name} is {have}; raise {name}")

    # -- operand layout --------------------------------------------------------------------
    def _padded(self, codes, shape, fmt, name):
        c = np.asarray(codes)
        if c.ndim != 2 or c.shape != shape:
            raise ParameterError(f"{name} must have shape {shape}, not {c.shape}")
        zero = int(encode(0.0, fmt))
        return c.astype(np.int64), zero

    def a_words(self, a_codes, fmt_a):
        """A buffer words as uint32 chunks, row ``mt * k_steps + t``."""
        fa = get_format(fmt_a)
        a, zero = self._padded(a_codes, (self.m, self.k), fa, "a_codes")
        R, L, S = self.rows, self.lanes, self.k_steps
        pad = np.full((self.m_tiles * R, S * L), zero, np.int64)
        pad[:self.m, :self.k] = a
        # (mt, i, t, l) -> word (mt, t), field (i, l)
        f = pad.reshape(self.m_tiles, R, S, L).transpose(0, 2, 1, 3).reshape(-1, R * L)
        return pack_fields(f, fa.bits)

    def b_words(self, b_codes, fmt_b):
        """B buffer words as uint32 chunks, row ``nt * k_steps + t``."""
        fb = get_format(fmt_b)
        b, zero = self._padded(b_codes, (self.k, self.n), fb, "b_codes")
        C, L, S = self.cols, self.lanes, self.k_steps
        pad = np.full((S * L, self.n_tiles * C), zero, np.int64)
        pad[:self.k, :self.n] = b
        # (t, l, nt, j) -> word (nt, t), field (j, l)
        f = pad.reshape(S, L, self.n_tiles, C).transpose(2, 0, 3, 1).reshape(-1, C * L)
        return pack_fields(f, fb.bits)

    def result_addresses(self, col_bits):
        """Read addresses of every result, in the order :meth:`unpack_results` expects."""
        t = np.arange(self.tiles)[:, None, None]
        i = np.arange(self.rows)[None, :, None]
        j = np.arange(self.cols)[None, None, :]
        return (((t * self.rows + i) << col_bits) | j).ravel()

    @property
    def job(self):
        """The job inputs of the top (``m_tiles``, ``n_tiles``, ``k_len``, ``m_len``)."""
        return dict(m_tiles=self.m_tiles, n_tiles=self.n_tiles, k_len=self.k_steps,
                    m_len=self.m)

    @property
    def c_words(self):
        """Words of each column's result bank the job uses."""
        return self.tiles * self.rows

    def unpack_results(self, values, acc_bits):
        """Read-port words (unsigned, in :meth:`result_addresses` order) -> (M, N) ints."""
        v = to_signed(values, acc_bits)
        R, C = self.rows, self.cols
        grid = v.reshape(self.m_tiles, self.n_tiles, R, C).transpose(0, 2, 1, 3)
        return grid.reshape(self.m_tiles * R, self.n_tiles * C)[:self.m, :self.n]


@dataclass(frozen=True)
class WsSchedule(OsSchedule):
    """Weight-stationary schedule of one GEMM (module docstring)."""

    @property
    def k_tiles(self):
        return -(-self.k_steps // self.rows)

    @property
    def tiles(self):
        return self.k_tiles * self.n_tiles

    @property
    def period(self):
        R, C, L = self.rows, self.cols, self.latency
        return max(self.m, R * L + C + R - L, R * L + 2)

    @property
    def cycles(self):
        R, C, L = self.rows, self.cols, self.latency
        return R + (self.tiles - 1) * self.period + self.m + R * L + C + OPERAND_READ_CYCLES

    @property
    def job(self):
        return dict(m_tiles=0, n_tiles=self.n_tiles, k_len=self.k_tiles, m_len=self.m)

    @property
    def a_writes(self):
        return self.k_tiles * self.m

    @property
    def b_writes(self):
        return self.n_tiles * self.k_tiles * self.rows

    @property
    def a_reads(self):
        return self.tiles * self.m

    @property
    def b_reads(self):
        return self.tiles * self.rows

    @property
    def c_writes(self):
        return self.tiles * self.m * self.cols

    @property
    def c_reads(self):
        # partial sums read back by every k-tile after the first, plus the host's read
        return (self.k_tiles - 1) * self.n_tiles * self.m * self.cols + self.m * self.n_tiles * self.cols

    @property
    def c_words(self):
        return self.n_tiles * self.m

    def a_words(self, a_codes, fmt_a):
        """A words ``kt * M + m``: row m's k-steps ``kt*R + i`` for PE rows i."""
        fa = get_format(fmt_a)
        a, zero = self._padded(a_codes, (self.m, self.k), fa, "a_codes")
        R, L, KT = self.rows, self.lanes, self.k_tiles
        pad = np.full((self.m, KT * R * L), zero, np.int64)
        pad[:, :self.k] = a
        f = pad.reshape(self.m, KT, R * L).transpose(1, 0, 2).reshape(-1, R * L)
        return pack_fields(f, fa.bits)

    def b_words(self, b_codes, fmt_b):
        """B words ``nt * KT*R + t``: k-step t of output columns ``nt*C + j``."""
        fb = get_format(fmt_b)
        b, zero = self._padded(b_codes, (self.k, self.n), fb, "b_codes")
        C, L, S = self.cols, self.lanes, self.k_tiles * self.rows
        pad = np.full((S * L, self.n_tiles * C), zero, np.int64)
        pad[:self.k, :self.n] = b
        f = pad.reshape(S, L, self.n_tiles, C).transpose(2, 0, 3, 1).reshape(-1, C * L)
        return pack_fields(f, fb.bits)

    def result_addresses(self, col_bits):
        nt = np.arange(self.n_tiles)[:, None, None]
        mm = np.arange(self.m)[None, :, None]
        j = np.arange(self.cols)[None, None, :]
        return (((nt * self.m + mm) << col_bits) | j).ravel()

    def unpack_results(self, values, acc_bits):
        v = to_signed(values, acc_bits)
        grid = v.reshape(self.n_tiles, self.m, self.cols).transpose(1, 0, 2)
        return grid.reshape(self.m, self.n_tiles * self.cols)[:, :self.n]


@dataclass(frozen=True)
class BlockOsSchedule(OsSchedule):
    """Output-stationary schedule of block-scaled PEs, scales in the operand words (module
    docstring)."""

    block: int = 32
    scale_bits: int = 8

    @property
    def blocks(self):
        return -(-self.k // self.block)

    @property
    def steps_per_block(self):
        return self.block // self.lanes

    @property
    def k_steps(self):
        return self.blocks * self.steps_per_block

    def _check_scales(self, scales, shape, name):
        s = np.asarray(scales)
        if s.shape != shape or not np.issubdtype(s.dtype, np.integer):
            raise ParameterError(f"{name} must be an integer array of scale codes with shape "
                             f"{shape} (one per block of {self.block}), not {s.dtype} {s.shape}")
        if s.size and (s.min() < 0 or s.max() >= 1 << self.scale_bits):
            raise ParameterError(f"{name} codes must be in 0..{(1 << self.scale_bits) - 1}")
        return s.astype(np.int64)

    def a_words(self, a_codes, fmt_a, a_scales=None):
        """A buffer words as uint32 chunks, row ``mt * k_steps + t``; ``a_scales`` (M,
        blocks) scale codes."""
        if a_scales is None:
            raise ParameterError("a block-scaled array needs a_scales (M x blocks scale codes)")
        fa = get_format(fmt_a)
        a, zero = self._padded(a_codes, (self.m, self.k), fa, "a_codes")
        sc = self._check_scales(a_scales, (self.m, self.blocks), "a_scales")
        R, L, S, spb = self.rows, self.lanes, self.k_steps, self.steps_per_block
        pad = np.full((self.m_tiles * R, S * L), zero, np.int64)
        pad[:self.m, :self.k] = a
        spad = np.zeros((self.m_tiles * R, self.blocks), np.int64)
        spad[:self.m] = sc
        el = pad.reshape(self.m_tiles, R, S, L)
        st = np.repeat(spad, spb, axis=1).reshape(self.m_tiles, R, S, 1)
        # (mt, i, t, field) -> word (mt, t), fields (i, lanes codes + scale)
        f = np.concatenate([el, st], axis=3).transpose(0, 2, 1, 3).reshape(-1, R * (L + 1))
        return pack_fields(f, ([fa.bits] * L + [self.scale_bits]) * R)

    def b_words(self, b_codes, fmt_b, b_scales=None):
        """B buffer words as uint32 chunks, row ``nt * k_steps + t``; ``b_scales`` (blocks,
        N) scale codes."""
        if b_scales is None:
            raise ParameterError("a block-scaled array needs b_scales (blocks x N scale codes)")
        fb = get_format(fmt_b)
        b, zero = self._padded(b_codes, (self.k, self.n), fb, "b_codes")
        sc = self._check_scales(b_scales, (self.blocks, self.n), "b_scales")
        C, L, S, spb = self.cols, self.lanes, self.k_steps, self.steps_per_block
        pad = np.full((S * L, self.n_tiles * C), zero, np.int64)
        pad[:self.k, :self.n] = b
        spad = np.zeros((self.blocks, self.n_tiles * C), np.int64)
        spad[:, :self.n] = sc
        el = pad.reshape(S, L, self.n_tiles, C).transpose(2, 0, 3, 1)   # (nt, t, j, l)
        st = np.repeat(spad, spb, axis=0).reshape(S, self.n_tiles, C).transpose(1, 0, 2)
        f = np.concatenate([el, st[..., None]], axis=3).reshape(-1, C * (L + 1))
        return pack_fields(f, ([fb.bits] * L + [self.scale_bits]) * C)


@dataclass(frozen=True)
class BitSerialOsSchedule(OsSchedule):
    """Output-stationary schedule of a lockstep bit-serial array (module docstring): the
    output-stationary schedule in *beats* (latency 1 beat), each beat as long as the slowest
    MAC inside the array during it.

    ``sel`` (K x N data-type selectors of the weights) fixes the beat lengths;
    ``sel_cycles[s]``: cycles of a MAC of selector ``s``; ``pad_sel``: the selector of the
    padding columns past N.  B words carry, per column, the weight code then its selector
    (``sel_bits``).
    """

    sel_bits: int = 3
    pad_sel: int = 7
    pad_code: int = 0
    sel_cycles: tuple = (1,)
    sel: np.ndarray = field(default=None, compare=False, repr=False)

    @cached_property
    def _mac_cycles(self):
        """(k_steps, n_tiles * C) int8: cycles of every weight's MAC, padding columns too."""
        if self.sel is None:
            raise ParameterError("a bit-serial schedule needs sel (the weights' data types) "
                                 "for its cycles")
        sel = np.full((self.k_steps, self.n_tiles * self.cols), self.pad_sel, np.int16)
        sel[:, :self.n] = np.asarray(self.sel)
        return np.asarray(self.sel_cycles, np.int8)[sel]

    def _issue_cycles(self, v0, v1, m_tiles):
        """(v1 - v0, C) int8: cycles of the MAC that issue ``v`` starts in column ``j`` (1
        where the issue carries none: before the job, tile gaps, after the last tile)."""
        S, P, C = self.k_steps, self.period, self.cols
        v = np.arange(v0, v1)
        t, nt = v % P, (v // P) % self.n_tiles
        x = np.ones((v.size, C), np.int8)
        ok = (v >= 0) & (v < m_tiles * self.n_tiles * P) & (t < S)
        x[ok] = self._mac_cycles[t[ok, None], nt[ok, None] * C + np.arange(C)]
        return x

    def _beat_sum(self, m_tiles, chunk=1 << 16):
        """Cycles of the beats before the last write's beat ``T * P + 2R + C - 1`` with
        ``m_tiles`` row tiles: beat ``u`` lasts the longest MAC among the PEs, PE(i, j) holding
        issue ``u - 1 - i - j`` (buffer read, skew, forwarding), at least 1.  Evaluated in
        chunks of beats, so memory stays ``O(chunk * C)``."""
        R, C = self.rows, self.cols
        beats = m_tiles * self.n_tiles * self.period + 2 * R + C - 1
        total = 0
        for u0 in range(0, beats, chunk):
            u1 = min(beats, u0 + chunk)
            n = u1 - u0
            v0 = u0 - R - C + 1               # the oldest issue any PE holds in beat u0
            x = self._issue_cycles(v0, u1, m_tiles)
            length = np.ones(n, np.int64)
            for c in range(2, int(x.max(initial=1)) + 1):
                # beat u reaches c cycles when a MAC of >= c cycles sits in the window of
                # issues [u - j - R, u - j) of some column j
                run = np.concatenate([np.zeros((1, C), np.int32),
                                      np.cumsum(x >= c, axis=0, dtype=np.int32)])
                window = run[R:] - run[:-R]          # window starting at each local issue
                hit = np.zeros(n, bool)
                for j in range(C):
                    hit |= window[C - 1 - j:C - 1 - j + n, j] > 0
                length += hit
            total += int(length.sum())
        return total

    @cached_property
    def cycles(self):
        """Exact RTL cycles.  The issue stream repeats with every row tile (tiles are
        ``mt``-major), so past the first few row tiles each adds the same beats: the sum is
        evaluated for ``h`` and ``h + 1`` row tiles and extended linearly."""
        span = self.n_tiles * self.period          # beats of one row tile
        h = 2 + (self.rows + self.cols) // span    # row tiles until the beats repeat
        # + the last write's beat (1 cycle) and the read register's D - 1 beats before the
        # first MAC reaches the array (1 cycle each)
        extra = 1 + OPERAND_READ_CYCLES - 1
        if self.m_tiles <= h + 1:
            return self._beat_sum(self.m_tiles) + extra
        a, b = self._beat_sum(h), self._beat_sum(h + 1)
        return b + (self.m_tiles - h - 1) * (b - a) + extra

    @property
    def mean_cycles_per_mac(self):
        """Mean cycles of one MAC over the weights' data types (what one PE alone would
        take per MAC)."""
        return float(np.asarray(self.sel_cycles)[np.asarray(self.sel)].mean())

    def b_words(self, b_codes, fmt_b, sel=None):
        """B buffer words, row ``nt * k_steps + t``: per column the weight code, then its
        selector (``sel``: default this schedule's)."""
        sel = self.sel if sel is None else sel
        b, _ = self._padded(b_codes, (self.k, self.n), get_format(fmt_b), "b_codes")
        s, _ = self._padded(sel, (self.k, self.n), get_format(fmt_b), "sel")
        C, S, wb = self.cols, self.k_steps, get_format(fmt_b).bits
        pc = np.full((S, self.n_tiles * C), self.pad_code, np.int64)
        ps = np.full((S, self.n_tiles * C), self.pad_sel, np.int64)
        pc[:, :self.n], ps[:, :self.n] = b, s
        f = np.stack([pc, ps], axis=-1).reshape(S, self.n_tiles, C, 2).transpose(1, 0, 2, 3)
        return pack_fields(f.reshape(-1, 2 * C), [wb, self.sel_bits] * C)


def schedule_for(config, m, n, k, *, sel=None):
    """The schedule of an ``m x k @ k x n`` GEMM on ``config`` (validates the sizes); lanes,
    latency and block layout come from ``config.pe_spec``; ``sel``: the weights' data types
    (K x N selectors) on a bit-serial array, whose cycles depend on them."""
    m, n, k = (check_integral(name, v, 1) for name, v in (("m", m), ("n", n), ("k", k)))
    spec = config.pe_spec
    if spec.family == "bitserial":
        if sel is not None and np.shape(sel) != (k, n):
            raise ParameterError(f"sel must have shape {(k, n)} (one data type per weight), "
                                 f"not {np.shape(sel)}")
        pad = spec.pad_sel
        pad_code = 0 if pad >= len(spec.dtypes) else int(encode(0.0, spec.dtype_formats[pad]))
        return BitSerialOsSchedule(config.rows, config.cols, 1, 1, m, n, k,
                                   sel_bits=spec.sel_bits, pad_sel=pad, pad_code=pad_code,
                                   sel_cycles=tuple(int(c) for c in spec.sel_cycles),
                                   sel=None if sel is None else np.asarray(sel))
    if spec.family == "block":
        return BlockOsSchedule(config.rows, config.cols, spec.lanes, spec.latency, m, n, k,
                               block=spec.block_size, scale_bits=spec.scale_bits)
    if config.dataflow == "is":
        raise ParameterError("dataflow 'is' (input-stationary) runs on the streaming top only "
                             "(the transposed GEMM on its weight-stationary array): give a "
                             "streaming flag such as --dram-bw")
    cls = OsSchedule if config.dataflow == "os" else WsSchedule
    return cls(config.rows, config.cols, spec.lanes, spec.latency, m, n, k)


def fit_config(config, s, *, min_depth=MIN_DEPTH):
    """``config`` with A, B and C buffers deep enough for the GEMM of schedule ``s`` (at least
    ``min_depth`` words each, so that small GEMMs share one build).  The schedule does not
    depend on the depths: it stays the schedule of the fitted config."""
    return config.replace(a_depth=max(min_depth, s.a_writes),
                          b_depth=max(min_depth, s.b_writes),
                          c_depth=max(min_depth, s.c_words))
