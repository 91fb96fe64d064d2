# amaranth: UnusedElaboratable=no
"""Block-scaled arrays (MXFP4, NVFP4, MXINT8, Q4_0) on the RTL: bit-exact against
nybble.sw.gemm_block_acc and cycle-exact against the schedule, on random and adversarial
blocks.  Two Verilator builds (cached per configuration); the rest in Amaranth's simulator."""
import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.hw.layout import OPERAND_READ_CYCLES
from nybble.sw import quantize, get_format, get_scheme, QuantizedTensor
from nybble.sim.check import check_gemm, golden_for, result_values
from nybble.sim.cycles import gemm_cycles
from nybble.sim.run import run_gemm
from nybble.sim.schedule import BlockOsSchedule, schedule_for
from nybble.sim.words import pack_fields


def _qt(rng, scheme, m, n, k):
    x = rng.standard_normal((m, k)) * np.exp(rng.uniform(-3, 3, (m, 1)))
    y = rng.standard_normal((k, n)) * np.exp(rng.uniform(-3, 3, (1, n)))
    return quantize(x, scheme, axis=-1), quantize(y, scheme, axis=0)


def _check(cfg, a, b, sim, label=""):
    c = check_gemm(cfg, a, b, sim=sim)
    m, k = a.shape
    n = b.shape[1]
    assert c.mismatches == 0, (f"{cfg.pe} {cfg.rows}x{cfg.cols} {m}x{k}@{k}x{n} {label}: "
                               f"{c.mismatches} mismatches, first (row, col, rtl, golden) "
                               f"{c.first_mismatch}")
    assert c.cycles == gemm_cycles(cfg, m, n, k).cycles == c.model_cycles, f"{cfg} {m}x{n}x{k}"
    return c


MX = ArrayConfig(rows=2, cols=4, pe="mxfp4", acc_bits=40, a_depth=512, b_depth=512,
                 c_depth=256)
NV = ArrayConfig(rows=2, cols=2, pe="nvfp4", acc_bits=24, overflow="saturate", a_depth=512,
                 b_depth=512, c_depth=256)
SHAPES = {  # ragged edges, K below one block, K = 1, K not a multiple of the block
    MX: [(5, 7, 70), (2, 4, 32), (1, 1, 1), (8, 8, 96), (3, 9, 33), (4, 3, 200)],
    NV: [(2, 2, 16), (5, 3, 40), (1, 4, 7), (4, 4, 160), (3, 1, 17)],
}
CASES = [(cfg, s) for cfg, shapes in SHAPES.items() for s in shapes]


@pytest.mark.parametrize("cfg,shape", CASES,
                         ids=[f"{c.pe}-{c.rows}x{c.cols}-{'x'.join(map(str, s))}" for c, s in CASES])
def test_random_on_verilator(cfg, shape, rng):
    _check(cfg, *_qt(rng, cfg.pe, *shape), "verilator")


def _handmade(scheme, elem_rows, scale_rows, block, axis):
    """A QuantizedTensor from element codes (one code per block, repeated) and scale codes."""
    sch = get_scheme(scheme)
    codes = np.array([[c for c in r for _ in range(block)] for r in elem_rows], dtype=np.uint8)
    scales = np.array(scale_rows, dtype=np.uint8)
    if axis == 0:
        codes, scales = codes.T, scales.T
    ts = 1.0 if sch.scale_kind != "e4m3" else 2.0 ** -10
    return QuantizedTensor(codes, scales, sch, codes.shape, axis,
                           ts if sch.scale_kind == "e4m3" else None)


