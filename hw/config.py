"""``ArrayConfig``: the one description of an array that hw, sim, synth and the cost model read."""

from dataclasses import dataclass, replace
from functools import cached_property
import numbers

from nybble.sw.golden import product_format
from .kinds import PE_KINDS, pe_kind
from .layout import TopLayout
from .spec import BLOCK_SIZES, default_acc_frac_bits
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["ArrayConfig", "DATAFLOWS", "OVERFLOW_MODES"]

DATAFLOWS = ("os", "ws", "is")
OVERFLOW_MODES = ("wrap", "saturate")


def _int(name, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(f"ArrayConfig.{name} must be an integer, not {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        rng = f"at least {lo}" if hi is None else f"in {lo}..{hi}"
        raise ParameterError(f"ArrayConfig.{name} must be {rng}, not {value}")
    return value


@dataclass(frozen=True)
class ArrayConfig:
    """A systolic array: geometry, PE kind, accumulator, dataflow, buffers, clock.

    rows, cols : PE grid (rows x cols).
    pe : PE kind name from :data:`nybble.hw.kinds.PE_KINDS` (it fixes the operand formats).
    acc_bits : accumulator width in bits; overflow : ``"wrap"`` or ``"saturate"``.
    dataflow : ``"os"`` (output-stationary), ``"ws"`` (weight-stationary) or ``"is"``
        (input-stationary: the streaming top only, which runs it as the transposed GEMM on
        its weight-stationary array, :func:`nybble.hw.stream_ws_top.ws_hardware`).
    a_depth, b_depth, c_depth : on-chip buffer depths in words (A: one word = one code per
        PE row; B: one code per PE column; C: one accumulator per PE column).
    clock_mhz : clock used to turn cycles into time in reports.
    block_size : block-scaled PE kinds only (``mxfp4``, ``mxint8``, ``nvfp4``, ``q4_0``;
        :mod:`nybble.hw.block_pe`): elements per block scale along K, 16 or 32 (a multiple
        of the PE's lanes); None: the kind's own (32 for MX and Q4_0, 16 for NVFP4).
    acc_frac_bits : block-scaled kinds only: fraction bits of the cross-block accumulator
        (``acc_bits`` wide, grid ``2**-acc_frac_bits``), ``0 .. acc_bits - 1``; None:
        :func:`nybble.hw.spec.default_acc_frac_bits` (``acc_bits // 2``; NVFP4 keeps 36
        integer bits).  Plain kinds leave both None.
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
    block_size: int | None = None
    acc_frac_bits: int | None = None

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("rows", _int("rows", self.rows, 1, 256))
        set_("cols", _int("cols", self.cols, 1, 256))
        set_("acc_bits", _int("acc_bits", self.acc_bits, 2, 512))
        for name in ("a_depth", "b_depth", "c_depth"):
            set_(name, _int(name, getattr(self, name), 1, 1 << 24))
        if self.dataflow not in DATAFLOWS:
            raise ParameterError(f"ArrayConfig.dataflow must be one of {', '.join(DATAFLOWS)}, "
                             f"not {self.dataflow!r}")
        if self.overflow not in OVERFLOW_MODES:
            raise ParameterError(f"ArrayConfig.overflow must be one of {', '.join(OVERFLOW_MODES)}, "
                             f"not {self.overflow!r}")
        if not isinstance(self.clock_mhz, numbers.Real) or not self.clock_mhz > 0:
            raise ParameterError(f"ArrayConfig.clock_mhz must be a positive number, not {self.clock_mhz!r}")
        if not isinstance(self.pe, str):
            raise ParameterTypeError(f"ArrayConfig.pe must be a PE kind name, not {self.pe!r}")
        if self.pe not in PE_KINDS:
            raise ParameterError(f"ArrayConfig.pe must be one of {', '.join(sorted(PE_KINDS))}, "
                             f"not {self.pe!r}")
        kind = PE_KINDS[self.pe]
        if kind.pe == "bitserial" and self.dataflow != "os":
            raise ParameterError(f"ArrayConfig.dataflow must be 'os' for the bit-serial PE "
                                 f"{self.pe!r} (its lockstep array is output-stationary), not "
                                 f"{self.dataflow!r}")
        if kind.pe == "ieee":
            raise ParameterError(f"ArrayConfig.pe {self.pe!r} is an IEEE-style FP PE (an FP32 "
                                 "accumulator); arrays hold fixed-point accumulators (golden "
                                 "GEMM, drain, overflow): use it as a single PE (nybble "
                                 "pe-report, nybble cost)")
        self._check_block(kind)
        try:  # the PE's own checks (accumulator width, ...) at construction
            self.pe_spec
        except ParameterError as e:
            raise ParameterError(f"ArrayConfig(pe={self.pe!r}, acc_bits={self.acc_bits}): "
                                 f"{e}") from None

    def _check_block(self, kind):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        if kind.pe != "block":
            for name in ("block_size", "acc_frac_bits"):
                if getattr(self, name) is not None:
                    raise ParameterError(f"ArrayConfig.{name} applies to block-scaled PE kinds "
                                     f"(mxfp4, mxint8, nvfp4, q4_0), not {self.pe!r}: "
                                     "leave it None")
            return
        if self.dataflow != "os":
            raise ParameterError(f"ArrayConfig.dataflow must be 'os' for the block-scaled PE "
                             f"{self.pe!r} (its block adder has no partial-sum input), not "
                             f"{self.dataflow!r}")
        if self.block_size is not None:
            set_("block_size", _int("block_size", self.block_size, 1))
            if self.block_size not in BLOCK_SIZES:
                raise ParameterError(f"ArrayConfig.block_size must be one of "
                                 f"{', '.join(map(str, BLOCK_SIZES))} (or None), not "
                                 f"{self.block_size}")
            if self.block_size % kind.lanes:
                raise ParameterError(f"ArrayConfig.block_size must be a multiple of the "
                                 f"{kind.lanes} lanes of PE {self.pe!r}, not {self.block_size}")
        if self.acc_frac_bits is not None:
            set_("acc_frac_bits", _int("acc_frac_bits", self.acc_frac_bits, 0,
                                       self.acc_bits - 1))

    @property
    def bit_serial(self):
        """True when the PE kind is bit-serial (lockstep array, per-weight data types)."""
        return PE_KINDS[self.pe].pe == "bitserial"

    @property
    def block_scaled(self):
        """True when the PE kind is block-scaled (:mod:`nybble.hw.block_pe`)."""
        return PE_KINDS[self.pe].pe == "block"

    @property
    def pe_options(self):
        """PE options this config sets beyond ``acc_bits`` / ``overflow``: the resolved
        ``block_size`` and ``acc_frac_bits`` of a block-scaled kind, ``psum`` for a
        weight-stationary array, ``lockstep`` for the bit-serial kind, else ``{}``."""
        kind = PE_KINDS[self.pe]
        if kind.pe == "bitserial":
            return {"lockstep": True}
        if kind.pe != "block":
            return {"psum": True} if self.dataflow in ("ws", "is") else {}
        block = self.block_size if self.block_size is not None else kind.options["block_size"]
        frac = self.acc_frac_bits
        if frac is None:
            grid = product_format(*kind.formats)[0]
            frac = default_acc_frac_bits(kind.options["scale"], self.acc_bits, grid)
        return {"block_size": block, "acc_frac_bits": frac}

    @cached_property
    def pe_spec(self):
        """The pure spec (:mod:`nybble.hw.spec`) of every PE of this array: lanes, latency,
        widths, grid, golden keyword arguments.  Derived once; no component is built."""
        return pe_kind(self.pe).spec(acc_bits=self.acc_bits, overflow=self.overflow,
                                     **self.pe_options)

    @cached_property
    def top_layout(self):
        """The host interface of this array's top (:class:`~nybble.hw.layout.TopLayout`)."""
        return TopLayout.of(self)

    def build_pe(self, *, src_loc_at=0):
        """One PE component of this array (what :mod:`nybble.hw.array` instantiates)."""
        return pe_kind(self.pe).build(src_loc_at=1 + src_loc_at, acc_bits=self.acc_bits,
                                      overflow=self.overflow, **self.pe_options)

    @property
    def formats(self):
        """(activation format, weight format) names of the PE kind."""
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
            raise ParameterError(f"array must look like ROWSxCOLS (e.g. 16x16), not {text!r}") \
                from None
        return r, c
