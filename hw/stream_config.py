"""``StreamConfig``: the fixed scratchpads and memory port of a :class:`~nybble.hw.stream_top.StreamTop`.

Sizes are in scratchpad *words* (one k-step of every PE row for A, of every PE column for B;
for block-scaled kinds one block record: :class:`~nybble.hw.stream_top.StreamLayout`); every operand
scratchpad has two halves of that many words (double buffering: one half loads while the
other computes).  A word travels through the memory port padded to whole bytes
(:func:`word_bytes`), ``beat_words`` words per beat.  The C buffer always holds two output
tiles (``rows x cols`` accumulators each).
"""

from dataclasses import dataclass, replace
import numbers

from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["StreamConfig", "BEAT_WORDS", "word_bytes"]

#: allowed words per memory beat (a power of two: a word's place in a scratchpad row is a
#: bit field of its index)
BEAT_WORDS = (1, 2, 4, 8)


def word_bytes(bits):
    """Bytes a ``bits``-bit word occupies in external memory (padded to whole bytes)."""
    return -(-int(bits) // 8)


@dataclass(frozen=True)
class StreamConfig:
    """Scratchpads and memory port of a streaming top (module docstring).

    a_words, b_words : words per half of the A / B scratchpad (a multiple of ``beat_words``).
    beat_words : words per memory beat, one of :data:`BEAT_WORDS`.
    acc_rows : rows per half of the weight-stationary top's accumulator (``cols``
        accumulators each); the output-stationary top does not read it.
    """

    a_words: int = 16384
    b_words: int = 16384
    beat_words: int = 2
    acc_rows: int = 1024

    def __post_init__(self):
        for name in ("a_words", "b_words", "beat_words", "acc_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ParameterTypeError(f"StreamConfig.{name} must be an integer, not {v!r}")
            object.__setattr__(self, name, int(v))
        if self.beat_words not in BEAT_WORDS:
            raise ParameterError(f"StreamConfig.beat_words must be one of "
                                 f"{', '.join(map(str, BEAT_WORDS))}, not {self.beat_words}")
        for name in ("a_words", "b_words"):
            v = getattr(self, name)
            if v < self.beat_words or v > 1 << 22 or v % self.beat_words:
                raise ParameterError(f"StreamConfig.{name} must be a multiple of beat_words="
                                     f"{self.beat_words} in {self.beat_words}..{1 << 22}, "
                                     f"not {v}")
        if not 2 <= self.acc_rows <= 1 << 20:
            raise ParameterError(f"StreamConfig.acc_rows must be in 2..{1 << 20}, "
                                 f"not {self.acc_rows}")

    def scratchpad_bytes(self, layout):
        """``{"a": bytes, "b": bytes, "c": bytes}`` of the on-chip buffers (both halves) of
        a top with :class:`~nybble.hw.stream_top.StreamLayout` ``layout`` (its words:
        k-steps, or block records of block-scaled kinds); C is the output-stationary top's
        two-tile buffer, or the weight-stationary top's two-half accumulator."""
        # a TopLayout (the explorer's energy model passes one) carries no dataflow: it is
        # the output-stationary top's
        ws = getattr(layout, "dataflow", "os") != "os"
        c_rows = self.acc_rows if ws else layout.rows
        return {"a": 2 * self.a_words * word_bytes(layout.a_word_bits),
                "b": 2 * self.b_words * word_bytes(layout.b_word_bits),
                "c": 2 * c_rows * word_bytes(layout.cols * layout.acc_bits)}

    def replace(self, **changes):
        return replace(self, **changes)
