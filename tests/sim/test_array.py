"""The RTL array against the golden model and the cycle model: one schedule, three simulators.

Builds are cached per configuration; shapes are run-time inputs, so a handful of builds
covers a sweep of (config, shape) pairs with ragged edges, short K and both tile orders.
"""
# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.sim.check import check_gemm, golden_for
from nybble.sim.cocotb_array import TB_DIR
from nybble.sim.cycles import gemm_cycles
from nybble.sim.run import run_gemm
from nybble.sw import get_format


def _codes(rng, fmt, shape):
    return rng.choice(np.flatnonzero(get_format(fmt).finite), size=shape)


def _check(cfg, m, n, k, rng, sim):
    fa, fb = cfg.formats[:2]
    a, b = _codes(rng, fa, (m, k)), _codes(rng, fb, (k, n))
    c = check_gemm(cfg, a, b, sim=sim)
    assert c.mismatches == 0, (f"{cfg.pe} {cfg.rows}x{cfg.cols} {m}x{k}@{k}x{n}: "
                               f"{c.mismatches} mismatches, first (row, col, rtl, golden) "
                               f"{c.first_mismatch}")
    assert c.cycles == c.model_cycles == gemm_cycles(cfg, m, n, k).cycles, f"{cfg} {m}x{n}x{k}"
    assert c.utilization <= 1
    return c


SWEEP = [
    # (config, shapes (m, n, k)): ragged edges, K shorter than the drain period, K = 1
    (ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=16, a_depth=256, b_depth=256, c_depth=256),
     [(2, 2, 1), (3, 5, 7), (8, 8, 8), (1, 1, 30), (5, 2, 3), (7, 9, 2), (4, 4, 64)]),
    (ArrayConfig(rows=4, cols=3, pe="fp4_e2m1", acc_bits=12, overflow="saturate",
                 a_depth=512, b_depth=512, c_depth=256),
     [(4, 3, 40), (9, 7, 13), (1, 10, 5), (12, 6, 100), (5, 5, 1), (8, 3, 7)]),
    (ArrayConfig(rows=3, cols=4, pe="e3m0", acc_bits=14, overflow="wrap",
                 a_depth=256, b_depth=256, c_depth=256),
     [(3, 4, 9), (10, 9, 33), (2, 2, 2), (6, 8, 80)]),
    (ArrayConfig(rows=4, cols=4, pe="int4_dp4", acc_bits=20, a_depth=256, b_depth=256,
                 c_depth=256),
     [(4, 4, 16), (6, 7, 21), (8, 8, 3), (3, 9, 64), (1, 4, 4), (9, 2, 30)]),
    (ArrayConfig(rows=2, cols=4, pe="lut_nf4", acc_bits=32, a_depth=256, b_depth=256,
                 c_depth=256),
     [(2, 4, 8), (5, 9, 17), (4, 8, 30), (3, 1, 2)]),
    (ArrayConfig(rows=4, cols=2, pe="int8_e3m0", acc_bits=24, overflow="saturate",
                 a_depth=256, b_depth=256, c_depth=256),
     [(4, 2, 12), (9, 3, 40), (1, 1, 1), (16, 4, 7)]),
]
SWEEP += [
    (ArrayConfig(rows=2, cols=3, pe="int4", acc_bits=12, overflow="saturate", dataflow="ws",
                 a_depth=256, b_depth=256, c_depth=256),
     [(1, 1, 1), (3, 5, 7), (20, 3, 16), (9, 7, 30), (2, 9, 2), (40, 2, 5)]),
    (ArrayConfig(rows=3, cols=2, pe="fp4_e2m1_dp4", acc_bits=20, dataflow="ws",
                 a_depth=256, b_depth=256, c_depth=256),
     [(4, 2, 12), (7, 5, 50), (30, 4, 3), (1, 3, 24)]),
]
CASES = [(cfg, shape) for cfg, shapes in SWEEP for shape in shapes]


