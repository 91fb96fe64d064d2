# amaranth: UnusedElaboratable=no
"""PEs in the Amaranth simulator against nybble.sw: every pair of codes, accumulation across
the wrap and saturate boundaries, back-to-back jobs without reset, the interface, the errors."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from nybble.sw import codebook
from nybble.hw.kinds import PE_KINDS, make_pe, pe_kind, pe_spec, dot_product_kind
from nybble.hw.pe import MacPE, DotProductPE, BitSerialPE
from nybble.hw.pe_base import PESignature
from nybble.hw.spec import BITSERIAL_DTYPES, DotProductSpec
from nybble.sim.pe_drive import operand_words
from nybble.sim.pe_check import (check_pairs, simulate, expected, compare, random_jobs, Steps,
                                 pair_steps)

FOUR_BIT = ["int4", "uint4", "fp4_e2m1", "e3m0", "int4_e3m0", "lmul_fp4_e2m1"]
ACT8_W4 = ["int8_e3m0", "int8_int4", "int8_fp4_e2m1", "lut_nf4", "lut_nf4_shared"]
DOT = ["int4_dp2", "int4_dp4", "int4_dp8", "int4_dp16", "fp4_e2m1_dp4", "e3m0_dp4",
       "int8_e3m0_dp4", "lut_nf4_dp4", "lut_nf4_shared_dp4"]


def _assert_check(r):
    assert r.mismatches == 0, (f"{r.pe}: {r.mismatches} of {r.steps} steps differ from "
                               f"nybble.sw; first: {r.first_mismatch}")


@pytest.mark.parametrize("kind", FOUR_BIT + ACT8_W4 + DOT)
def test_all_pairs(kind):
    r = check_pairs(kind)
    assert r.exhaustive
    want = 4096 if pe_kind(kind).formats[0] == "int8" else 256
    assert r.pairs_checked == want * pe_kind(kind).lanes
    _assert_check(r)


@pytest.mark.parametrize("sel", range(len(BITSERIAL_DTYPES)))
def test_bitserial_all_pairs(sel):
    pe = make_pe("bitserial")
    steps, _, _ = pair_steps(pe)
    keep = steps.sel == sel
    steps = Steps(steps.a[keep], steps.b[keep], steps.first[keep], steps.sel[keep])
    assert len(steps) == 256 * 16
    bad, msg = compare(pe, steps, simulate(pe, steps), expected(pe, steps))
    assert not bad, f"bitserial {BITSERIAL_DTYPES[sel]}: {len(bad)} steps differ; {msg}"


@pytest.mark.parametrize("kind", ["int16", "fp16", "bf16"])
def test_16bit_sample(kind):
    r = check_pairs(kind, sample=1024, seed=sum(map(ord, kind)))
    assert r.pairs_checked == 1024
    _assert_check(r)


SEQ_KINDS = ["int4", "uint4", "fp4_e2m1", "e3m0", "int4_e3m0", "int8_e3m0", "lut_nf4",
             "lmul_fp4_e2m1", "int4_dp4", "e3m0_dp4", "fp4_e2m1_dp8", "bitserial", "bf16",
             "fp8_e4m3"]


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize("kind", SEQ_KINDS)
def test_sequences_cross_overflow(kind, overflow):
    """Back-to-back jobs (no reset) in the narrowest accumulator the PE accepts."""
    narrow = make_pe(kind, overflow=overflow,
                     acc_bits=pe_spec(kind, overflow=overflow).min_acc_bits + 1)
    steps = random_jobs(narrow, 150, seed=sum(map(ord, kind + overflow)))
    want = expected(narrow, steps)
    assert want[1].any(), "the sequence never overflows: the test would prove nothing"
    lim = 1 << (narrow.acc_bits - 1)
    if overflow == "saturate":
        assert any(v in (lim - 1, -lim) for v in want[0])
    bad, msg = compare(narrow, steps, simulate(narrow, steps), want)
    assert not bad, f"{kind} ({overflow}, acc_bits={narrow.acc_bits}): {len(bad)} steps " \
                    f"differ; {msg}"


@pytest.mark.parametrize("kind", ["int4", "fp4_e2m1_dp4", "lut_nf4"])
def test_pipelined(kind):
    spec = pe_spec(kind, pipeline=1)
    assert spec.latency == 2
    pe = make_pe(kind, pipeline=1, overflow="saturate", acc_bits=spec.min_acc_bits + 2)
    steps = random_jobs(pe, 120, seed=7)
    bad, msg = compare(pe, steps, simulate(pe, steps), expected(pe, steps))
    assert not bad, msg


def test_lut_loaded_at_run_time():
    """A user codebook written through the write port replaces the reset NF4 table."""
    rng = np.random.default_rng(3)
    user = codebook(np.sort(rng.uniform(-1.5, 1.5, 16)), name="user16")
    pe = make_pe("lut_nf4", overflow="saturate")
    table, _ = user.fixed_values(pe.frac_bits)
    ref = DotProductSpec.make("int8", user, 1, acc_bits=pe.acc_bits, overflow="saturate")
    assert ref.frac_bits == pe.frac_bits
    steps, _, _ = pair_steps(ref)
    bad, msg = compare(pe, steps, simulate(pe, steps, table=table), expected(ref, steps))
    assert not bad, f"user codebook: {len(bad)} steps differ; {msg}"


@pytest.mark.parametrize("kind", ["lut_nf4_shared", "lut_nf4_shared_dp4"])
def test_lut_table_held_by_the_array(kind):
    """``lut_table="array"``: no table registers in the PE, the entries come in on
    ``lut_entries`` -- a user codebook there gives that codebook's products."""
    pe = make_pe(kind, overflow="saturate")
    assert hasattr(pe, "lut_entries") and not hasattr(pe, "lut_we")
    assert len(pe.lut_entries) == 16
    rng = np.random.default_rng(5)
    user = codebook(np.sort(rng.uniform(-1.5, 1.5, 16)), name="user16")
    table, _ = user.fixed_values(pe.frac_bits)
    ref = DotProductSpec.make("int8", user, pe.lanes, acc_bits=pe.acc_bits,
                              overflow="saturate")
    steps, _, _ = pair_steps(ref)
    bad, msg = compare(pe, steps, simulate(pe, steps, table=table), expected(ref, steps))
    assert not bad, f"{kind}, user codebook: {len(bad)} steps differ; {msg}"


