"""The operand schedule of a GEMM on an array of block-scaled PEs (:mod:`nybble.hw.block_pe`).

Same output-stationary schedule as :class:`~.schedule.OsSchedule` (the RTL sequencer and the
array are unchanged), with two differences, both in the operand words:

* **K is padded to whole blocks**: ``k_steps = ceil(K / block) * (block / lanes)``.  The
  padding elements are the element format's zero code; they belong to the last block and
  carry its scale (so they add exactly nothing).  The PE's block counter then sees every
  block start at a multiple of ``block / lanes`` steps after the tile's ``first``.
* **Scales travel with the elements**: a PE's operand field is ``lanes`` element codes then
  the row's (A) / column's (B) block scale code (``scale_bits``: 8 for E8M0 / E4M3, 16 for
  fp16), and the host writes the block's scale into every k-step word of that block.
  A word of A is ``rows`` such fields (row i at bits ``i * (lanes * wa + scale_bits)``),
  a word of B ``cols`` of them.  Rows / columns past M / N get zero elements and scale code 0.

Cycles: ``T * P + 2R + C + L - 1`` with ``P = max(k_steps, 2R - 1)`` as for every PE; the
block-scaled PE's latency ``L`` is 2 (block adder, then the scaled accumulate).

Hook: :func:`block_schedule_for` is what :func:`nybble.sim.schedule.schedule_for` returns for
a block-scaled ``ArrayConfig`` (see :func:`is_block_config`).
"""

from dataclasses import dataclass

import numpy as np

from nybble.sw import encode, get_format

from .schedule import OsSchedule

__all__ = ["BlockOsSchedule", "block_schedule_for", "is_block_config", "pack_bit_fields",
           "block_pe"]


def is_block_config(config):
    """True when ``config``'s PE kind is block-scaled (the hook's test)."""
    return bool(getattr(config, "block_scaled", False))


def block_pe(config):
    """A prototype PE of a block-scaled ``config`` with the config's own options (block size,
    accumulator window) -- independent of how ``nybble.hw.array.build_pe`` builds it."""
    from nybble.hw.pe import pe_kind
    pe = pe_kind(config.pe).build(acc_bits=config.acc_bits, overflow=config.overflow,
                                  **config.pe_options)
    pe._MustUse__silence = True
    return pe


def pack_bit_fields(fields, widths):
    """Pack ``fields`` (``(n, f)`` unsigned ints) of the given bit ``widths`` (``f`` widths of
    at most 32 bits, field 0 lowest) into ``(n, ceil(sum / 32))`` uint32 chunks."""
    fields = np.asarray(fields, dtype=np.uint64)
    n, nf = fields.shape
    widths = [int(w) for w in widths]
    if len(widths) != nf or any(not 1 <= w <= 32 for w in widths):
        raise ValueError(f"need {nf} field widths in 1..32, not {widths}")
    total = sum(widths)
    out = np.zeros((n, max(1, -(-total // 32))), dtype=np.uint64)
    mask32 = np.uint64(0xFFFFFFFF)
    off = 0
    for q, w in enumerate(widths):
        v = fields[:, q] & np.uint64((1 << w) - 1)
        c, s = divmod(off, 32)
        out[:, c] |= (v << np.uint64(s)) & mask32
        if s + w > 32:
            out[:, c + 1] |= v >> np.uint64(32 - s)
        off += w
    return out.astype(np.uint32)


@dataclass(frozen=True)
class BlockOsSchedule(OsSchedule):
    """Output-stationary schedule with block scales in the operand words (module docstring)."""

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
            raise ValueError(f"{name} must be an integer array of scale codes with shape "
                             f"{shape} (one per block of {self.block}), not {s.dtype} {s.shape}")
        if s.size and (s.min() < 0 or s.max() >= 1 << self.scale_bits):
            raise ValueError(f"{name} codes must be in 0..{(1 << self.scale_bits) - 1}")
        return s.astype(np.int64)

    def a_words(self, a_codes, fmt_a, a_scales=None):
        """A buffer words as uint32 chunks, row ``mt * k_steps + t``; ``a_scales`` (M,
        blocks) scale codes."""
        if a_scales is None:
            raise ValueError("a block-scaled array needs a_scales (M x blocks scale codes)")
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
        return pack_bit_fields(f, ([fa.bits] * L + [self.scale_bits]) * R)

    def b_words(self, b_codes, fmt_b, b_scales=None):
        """B buffer words as uint32 chunks, row ``nt * k_steps + t``; ``b_scales`` (blocks,
        N) scale codes."""
        if b_scales is None:
            raise ValueError("a block-scaled array needs b_scales (blocks x N scale codes)")
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
        return pack_bit_fields(f, ([fb.bits] * L + [self.scale_bits]) * C)


def block_schedule_for(config, m, n, k):
    """The :class:`BlockOsSchedule` of an ``m x k @ k x n`` GEMM on a block-scaled
    ``config`` (validates the sizes)."""
    from nybble.sw.formats import check_integral
    m, n, k = (check_integral(name, v, 1) for name, v in (("m", m), ("n", n), ("k", k)))
    if not is_block_config(config):
        raise ValueError(f"ArrayConfig.pe {config.pe!r} is not block-scaled")
    if config.dataflow != "os":
        raise ValueError(f"ArrayConfig.dataflow {config.dataflow!r}: block-scaled arrays "
                         "are output-stationary ('os') only")
    pe = block_pe(config)
    return BlockOsSchedule(config.rows, config.cols, pe.lanes, pe.latency, m, n, k,
                           block=pe.block_size, scale_bits=pe.scale_bits)
