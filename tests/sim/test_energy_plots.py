"""The energy bar plot is written from a report."""
from nybble.sim.energy_plots import plot_energy
from nybble.synth.energy import ENERGY_CATEGORIES


def test_plot_written(tmp_path):
    rows = [{"pe": pe, "data": data, "pj_per_mac": e,
             "breakdown_pj_per_mac": {c: e / len(ENERGY_CATEGORIES) for c in ENERGY_CATEGORIES}}
            for pe, data, e in (("int4", "uniform", 1.0), ("int4", "digits", 0.7),
                                ("int8", "uniform", 2.0), ("int8", "digits", 1.1))]
    report = {"rows": rows, "model": {"description": "generic gates, 45 nm, 0.9 V"}}
    path = plot_energy(report, tmp_path / "sub" / "e.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