def test_back_to_back_without_reset():
    """The same job twice around a job that saturates: identical results, the flag cleared."""
    pe = make_pe("int4", overflow="saturate", acc_bits=8)
    job = [(3, 5), (0xF, 2), (7, 7)]
    hog = [(7, 7)] * 6  # 6 x 49 saturates 8 bits
    pairs = job + hog + job
    a = np.array([[p[0]] for p in pairs])
    b = np.array([[p[1]] for p in pairs])
    first = np.zeros(len(pairs), bool)
    first[[0, 3, 9]] = True
    steps = Steps(a, b, first)
    acc, ovf = simulate(pe, steps)
    assert acc[2] == acc[-1] == 15 - 2 + 49
    assert ovf[8] and not ovf[2] and not ovf[-1]
    assert acc[8] == 127
    bad, msg = compare(pe, steps, (acc, ovf), expected(pe, steps))
    assert not bad, msg


def _run(pe, script):
    """Apply ``script`` (a list of dicts of port values, one per cycle); return the values of
    every output port after each clock edge."""
    outs = [n for n, m in pe.signature.members.items() if m.flow.name == "Out"]
    log = []

    async def bench(ctx):
        for cycle in script:
            for name, v in cycle.items():
                ctx.set(getattr(pe, name), v)
            await ctx.tick()
            log.append({n: ctx.get(getattr(pe, n)) for n in outs})

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return log


@pytest.mark.parametrize("kind", ["int4", "int4_dp4", "bitserial", "lut_nf4"])
def test_forwarding_and_idle(kind):
    pe = make_pe(kind)
    rng = np.random.default_rng(1)
    script = []
    for i in range(12):
        c = {"a": int(rng.integers(1 << len(pe.a))), "b": int(rng.integers(1 << len(pe.b))),
             "valid": int(i in (0, 1)), "first": int(i == 0 or i > 5)}
        if kind == "bitserial":
            c["sel"] = int(rng.integers(len(BITSERIAL_DTYPES)))
        script.append(c)
    log = _run(pe, script)
    for i, c in enumerate(script):
        for n, v in c.items():
            assert log[i][f"{n}_out"] == v, f"{kind}: cycle {i}: {n}_out = " \
                                            f"{log[i][f'{n}_out']}, expected {v}"
    # without valid nothing changes, whatever a, b and first do
    settled = log[5]["acc"], log[5]["overflow"]
    assert all((e["acc"], e["overflow"]) == settled for e in log[5:])


def test_operand_words_pack_lanes_low_first():
    """The PE drivers' words: lane l at bits [l*bits, (l+1)*bits), a scale code on top."""
    assert operand_words([[1, 2, 3, 4]], 4) == [0x4321]
    assert operand_words([[1, 2], [15, 0]], 4, [0xAB, 0x01], 8) == [0xAB21, 0x010F]


def test_interface_shape_is_shared():
    common = set(PESignature(4, 4, 16).members.keys())
    for name, kind in PE_KINDS.items():
        pe = kind.build()
        assert common <= set(pe.signature.members.keys()), name
        assert isinstance(pe.latency, int) and pe.latency >= 1
        extra = set(pe.signature.members.keys()) - common
        assert extra in (set(), {"lut_we", "lut_addr", "lut_data"}, {"lut_entries"},
                         {"sel", "sel_out", "ready"})


