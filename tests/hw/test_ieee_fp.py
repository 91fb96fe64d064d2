# amaranth: UnusedElaboratable=no
"""The IEEE-style FP PEs (nybble.hw.ieee_fp) against nybble.sw.ieee_fp in Amaranth's simulator:
the FP32 adder and the rounding unit on random and corner operands, every registered kind on
sampled pairs (NaN / Inf / subnormal codes included) after random accumulator states and on
back-to-back jobs; the full 65,536-pair sweeps of the fp8 MACs are slow."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from nybble.hw.config import ArrayConfig
from nybble.hw.ieee_fp import Fp32Adder, Fp32Round, IeeeDotProductPE, IeeeMacPE
from nybble.hw.kinds import make_pe, pe_kind, pe_spec
from nybble.sim.pe_check import Steps, check_pairs, compare, expected, pair_steps, random_jobs, \
    simulate
from nybble.sw.errors import ParameterError, ParameterTypeError
from nybble.sw.ieee_fp import FP32_INF, FP32_NAN, fp32_add, round_fp32

IEEE_KINDS = ["fp8_e4m3_ieee", "fp8_e5m2_ieee", "fp16_ieee", "bf16_ieee",
              "fp8_e4m3_ieee_dp4", "fp8_e5m2_ieee_dp4", "fp16_ieee_dp4", "bf16_ieee_dp4"]


def _settle(dut, inputs, outputs):
    """Apply each dict of ``inputs`` and read ``outputs`` (port names) after settling."""
    got = []

    async def bench(ctx):
        for vec in inputs:
            for k, v in vec.items():
                ctx.set(getattr(dut, k), v)
            await ctx.delay(1e-9)
            got.append(tuple(ctx.get(getattr(dut, o)) for o in outputs))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return got


def _fp32_operands(n, seed):
    """Random FP32 pairs: uniform patterns, subnormals, near cancellation, close exponents,
    plus every pair of the special values."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << 32, n, dtype=np.int64)
    y = rng.integers(0, 1 << 32, n, dtype=np.int64)
    q = n // 4
    y[:q] = (x[:q] ^ (1 << 31)) + rng.integers(-40, 40, q)            # x + (-x +- a few ulps)
    x[q:2 * q] &= 0x807FFFFF                                           # subnormals
    y[q:2 * q] = (y[q:2 * q] & 0x81FFFFFF)                             # tiny values
    y[2 * q:3 * q] = x[2 * q:3 * q] + rng.integers(-(1 << 25), 1 << 25, q)   # close exponents
    special = [0, 1 << 31, FP32_INF, FP32_INF | 1 << 31, FP32_NAN, 0xFFC00001, 1, 0x807FFFFF,
               0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000, 0x00800000]
    sx = np.repeat(special, len(special))
    sy = np.tile(special, len(special))
    x = np.concatenate([x & 0xFFFFFFFF, sx]).astype(np.uint32)
    y = np.concatenate([y & 0xFFFFFFFF, sy]).astype(np.uint32)
    return x, y


def test_fp32_adder_matches_numpy_float32():
    x, y = _fp32_operands(2400, seed=5)
    got = _settle(Fp32Adder(), [{"x": int(a), "y": int(b)} for a, b in zip(x, y)], ["s"])
    want = fp32_add(x, y)
    bad = [(hex(a), hex(b), hex(g[0]), hex(w)) for a, b, g, w in zip(x, y, got, want)
           if g[0] != w]
    assert not bad, f"{len(bad)} of {len(x)} sums differ; first (x, y, got, want): {bad[0]}"


def test_fp32_round_matches_golden_over_a_wide_exponent_range():
    # bf16-like: 16-bit magnitudes from far below FP32's subnormals to beyond its range
    rng = np.random.default_rng(9)
    rnd = Fp32Round(16, -266, 240)
    mag = rng.integers(0, 1 << 16, 1500) >> rng.integers(0, 16, 1500)
    exp = np.concatenate([rng.integers(-266, 241, 1000), rng.integers(-180, -140, 500)])
    neg = rng.integers(0, 2, 1500)
    vecs = [{"neg": int(s), "mag": int(m), "exp": int(e)} for s, m, e in zip(neg, mag, exp)]
    got = _settle(rnd, vecs, ["bits"])
    bad = [(v, hex(g[0]), hex(round_fp32(v["neg"], v["mag"], v["exp"])))
           for v, g in zip(vecs, got) if g[0] != round_fp32(v["neg"], v["mag"], v["exp"])]
    assert not bad, f"{len(bad)} of {len(vecs)} differ; first: {bad[0]}"


