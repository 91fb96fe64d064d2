"""Run a workload through a cycle model and report it per layer and in total (table, CSV, JSON).

The cycle model is any function ``cycle_fn(config, m, n, k)`` returning a record with the
fields of :class:`nybble.sim.cycles.GemmCycles` (by default :func:`nybble.sim.cycles.gemm_cycles`,
exact for the RTL).  Each :class:`~nybble.sim.workloads.Layer` is one GEMM run ``count`` times
back to back; per-layer numbers are for **one** GEMM, and the ``total_*`` columns and the
totals multiply by ``count``::

    total cycles  = sum(cycles * count)
    utilization   = sum(ideal_cycles * count) / total cycles
    seconds       = total cycles / (clock_mhz * 1e6)

Repeated GEMMs of one shape (LLaMA's q/k/v/o projections) are computed once.
"""

import csv
from dataclasses import asdict, dataclass
import io
import json
import os
from nybble.sw.errors import ParameterError
from .cycles import gemm_cycles

__all__ = ["WorkloadReport", "run_workload", "LAYER_FIELDS", "TOTAL_FIELDS", "COUNTER_FIELDS"]

# fields of GemmCycles copied into each layer row, in order
COUNTER_FIELDS = ("tiles", "a_reads", "a_writes", "b_reads", "b_writes", "c_reads", "c_writes")

# one CSV column per key, in this order
LAYER_FIELDS = ("name", "m", "n", "k", "count", "macs", "cycles", "ideal_cycles", "utilization",
                *COUNTER_FIELDS, "total_cycles")

TOTAL_FIELDS = ("layers", "gemms", "macs", "cycles", "ideal_cycles", "utilization",
                *COUNTER_FIELDS, "macs_per_cycle", "clock_mhz", "seconds")


def _default_cycle_fn():
    return gemm_cycles