def test_timing_properties():
    pe = {k: pe_spec(k) for k in ("int4", "int4_dp8", "bitserial", "bf16", "e3m0",
                                          "lut_nf4")}
    assert (pe["int4"].latency, pe["int4"].cycles_per_mac) == (1, 1)
    assert (pe["int4_dp8"].latency, pe["int4_dp8"].cycles_per_mac) == (1, 1 / 8)
    assert pe_spec("fp4_e2m1", pipeline=1).latency == 2
    bs = pe["bitserial"]
    assert bs.cycles_per_mac == {"int4": 3, "fp4_e2m1": 2, "e3m0": 1, "bitmod_er_pos": 3,
                                 "bitmod_er_neg": 3, "bitmod_ea_pos": 2, "bitmod_ea_neg": 2}
    assert bs.latency == 3 and bs.frac_bits == 2 and bs.sel_bits == 3
    assert pe["bf16"].frac_bits == 32 and pe["bf16"].acc_bits == 64
    assert pe["e3m0"].frac_bits == 4 and pe["lut_nf4"].frac_bits == 14


def test_kinds_table():
    for name in ("int4", "uint4", "fp4_e2m1", "e3m0", "int4_e3m0", "int8_e3m0", "lut_nf4",
                 "bitserial", "int8", "int16", "fp8_e4m3", "bf16", "fp16", "lmul_fp8_e4m3",
                 "lmul_fp4_e2m1", "int4_dp4"):
        assert name in PE_KINDS
    assert pe_kind("fp8_e4m3_dp2").lanes == 2
    assert dot_product_kind("e3m0", 16).name == "e3m0_dp16"


# -- construction errors ---------------------------------------------------------------------

def test_acc_too_narrow():
    with pytest.raises(ValueError, match=r"^Accumulator width must be at least 8 bits "
                       r"\(nybble\.sw\.min_acc_bits\('int4', 'int4', 1\)\) to hold one "
                       r"int4 x int4 product, not 6$"):
        MacPE("int4", "int4", acc_bits=6)
    with pytest.raises(ValueError, match=r"^Accumulator width must be at least 10 bits "
                       r"\(nybble\.sw\.min_acc_bits\('int4', 'int4', 4\)\) to hold one step "
                       r"of 4 int4 x int4 products, not 9$"):
        DotProductPE("int4", "int4", 4, acc_bits=9)
    with pytest.raises(ValueError, match=r"^Accumulator width must be at least 9 bits "
                       r"\(nybble\.sw\.min_acc_bits\('float4_e2m1fn', 'float4_e2m1fn', 1, "
                       r"product='lmul'\)\) to hold one float4_e2m1fn x float4_e2m1fn "
                       r"product, not 8$"):
        MacPE("fp4_e2m1", "fp4_e2m1", product="lmul", acc_bits=8)
    with pytest.raises(ValueError, match=r"^Accumulator width must be at least 34 bits "
                       r"\(nybble\.sw\.min_acc_bits\('bfloat16', 'bfloat16', 1, "
                       r"acc_frac_bits=32\) or acc_frac_bits \+ 2 = 34\)"):
        MacPE("bf16", "bf16", acc_frac_bits=32, acc_bits=33)
    with pytest.raises(ValueError, match=r"^Accumulator width must be at least 15 bits "
                       r"\(nybble\.sw\.min_acc_bits\('int8', 'e3m0', 1, "
                       r"acc_frac_bits=2\)\) to hold one int8 x e3m0 product, not 12$"):
        BitSerialPE(acc_bits=12)


def test_parameter_errors():
    with pytest.raises(TypeError, match=r"^Accumulator width must be an integer, not 'x'$"):
        MacPE("int4", "int4", acc_bits="x")
    with pytest.raises(ValueError, match=r"^Overflow mode must be one of 'wrap', 'saturate', "
                                         r"not 'error' \(the golden model's 'error' is a check"):
        MacPE("int4", "int4", overflow="error")
    with pytest.raises(TypeError, match=r"^Overflow mode must be a string, not 1$"):
        MacPE("int4", "int4", overflow=1)
    with pytest.raises(ValueError, match=r"^Lane count must be in 1\.\.256, not 0$"):
        DotProductPE("int4", "int4", 0)
    with pytest.raises(ValueError, match=r"^Pipeline depth must be in 0\.\.1, not 2$"):
        MacPE("int4", "int4", pipeline=2)
    with pytest.raises(ValueError, match=r"^Product must be one of 'exact', 'lmul', not 'x'$"):
        MacPE("int4", "int4", product="x")
    with pytest.raises(TypeError, match=r"^fmt_a must be a format name or a nybble\.sw\.Format"):
        MacPE(4, "int4")
    with pytest.raises(TypeError, match=r"^MacPE has one lane; use DotProductPE for more$"):
        MacPE("int4", "int4", lanes=2)
    with pytest.raises(TypeError, match=r"^dtypes must be a sequence of format names, not 'int4'$"):
        BitSerialPE("int8", "int4")
    with pytest.raises(ValueError, match=r"^BitSerialPE takes an integer activation, not "):
        BitSerialPE("fp4_e2m1")
    with pytest.raises(ValueError, match=r"^PE kind must be one of int4, .* not 'int3'$"):
        make_pe("int3")
    # numpy integers are accepted everywhere
    pe = DotProductPE("int4", "int4", np.int64(4), acc_bits=np.int32(20), pipeline=np.uint8(1))
    assert (pe.lanes, pe.acc_bits, pe.latency) == (4, 20, 2)
    assert type(pe.acc_bits) is int
