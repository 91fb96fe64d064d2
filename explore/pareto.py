"""Pareto fronts over the table, constraints, and the best point under them.

A constraint list is text such as ``"area<=2e6,cosine>=0.99"``: comma-separated
``COLUMN OP NUMBER`` with ``OP`` one of ``<=``, ``>=``, ``<``, ``>``, ``==``.  ``COLUMN`` is any
numeric column of the table or one of the :data:`ALIASES` (``area`` is the synthesised
transistor count; ``cosine`` the worst layer's measured cosine).  A point whose value is
"missing" fails the constraint and says why.

:func:`best_point` picks, among the points that meet every constraint, the one with the highest
objective (default: :func:`default_objective`, MAC/s per mm^2 when clocks and a Liberty are
given, else MAC/cycle per 10^6 transistors) and says for every other point why it lost: the
first constraint it breaks, or its objective against the winner's.
"""

import dataclasses
import math
import operator
import re

from nybble.sw.errors import ParameterError
from .metrics import is_missing

__all__ = ["Constraint", "parse_constraints", "ALIASES", "NUMERIC_COLUMNS", "pareto_front",
           "best_point", "default_objective", "baseline_of", "numeric"]

#: short names accepted in constraints and objectives -> table columns
ALIASES = {"area": "transistors", "cosine": "cosine_layer_min", "sqnr": "sqnr_db_layer_min",
           "throughput": "macs_per_s", "latency": "latency_s", "energy": "energy_j"}

#: columns a constraint may name (besides the aliases)
NUMERIC_COLUMNS = ("rows", "cols", "dram_bw_gbps", "clock_mhz", "transistors", "cells",
                   "area_um2", "area_mm2", "cycles", "utilization", "macs_per_cycle",
                   "stall_cycles", "latency_s", "macs_per_s", "energy_j", "energy_j_dram_high",
                   "energy_pe_j", "energy_idle_j", "energy_sram_j", "energy_dram_j",
                   "pe_pj_per_mac", "pj_per_mac", "inferences_per_j", "macs_per_j",
                   "cosine_predicted", "cosine_layer_min", "sqnr_db_layer_min", "sqnr_db_mean",
                   "macs_per_cycle_per_mtransistor", "macs_per_s_per_mtransistor",
                   "macs_per_s_per_mm2")

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt,
        "==": operator.eq}
_TERM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|<|>)\s*(\S+)\s*$")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """``column op value`` (``column`` resolved through :data:`ALIASES`); ``text`` as given."""
    column: str
    op: str
    value: float
    text: str

    def check(self, row):
        """``None`` when ``row`` meets it, else the reason (one phrase)."""
        got = row.get(self.column)
        if got is None or is_missing(got):
            return f"{self.column} is {got if got is not None else 'absent'}"
        if not _OPS[self.op](got, self.value):
            return f"{self.column} = {got:.4g} breaks {self.text}"
        return None


def _column(name, what):
    column = ALIASES.get(name, name)
    if column not in NUMERIC_COLUMNS:
        raise ParameterError(f"{what}: unknown column {name!r}; use one of "
                             f"{', '.join(sorted(ALIASES))} or {', '.join(NUMERIC_COLUMNS)}")
    return column


def parse_constraints(text):
    """``[Constraint]`` from ``"area<=2e6,cosine>=0.99"`` (module docstring); an empty or
    None text is no constraint."""
    if text is None or not str(text).strip():
        return []
    out = []
    for term in str(text).split(","):
        m = _TERM.match(term)
        if not m:
            raise ParameterError(f"constraint {term.strip()!r} must look like COLUMN OP NUMBER "
                                 f"with OP one of {', '.join(_OPS)} (e.g. area<=2e6)")
        name, op, number = m.groups()
        column = _column(name, f"constraint {term.strip()!r}")
        try:
            value = float(number)
        except ValueError:
            raise ParameterError(f"constraint {term.strip()!r}: {number!r} is not a number") \
                from None
        if not math.isfinite(value):
            raise ParameterError(f"constraint {term.strip()!r}: the bound must be finite")
        out.append(Constraint(column, op, value, term.strip()))
    return out


def numeric(row, key):
    """``row[key]`` when it is a finite number, else None (missing, absent, non-finite)."""
    v = row.get(key)
    return None if v is None or is_missing(v) or not math.isfinite(v) else v


def pareto_front(rows, x, y):
    """Indices of the rows not dominated in (``x``, ``y``), both maximised, sorted by ``x``
    (of rows with equal values, the first); rows where either is missing take no part."""
    pts = [(i, numeric(r, x), numeric(r, y)) for i, r in enumerate(rows)]
    pts = [p for p in pts if p[1] is not None and p[2] is not None]
    front, seen = [], set()
    for i, a, b in pts:
        dominated = any((a2 >= a and b2 >= b) and (a2 > a or b2 > b) for _, a2, b2 in pts)
        if not dominated and (a, b) not in seen:   # equal points: the first stands for all
            seen.add((a, b))
            front.append(i)
    return sorted(front, key=lambda i: (rows[i][x], rows[i][y]))


def default_objective(rows):
    """``macs_per_s_per_mm2`` when any row has it, else ``macs_per_cycle_per_mtransistor``."""
    if any(numeric(r, "macs_per_s_per_mm2") is not None for r in rows):
        return "macs_per_s_per_mm2"
    return "macs_per_cycle_per_mtransistor"


def baseline_of(row):
    """``"int8"`` / ``"int16"`` when both operands of the point's PE are that format."""
    fmts = row.get("pe_formats", "").split(" x ")
    return fmts[0] if len(set(fmts)) == 1 and fmts[0] in ("int8", "int16") else None


def best_point(rows, constraints, objective=None):
    """``{"objective", "best" (index or None), "reasons": [why each row lost or won]}``."""
    objective = _column(objective, "objective") if objective else default_objective(rows)
    ok = []
    reasons = []
    for i, row in enumerate(rows):
        broken = [r for r in (c.check(row) for c in constraints) if r]
        if broken:
            reasons.append("; ".join(broken))
        elif numeric(row, objective) is None:
            reasons.append(f"{objective} is {row.get(objective)}")
        else:
            reasons.append(None)
            ok.append(i)
    best = max(ok, key=lambda i: rows[i][objective]) if ok else None
    for i in ok:
        if i == best:
            reasons[i] = f"best: highest {objective} ({rows[i][objective]:.4g}) under the " \
                         f"constraints"
        else:
            reasons[i] = (f"meets the constraints; {objective} {rows[i][objective]:.4g} < "
                          f"{rows[best][objective]:.4g} of the best")
    return {"objective": objective, "best": best, "reasons": reasons,
            "constraints": [c.text for c in constraints]}
