"""``ArrayConfig``: the one description of an array that hw, sim, synth and the cost model read."""

from dataclasses import dataclass, replace
import numbers

__all__ = ["ArrayConfig", "DATAFLOWS", "OVERFLOW_MODES"]

DATAFLOWS = ("os", "ws")
OVERFLOW_MODES = ("wrap", "saturate")


def _int(name, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"ArrayConfig.{name} must be an integer, not {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        rng = f"at least {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"ArrayConfig.{name} must be {rng}, not {value}")
    return value


@dataclass(frozen=True)
class ArrayConfig:
    """A systolic array: geometry, PE kind, accumulator, dataflow, buffers, clock.

    rows, cols : PE grid (rows x cols).
    pe : PE kind name from :data:`nybble.hw.pe.PE_KINDS` (it fixes the operand formats).
    acc_bits : accumulator width in bits; overflow : ``"wrap"`` or ``"saturate"``.
    dataflow : ``"os"`` (output-stationary) or ``"ws"`` (weight-stationary).
    a_depth, b_depth, c_depth : on-chip buffer depths in words (A: one word = one code per
        PE row; B: one code per PE column; C: one accumulator per PE column).
    clock_mhz : clock used to turn cycles into time in reports.
    """

    rows: int = 4
    cols: int = 4
    pe: str = "int4"
    acc_bits: int = 32
    overflow: str = "wrap"
    dataflow: str = "os"
    a_depth: int = 4096
    b_depth: int = 4096
    c_depth: int = 4096
    clock_mhz: float = 100.0

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("rows", _int("rows", self.rows, 1, 256))
        set_("cols", _int("cols", self.cols, 1, 256))
        set_("acc_bits", _int("acc_bits", self.acc_bits, 2, 512))
        for name in ("a_depth", "b_depth", "c_depth"):
            set_(name, _int(name, getattr(self, name), 1, 1 << 24))
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"ArrayConfig.dataflow must be one of {', '.join(DATAFLOWS)}, "
                             f"not {self.dataflow!r}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"ArrayConfig.overflow must be one of {', '.join(OVERFLOW_MODES)}, "
                             f"not {self.overflow!r}")
        if not isinstance(self.clock_mhz, numbers.Real) or not self.clock_mhz > 0:
            raise ValueError(f"ArrayConfig.clock_mhz must be a positive number, not {self.clock_mhz!r}")
        if not isinstance(self.pe, str):
            raise TypeError(f"ArrayConfig.pe must be a PE kind name, not {self.pe!r}")
        from .pe import PE_KINDS  # the PE library owns the list of kinds
        if self.pe not in PE_KINDS:
            raise ValueError(f"ArrayConfig.pe must be one of {', '.join(sorted(PE_KINDS))}, "
                             f"not {self.pe!r}")

    @property
    def formats(self):
        """(activation format, weight format) names of the PE kind."""
        from .pe import PE_KINDS
        return PE_KINDS[self.pe].formats

    @property
    def pes(self):
        return self.rows * self.cols

    def replace(self, **changes):
        return replace(self, **changes)

    @classmethod
    def parse_array(cls, text):
        """``"16x16"`` -> (16, 16), with an error naming the expected form."""
        try:
            r, c = (int(v) for v in str(text).lower().split("x"))
        except ValueError:
            raise ValueError(f"--array must look like ROWSxCOLS (e.g. 16x16), not {text!r}") from None
        return r, c
