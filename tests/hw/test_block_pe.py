# amaranth: UnusedElaboratable=no
"""Block-scaled PEs in the Amaranth simulator against nybble.sw.gemm_block_codes: random and
adversarial blocks, back-to-back jobs without reset, every scale format and block layout;
the interface, the timing, the construction errors."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from nybble.sw import get_format
from nybble.hw.block_pe import BlockScaledPE, BlockScaler, SerialBlockScaler
from nybble.hw.spec import default_acc_frac_bits
from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import PE_KINDS, make_pe
from nybble.hw.pe_base import PESignature
from nybble.sim.block_check import (BlockSteps, simulate, expected, compare, random_jobs,
                                    adversarial_jobs, check_block_pairs)

BLOCK_KINDS = ["mxfp4", "mxint8", "nvfp4", "q4_0"]
# (kind, options): the kinds, block = lanes (one step per block), 8 steps per block, blocks
# of 16 for MX, narrow and wide windows
CONFIGS = [
    ("mxfp4", {}),
    ("mxfp4", dict(acc_bits=20, acc_frac_bits=6)),
    ("mxfp4", dict(block_size=16, acc_bits=64, acc_frac_bits=30)),
    ("mxint8", dict(acc_bits=40)),
    ("nvfp4", dict(acc_bits=64)),
    ("nvfp4", dict(acc_bits=24, acc_frac_bits=10)),
    ("q4_0", dict(acc_bits=48)),
    # the block scaler time-shared over a block's cycles
    ("nvfp4_serial", dict(acc_bits=24, acc_frac_bits=10)),
    ("q4_0_serial", dict(acc_bits=48)),
    ("q4_0", dict(acc_bits=40, scaler="serial", block_size=16)),
]
LAYOUTS = [  # (fmt, scale, lanes, block): unusual lane / block splits
    ("fp4_e2m1", "e4m3", 16, 16),
    ("fp4_e2m1", "e8m0", 4, 32),
    ("int4", "e8m0", 2, 16),
]


def _assert_ok(pe, steps, label):
    bad, msg = compare(pe, steps, simulate(pe, steps), expected(pe, steps))
    assert not bad, f"{label}: {len(bad)} block ends differ from nybble.sw; first: {msg}"


def _ids(cases):
    return [f"{k}-" + "-".join(f"{a}{b}" for a, b in o.items()) for k, o in cases]


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("kind,opts", CONFIGS, ids=_ids(CONFIGS))
def test_random_blocks(kind, opts, overflow):
    pe = make_pe(kind, overflow=overflow, **opts)
    seed = sum(map(ord, kind + overflow + str(opts)))
    # scales within 2**+-6 of 1 (meaningful values), then any finite scale (overflow and
    # contributions below the LSB)
    v = np.abs(get_format(pe.scale_format).values)
    with np.errstate(divide="ignore", invalid="ignore"):
        near = np.flatnonzero(np.isfinite(v) & (v > 0) & (np.abs(np.log2(v)) < 6))
    steps = BlockSteps.concat([random_jobs(pe, 12, seed=seed, scales=near),
                               random_jobs(pe, 12, seed=seed + 1)])
    _assert_ok(pe, steps, f"{kind} {opts} {overflow}")


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("kind,opts", CONFIGS, ids=_ids(CONFIGS))
def test_adversarial_blocks(kind, opts, overflow):
    pe = make_pe(kind, overflow=overflow, **opts)
    jobs = adversarial_jobs(pe)
    assert {"all_zero_blocks_max_scales", "largest_scales_saturated", "smallest_scales",
            "vanish_positive_then_negative", "saturated_blocks_unit_scales"} <= set(jobs)
    # all jobs back to back in one run, no reset between them
    steps = BlockSteps.concat(list(jobs.values()))
    want = expected(pe, steps)
    if pe.acc_bits < 60:  # a 64-bit NVFP4 window is exact for these lengths: no overflow
        assert want[1][want[2]].any(), "no adversarial job overflows: the test proves little"
    _assert_ok(pe, steps, f"{kind} {opts} {overflow} adversarial")


def test_adversarial_values_are_what_the_issue_asks(rng):
    """Zero blocks give 0, a contribution below the LSB vanishes (or floors to -1 LSB),
    the largest scales overflow and saturate to the rails."""
    pe = make_pe("mxfp4", overflow="saturate")
    jobs = adversarial_jobs(pe)
    lim = 1 << (pe.acc_bits - 1)
    for name, want in (("all_zero_blocks_max_scales", [0, 0, 0]),
                       ("largest_scales_saturated", [lim - 1, -lim]),
                       ("smallest_scales", [0, -1])):
        acc, ovf, mask = expected(pe, jobs[name])
        got = simulate(pe, jobs[name])[0]
        assert [int(v) for v in acc[mask]] == want == [int(v) for v in got[mask]], name
    acc, _, mask = expected(pe, jobs["vanish_positive_then_negative"])
    first = int(acc[mask][0])
    assert [int(v) for v in acc[mask]] == [first, first, first - 1]


@pytest.mark.parametrize("fmt,scale,lanes,block", LAYOUTS)
def test_lane_and_block_layouts(fmt, scale, lanes, block):
    pe = BlockScaledPE(fmt, fmt, lanes, scale=scale, block_size=block, acc_bits=40)
    assert pe.steps_per_block == block // lanes
    steps = random_jobs(pe, 10, seed=lanes * block, max_blocks=3)
    _assert_ok(pe, steps, f"{fmt} {scale} {lanes}x{block // lanes}")


def test_scale_is_read_at_the_blocks_last_step():
    """The feeders put the block's scale in every step; the PE reads the last step's."""
    pe = make_pe("mxfp4")
    steps = random_jobs(pe, 6, seed=5, scales=np.arange(120, 135))
    junk = BlockSteps(steps.a, steps.b, steps.sa.copy(), steps.sb.copy(), steps.first)
    last = (np.arange(len(steps)) % pe.steps_per_block) == pe.steps_per_block - 1
    junk.sa[~last] = 0
    junk.sb[~last] = 254
    assert np.array_equal(simulate(pe, junk)[0], simulate(pe, steps)[0])


def test_pair_sweep_of_every_kind():
    for kind in BLOCK_KINDS + ["nvfp4_serial", "q4_0_serial"]:
        r = check_block_pairs(make_pe(kind), name=kind)
        assert r.mismatches == 0, f"{kind}: {r.first_mismatch}"
    assert r.exhaustive and r.pairs_checked == 256 * 8


def _scaler_run(scaler, starts):
    """Drive ``scaler`` (a :class:`SerialBlockScaler` or a :class:`BlockScaler`) with
    ``starts`` (``(s, scale_a, scale_b)``), back to back every ``cycles`` cycles; its ``p``
    for each."""
    serial = isinstance(scaler, SerialBlockScaler)
    out = []

    async def bench(ctx):
        for s, sa, sb in starts:
            ctx.set(scaler.s, s)
            ctx.set(scaler.scale_a, sa)
            ctx.set(scaler.scale_b, sb)
            if not serial:
                await ctx.delay(1e-9)
                out.append(ctx.get(scaler.p))
                continue
            ctx.set(scaler.start, 1)
            ctx.set(scaler.first, s & 1)
            await ctx.tick()
            ctx.set(scaler.start, 0)
            for _ in range(scaler.cycles - 1):
                await ctx.tick()
            assert ctx.get(scaler.p_valid) and ctx.get(scaler.p_first) == s & 1
            out.append(ctx.get(scaler.p))

    sim = Simulator(scaler)
    if serial:
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


def _serial_vs_parallel(kind, pairs):
    """The time-shared scaler's ``p`` against the single-cycle scaler's (itself checked
    against the golden model above), block sums and scale codes back to back: every pair of
    finite scale codes (``pairs`` None) or a seeded sample, the largest scales first."""
    pe = make_pe(f"{kind}_serial")
    args = (pe.sum_bits, pe.scale, pe.grid, pe.acc_bits, pe.frac_bits)
    fmt = get_format(pe.scale_format)
    codes = np.flatnonzero(fmt.finite)
    rng = np.random.default_rng(len(kind))
    lo, hi = -(1 << (pe.sum_bits - 1)), (1 << (pe.sum_bits - 1)) - 1
    if pairs is None:
        sa, sb = np.repeat(codes, len(codes)), np.tile(codes, len(codes))
    else:
        big = codes[np.argsort(-np.abs(fmt.values[codes]))[:4]]
        sa = np.concatenate([np.repeat(big, 4), rng.choice(codes, pairs)])
        sb = np.concatenate([np.tile(big, 4), rng.choice(codes, pairs)])
    s = rng.integers(lo, hi + 1, len(sa))
    s[:4] = [lo, hi, 0, -1]
    starts = list(zip(s.tolist(), sa.tolist(), sb.tolist()))
    serial = _scaler_run(SerialBlockScaler(*args, pe.steps_per_block), starts)
    parallel = _scaler_run(BlockScaler(*args), starts)
    bad = [i for i in range(len(starts)) if serial[i] != parallel[i]]
    assert not bad, (f"{kind}: {len(bad)} of {len(starts)} differ; first (s, scale_a, "
                     f"scale_b) = {starts[bad[0]]}: {serial[bad[0]]} != {parallel[bad[0]]}")


@pytest.mark.parametrize("kind", ["nvfp4", "q4_0"])
def test_serial_scaler_equals_the_parallel_one(kind):
    _serial_vs_parallel(kind, 1500)


@pytest.mark.slow
def test_serial_scaler_every_e4m3_scale_pair():
    _serial_vs_parallel("nvfp4", None)


def test_serial_scaler_timing_and_errors():
    for name, spb in (("nvfp4_serial", 2), ("q4_0_serial", 4)):
        pe = make_pe(name)
        assert pe.scaler == "serial" and (pe.latency, pe.steps_per_block) == (2 + spb, spb)
        assert set(pe.signature.members) == set(PESignature(4, 4, 16).members)
    assert make_pe("q4_0").scaler == "parallel"
    with pytest.raises(ValueError, match=r"^scaler must be one of 'parallel', 'serial', "
                                         r"not 'pipelined'$"):
        BlockScaledPE("int4", "int4", 8, scale="fp16", scaler="pipelined")
    with pytest.raises(ValueError, match=r"^scaler='serial' needs scales with a significand "
                                         r"\(e4m3, fp16\), not e8m0"):
        BlockScaledPE("fp4_e2m1", "fp4_e2m1", 8, scale="e8m0", scaler="serial")
    with pytest.raises(ValueError, match=r"^scaler='serial' needs at least 2 steps per block "
                                         r"\(the cycles it may take\), not block_size 8 / "
                                         r"lanes 8$"):
        BlockScaledPE("int4", "int4", 8, scale="fp16", block_size=8, scaler="serial")
    with pytest.raises(ValueError, match=r"^A serial block scaler needs scales with a "
                                         r"significand"):
        SerialBlockScaler(14, "e8m0", 2, 32, 16, 4)
    with pytest.raises(ValueError, match=r"^Scaler cycles must be in 2\.\.256, not 1$"):
        SerialBlockScaler(14, "fp16", 0, 32, 16, 1)


def test_forwarding_and_idle_cycles():
    """a/b (scales included), valid, first leave one cycle later; without valid nothing
    changes."""
    pe = make_pe("nvfp4", acc_bits=64)
    rng = np.random.default_rng(1)
    script = [dict(a=int(rng.integers(1 << len(pe.a))), b=int(rng.integers(1 << len(pe.b))),
                   valid=int(i < 4), first=int(i % 2 == 0)) for i in range(10)]
    log = []

    async def bench(ctx):
        for c in script:
            for n, v in c.items():
                ctx.set(getattr(pe, n), v)
            await ctx.tick()
            log.append({n: ctx.get(getattr(pe, f"{n}_out")) for n in c} |
                       {"acc": ctx.get(pe.acc), "overflow": ctx.get(pe.overflow)})

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for i, c in enumerate(script):
        for n, v in c.items():
            assert log[i][n] == v, f"cycle {i}: {n}_out"
    assert len({(e["acc"], e["overflow"]) for e in log[5:]}) == 1


def test_interface_and_timing():
    for name in BLOCK_KINDS:
        kind = PE_KINDS[name]
        assert kind.pe == "block" and kind.lanes == 8
        pe = kind.build()
        assert set(pe.signature.members) == set(PESignature(4, 4, 16).members)
        assert (pe.latency, pe.cycles_per_mac, pe.lanes) == (2, 1 / 8, 8)
        wa = pe.fmt_a.bits * 8 + pe.scale_bits
        assert len(pe.a) == wa and len(pe.b) == wa
    mx, nv, q4 = (make_pe(k) for k in ("mxfp4", "nvfp4", "q4_0"))
    assert (mx.block_size, mx.scale_bits, mx.sum_bits, mx.frac_bits, mx.grid) == (32, 8, 14, 16, 2)
    assert (nv.block_size, nv.steps_per_block, nv.frac_bits) == (16, 2, 0)
    assert (q4.scale, q4.scale_bits, q4.sum_bits, q4.grid) == ("fp16", 16, 13, 0)
    assert default_acc_frac_bits("e4m3", 64, 2) == 20 and default_acc_frac_bits("e8m0", 48, 2) == 24


def test_model_checks_the_quantized_tensors(rng):
    from nybble.sw import quantize
    pe = make_pe("mxfp4")
    qa = quantize(rng.standard_normal((2, 64)), "mxfp4", axis=-1)
    qb = quantize(rng.standard_normal((64, 3)), "mxfp4", axis=0)
    assert pe.model(qa, qb).shape == (2, 3)
    with pytest.raises(ValueError, match=r"^b has e4m3 block scales \(nvfp4\) but the PE takes e8m0$"):
        pe.model(qa, quantize(rng.standard_normal((64, 3)), "nvfp4", axis=0))
    with pytest.raises(ValueError, match=r"^a has int8_mx elements \(mxint8\) but the PE takes "
                                         r"float4_e2m1fn$"):
        pe.model(quantize(rng.standard_normal((2, 64)), "mxint8", axis=-1), qb)


# -- construction errors ---------------------------------------------------------------------

def test_constructor_errors():
    with pytest.raises(ValueError, match=r"^Block size must be a multiple of the lane count 8 "
                                         r"\(a k-step may not straddle two blocks\), not 12$"):
        BlockScaledPE("fp4_e2m1", "fp4_e2m1", 8, block_size=12)
    with pytest.raises(ValueError, match=r"^Scale format must be one of 'e8m0', 'e4m3', "
                                         r"'fp16', not 'e5m2'$"):
        BlockScaledPE("fp4_e2m1", "fp4_e2m1", scale="e5m2")
    with pytest.raises(TypeError, match=r"^Scale format must be a string, not 8$"):
        BlockScaledPE("fp4_e2m1", "fp4_e2m1", scale=8)
    with pytest.raises(ValueError, match=r"^acc_frac_bits must be in 0\.\.31, not 32$"):
        BlockScaledPE("fp4_e2m1", "fp4_e2m1", acc_frac_bits=32)
    with pytest.raises(ValueError, match=r"^Accumulator width must be in 2\.\.4096, not 1$"):
        BlockScaledPE("fp4_e2m1", "fp4_e2m1", acc_bits=1)
    with pytest.raises(ValueError, match=r"^BlockScaledPE takes int, float or pow2 elements; "
                                         r"fmt_b is nf4 \(kind 'codebook'\)$"):
        BlockScaledPE("int4", "nf4")
    with pytest.raises(ValueError, match=r"^Overflow mode must be one of 'wrap', 'saturate', "
                                         r"not 'error'"):
        BlockScaledPE("int4", "int4", overflow="error")
    with pytest.raises(ValueError, match=r"^Lane count must be in 1\.\.256, not 0$"):
        BlockScaledPE("int4", "int4", 0)
    with pytest.raises(TypeError, match=r"^fmt_a must be a format name or a nybble\.sw\.Format"):
        BlockScaledPE(4, "int4")
    pe = BlockScaledPE("int4", "int4", np.int64(4), block_size=np.int32(16),
                       acc_bits=np.uint8(24), acc_frac_bits=np.int16(3))
    assert (pe.lanes, pe.block_size, pe.acc_bits, pe.frac_bits) == (4, 16, 24, 3)


def test_array_config_fields():
    c = ArrayConfig(pe="nvfp4", acc_bits=64)
    assert c.block_scaled and c.pe_options == {"block_size": 16, "acc_frac_bits": 20}
    assert ArrayConfig(pe="mxfp4", block_size=16, acc_frac_bits=3).pe_options == \
        {"block_size": 16, "acc_frac_bits": 3}
    assert ArrayConfig(pe="int4").pe_options == {} and not ArrayConfig().block_scaled
    with pytest.raises(ValueError, match=r"^ArrayConfig\.block_size applies to block-scaled PE "
                                         r"kinds \(mxfp4, mxint8, nvfp4, q4_0\), not 'int4': "
                                         r"leave it None$"):
        ArrayConfig(pe="int4", block_size=32)
    with pytest.raises(ValueError, match=r"^ArrayConfig\.acc_frac_bits applies to block-scaled"):
        ArrayConfig(pe="int4_dp4", acc_frac_bits=8)
    with pytest.raises(ValueError, match=r"^ArrayConfig\.block_size must be one of 16, 32 "
                                         r"\(or None\), not 64$"):
        ArrayConfig(pe="mxfp4", block_size=64)
    with pytest.raises(ValueError, match=r"^ArrayConfig\.acc_frac_bits must be in 0\.\.23, "
                                         r"not 24$"):
        ArrayConfig(pe="mxfp4", acc_bits=24, acc_frac_bits=24)
    with pytest.raises(TypeError, match=r"^ArrayConfig\.block_size must be an integer, not 'x'$"):
        ArrayConfig(pe="mxfp4", block_size="x")
    with pytest.raises(ValueError, match=r"^ArrayConfig\.dataflow must be 'os' for the "
                                         r"block-scaled PE 'mxfp4'"):
        ArrayConfig(pe="mxfp4", dataflow="ws")
    assert ArrayConfig(pe="mxfp4", block_size=np.int64(32)).block_size == 32
