# amaranth: UnusedElaboratable=no
"""Product units against nybble.sw: every pair of 4- and 8-bit codes, a sample of 16-bit ones."""
import numpy as np
import pytest

from nybble.sw import get_format, codebook
from nybble.hw.product import MultiplierUnit, signed_width
from nybble.hw.units import make_product_unit
from nybble.hw.shift import ShiftUnit, BarrelShiftUnit
from nybble.hw.lut import LutUnit
from nybble.hw.lmul import LMulUnit
from nybble.sim.pe_check import check_product_unit


def all_pairs(fa, fb):
    ca = np.flatnonzero(get_format(fa).finite)
    cb = np.flatnonzero(get_format(fb).finite)
    return np.repeat(ca, len(cb)), np.tile(cb, len(ca))


PAIRS_4BIT = [
    ("int4", "int4", "exact", MultiplierUnit), ("uint4", "uint4", "exact", MultiplierUnit),
    ("fp4_e2m1", "fp4_e2m1", "exact", MultiplierUnit), ("e3m0", "e3m0", "exact", ShiftUnit),
    ("e3m0_b4", "e3m0_b4", "exact", ShiftUnit), ("fp4_r4", "fp4_r4", "exact", ShiftUnit),
    ("int4", "e3m0", "exact", BarrelShiftUnit), ("e3m0", "int4", "exact", BarrelShiftUnit),
    ("fp4_e2m1", "e3m0", "exact", BarrelShiftUnit), ("int4", "fp4_e2m1", "exact", MultiplierUnit),
    ("fp4_e2m1", "fp4_e2m1", "lmul", LMulUnit),
    ("int8", "e3m0", "exact", BarrelShiftUnit), ("int8", "nf4", "exact", LutUnit),
    ("int8", "bitmod_er_pos", "exact", LutUnit), ("int4", "nf4", "exact", LutUnit),
]


@pytest.mark.parametrize("fa,fb,product,cls", PAIRS_4BIT)
def test_unit_all_pairs(fa, fb, product, cls):
    lut_bits = 20 if fb.startswith("bitmod") else 16  # values up to 16 on the 2**-14 grid
    unit = make_product_unit(fa, fb, product=product, lut_bits=lut_bits)
    assert type(unit) is cls and unit.latency == 0
    a, b = all_pairs(fa, fb)
    bad = check_product_unit(unit, a, b, product=product)
    assert not bad, f"{fa} x {fb} ({product}): {len(bad)} of {len(a)} pairs differ; " \
                    f"first (a, b, got, want) = {bad[0]}"


def test_unit_widths():
    u = MultiplierUnit("fp4_e2m1", "fp4_e2m1")
    assert (u.frac_bits, u.p_min, u.p_max, u.p_bits) == (2, -144, 144, 9)
    u = ShiftUnit("e3m0", "e3m0")
    assert (u.frac_bits, u.p_max, u.p_bits) == (4, 4096, 14)
    u = LMulUnit("fp4_e2m1", "fp4_e2m1")
    assert (u.frac_bits, u.p_max, u.offset_bits) == (2, 160, 1)
    u = LutUnit("int8", "nf4")
    assert (u.frac_bits, u.lut_bits, u.p_bits) == (14, 16, 24)
    assert signed_width(-8, 7) == 4 and signed_width(0, 8) == 5


@pytest.mark.parametrize("fa,product", [("int8", "exact"), ("fp8_e4m3", "exact"),
                                        ("fp8_e4m3", "lmul")])
def test_unit_8bit_all_pairs(fa, product):
    unit = make_product_unit(fa, fa, product=product)
    a, b = all_pairs(fa, fa)
    assert len(a) >= 64516
    bad = check_product_unit(unit, a, b, product=product)
    assert not bad, f"{fa} ({product}): {len(bad)} pairs differ; first {bad[0]}"


@pytest.mark.parametrize("fa", ["int16", "fp16", "bf16"])
def test_unit_16bit_sample(fa):
    rng = np.random.default_rng(sum(map(ord, fa)))
    fin = np.flatnonzero(get_format(fa).finite)
    a, b = rng.choice(fin, 6000), rng.choice(fin, 6000)
    # the extremes: largest, smallest, zero, smallest subnormal
    f = get_format(fa)
    ext = fin[[np.argmax(f.values[fin]), np.argmin(f.values[fin]), 0, 1]]
    a = np.concatenate([np.repeat(ext, 4), a])
    b = np.concatenate([np.tile(ext, 4), b])
    bad = check_product_unit(make_product_unit(fa, fa), a, b)
    assert not bad, f"{fa}: {len(bad)} pairs differ; first {bad[0]}"


def test_lut_unit_write_port():
    from amaranth.sim import Simulator
    unit = make_product_unit("int8", "nf4")
    table = [(-1) ** i * 1000 * i for i in range(16)]
    got = {}

    async def bench(ctx):
        ctx.set(unit.we, 1)
        for i, v in enumerate(table):
            ctx.set(unit.waddr, i)
            ctx.set(unit.wdata, v)
            await ctx.tick()
        ctx.set(unit.we, 0)
        for a in (0x7F, 0x80, 0x01, 0xFF):
            for b in range(16):
                ctx.set(unit.a, a)
                ctx.set(unit.b, b)
                await ctx.delay(1e-9)
                got[a, b] = ctx.get(unit.p)

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for (a, b), p in got.items():
        sa = a - 256 if a >= 128 else a
        assert p == sa * table[b], f"a={a:#x}, b={b}: p={p}, expected {sa * table[b]}"


def test_make_product_unit_errors():
    with pytest.raises(TypeError, match=r"^fmt_a must be a format name or a nybble\.sw\.Format, not 3$"):
        make_product_unit(3, "int4")
    with pytest.raises(ValueError, match=r"^no product unit for nf4 \(kind 'codebook'\) x int4"):
        make_product_unit("nf4", "int4")
    with pytest.raises(ValueError, match=r"^product must be one of 'exact', 'lmul', not 'approx'$"):
        make_product_unit("int4", "int4", product="approx")
    # (the classes are called directly so that this file's UnusedElaboratable=no applies)
    with pytest.raises(ValueError, match=r"^LMulUnit takes two operands of one float format"):
        LMulUnit("fp4_e2m1", "fp8_e4m3")
    with pytest.raises(ValueError, match=r"^LMulUnit takes .* not int4 x int4$"):
        LMulUnit("int4", "int4")
    with pytest.raises(ValueError, match=r"^LUT entry width must be at least 16 bits to hold "
                                         r"the nf4 codebook on the grid 2\*\*-14, not 12$"):
        LutUnit("int8", "nf4", lut_bits=12)
    with pytest.raises(TypeError, match=r"^lut_bits must be an integer, not 'x'$"):
        LutUnit("int8", "nf4", lut_bits="x")
    with pytest.raises(ValueError, match=r"^LutUnit takes an integer activation, not "):
        LutUnit("fp4_e2m1", "nf4")
    with pytest.raises(ValueError, match=r"^ShiftUnit takes power-of-two formats; fmt_a is int4"):
        ShiftUnit("int4", "e3m0")
    with pytest.raises(ValueError, match=r"^BarrelShiftUnit takes one power-of-two"):
        BarrelShiftUnit("int4", "int4")
    # numpy integers are accepted
    assert LutUnit("int8", codebook(np.linspace(-1, 1, 16)),
                   lut_bits=np.int64(16)).lut_bits == 16
