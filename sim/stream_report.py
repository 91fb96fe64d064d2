"""Workload reports on the streaming top: per layer and per format, from the exact cycle model.

:func:`stream_workload` runs every GEMM of a workload through
:func:`~.stream_cycles.stream_cycles` for each array config (one per number format, same
geometry and memory), and gives per layer what SCALE-Sim's COMPUTE and BANDWIDTH reports give
(cycles, stalls, utilization, scratchpad reads / writes, external bytes, average bandwidth) plus
the element bits; :func:`roofline_png` draws the roofline of such a report.
"""

from nybble.hw.stream_top import StreamLayout
from nybble.sw.formats import get_format
from nybble.sw.errors import ParameterError
from .stream_cycles import stream_cycles

__all__ = ["stream_workload", "roofline_png", "LAYER_KEYS"]

#: the keys of one layer row
LAYER_KEYS = ("name", "m", "n", "k", "count", "cycles", "compute_cycles", "stall_cycles",
              "total_cycles", "utilization", "bound", "a_scratchpad_writes",
              "b_scratchpad_writes", "a_scratchpad_reads", "b_scratchpad_reads",
              "c_buffer_writes", "c_buffer_reads", "bytes_read", "bytes_written",
              "bytes_per_cycle", "macs", "mac_per_byte", "mac_per_cycle")


def _layer_row(config, stream, memory, layer):
    r = stream_cycles(config, stream, memory, layer.m, layer.n, layer.k)
    macs = layer.m * layer.n * layer.k
    moved = r.bytes_read + r.bytes_written
    return {
        "name": layer.name, "m": layer.m, "n": layer.n, "k": layer.k, "count": layer.count,
        "cycles": r.cycles, "compute_cycles": r.compute_cycles,
        "stall_cycles": r.stall_cycles, "total_cycles": r.cycles * layer.count,
        "utilization": r.utilization, "bound": r.bound,
        "a_scratchpad_writes": r.a_writes, "b_scratchpad_writes": r.b_writes,
        "a_scratchpad_reads": r.a_reads, "b_scratchpad_reads": r.b_reads,
        "c_buffer_writes": r.c_writes, "c_buffer_reads": r.c_reads,
        "bytes_read": r.bytes_read, "bytes_written": r.bytes_written,
        "bytes_per_cycle": r.bytes_per_cycle, "macs": macs,
        "mac_per_byte": macs / moved, "mac_per_cycle": macs / r.cycles,
    }


def stream_workload(configs, stream, memory, layers, *, passes=1, tokens=None, log=None):
    """Reports of ``layers`` on each config of ``configs`` (a list of ArrayConfigs, e.g.
    one per number format) with scratchpads ``stream`` and external memory ``memory``.

    ``passes``: how many times a forward pass runs the layer list (32 decoder layers for
    LLaMA-7B); ``tokens``: tokens one pass produces (then ``cycles_per_token`` and
    ``tokens_per_second`` at each config's clock).  Returns a list with one dict per config:
    ``{"pe", "dataflow", "element_bits", "port_bits_per_element", "array", "scratchpad_bytes", "layers",
    "totals"}`` (``port_bits_per_element``: A and B bits per element crossing the memory
    port, block scales and byte padding included: 4.25 for MXFP4 on 16 rows).
    """
    out = []
    for cfg in configs:
        if log is not None:
            print(f"stream model: {len(layers)} layers on {cfg.rows}x{cfg.cols} {cfg.pe}",
                  file=log)
        rows = [_layer_row(cfg, stream, memory, layer) for layer in layers]
        lay = StreamLayout(cfg, stream)
        lay_bytes = stream.scratchpad_bytes(lay)
        cycles = sum(r["total_cycles"] for r in rows)
        stalls = sum(r["stall_cycles"] * r["count"] for r in rows)
        macs = sum(r["macs"] * r["count"] for r in rows)
        nread = sum(r["bytes_read"] * r["count"] for r in rows)
        nwritten = sum(r["bytes_written"] * r["count"] for r in rows)
        peak = cfg.rows * cfg.cols * cfg.pe_spec.lanes
        totals = {
            "cycles": cycles, "stall_cycles": stalls, "compute_cycles": cycles - stalls,
            "macs": macs, "utilization": macs / (peak * cycles),
            "bytes_read": nread, "bytes_written": nwritten,
            "bytes_per_cycle": (nread + nwritten) / cycles,
            "seconds": cycles / (cfg.clock_mhz * 1e6), "passes": passes,
            "memory_bound_layers": [r["name"] for r in rows if r["bound"] == "memory"],
        }
        if tokens is not None:
            per_token = cycles * passes / tokens
            totals.update(cycles_per_pass=cycles * passes, tokens_per_pass=tokens,
                          cycles_per_token=per_token,
                          tokens_per_second=cfg.clock_mhz * 1e6 / per_token)
        fa, fb = cfg.formats
        out.append({"pe": cfg.pe, "dataflow": cfg.dataflow, "element_bits": [get_format(fa).bits, get_format(fb).bits],
                    "port_bits_per_element": [lay.a_bits_per_element,
                                              lay.b_bits_per_element],
                    "array": f"{cfg.rows}x{cfg.cols}", "clock_mhz": cfg.clock_mhz,
                    "peak_mac_per_cycle": peak, "scratchpad_bytes": lay_bytes,
                    "layers": rows, "totals": totals})
    return out


def roofline_png(reports, memory, path, title="roofline"):
    """Arithmetic intensity (MAC per byte moved) against achieved MAC per cycle, one point
    per layer per format, with each format's compute roof and the bandwidth slope."""
    if not reports:
        raise ParameterError("roofline_png needs at least one report")
    # matplotlib only when a plot is asked for: it costs a second of start-up
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    bw = float(memory.bandwidth)
    fig, ax = plt.subplots(figsize=(7, 5))
    xs = [r["mac_per_byte"] for rep in reports for r in rep["layers"]]
    lo, hi = min(xs) / 2, max(xs) * 2
    peak = max(rep["peak_mac_per_cycle"] for rep in reports)
    ax.plot([lo, hi], [bw * lo, bw * hi], "k--", lw=1,
            label=f"one channel: {bw:g} B/cycle")
    # reads and writes have a channel each: together they can move twice that
    ax.plot([lo, hi], [2 * bw * lo, 2 * bw * hi], "k:", lw=1,
            label=f"read + write: {2 * bw:g} B/cycle")
    for rep, marker in zip(reports, "osD^vP*X" * len(reports)):
        pts = [(r["mac_per_byte"], r["mac_per_cycle"]) for r in rep["layers"]]
        sc = ax.scatter(*zip(*pts), label=rep["pe"], s=30, marker=marker, alpha=0.8)
        ax.axhline(rep["peak_mac_per_cycle"], color=sc.get_facecolor()[0], lw=0.8, alpha=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(min(bw * lo, min(r["mac_per_cycle"] for rep in reports
                                 for r in rep["layers"])) / 2, peak * 2)
    ax.set_xlabel("arithmetic intensity (MAC per byte moved at the port)")
    ax.set_ylabel("achieved MAC per cycle")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
