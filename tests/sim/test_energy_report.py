"""The energy sweep's assembly: data functions, ratio pairs, energy beside area ratios."""
import types

import numpy as np
import pytest

from nybble.hw.kinds import pe_spec
from nybble.sim import energy_report
from nybble.sim.energy_report import (energy_sweep, float_data, ratio_pairs,
                                      synthetic_data)
from nybble.sw import decode
from nybble.sw.errors import ParameterError


def test_ratio_pairs():
    assert ratio_pairs(["int4", "int8", "int16", "int4_dp4", "int8_dp4"]) == [
        ("int8", "int4"), ("int8_dp4", "int4_dp4"), ("int16", "int4")]


def test_synthetic_data_does_not_repeat():
    spec = pe_spec("int4_dp4")
    a, b, first = synthetic_data("uniform").steps(spec, 5000)
    assert a.shape == b.shape == (5000, 4) and first.sum() == -(-5000 // 16)
    # 5000 steps of K=64 dot products, 4 lanes: 313 distinct outputs of an 18 x 18 product
    rows = {tuple(r) for r in a[first]}
    assert len(rows) > 15


def test_float_data_splits_steps_between_layers(rng):
    spec = pe_spec("int8")
    layers = [(rng.standard_normal((4, 8)), rng.standard_normal((8, 3))),
              (np.zeros((2, 8)), rng.standard_normal((8, 2)))]
    a, b, first = float_data(layers).steps(spec, 10)
    assert a.shape == (10, 1)
    assert (decode(a[5:], "int8") == 0).all() and (decode(a[:5], "int8") != 0).any()
    assert first.tolist() == [True] + [False] * 4 + [True] + [False] * 4
    with pytest.raises(ParameterError, match="at least one"):
        float_data([])


def test_sweep_puts_energy_beside_area(monkeypatch):
    energy = {"int4": 1.0, "int8": 2.5}
    area = {"int4": 1000, "int8": 1900}

    def fake_pe_energy(kind, a, b, first, **kw):
        cats = dict.fromkeys(("multiplier", "accumulator"), energy[kind] / 2)
        return types.SimpleNamespace(
            lanes=1, acc_bits=32, macs=len(first), pj_per_mac=energy[kind], categories=cats,
            toggles_per_cycle=1.0, nets=1, cells=1, flip_flops=1, checked_steps=len(first),
            leakage_nw=None,
            seconds=0.0, sim_seconds=0.0, check_seconds=0.0, build_seconds=0.0,
            synth_seconds=0.0, synth_cached=True, build_cached=True)

    monkeypatch.setattr(energy_report, "pe_energy", fake_pe_energy)
    monkeypatch.setattr(energy_report, "pe_area",
                        lambda kind, **kw: types.SimpleNamespace(transistors=area[kind]))
    report = energy_sweep(["int4", "int8"], {"uniform": synthetic_data("uniform")},
                          macs=100, anchors=False)
    assert [r["transistors"] for r in report["rows"]] == [1000, 1900]
    (ratio,) = report["ratios"]
    assert ratio["pair"] == "int8 / int4"
    assert ratio["energy_ratio"] == pytest.approx(2.5)
    assert ratio["area_ratio"] == pytest.approx(1.9)
    assert report["rows"][1]["operand_sram_pj_per_mac"] == pytest.approx(2 * 10 / 8)
    assert report["memory"]["dram_pj_per_byte"] == [162.5, 325.0]


def test_matrices_for_arrays(rng):
    spec = pe_spec("int4")
    a, b = synthetic_data("zeros50").matrices(spec, 2, 3, 1000)
    assert a.shape[0] % 2 == 0 and b.shape[1] % 3 == 0 and a.shape[1] == 64
    assert a.shape[0] * b.shape[1] * 64 >= 1000
    layers = [(rng.standard_normal((5, 8)), rng.standard_normal((8, 7)))]
    fa, fb = float_data(layers).matrices(spec, 2, 3, 10 ** 6)
    assert fa.shape == (4, 8) and fb.shape == (8, 6)  # cropped to whole tiles
    with pytest.raises(ParameterError, match="has no whole 8 x 3 tile"):
        float_data(layers).matrices(spec, 8, 3, 100)
