"""The cost plots are written as PNG files from report rows."""

from nybble.synth.area import CATEGORIES
from nybble.synth.plots import write_plots


def _row(pe, bits, transistors, kind="mac", scope="pe", fmax=None):
    breakdown = dict.fromkeys(CATEGORIES, 0)
    breakdown.update(multiplier=transistors // 4, accumulator=transistors // 2,
                     registers=transistors // 4)
    return {"pe": pe, "scope": scope, "array": "1x1" if scope == "pe" else "4x4",
            "kind": kind, "bits": bits, "acc_bits": 32, "transistors": transistors,
            "breakdown": breakdown, "macs_per_cycle_per_mtransistor": 1e6 / transistors,
            "gops_per_s_per_mtransistor": None if fmax is None else fmax / transistors}


def test_write_plots(tmp_path):
    rows = [_row("int4", 4, 3500), _row("int8", 8, 5500), _row("int16", 16, 12600),
            _row("fp4_e2m1", 4, 3400), _row("fp16", 16, 16700), _row("int4_dp4", 4, 6900,
                                                                        "dp"),
            _row("bitserial", 8, 5700, "bitserial"), _row("int4", 4, 200000, scope="array")]
    paths = write_plots(rows, tmp_path / "out")
    assert [p.name for p in paths] == ["area_vs_bits.png", "throughput_per_area.png",
                                       "area_breakdown.png", "array_breakdown.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_plot_bitserial_tradeoff(tmp_path):
    from nybble.synth.plots import plot_bitserial_tradeoff
    rows = [{"design": "bitserial", "mix": m, "macs_per_cycle_per_mtransistor": v}
            for m, v in (("all-int4", 40.0), ("all-e3m0", 120.0))]
    rows.append({"design": "int8_int4", "mix": "-", "macs_per_cycle_per_mtransistor": 90.0})
    p = plot_bitserial_tradeoff(rows, tmp_path / "t.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000
