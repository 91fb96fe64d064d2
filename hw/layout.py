"""The host-visible layout of an :class:`~nybble.hw.top.ArrayTop`, derived from its config.

Port widths of the top's host interface and the meaning of its write selects, computed from
the :class:`~nybble.hw.config.ArrayConfig` and its pure PE spec without building the top:
drivers, the native harness, the FPGA bridge and the top itself read this one object.

* write port: ``wr_sel`` picks the buffer (:data:`WR_A`, :data:`WR_B`, :data:`WR_C`,
  :data:`WR_LUT`), ``wr_addr`` (``addr_bits``) the word, ``wr_data`` (``wr_bits``) the word;
* A word: one k-step for every PE row (``a_word_bits`` = rows x the PE's ``a`` port), B word:
  for every column (``b_word_bits``; bit-serial PEs: each column's weight code then its
  data-type selector, ``b_bits + sel_bits``);
* ``latency``: the PE's, in cycles; in beats (1) for the lockstep bit-serial array;
* read port: ``rd_addr`` (``rd_addr_bits``) = ``(bank address << col_bits) | column``,
  ``rd_data`` the signed accumulator (``acc_bits``);
* job inputs ``m_tiles``, ``n_tiles``, ``k_len``, ``m_len``: :data:`JOB_BITS` each;
* :data:`OPERAND_READ_CYCLES`: how long the sequencer's buffer reads take to reach the array.
"""

from dataclasses import dataclass

__all__ = ["TopLayout", "JOB_BITS", "JOB_FIELDS", "WR_A", "WR_B", "WR_C", "WR_LUT",
           "OPERAND_READ_CYCLES"]

JOB_BITS = 20  # width of m_tiles, n_tiles, k_len, m_len
#: The job inputs of the top, in the order every host sends them.
JOB_FIELDS = ("m_tiles", "n_tiles", "k_len", "m_len")
WR_A, WR_B, WR_C, WR_LUT = 0, 1, 2, 3
#: Clock cycles (beats, on a lockstep array) from the sequencer's buffer read address to those
#: operands at the array's inputs: the block-RAM read, then a register, so that no path runs
#: from block-RAM read data through the PEs' logic (on an iCE40 that path set the clock).
#: Weight-stationary partial sums read back from the C banks take the same register.  The
#: cycle model (:mod:`nybble.sim.schedule`) counts these cycles from this one constant.
OPERAND_READ_CYCLES = 2


def _bits(n):
    return max(1, (int(n) - 1).bit_length())


@dataclass(frozen=True)
class TopLayout:
    """Widths of an array top's host interface (module docstring)."""

    rows: int
    cols: int
    acc_bits: int
    frac_bits: int
    lanes: int
    latency: int
    a_word_bits: int
    b_word_bits: int
    lut_bits: int
    col_bits: int
    wr_bits: int
    addr_bits: int
    rd_addr_bits: int

    @classmethod
    def of(cls, config):
        """The layout of ``ArrayTop(config)``."""
        spec = config.pe_spec
        lockstep = getattr(spec, "lockstep", False)
        a_word = spec.a_bits * config.rows
        # bit-serial: each column's field is its weight code, then its data-type selector
        b_word = (spec.b_bits + (spec.sel_bits if lockstep else 0)) * config.cols
        lut = getattr(spec, "lut_bits", None) or 0
        col_bits = _bits(config.cols) if config.cols > 1 else 0
        return cls(rows=config.rows, cols=config.cols, acc_bits=config.acc_bits,
                   frac_bits=spec.frac_bits, lanes=spec.lanes,
                   latency=1 if lockstep else spec.latency,
                   a_word_bits=a_word, b_word_bits=b_word, lut_bits=lut, col_bits=col_bits,
                   wr_bits=max(a_word, b_word, config.acc_bits, lut),
                   addr_bits=max(_bits(config.a_depth), _bits(config.b_depth),
                                 _bits(config.c_depth)),
                   rd_addr_bits=_bits(config.c_depth) + col_bits)
