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
* ``cycles = T * P + 2R + C + L - 1``: from the first buffer read to the last result
  written, inclusive (1 cycle buffer read, ``i + j`` skew, ``L`` PE latency, ``i`` drain
  hops, 1 cycle write).

Weight-stationary (:class:`WsSchedule`): PE row i holds k-step ``kt*R + i`` of k-tile ``kt``
(``KT = ceil(k_steps / R)``), column j output column ``nt*C + j``; tiles ``T = KT * n_tiles``
in ``kt``-major order, each streaming the M rows of A, one every
``P = max(M, R*L + C + R - L, R*L + 2)`` cycles (the next tile's weights shift in behind the
running one; a partial sum is written back before the next k-tile reads it);
``cycles = R + 1 + (T - 1) * P + M + R*L + C`` (R cycles of first-weight preload, one gap,
then the tiles; the last row leaves column C-1 after the skew and R*L cycles of partial-sum
chain).
"""

from dataclasses import dataclass

import numpy as np

from nybble.sw import encode, get_format

__all__ = ["OsSchedule", "WsSchedule", "schedule_for", "pack_fields"]


def pack_fields(fields, width):
    """Pack an ``(n, f)`` array of ``width``-bit unsigned fields, field 0 lowest, into
    ``(n, ceil(f * width / 32))`` uint32 chunks.  ``width`` must divide 32 or be 32k."""
    fields = np.asarray(fields, dtype=np.uint64)
    n, f = fields.shape
    total = f * width
    nw = max(1, -(-total // 32))
    out = np.zeros((n, nw), dtype=np.uint64)
    if 32 % width == 0:
        per = 32 // width
        for q in range(f):
            out[:, q // per] |= fields[:, q] << np.uint64((q % per) * width)
    elif width % 32 == 0:
        per = width // 32
        for q in range(f):
            for c in range(per):
                out[:, q * per + c] = (fields[:, q] >> np.uint64(32 * c)) & np.uint64(0xFFFFFFFF)
    else:
        raise ValueError(f"field width {width} must divide 32 or be a multiple of it")
    return out.astype(np.uint32)


def chunks_to_ints(chunks):
    """``(n, w)`` uint32 chunks -> list of Python ints (for drivers that write whole words)."""
    return [sum(int(c) << (32 * i) for i, c in enumerate(row)) for row in np.asarray(chunks)]


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
        return self.tiles * self.period + 2 * self.rows + self.cols + self.latency - 1

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
                raise ValueError(
                    f"GEMM {self.m}x{self.k} @ {self.k}x{self.n} needs {need} words of "
                    f"{name.split('_')[0].upper()} buffer on a {self.rows}x{self.cols} array, "
                    f"but ArrayConfig.{name} is {have}; raise {name}")

    # -- operand layout --------------------------------------------------------------------
    def _padded(self, codes, shape, fmt, name):
        c = np.asarray(codes)
        if c.ndim != 2 or c.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, not {c.shape}")
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

    @staticmethod
    def _signed(values, acc_bits):
        v = np.array([int(x) for x in np.asarray(values).ravel()], dtype=object)
        half = 1 << (acc_bits - 1)
        return np.array([x - (1 << acc_bits) if x >= half else x for x in v], dtype=object)

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
        v = self._signed(values, acc_bits)
        R, C = self.rows, self.cols
        grid = v.reshape(self.m_tiles, self.n_tiles, R, C).transpose(0, 2, 1, 3)
        grid = grid.reshape(self.m_tiles * R, self.n_tiles * C)[:self.m, :self.n]
        if acc_bits <= 63:
            return grid.astype(np.int64)
        return grid


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
        return R + 1 + (self.tiles - 1) * self.period + self.m + R * L + C

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
        v = self._signed(values, acc_bits)
        grid = v.reshape(self.n_tiles, self.m, self.cols).transpose(1, 0, 2)
        grid = grid.reshape(self.m, self.n_tiles * self.cols)[:, :self.n]
        return grid.astype(np.int64) if acc_bits <= 63 else grid


def schedule_for(config, m, n, k):
    """The schedule of an ``m x k @ k x n`` GEMM on ``config`` (validates the sizes)."""
    from nybble.hw.array import build_pe
    from nybble.sw.formats import check_integral
    m, n, k = (check_integral(name, v, 1) for name, v in (("m", m), ("n", n), ("k", k)))
    if config.block_scaled:  # block scales ride in the operand words (sim/block_schedule.py)
        from .block_schedule import block_schedule_for
        return block_schedule_for(config, m, n, k)
    pe = build_pe(config, prototype=True, psum=config.dataflow == "ws")
    cls = OsSchedule if config.dataflow == "os" else WsSchedule
    return cls(config.rows, config.cols, pe.lanes, pe.latency, m, n, k)
