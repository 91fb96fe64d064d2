"""Bit-serial mixed-data-type arrays: RTL == golden model, cycle model == RTL cycles.

The sweep covers ragged edges (M, N not multiples of the array, K shorter than the drain
period, K = 1), the all-int4 and all-e3m0 extremes, BitMoD-like mixes with groups of 1, 4 and
more k, every one of the seven data types, wrap and saturate, and several array shapes.
"""
# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.hw.spec import BITSERIAL_DTYPES, TypedWeights
from nybble.sim.bitserial import (MIXES, bitmod_weights, check_bitserial_gemm, int8_rows,
                                  parse_dtype_mix, random_weights, tradeoff_rows)
from nybble.sim.check import check_gemm, golden_for
from nybble.sim.cycles import gemm_cycles
from nybble.sim.schedule import MIN_DEPTH, schedule_for

ALL7 = {d: 1 / 7 for d in BITSERIAL_DTYPES}
MIX = MIXES["int4/fp4/e3m0=50/30/20"]
INT4, E3M0 = MIXES["all-int4"], MIXES["all-e3m0"]


def _cfg(rows, cols, acc_bits=24, overflow="wrap"):
    # depths as fit_config makes them: check_bitserial_gemm's runs share the build
    return ArrayConfig(rows=rows, cols=cols, pe="bitserial", acc_bits=acc_bits,
                       overflow=overflow, a_depth=MIN_DEPTH, b_depth=MIN_DEPTH,
                       c_depth=MIN_DEPTH)


def _check(cfg, m, n, k, mix, group, rng, sim="verilator"):
    a = rng.integers(0, 256, (m, k))
    w = random_weights(cfg.pe_spec, k, n, mix, group=group, rng=rng)
    c = check_gemm(cfg, a, w, sim=sim)
    where = f"{cfg.rows}x{cfg.cols} {m}x{k}@{k}x{n} group {group} {mix}"
    assert c.mismatches == 0, f"{where}: {c.mismatches} mismatches, first {c.first_mismatch}"
    assert c.cycles == c.model_cycles == gemm_cycles(cfg, m, n, k, sel=w.sel).cycles, where
    return c, w


SWEEP = [
    (_cfg(2, 2, acc_bits=32), [((2, 2, 1), INT4, 1), ((3, 5, 7), MIX, 2), ((5, 3, 9), E3M0, 4),
                  ((4, 4, 30), ALL7, 4), ((1, 1, 5), ALL7, 1)]),
    (_cfg(4, 3, acc_bits=16, overflow="saturate"),
     [((4, 3, 40), MIX, 8), ((9, 7, 13), INT4, 13), ((5, 5, 1), ALL7, 1), ((12, 6, 20), E3M0, 4),
      ((8, 3, 7), ALL7, 2)]),
    (_cfg(3, 4, acc_bits=18), [((3, 4, 9), ALL7, 3), ((10, 9, 33), MIX, 16),
                               ((7, 2, 2), INT4, 1), ((6, 8, 24), E3M0, 8)]),
    (_cfg(1, 5), [((2, 7, 6), ALL7, 2), ((3, 5, 12), MIX, 4)]),
]
CASES = [(cfg, shape, mix, g) for cfg, runs in SWEEP for shape, mix, g in runs]
# the first configuration is the fast subset (one build); the others run with -m slow
PARAMS = [pytest.param(*case, marks=() if case[0] is SWEEP[0][0] else pytest.mark.slow,
                       id=f"{case[0].rows}x{case[0].cols}-{'x'.join(map(str, case[1]))}"
                          f"-g{case[3]}-{'+'.join(case[2])}")
          for case in CASES]


@pytest.mark.parametrize("cfg,shape,mix,group", PARAMS)
def test_rtl_equals_golden_and_cycle_model(cfg, shape, mix, group, rng):
    _check(cfg, *shape, mix, group, rng)


def test_sweep_is_big_enough():
    assert len(CASES) >= 15
    assert {tuple(mx) for _, _, mx, _ in CASES} >= {("int4",), ("e3m0",)}


