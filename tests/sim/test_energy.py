"""Energy per MAC from the netlist: the golden check, data dependence, the anchors."""
import numpy as np
import pytest

from nybble.hw.kinds import pe_spec
from nybble.sim import energy as energy_mod
from nybble.sim.energy import (anchor_table, calibrate, golden_accumulators,
                               operator_energy, pe_energy)
from nybble.sim.energy_data import gemm_steps, synthetic_codes, zero_code
from nybble.sim.pe_check import expected, pair_steps, random_jobs
from nybble.synth.energy import GENERIC_45NM
from nybble.sw.errors import ParameterError, ToolError


@pytest.mark.parametrize("kind, acc_bits", [("int4", 8), ("fp4_e2m1_dp4", 12),
                                            ("bf16", 64), ("int8_e3m0", 16)])
def test_golden_accumulators_equal_the_pe_check(kind, acc_bits):
    # random_jobs drives narrow accumulators across their wrap boundary and back
    spec = pe_spec(kind, acc_bits=acc_bits)
    steps = random_jobs(spec, 300, seed=acc_bits)
    acc, ovf = golden_accumulators(spec, steps.a, steps.b, steps.first)
    want_acc, want_ovf = expected(spec, steps)
    assert acc.tolist() == want_acc.tolist()
    assert ovf.tolist() == want_ovf.tolist()
    assert ovf.any()


def _uniform(kind, macs, data="uniform"):
    spec = pe_spec(kind)
    a, b = synthetic_codes(data, spec.fmt_a, spec.fmt_b, 16, 64, 16, seed=3)
    return gemm_steps(a, b, spec.lanes, macs // spec.lanes)


@pytest.fixture(scope="module")
def int4_uniform():
    return pe_energy("int4", *_uniform("int4", 4096), data="uniform")


def test_int4_netlist_every_pair():
    spec = pe_spec("int4")
    steps, _, exhaustive = pair_steps(spec)
    assert exhaustive and len(steps) == 256
    r = pe_energy("int4", steps.a, steps.b, steps.first)
    assert r.checked_steps == 256


def test_int4_uniform(int4_uniform):
    r = int4_uniform
    assert r.macs == r.steps == 4096 and r.checked_steps == 4096
    assert r.pj_per_mac == pytest.approx(sum(r.categories.values()))
    assert r.categories["multiplier"] > 0 and r.categories["accumulator"] > 0
    assert r.categories["clock"] > 0
    assert r.model == GENERIC_45NM.describe()


def test_zero_operands_leave_only_the_clock(int4_uniform):
    n = 4096
    zeros = np.zeros((n, 1), np.int64)
    first = np.arange(n) % 64 == 0
    r = pe_energy("int4", zeros, zeros, first)
    datapath = sum(v for c, v in r.categories.items() if c not in ("clock", "inputs",
                                                                   "registers"))
    assert datapath == 0.0
    # what switches is the clock and the `first` flag (its input and its forwarding register)
    assert r.categories["clock"] == pytest.approx(int4_uniform.categories["clock"], rel=1e-3)
    assert r.pj_per_mac - r.categories["clock"] < 0.01 * int4_uniform.pj_per_mac


def test_constant_operands_keep_the_multiplier_quiet(int4_uniform):
    # a constant nonzero product: the multiplier switches once (from reset), the
    # accumulator keeps adding
    n = 4096
    a = np.full((n, 1), 3, np.int64)
    b = np.full((n, 1), 5, np.int64)
    r = pe_energy("int4", a, b, np.arange(n) % 64 == 0)
    assert r.categories["multiplier"] < 1e-3 * int4_uniform.categories["multiplier"]
    assert r.categories["accumulator"] > 0


def test_sparse_data_costs_less(int4_uniform):
    r = pe_energy("int4", *_uniform("int4", 4096, "zeros50"), data="zeros50")
    assert r.pj_per_mac < 0.8 * int4_uniform.pj_per_mac


def test_netlist_mismatch_is_an_error(monkeypatch):
    real = energy_mod.golden_accumulators

    def off_by_one(spec, a, b, first):
        acc, ovf = real(spec, a, b, first)
        acc[7] += 1
        return acc, ovf

    monkeypatch.setattr(energy_mod, "golden_accumulators", off_by_one)
    with pytest.raises(ToolError, match=r"the netlist of int4 differs from the golden model "
                                        r"on 1 of 64 steps; first at step 7"):
        pe_energy("int4", *_uniform("int4", 64))


def test_errors():
    with pytest.raises(ParameterError, match=r"energy runs take MAC and dot-product PE kinds "
                                             r"\(families mac, dp\), not 'mxfp4'"):
        pe_energy("mxfp4", np.zeros((1, 8)), np.zeros((1, 8)), [True])
    with pytest.raises(ParameterError, match="LUT PE"):
        pe_energy("lut_nf4", np.zeros((1, 1)), np.zeros((1, 1)), [True])
    with pytest.raises(ParameterError, match=r"a_steps and b_steps must have shape \(2, 1\)"):
        pe_energy("int4", np.zeros((2, 4)), np.zeros((2, 4)), [True, False])
    with pytest.raises(ParameterError, match="the first step must have first=1"):
        golden_accumulators(pe_spec("int4"), np.zeros((1, 1)), np.zeros((1, 1)), [False])


def test_calibrate_and_anchor_table():
    measured = {"8b int mult": 0.4, "32b int add": 0.25}
    model = calibrate(measured)
    # geometric mean of published / measured: sqrt(0.2 / 0.4 * 0.1 / 0.25)
    assert model.unit_ff == pytest.approx(GENERIC_45NM.unit_ff * (0.5 * 0.4) ** 0.5)
    table = anchor_table(measured)
    assert table["operators"][0]["model_over_published"] == pytest.approx(2.0)
    (ratio,) = table["ratios"]
    assert ratio["published"] == pytest.approx(2.0) and ratio["model"] == pytest.approx(1.6)
    assert ratio["within_2x"]


def test_operator_energy_8b_add():
    r = operator_energy("8b int add", samples=2000)
    assert r["pj"] > 0 and r["samples"] == 2000
    assert r["categories"]["clock"] == 0.0  # combinational


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fp4_e2m1", "e3m0", "int4_dp4"])
def test_4bit_netlists_every_pair(kind):
    steps, _, exhaustive = pair_steps(pe_spec(kind))
    assert exhaustive
    assert pe_energy(kind, steps.a, steps.b, steps.first).checked_steps == len(steps)


@pytest.mark.slow
def test_narrow_accumulator_netlist_wraps_like_the_golden_model():
    spec = pe_spec("int4", acc_bits=8)
    steps = random_jobs(spec, 2000, seed=5)
    r = pe_energy("int4", steps.a, steps.b, steps.first, acc_bits=8)
    assert r.checked_steps == 2000


@pytest.mark.slow
def test_64_bit_operand_words():
    # int16_dp4: 64-bit a / b words, half of them >= 2**63 (once rounded through float64)
    r = pe_energy("int16_dp4", *_uniform("int16_dp4", 2000))
    assert r.checked_steps == 500
