"""What an exploration writes: Pareto PNGs, a self-contained HTML report, CSV and JSON.

* ``pareto_throughput.png``: throughput per area (the objective of
  :func:`nybble.explore.pareto.default_objective`) against accuracy (the worst layer's
  cosine), every point drawn, the front joined, int8 / int16 baselines marked;
* ``pareto_energy.png``: inferences per joule against accuracy, and
  ``pareto_energy_area.png``: inferences per joule against throughput per area, only when
  some point has an energy (the others say why in the "missing" list);
* ``explore.html``: the plots inline (base64 PNG), the constraint verdict, and the table
  (click a header to sort);
* ``explore.csv``: one row per point, the scalar columns; ``explore.json``: the whole table
  (per-layer cycles and accuracy included).
"""

import base64
import csv
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from .pareto import baseline_of, default_objective, numeric, pareto_front  # noqa: E402

__all__ = ["ACCURACY_AXIS", "plot_pareto", "write_report", "scalar_columns"]

#: the accuracy axis of the Pareto plots
ACCURACY_AXIS = "cosine_layer_min"
_NESTED = ("layer_cycles", "layer_accuracy", "layer_stream", "layer_energy")
_MARKERS = {"int8": ("s", "#c44e52"), "int16": ("D", "#8172b2")}


def scalar_columns(rows):
    """The columns of ``rows`` that hold one value (not the per-layer lists), in order."""
    return [k for k in dict.fromkeys(k for r in rows for k in r) if k not in _NESTED]


def plot_pareto(rows, x, y, path, *, title, xlabel, ylabel):
    """Scatter of every row with numbers for ``x`` and ``y`` (coloured by PE kind), the
    Pareto front (both maximised) joined, int8 / int16 baselines marked; returns ``path`` or
    None when no row has both."""
    pts = [(i, numeric(r, x), numeric(r, y)) for i, r in enumerate(rows)]
    pts = [p for p in pts if p[1] is not None and p[2] is not None]
    if not pts:
        return None
    fig, ax = plt.subplots(figsize=(9, 6))
    kinds = list(dict.fromkeys(rows[p[0]]["pe"] for p in pts))
    colours = plt.get_cmap("tab20")
    for n, kind in enumerate(kinds):
        mine = [p for p in pts if rows[p[0]]["pe"] == kind]
        ax.scatter([p[1] for p in mine], [p[2] for p in mine], s=18, alpha=0.6,
                   color=colours(n % 20), label=kind)
    for name, (marker, colour) in _MARKERS.items():
        base = [p for p in pts if baseline_of(rows[p[0]]) == name]
        if base:
            ax.scatter([p[1] for p in base], [p[2] for p in base], s=70, marker=marker,
                       facecolors="none", edgecolors=colour, linewidths=1.6,
                       label=f"{name} baseline")
    front = pareto_front(rows, x, y)
    ax.plot([rows[i][x] for i in front], [rows[i][y] for i in front], "-o", c="#55a868",
            ms=5, lw=1.5, label="Pareto front")
    for i in front:
        ax.annotate(rows[i]["label"], (rows[i][x], rows[i][y]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if min(p[2] for p in pts) > 0:
        ax.set_yscale("log")
    if x != ACCURACY_AXIS and min(p[1] for p in pts) > 0:
        ax.set_xscale("log")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legend sits outside the axes
    plt.close(fig)
    return Path(path)


_LABELS = {"macs_per_s_per_mm2": "MAC/s per mm^2",
           "macs_per_cycle_per_mtransistor": "MAC/cycle per 10^6 transistors"}


def _cell(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var up = th.dataset.dir !== 'up'; th.dataset.dir = up ? 'up' : 'down';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return up ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _html(table, columns, plots, verdict):
    doc = table.as_dict()
    wl = doc["workload"]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>nybble explore</title>",
             "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;"
             "font-size:12px}th,td{border:1px solid #ccc;padding:2px 5px;text-align:right}"
             "th{cursor:pointer;background:#eee}td.t{text-align:left}</style></head><body>",
             f"<h1>nybble explore: {html.escape(wl['name'])}"
             + (f" ({html.escape(wl['phase'])})" if wl.get("phase") else "") + "</h1>",
             f"<p>{len(doc['rows'])} design points, {wl['macs']:,} MACs per inference, "
             f"{len(wl['layers'])} GEMMs.</p>"]
    for title, path in plots:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        parts.append(f"<h2>{html.escape(title)}</h2><img src='data:image/png;base64,{data}'>")
    if doc["missing"]:
        parts.append("<h2>Missing columns</h2><ul>" + "".join(
            f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>"
            for k, v in doc["missing"].items()) + "</ul>")
    if verdict is not None:
        parts.append("<h2>Constraint</h2><p>" + html.escape(", ".join(verdict["constraints"])
                     or "(none)") + f"; objective {html.escape(verdict['objective'])}: "
                     + (html.escape(doc["rows"][verdict["best"]]["label"])
                        if verdict["best"] is not None else "no point meets them") + "</p>")
    parts.append("<h2>Table</h2><table class='sortable'><thead><tr>"
                 + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
                 + (("<th>verdict</th>") if verdict is not None else "")
                 + "</tr></thead><tbody>")
    for i, row in enumerate(doc["rows"]):
        cells = []
        for c in columns:
            v = row.get(c)
            cls = " class='t'" if isinstance(v, str) else ""
            cells.append(f"<td{cls} data-v='{html.escape(str(v), quote=True)}'>"
                         f"{html.escape(_cell(v))}</td>")
        if verdict is not None:
            cells.append(f"<td class='t' data-v='{i}'>{html.escape(verdict['reasons'][i])}"
                         "</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append(f"</tbody></table><script>{_SORT_JS}</script></body></html>")
    return "".join(parts)


def write_report(table, out, *, verdict=None):
    """Write the files of the module docstring into directory ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = table.rows
    objective = default_objective(rows)
    wl = table.workload["name"] + (f" {table.workload['phase']}" if table.workload.get("phase")
                                   else "")
    plots = []
    p = plot_pareto(rows, ACCURACY_AXIS, objective, out / "pareto_throughput.png",
                    title=f"{wl}: throughput per area vs accuracy",
                    xlabel="accuracy: worst layer's cosine (measured)",
                    ylabel=_LABELS[objective])
    if p:
        plots.append(("Throughput per area vs accuracy", p))
    p = plot_pareto(rows, ACCURACY_AXIS, "inferences_per_j", out / "pareto_energy.png",
                    title=f"{wl}: inferences per joule vs accuracy",
                    xlabel="accuracy: worst layer's cosine (measured)",
                    ylabel="inferences per joule")
    if p:
        plots.append(("Energy vs accuracy", p))
    p = plot_pareto(rows, objective, "inferences_per_j", out / "pareto_energy_area.png",
                    title=f"{wl}: inferences per joule vs throughput per area",
                    xlabel=_LABELS[objective], ylabel="inferences per joule")
    if p:
        plots.append(("Energy vs throughput per area", p))
    columns = scalar_columns(rows)
    paths = [path for _, path in plots]
    with open(out / "explore.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    doc = table.as_dict()
    if verdict is not None:
        doc["constraint"] = verdict
    (out / "explore.json").write_text(json.dumps(doc, indent=1, default=str))
    (out / "explore.html").write_text(_html(table, columns, plots, verdict))
    return paths + [out / "explore.csv", out / "explore.json", out / "explore.html"]
