"""Design points: what one row of an exploration is (PE kind x array x dataflow x bandwidth x
clock), built as a cross product of axes or read from a CSV / JSON list.

A point is plain data (frozen, hashable, JSON-able); whether the array can be built is checked
by :class:`nybble.hw.config.ArrayConfig` at construction, so an impossible combination (a
block-scaled PE in a weight-stationary array) is refused with the array's own message, and the
cross product drops it and says why (:func:`cross_product` returns the skipped ones).

``dram_bw_gbps`` (GB/s of external memory, 10^9 bytes/s; None: unlimited) becomes bytes per
cycle at the point's clock for the streaming top's stall model (:mod:`nybble.explore.metrics`).
``clock_mhz``: a fixed clock; ``None`` means the ASIC estimate of the synthesised array.
"""

import csv
import dataclasses
import functools
import itertools
import json
import numbers
import os

from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import pe_kind
from nybble.synth.acc_policy import policy_acc_bits
from nybble.sw.errors import InputFileError, ParameterError, ParameterTypeError

__all__ = ["DesignPoint", "cross_product", "read_points", "POINT_FIELDS"]

#: The columns of a point, in table order (also the CSV / JSON keys of a points file).
POINT_FIELDS = ("pe", "rows", "cols", "dataflow", "dram_bw_gbps", "clock_mhz")

#: the dataflows a point can have: every metric (the whole-buffer cycles too) runs them;
#: input-stationary ("is", streaming top only) is not among them
DATAFLOWS = ("os", "ws")


