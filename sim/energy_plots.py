"""PNG bar plot of an energy report (matplotlib, Agg backend).

Left: pJ per MAC of every PE kind, one bar per data set. Right: the breakdown of the first
data set's energy per MAC into :data:`nybble.synth.energy.ENERGY_CATEGORIES`, stacked.
"""

from pathlib import Path

from nybble.synth.energy import ENERGY_CATEGORIES
from nybble.synth.plots import _pyplot

__all__ = ["plot_energy"]

_COLOURS = {
    "multiplier": "#4c72b0", "adder_tree": "#55a868", "accumulator": "#c44e52",
    "registers": "#8172b2", "clock": "#937860", "inputs": "#ccb974", "control": "#64b5cd",
}


def plot_energy(report, path):
    """Write the plot of ``report`` (:func:`nybble.sim.energy_report.energy_sweep`) to
    ``path``; returns it as a :class:`pathlib.Path`."""
    plt = _pyplot()
    rows = report["rows"]
    kinds = list(dict.fromkeys(r["pe"] for r in rows))
    datasets = list(dict.fromkeys(r["data"] for r in rows))
    value = {(r["pe"], r["data"]): r for r in rows}
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(10, 1.1 * len(kinds) + 6), 5))
    width = 0.8 / max(1, len(datasets))
    for j, data in enumerate(datasets):
        xs = [i + (j - (len(datasets) - 1) / 2) * width for i in range(len(kinds))]
        left.bar(xs, [value[(k, data)]["pj_per_mac"] for k in kinds], width, label=data)
    left.set_yscale("log")
    left.set_ylabel("pJ per MAC")
    left.set_title("energy per MAC by data set")
    first = datasets[0]
    bottom = [0.0] * len(kinds)
    for cat in ENERGY_CATEGORIES:
        heights = [value[(k, first)]["breakdown_pj_per_mac"][cat] for k in kinds]
        if not any(heights):
            continue
        right.bar(range(len(kinds)), heights, 0.7, bottom=bottom, label=cat,
                  color=_COLOURS[cat])
        bottom = [b + h for b, h in zip(bottom, heights)]
    right.set_ylabel("pJ per MAC")
    right.set_title(f"breakdown ({first} data)")
    for ax in (left, right):
        ax.set_xticks(range(len(kinds)))
        ax.set_xticklabels(kinds, rotation=45, ha="right")
        ax.legend(fontsize=8)
    fig.suptitle("Netlist switching energy: " + report["model"]["description"], fontsize=9,
                 wrap=True)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