def test_amaranth_back_to_back_without_reset(rng, back_to_back):
    cfg = _cfg(2, 3)
    jobs = []
    for m, n, k, mix in ((3, 4, 5, ALL7), (2, 2, 3, INT4)):
        jobs.append((rng.integers(0, 256, (m, k)),
                     random_weights(cfg.pe_spec, k, n, mix, group=2, rng=rng)))
    got = back_to_back(cfg, jobs)
    for (a, w), (res, cycles, overflow, _, sched) in zip(jobs, got):
        assert np.array_equal(res, golden_for(cfg, a, w))
        assert cycles == sched.cycles and not overflow


def test_overflow_flag_at_done(back_to_back):
    """The top samples the PEs' sticky overflow flags on a beat's first cycle: a row tile
    whose sums leave the 16-bit accumulator sets the job's flag even though the next tile's
    ``first`` clears the PEs' flags; the next job starts clear and stays clear."""
    cfg = _cfg(2, 2, acc_bits=16)
    int4, seven, one = BITSERIAL_DTYPES.index("int4"), 7, 1
    big_a = np.zeros((4, 16), int)
    big_a[:2] = 127                     # 127 * 7 * 16 on the grid 2**-2: > 2**15
    big_w = TypedWeights(np.full((16, 2), seven), np.full((16, 2), int4))
    small_w = TypedWeights(np.full((1, 2), one), np.full((1, 2), int4))
    jobs = [(big_a, big_w), (np.ones((2, 1), int), small_w)]
    (res_big, _, ovf_big, _, _), (res_small, _, ovf_small, _, _) = back_to_back(cfg, jobs)
    assert ovf_big and not ovf_small
    assert np.array_equal(res_big, golden_for(cfg, *jobs[0]))
    assert np.array_equal(res_small, golden_for(cfg, *jobs[1]))


@pytest.mark.slow
def test_every_product_once():
    """Every int8 activation times every code of every data type, as K = 1 GEMMs (one per
    data type and block of 32 activations) on one build, saturating."""
    cfg = SWEEP[1][0]
    for lo in range(0, 256, 32):
        a = np.arange(lo, lo + 32)[:, None]
        for s in range(len(BITSERIAL_DTYPES)):
            w = TypedWeights(np.arange(16)[None, :], np.full((1, 16), s))
            c = check_gemm(cfg, a, w)
            assert c.mismatches == 0, f"{BITSERIAL_DTYPES[s]}: first {c.first_mismatch}"
            assert c.cycles == c.model_cycles


def test_beats_stretch_with_the_slowest_type():
    """All-e3m0 runs at the bit-parallel rate; all-int4 takes 3 cycles per beat while MACs are
    in flight; one int4 column slows the whole array (lockstep)."""
    cfg = _cfg(4, 4)
    m = n = 8
    k = 64
    one = schedule_for(cfg, m, n, k, sel=np.full((k, n), 2))
    base = schedule_for(ArrayConfig(rows=4, cols=4, pe="int8_e3m0"), m, n, k)
    assert one.cycles == base.cycles - base.latency + 1
    three = schedule_for(cfg, m, n, k, sel=np.zeros((k, n), int))
    assert 2.5 * one.cycles < three.cycles < 3 * one.cycles
    sel = np.full((k, n), 2)
    sel[:, [1, 5]] = 0     # one int4 column in each tile of 4 columns
    assert schedule_for(cfg, m, n, k, sel=sel).cycles > 0.9 * three.cycles
    assert one.mean_cycles_per_mac == 1 and three.mean_cycles_per_mac == 3