def _sampled_pair_steps(pe, n, seed):
    """``n`` of the pair steps (each after a random accumulator state), specials first."""
    steps, _, _ = pair_steps(pe, sample=n, seed=seed)
    rng = np.random.default_rng(seed)
    jobs = np.sort(rng.choice(len(steps) // 2, n, replace=False))
    idx = np.stack([2 * jobs, 2 * jobs + 1], axis=1).ravel()
    return Steps(steps.a[idx], steps.b[idx], steps.first[idx])


@pytest.mark.parametrize("kind", IEEE_KINDS)
def test_kind_matches_golden(kind):
    pe = make_pe(kind)
    pairs = _sampled_pair_steps(pe, 160, seed=len(kind))
    jobs = random_jobs(pe, 120, seed=3, max_len=12)
    steps = Steps(np.concatenate([pairs.a, jobs.a]), np.concatenate([pairs.b, jobs.b]),
                  np.concatenate([pairs.first, jobs.first]))
    bad, msg = compare(pe, steps, simulate(pe, steps), expected(pe, steps))
    assert not bad, f"{kind}: {len(bad)} of {len(steps)} steps differ; {msg}"


def test_specials_reach_the_accumulator():
    pe = make_pe("fp16_ieee")
    one, inf, ninf, nan, big = 0x3C00, 0x7C00, 0xFC00, 0x7E00, 0x7BFF
    a = np.array([[one], [inf], [one], [ninf], [big], [big], [big], [one]])
    b = np.array([[one], [one], [one], [one], [big], [big], [big], [nan]])
    first = np.array([1, 0, 1, 0, 1, 0, 0, 1], bool)
    steps = Steps(a, b, first)
    acc, ovf = simulate(pe, steps)
    sq = np.float32(65504.0) ** 2        # exact in FP32; the sums round
    sums = [int(v.view(np.uint32)) for v in (sq, sq + sq, sq + sq + sq)]
    assert [int(x) & 0xFFFFFFFF for x in acc] == [
        0x3F800000, FP32_INF, 0x3F800000, 0xFF800000, *sums, FP32_NAN]
    assert list(ovf) == [False, True, False, True, False, False, False, True]


def test_spec_and_component():
    pe = IeeeMacPE("fp8_e4m3", "fp8_e4m3")
    assert (pe.lanes, pe.latency, pe.acc_bits, pe.frac_bits, pe.family) == (1, 1, 32, None,
                                                                            "ieee")
    dp = make_pe("fp16_ieee_dp4")
    assert isinstance(dp, IeeeDotProductPE) and dp.lanes == 4 and dp.a_bits == 64
    assert pe_kind("bf16_ieee_dp8").lanes == 8          # any lane count
    assert pe_spec("fp8_e5m2_ieee").golden_kwargs()["lanes"] == 1


def test_init_wrong_parameters():
    with pytest.raises(ParameterError, match=r"^Accumulator width of an IEEE-style FP PE must be "
                                             r"32 \(an FP32 register\), not 24$"):
        make_pe("fp16_ieee", acc_bits=24)
    with pytest.raises(ParameterError, match=r"^overflow of an IEEE-style FP PE must be 'ieee' "
                                             r"\(IEEE 754: overflow rounds to Inf\), not 'wrap'$"):
        make_pe("fp16_ieee", overflow="wrap")
    with pytest.raises(ParameterError, match=r"^fmt_a of an IEEE-style FP PE must be a float "
                                             r"format .*not int8 \(kind 'int'\)$"):
        IeeeDotProductPE("int8", "fp16", 4)
    with pytest.raises(ParameterTypeError, match=r"^IeeeMacPE has one lane"):
        IeeeMacPE("fp16", "fp16", lanes=2)
    with pytest.raises(ParameterError, match=r"^Lane count must be in 1\.\.256, not 0$"):
        IeeeDotProductPE("fp16", "fp16", 0)


def test_arrays_refuse_fp32_accumulators():
    with pytest.raises(ParameterError, match=r"^ArrayConfig\.pe 'fp16_ieee_dp4' is an IEEE-style "
                                             r"FP PE \(an FP32 accumulator\); arrays hold "):
        ArrayConfig(rows=2, cols=2, pe="fp16_ieee_dp4")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fp8_e4m3_ieee", "fp8_e5m2_ieee"])
def test_every_8bit_pair_after_a_random_accumulator(kind):
    # 65,536 pairs (NaN / Inf codes included), each added to a random accumulator state:
    # 131,072 steps in the Amaranth simulator, ~4-5 minutes each
    r = check_pairs(kind)
    assert r.exhaustive and r.pairs_checked == 65536 and r.steps == 131072
    assert r.mismatches == 0, f"{kind}: {r.mismatches} steps differ; first: {r.first_mismatch}"