def _positive_number(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ParameterError(f"DesignPoint.{name} must be a positive number or None, "
                             f"not {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class DesignPoint:
    """One design: ``rows x cols`` PEs of kind ``pe`` (any name of
    :data:`nybble.hw.kinds.PE_KINDS`, ``<kind>_dp<k>`` too), ``dataflow`` ``"os"`` or ``"ws"``,
    external bandwidth ``dram_bw_gbps`` (GB/s, None: not modelled) and a fixed clock
    ``clock_mhz`` (MHz, None: estimate)."""

    pe: str
    rows: int
    cols: int
    dataflow: str = "os"
    dram_bw_gbps: float | None = None
    clock_mhz: float | None = None

    def __post_init__(self):
        if not isinstance(self.pe, str):
            raise ParameterTypeError(f"DesignPoint.pe must be a PE kind name, not {self.pe!r}")
        pe_kind(self.pe)  # the registry's error names the kinds
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ParameterTypeError(f"DesignPoint.{name} must be an integer, not "
                                         f"{value!r}")
            object.__setattr__(self, name, int(value))
        if self.dataflow not in DATAFLOWS:
            raise ParameterError(f"DesignPoint.dataflow must be one of {', '.join(DATAFLOWS)}, "
                                 f"not {self.dataflow!r}")
        object.__setattr__(self, "dram_bw_gbps", _positive_number("dram_bw_gbps",
                                                                  self.dram_bw_gbps))
        object.__setattr__(self, "clock_mhz", _positive_number("clock_mhz", self.clock_mhz))
        self.config()  # geometry, dataflow and kind checked by the array itself

    @property
    def bitserial(self):
        """True for bit-serial PE kinds (lockstep output-stationary arrays)."""
        return pe_kind(self.pe).pe == "bitserial"

    @property
    def array(self):
        return f"{self.rows}x{self.cols}"

    @property
    def label(self):
        """Short unique name: ``int4 8x8 os`` (plus ``@<bw>GB/s``, ``@<clk>MHz`` when set)."""
        text = f"{self.pe} {self.array} {self.dataflow}"
        if self.dram_bw_gbps is not None:
            text += f" @{self.dram_bw_gbps:g}GB/s"
        if self.clock_mhz is not None:
            text += f" @{self.clock_mhz:g}MHz"
        return text

    def config(self, **changes):
        """The :class:`~nybble.hw.config.ArrayConfig` of this point, accumulators as
        ``nybble cost`` sizes them by default (:func:`nybble.synth.acc_policy.policy_acc_bits`,
        ``exact-k``, K = 4096); ``changes`` override fields."""
        return _array_config(self.pe, self.rows, self.cols, self.dataflow, self.clock_mhz,
                             tuple(sorted(changes.items())))

    def as_dict(self):
        return {f: getattr(self, f) for f in POINT_FIELDS}


@functools.lru_cache(maxsize=None)
def _array_config(pe, rows, cols, dataflow, clock_mhz, changes):
    # configs are frozen and cost ~0.1 s to derive (accumulator policy, PE spec): a sweep
    # shares one per distinct array instead of deriving it per point and per metric
    kw = dict(rows=rows, cols=cols, pe=pe, dataflow=dataflow, acc_bits=policy_acc_bits(pe))
    if clock_mhz is not None:
        kw["clock_mhz"] = clock_mhz
    kw.update(changes)
    return ArrayConfig(**kw)


def _axis(name, values):
    values = list(values)
    if not values:
        raise ParameterError(f"{name} must list at least one value")
    return values


def cross_product(pes, arrays, dataflows=("os",), dram_bws=(None,), clocks=(None,)):
    """Every combination of the axes as :class:`DesignPoint` s, in axis order.

    ``arrays``: ``(rows, cols)`` pairs or ``"RxC"`` strings.  Returns ``(points, skipped)``;
    ``skipped`` lists ``{"point": {...}, "reason": ...}`` for combinations the array refuses
    (block-scaled PEs are output-stationary only)."""
    shapes = [ArrayConfig.parse_array(a) if isinstance(a, str) else tuple(a)
              for a in _axis("arrays", arrays)]
    points, skipped = [], []
    for pe, (r, c), df, bw, clk in itertools.product(
            _axis("pes", pes), shapes, _axis("dataflows", dataflows),
            _axis("dram_bws", dram_bws), _axis("clocks", clocks)):
        try:
            points.append(DesignPoint(pe, r, c, df, bw, clk))
        except ParameterError as e:
            if not isinstance(pe, str) or not _known(pe) or df not in DATAFLOWS:
                raise
            skipped.append({"point": dict(pe=pe, rows=r, cols=c, dataflow=df,
                                          dram_bw_gbps=bw, clock_mhz=clk),
                            "reason": str(e)})
    if not points:
        raise ParameterError("no design point is buildable: "
                             + "; ".join(s["reason"] for s in skipped[:3]))
    return points, skipped


def _known(pe):
    try:
        pe_kind(pe)
        return True
    except ParameterError:
        return False


def _cell(path, where, row, key, cast):
    value = row.get(key)
    if value in (None, ""):
        return None
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise InputFileError(f"{path}:{where}: {key} must be a number, not {value!r}") from None


def _point_from(path, where, row):
    if not isinstance(row, dict):
        raise InputFileError(f"{path}:{where}: a point must be an object with keys "
                             f"{', '.join(POINT_FIELDS)}, not {row!r}")
    unknown = set(row) - set(POINT_FIELDS) - {"array"}
    if unknown:
        raise InputFileError(f"{path}:{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"a point has {', '.join(POINT_FIELDS)} (or array=RxC)")
    if row.get("array") not in (None, ""):
        try:
            rows, cols = ArrayConfig.parse_array(row["array"])
        except ParameterError as e:
            raise InputFileError(f"{path}:{where}: {e}") from None
    else:
        rows, cols = _cell(path, where, row, "rows", int), _cell(path, where, row, "cols", int)
    if row.get("pe") in (None, "") or rows is None or cols is None:
        raise InputFileError(f"{path}:{where}: a point needs pe and rows, cols (or array)")
    try:
        return DesignPoint(str(row["pe"]), rows, cols, str(row.get("dataflow") or "os"),
                           _cell(path, where, row, "dram_bw_gbps", float),
                           _cell(path, where, row, "clock_mhz", float))
    except (ParameterError, ParameterTypeError) as e:
        raise InputFileError(f"{path}:{where}: {e}") from None


def read_points(path):
    """Design points from a CSV (header row with the :data:`POINT_FIELDS`, or ``array``
    for ``rows``/``cols``) or a JSON list of such objects."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputFileError(f"points file {path!r} does not exist")
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InputFileError(f"{path}: not JSON ({e})") from None
        if not isinstance(data, list):
            raise InputFileError(f"{path}: a points file holds a JSON list of points")
        points = [_point_from(path, f"#{i}", row) for i, row in enumerate(data)]
    else:
        reader = csv.DictReader(text.splitlines())
        points = [_point_from(path, i + 2, {k.strip(): (v or "").strip()
                                            for k, v in row.items() if k})
                  for i, row in enumerate(reader)]
    if not points:
        raise InputFileError(f"{path}: no design points")
    return points