@pytest.mark.parametrize("cfg,shape", CASES,
                         ids=[f"{c.dataflow}-{c.pe}-{c.rows}x{c.cols}-{'x'.join(map(str, s))}" for c, s in CASES])
def test_rtl_equals_golden_and_cycle_model_on_verilator(cfg, shape, rng):
    _check(cfg, *shape, rng, "verilator")


def test_sweep_is_big_enough():
    assert len(CASES) >= 30
    assert len({c.pe for c, _ in SWEEP}) >= 5
    assert {c.dataflow for c, _ in SWEEP} == {"os", "ws"}


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_amaranth_simulator_small_case(dataflow, rng):
    cfg = ArrayConfig(rows=2, cols=3, pe="int4", acc_bits=16, a_depth=64, b_depth=64,
                      c_depth=64, dataflow=dataflow)
    _check(cfg, 5, 4, 7, rng, "amaranth")


def test_lut_table_held_by_the_array_amaranth(rng):
    """``lut_nf4_shared``: one table per array, broadcast to the PEs (fast path)."""
    cfg = ArrayConfig(rows=2, cols=2, pe="lut_nf4_shared", acc_bits=32, a_depth=64,
                      b_depth=64, c_depth=64)
    _check(cfg, 3, 3, 5, rng, "amaranth")


SHARED_LUT = [(ArrayConfig(rows=2, cols=4, pe=pe, acc_bits=32, a_depth=256, b_depth=256,
                           c_depth=256), shape)
              for pe in ("lut_nf4_shared", "lut_nf4_shared_dp4")
              for shape in ((2, 4, 8), (5, 9, 17), (3, 1, 2))]


@pytest.mark.slow
@pytest.mark.parametrize("cfg,shape", SHARED_LUT,
                         ids=[f"{c.pe}-{'x'.join(map(str, s))}" for c, s in SHARED_LUT])
def test_lut_table_held_by_the_array_on_verilator(cfg, shape, rng):
    _check(cfg, *shape, rng, "verilator")


def test_back_to_back_jobs_without_reset(rng, back_to_back):
    """Two jobs in one simulation run give two exact results (no reset between them)."""
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=16, a_depth=64, b_depth=64, c_depth=64)
    jobs = [(_codes(rng, "int4", (m, k)), _codes(rng, "int4", (k, n)))
            for m, n, k in ((3, 3, 4), (2, 5, 9))]
    got = back_to_back(cfg, jobs)
    for (a, b), (res, cycles, overflow, _, sched) in zip(jobs, got):
        assert np.array_equal(res, golden_for(cfg, a, b))
        assert cycles == sched.cycles and not overflow


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["cocotb", "icarus"])
def test_cocotb_testbench_small_case(simulator, rng):
    from nybble.synth.toolchain import available_simulators
    if simulator == "icarus" and "icarus" not in available_simulators():
        pytest.skip("iverilog not installed (optional: apt-get install iverilog)")
    assert (TB_DIR / "tb_array.py").is_file()
    cfg = ArrayConfig(rows=2, cols=3, pe="int4", acc_bits=16, a_depth=64, b_depth=64, c_depth=64)
    _check(cfg, 5, 4, 7, rng, simulator)


def test_buffer_too_small_names_the_field(rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", a_depth=4, b_depth=64, c_depth=64)
    with pytest.raises(ValueError, match=r"needs 10 words of A buffer.*ArrayConfig.a_depth is 4"):
        run_gemm(cfg, np.zeros((4, 5), int), np.zeros((5, 2), int), sim="amaranth")


def test_bad_operands():
    cfg = ArrayConfig(rows=2, cols=2, pe="int4")
    with pytest.raises(ValueError, match="K mismatch"):
        run_gemm(cfg, np.zeros((2, 3), int), np.zeros((4, 2), int))
    with pytest.raises(ValueError, match="int4 codes 0..15"):
        run_gemm(cfg, np.full((2, 3), 16), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="sim must be one of"):
        run_gemm(cfg, np.zeros((2, 3), int), np.zeros((3, 2), int), sim="modelsim")