def test_bitmod_weights_per_group_jobs(rng):
    """Real weights, BitMoD-quantized per group of 8: one job per group, every one exact; the
    result is close to the float64 product."""
    cfg = _cfg(2, 2)
    a = rng.normal(size=(3, 16))
    w = rng.normal(size=(16, 5))
    qa, sa = int8_rows(a)
    tw, scales = bitmod_weights(cfg.pe_spec, w, group=8)
    assert set(np.unique(tw.sel)) <= {3, 4, 5, 6}
    r = check_bitserial_gemm(cfg, qa, tw, group_scales=scales, group=8, row_scales=sa)
    assert r.mismatches == 0 and len(r.checks) == 2
    assert r.cycles == r.model_cycles
    ref = a @ w
    assert np.linalg.norm(r.result - ref) < 0.15 * np.linalg.norm(ref)


def test_parse_dtype_mix():
    assert parse_dtype_mix("int4=0.5, fp4_e2m1=0.3,e3m0=0.2", BITSERIAL_DTYPES) == MIX
    for bad, msg in (("int5=1", r"data type must be one of int4, fp4_e2m1"),
                     ("int4=0.5", r"fractions must sum to 1, not 0.5"),
                     ("int4", r"int4 needs a fraction >= 0"),
                     ("int4=-1,e3m0=2", r"int4 needs a fraction >= 0")):
        with pytest.raises(ValueError, match=bad and msg):
            parse_dtype_mix(bad, BITSERIAL_DTYPES)


def test_bad_weights_name_the_operand():
    cfg = _cfg(2, 2)
    a = np.zeros((2, 3), int)
    with pytest.raises(TypeError, match=r"^b of a bit-serial array must be TypedWeights"):
        check_gemm(cfg, a, np.zeros((3, 2), int))
    with pytest.raises(ValueError, match=r"^b.sel must hold values 0..6 \(int4, fp4_e2m1"):
        check_gemm(cfg, a, TypedWeights(np.zeros((3, 2), int), np.full((3, 2), 7)))
    with pytest.raises(ValueError, match=r"^b.sel must have the shape of b.codes"):
        check_gemm(cfg, a, TypedWeights(np.zeros((3, 2), int), np.zeros((3, 1), int)))
    with pytest.raises(ValueError, match=r"bit-serial: its cycles need sel"):
        gemm_cycles(cfg, 2, 2, 3)
    with pytest.raises(ValueError, match=r"dataflow must be 'os' for the bit-serial PE"):
        ArrayConfig(pe="bitserial", dataflow="ws")


def test_tradeoff_rows_put_bit_serial_beside_the_rivals():
    cfg = ArrayConfig(rows=4, cols=4, pe="bitserial")
    areas = {"bitserial": (1000, None), "int8_int4": (2000, 5.0), "int8_e3m0": (1500, None)}
    rows = tradeoff_rows(cfg, areas, shape=(16, 16, 16), group=4)
    by = {(r["design"], r["mix"]): r for r in rows}
    assert set(by) == {("bitserial", m) for m in MIXES} | {("int8_int4", "-"),
                                                             ("int8_e3m0", "-")}
    e3m0, rival = by["bitserial", "all-e3m0"], by["int8_e3m0", "-"]
    # all-e3m0 beats last one cycle: the bit-serial array keeps the bit-parallel pace
    assert e3m0["cycles"] == rival["cycles"] == gemm_cycles(
        cfg.replace(pe="int8_e3m0"), 16, 16, 16).cycles
    assert by["bitserial", "all-int4"]["mean_cycles_per_mac"] == 3
    for r in rows:
        assert r["macs_per_cycle"] == 16 ** 3 / r["cycles"]
        assert r["macs_per_cycle_per_mtransistor"] == r["macs_per_cycle"] / r["transistors"] * 1e6
    assert by["int8_int4", "-"]["macs_per_cycle_per_mm2"] == pytest.approx(
        by["int8_int4", "-"]["macs_per_cycle"] / 5e-6)


@pytest.mark.slow
@pytest.mark.cocotb
def test_cocotb_testbench_on_verilator(rng):
    """One bit-serial configuration through the cocotb testbench (tests/tb/tb_array.py) on
    Verilator: ragged edges, every data type."""
    _check(_cfg(2, 3), 5, 4, 9, ALL7, 2, rng, "cocotb")