@dataclass(frozen=True)
class WorkloadReport:
    """The result of :func:`run_workload`.

    config : the array, as a plain dict (``ArrayConfig`` fields).
    workload : what ran (``{"name": ..., plus parameters or the source file}``).
    layers : one dict per layer, keys :data:`LAYER_FIELDS` (per-GEMM counts; ``macs`` and
        ``total_cycles`` include ``count``).
    totals : keys :data:`TOTAL_FIELDS`, every sum weighted by ``count``; ``seconds`` at
        ``clock_mhz``.
    """

    config: dict
    workload: dict
    layers: list
    totals: dict

    def as_dict(self):
        """``{"config", "workload", "layers", "totals"}``: the JSON document."""
        return {"config": self.config, "workload": self.workload,
                "layers": self.layers, "totals": self.totals}

    def to_json(self, **kw):
        return json.dumps(self.as_dict(), **kw)

    def write_json(self, path):
        with open(path, "w") as f:
            json.dump(self.as_dict(), f, indent=2)
            f.write("\n")

    def write_csv(self, path_or_file):
        """One row per layer, columns :data:`LAYER_FIELDS` (``total_cycles`` sums to the total)."""
        if isinstance(path_or_file, (str, os.PathLike)):
            with open(path_or_file, "w", newline="") as f:
                self._write_csv(f)
        else:
            self._write_csv(path_or_file)

    def _write_csv(self, f):
        w = csv.DictWriter(f, fieldnames=LAYER_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(self.layers)

    def csv_text(self):
        buf = io.StringIO()
        self._write_csv(buf)
        return buf.getvalue()

    def format_table(self):
        """A per-layer table with a totals line, for people."""
        c, t = self.config, self.totals
        head = (f"{c['rows']}x{c['cols']} {c['dataflow']} array, pe {c['pe']}, "
                f"acc {c['acc_bits']} bits, {c['clock_mhz']:g} MHz; workload {self.workload['name']}")
        cols = ("layer", "M", "N", "K", "count", "cycles", "ideal", "util", "total cycles")
        rows = [(r["name"], r["m"], r["n"], r["k"], r["count"], r["cycles"], r["ideal_cycles"],
                 f"{100 * r['utilization']:.1f}%", r["total_cycles"]) for r in self.layers]
        rows.append(("total", "", "", "", t["gemms"], "", t["ideal_cycles"],
                     f"{100 * t['utilization']:.1f}%", t["cycles"]))
        cells = [cols] + [tuple(str(v) for v in row) for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
        fmt = lambda r: "  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                                  for i, (v, w) in enumerate(zip(r, widths)))
        lines = [head, fmt(cols), "  ".join("-" * w for w in widths)]
        lines += [fmt(r) for r in cells[1:-1]]
        lines += ["  ".join("-" * w for w in widths), fmt(cells[-1])]
        lines.append(f"{t['macs']:,} MACs in {t['cycles']:,} cycles "
                     f"({t['macs_per_cycle']:.1f} MACs/cycle of {c['rows'] * c['cols']} PEs), "
                     f"{_fmt_seconds(t['seconds'])} at {c['clock_mhz']:g} MHz")
        return "\n".join(lines)


def _fmt_seconds(s):
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.3f} us"


def _config_dict(config):
    try:
        return asdict(config)
    except TypeError:
        return dict(vars(config))


def run_workload(config, layers, *, cycle_fn=None, workload=None):
    """Cycle counts of every layer of ``layers`` on the array ``config``.

    config : an :class:`~nybble.hw.config.ArrayConfig`.
    layers : a list of :class:`~nybble.sim.workloads.Layer`.
    cycle_fn : ``f(config, m, n, k) -> GemmCycles``; default :func:`nybble.sim.cycles.gemm_cycles`.
    workload : a dict describing the workload for the report (default ``{"name": "custom"}``).
    Returns a :class:`WorkloadReport`.
    """
    if cycle_fn is None:
        cycle_fn = _default_cycle_fn()
    layers = list(layers)
    if not layers:
        raise ParameterError("the workload has no layers")
    cache = {}
    rows = []
    for layer in layers:
        shape = (layer.m, layer.n, layer.k)
        if shape not in cache:
            cache[shape] = cycle_fn(config, *shape)
        g = cache[shape]
        row = {"name": layer.name, "m": layer.m, "n": layer.n, "k": layer.k,
               "count": layer.count, "macs": layer.macs, "cycles": int(g.cycles),
               "ideal_cycles": _num(g.ideal_cycles), "utilization": float(g.utilization)}
        row.update({f: int(getattr(g, f)) for f in COUNTER_FIELDS})
        if getattr(g, "mean_cycles_per_mac", None) is not None:   # bit-serial arrays
            row["mean_cycles_per_mac"] = float(g.mean_cycles_per_mac)
        row["total_cycles"] = row["cycles"] * layer.count
        rows.append(row)
    total_cycles = sum(r["total_cycles"] for r in rows)
    total_ideal = sum(r["ideal_cycles"] * r["count"] for r in rows)
    macs = sum(r["macs"] for r in rows)
    clock_mhz = float(config.clock_mhz)
    totals = {"layers": len(rows), "gemms": sum(r["count"] for r in rows), "macs": macs,
              "cycles": total_cycles, "ideal_cycles": total_ideal,
              "utilization": total_ideal / total_cycles if total_cycles else 0.0}
    totals.update({f: sum(r[f] * r["count"] for r in rows) for f in COUNTER_FIELDS})
    totals.update({"macs_per_cycle": macs / total_cycles if total_cycles else 0.0,
                   "clock_mhz": clock_mhz, "seconds": total_cycles / (clock_mhz * 1e6)})
    return WorkloadReport(config=_config_dict(config), workload=dict(workload or {"name": "custom"}),
                          layers=rows, totals=totals)


def _num(v):
    # ideal cycles may be a whole number of cycles or an exact fraction (MACs / PEs)
    f = float(v)
    return int(f) if f.is_integer() else f