@pytest.mark.parametrize("cfg", [MX, NV], ids=["mxfp4", "nvfp4"])
def test_adversarial_on_verilator(cfg):
    """All-zero blocks, the largest and smallest scales, saturated blocks, contributions
    below the LSB, in every row / column combination."""
    block = cfg.pe_options["block_size"]
    e = get_format("fp4_e2m1").values
    hi, lo, zero = int(np.argmax(e)), int(np.nanargmin(e)), 0
    sf = get_format("e8m0" if cfg.pe == "mxfp4" else "float8_e4m3fn").values
    fin = np.flatnonzero(np.isfinite(sf) & (sf > 0))
    smin, smax = int(fin[np.argmin(sf[fin])]), int(fin[np.argmax(sf[fin])])
    one = int(np.flatnonzero(sf == 1.0)[0])
    a = _handmade(cfg.pe, [[zero] * 3, [hi] * 3, [lo, hi, lo], [hi, lo, hi]],
                  [[smax] * 3, [smax, one, smin], [smin] * 3, [one, smin, smax]], block, 1)
    b = _handmade(cfg.pe, [[hi] * 3, [lo] * 3, [zero, hi, zero], [hi, hi, lo], [lo, zero, hi]],
                  [[smax] * 3, [smin] * 3, [one] * 3, [smax, smin, one], [smin, one, smax]],
                  block, 0)
    r = _check(cfg, a, b, "verilator", "adversarial")
    res = np.asarray(r.result, dtype=object)
    assert all(v == 0 for v in res[0, [1, 2, 4]]), "all-zero blocks (or zero x scale) give 0"
    acc, flags = __import__("nybble.sw", fromlist=["gemm_block_acc"]).gemm_block_acc(
        a, b, acc_bits=cfg.acc_bits, acc_frac_bits=cfg.pe_options["acc_frac_bits"],
        overflow=cfg.overflow, return_overflow=True)
    assert flags.any() and not flags.all(), "both overflowing and in-range outputs"
    assert r.result.shape == (4, 5)


@pytest.mark.parametrize("pe,shape", [("q4_0", (3, 5, 64)), ("mxint8", (4, 3, 40)),
                                      ("mxfp4", (3, 2, 9))])
def test_amaranth_simulator(pe, shape, rng):
    cfg = ArrayConfig(rows=2, cols=2, pe=pe, acc_bits=48, a_depth=64, b_depth=64, c_depth=64)
    a, b = _qt(rng, pe, *shape)
    r = _check(cfg, a, b, "amaranth")
    # the real value: accumulators x 2**-F (x tensor scales), nybble.sw.gemm with block_acc
    from nybble.sw import gemm
    assert np.array_equal(result_values(cfg, r.result, a, b),
                          gemm(a, b, block_acc=(48, cfg.pe_options["acc_frac_bits"])))


def test_serial_scaler_array_amaranth(rng):
    """The block scaler time-shared over a block (latency 2 + steps per block): the array,
    its schedule and the cycle model follow the spec's latency."""
    cfg = ArrayConfig(rows=2, cols=2, pe="q4_0_serial", acc_bits=48, a_depth=64, b_depth=64,
                      c_depth=64)
    assert cfg.pe_spec.latency == 6
    _check(cfg, *_qt(rng, "q4_0", 3, 3, 64), "amaranth")


SERIAL = [(ArrayConfig(rows=2, cols=2, pe=pe, acc_bits=acc, a_depth=512, b_depth=512,
                       c_depth=256), shape)
          for pe, acc, shapes in (("q4_0_serial", 48, ((2, 2, 32), (5, 3, 64), (3, 3, 96))),
                                  ("nvfp4_serial", 24, ((2, 2, 16), (5, 3, 40), (1, 4, 7))))
          for shape in shapes]


@pytest.mark.slow
@pytest.mark.parametrize("cfg,shape", SERIAL,
                         ids=[f"{c.pe}-{'x'.join(map(str, s))}" for c, s in SERIAL])
def test_serial_scaler_on_verilator(cfg, shape, rng):
    _check(cfg, *_qt(rng, cfg.pe.removesuffix("_serial"), *shape), "verilator")


def test_back_to_back_jobs_without_reset(rng, back_to_back):
    """Two jobs of different K (the second ragged) in one simulation, no reset between."""
    cfg = ArrayConfig(rows=2, cols=2, pe="mxfp4", acc_bits=32, a_depth=64, b_depth=64,
                      c_depth=64)
    jobs = [_qt(rng, "mxfp4", m, n, k) for m, n, k in ((3, 3, 64), (2, 5, 41))]
    got = back_to_back(cfg, jobs)
    for (a, b), (res, cycles, _, _, sched) in zip(jobs, got):
        assert np.array_equal(res, golden_for(cfg, a, b))
        assert cycles == sched.cycles


