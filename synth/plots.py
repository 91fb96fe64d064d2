"""PNG plots of the cost model (matplotlib, Agg backend: no display needed).

* :func:`plot_area_vs_bits` -- PE area against operand width, one line per format family
  (integer, floating point, power of two), single MACs solid and 4-lane dot products dashed;
* :func:`plot_throughput_per_area` -- operations per second (or MACs per cycle, without
  Fmax) per million transistors, one bar per PE;
* :func:`plot_breakdown` -- stacked bars of the area categories of every PE (and array).

Each takes the rows of :func:`nybble.synth.cost.cost_report` and a path, and returns the path.
"""

from pathlib import Path
from .area import CATEGORIES

__all__ = ["plot_area_vs_bits", "plot_throughput_per_area", "plot_breakdown", "write_plots",
           "plot_bitserial_tradeoff"]

# Format families for the area-vs-width plot: family -> kinds in order of width.
_FAMILIES = {
    "integer (int4, int8, int16)": ("int4", "int8", "int16"),
    "float (fp4 e2m1, fp8 e4m3, fp16)": ("fp4_e2m1", "fp8_e4m3", "fp16"),
    "bfloat16": ("bf16",),
    "power of two (e3m0)": ("e3m0",),
    "int8 x e3m0 (shift)": ("int8_e3m0",),
}
_COLOURS = {
    "multiplier": "#4c72b0", "adder_tree": "#55a868", "accumulator": "#c44e52",
    "registers": "#8172b2", "buffers": "#ccb974", "control": "#64b5cd",
}


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _pe_rows(rows):
    return {r["pe"]: r for r in rows if r["scope"] == "pe"}


def plot_area_vs_bits(rows, path):
    plt = _pyplot()
    by = _pe_rows(rows)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, (family, kinds) in enumerate(_FAMILIES.items()):
        colour = f"C{i}"
        for suffix, style, label in (("", "-o", "MAC"), ("_dp4", "--s", "4-lane dot product")):
            pts = [(by[k + suffix]["bits"], by[k + suffix]["transistors"])
                   for k in kinds if k + suffix in by]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, style, color=colour, label=f"{family}, {label}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks([4, 8, 16])
    ax.set_xticklabels(["4", "8", "16"])
    ax.set_xlabel("operand width (bits)")
    ax.set_ylabel("PE area (CMOS transistors, Yosys estimate)")
    acc = sorted({r["acc_bits"] for r in by.values()})
    ax.set_title("PE area vs operand width (accumulators at equal width: "
                 f"{acc[0]} bits where one step fits)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_throughput_per_area(rows, path):
    plt = _pyplot()
    pe_rows = [r for r in rows if r["scope"] == "pe"]
    with_fmax = all(r["gops_per_s_per_mtransistor"] is not None for r in pe_rows)
    key = "gops_per_s_per_mtransistor" if with_fmax else "macs_per_cycle_per_mtransistor"
    pe_rows = sorted(pe_rows, key=lambda r: r[key], reverse=True)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    names = [r["pe"] for r in pe_rows]
    values = [r[key] for r in pe_rows]
    colours = ["C0" if r["bits"] <= 4 and r["kind"] != "bitserial" else
               "C2" if r["kind"] == "bitserial" else "C1" for r in pe_rows]
    ax.barh(names[::-1], values[::-1], color=colours[::-1])
    ax.set_xlabel("GOPS per million transistors (ECP5 Fmax, 2 ops per MAC)" if with_fmax
                  else "MACs per cycle per million transistors")
    ax.set_title("Throughput per area (blue: 4-bit operands, orange: wider, green: "
                 "bit-serial)", fontsize=9)
    return _save_barh(plt, fig, ax, path, labelsize=7)


def _save_barh(plt, fig, ax, path, *, labelsize):
    """Finish a horizontal bar chart (label size, grid along x) and write it to ``path``."""
    ax.tick_params(axis="y", labelsize=labelsize)
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_breakdown(rows, path, *, scope="pe"):
    """Two panels: transistors per category (stacked), and the same as shares of the total."""
    plt = _pyplot()
    chosen = [r for r in rows if r["scope"] == scope]
    fig, (ax, share) = plt.subplots(2, 1, figsize=(max(7, 0.45 * len(chosen) + 2), 8),
                                    sharex=True)
    names = [r["pe"] if scope == "pe" else f"{r['pe']} {r['array']}" for r in chosen]
    totals = [sum(r["breakdown"].values()) or 1 for r in chosen]
    bottom = [0.0] * len(chosen)
    bottom_share = [0.0] * len(chosen)
    for cat in CATEGORIES:
        values = [r["breakdown"][cat] for r in chosen]
        if not any(values):
            continue
        shares = [100 * v / t for v, t in zip(values, totals)]
        ax.bar(names, values, bottom=bottom, label=cat.replace("_", " "),
               color=_COLOURS[cat])
        share.bar(names, shares, bottom=bottom_share, color=_COLOURS[cat])
        bottom = [b + v for b, v in zip(bottom, values)]
        bottom_share = [b + v for b, v in zip(bottom_share, shares)]
    ax.set_ylabel("CMOS transistors (hierarchical synthesis)")
    share.set_ylabel("share of the area (%)")
    share.set_ylim(0, 100)
    ax.set_title("Area breakdown per " + ("PE" if scope == "pe" else "array"), fontsize=10)
    share.tick_params(axis="x", rotation=60, labelsize=7)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def write_plots(rows, out_dir):
    """All plots into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_area_vs_bits(rows, out / "area_vs_bits.png"),
             plot_throughput_per_area(rows, out / "throughput_per_area.png"),
             plot_breakdown(rows, out / "area_breakdown.png")]
    if any(r["scope"] == "array" for r in rows):
        paths.append(plot_breakdown(rows, out / "array_breakdown.png", scope="array"))
    return paths


def plot_bitserial_tradeoff(rows, path):
    """Bars of MACs per cycle per million transistors: the bit-serial array at each data-type
    mix beside the bit-parallel arrays (rows of :func:`nybble.sim.bitserial.tradeoff_rows`)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [r["design"] if r["mix"] == "-" else f"bit-serial, {r['mix']}" for r in rows]
    values = [r["macs_per_cycle_per_mtransistor"] for r in rows]
    colours = ["C1" if r["mix"] == "-" else "C2" for r in rows]
    ax.barh(labels[::-1], values[::-1], color=colours[::-1])
    ax.set_xlabel("MACs per cycle per million transistors (whole arrays, Yosys generic)")
    ax.set_title("Bit-serial (green) vs bit-parallel (orange) arrays, int8 activations",
                 fontsize=9)
    return _save_barh(plt, fig, ax, path, labelsize=8)