def test_config_block_options_reach_the_array(rng):
    """A non-default block size / window reaches the array's PEs through the config's spec."""
    cfg = ArrayConfig(rows=2, cols=2, pe="mxfp4", acc_bits=32, block_size=16,
                      acc_frac_bits=10, a_depth=64, b_depth=64, c_depth=64)
    sch = get_scheme("mxfp4")
    import dataclasses
    s16 = dataclasses.replace(sch, block=16)
    x, y = rng.standard_normal((3, 40)), rng.standard_normal((40, 3))
    a, b = quantize(x, s16, axis=-1), quantize(y, s16, axis=0)
    assert cfg.pe_spec.block_size == 16 and cfg.pe_spec.frac_bits == 10
    _check(cfg, a, b, "amaranth", "block 16")


def test_schedule_for_and_gemm_cycles_use_the_block_schedule():
    s = schedule_for(MX, 5, 7, 70)
    assert isinstance(s, BlockOsSchedule)
    assert s.k_steps == 12 and gemm_cycles(MX, 5, 7, 70).cycles == s.cycles


def test_schedule_layout():
    s = schedule_for(MX, 3, 5, 40)        # 2 blocks of 32: 8 k-steps of 8 lanes
    assert (s.k_steps, s.blocks, s.steps_per_block, s.latency, s.scale_bits) == (8, 2, 4, 2, 8)
    assert s.cycles == s.tiles * max(8, 3) + 2 * 2 + 4 + 2 + OPERAND_READ_CYCLES - 2
    a = np.arange(3 * 40).reshape(3, 40) % 16
    sa = np.array([[10, 11], [20, 21], [30, 31]])
    words = s.a_words(a, "fp4_e2m1", sa)
    ints = [sum(int(c) << (32 * i) for i, c in enumerate(r)) for r in words]
    assert len(ints) == s.m_tiles * s.k_steps and words.shape[1] == 3  # 2 x 40 bits
    for mt in range(s.m_tiles):
        for t in range(s.k_steps):
            w = ints[mt * s.k_steps + t]
            for i in range(2):
                field = (w >> (i * 40)) & ((1 << 40) - 1)
                row = mt * 2 + i
                codes = [(field >> (4 * l)) & 15 for l in range(8)]
                want = [int(a[row, t * 8 + l]) if row < 3 and t * 8 + l < 40 else 0
                        for l in range(8)]
                assert codes == want, (mt, t, i)
                assert field >> 32 == (sa[row, t // 4] if row < 3 else 0), (mt, t, i)
    assert pack_fields([[1, 2, 3]], [4, 30, 2]).tolist() == [[1 | 2 << 4, 3 << 2]]


def test_errors(rng):
    a, b = _qt(rng, "mxfp4", 2, 2, 32)
    with pytest.raises(ValueError, match=r"^b has e4m3 block scales \(nvfp4\) but the PE "
                                         r"takes e8m0$"):
        run_gemm(MX, a, _qt(rng, "nvfp4", 2, 2, 32)[1])
    with pytest.raises(TypeError, match=r"^a: the int4 PE takes element codes, not a "
                                        r"QuantizedTensor \(block-scaled kinds take those\)$"):
        run_gemm(ArrayConfig(rows=2, cols=2), a, b)
    with pytest.raises(ValueError, match=r"needs 80 words of A buffer.*ArrayConfig\.a_depth is 4"):
        run_gemm(MX.replace(a_depth=4), *_qt(rng, "mxfp4", 4, 2, 300), sim="amaranth")
    with pytest.raises(ValueError, match=r"^a_scales must be an integer array of scale codes "
                                         r"with shape \(2, 1\)"):
        schedule_for(MX, 2, 2, 32).a_words(a.codes, "fp4_e2m1", np.zeros((2, 2), int))
