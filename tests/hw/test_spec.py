# amaranth: UnusedElaboratable=no
"""The pure PE spec (:mod:`nybble.hw.spec`), the kind registry (:mod:`nybble.hw.kinds`) and the
product-unit factory (:mod:`nybble.hw.units`): a spec is derived without building any
Amaranth component, and it agrees with the component built from the same parameters."""
import pytest
from amaranth._unused import MustUse
from amaranth.hdl import Shape

from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import FAMILIES, PE_KINDS, pe_kind, pe_spec, make_pe
from nybble.hw.pe_base import PEBase
from nybble.hw.spec import BitSerialSpec, BlockScaledSpec, DotProductSpec
from nybble.hw.lut import LutUnit
from nybble.hw.units import product_grid, unit_class
from nybble.sw import get_format


@pytest.fixture
def components_built(monkeypatch):
    """Counts every Amaranth elaboratable constructed while the test runs."""
    count = []
    new = MustUse.__new__

    def counting(cls, *args, src_loc_at=0, **kwargs):
        count.append(cls.__name__)
        return new(cls, *args, src_loc_at=src_loc_at + 1, **kwargs)   # one more frame

    monkeypatch.setattr(MustUse, "__new__", counting)
    return count


def test_specs_build_no_component(components_built):
    for name in PE_KINDS:
        pe_spec(name)
    cfg = ArrayConfig(rows=16, cols=16, pe="int4_dp4", dataflow="ws")
    cfg.pe_spec, cfg.top_layout
    from nybble.sim.schedule import schedule_for
    from nybble.sim.cycles import gemm_cycles
    schedule_for(cfg, 64, 64, 64)
    gemm_cycles(ArrayConfig(pe="mxfp4"), 64, 64, 64)
    assert components_built == []
    make_pe("int4")      # the counter works
    assert components_built == ["MacPE"]


@pytest.mark.parametrize("name", sorted(PE_KINDS))
def test_spec_agrees_with_the_component(name):
    kind = pe_kind(name)
    spec, pe = kind.spec(), kind.build()
    assert type(spec) is FAMILIES[kind.pe][0] and isinstance(pe, FAMILIES[kind.pe][1])
    assert isinstance(pe, PEBase)
    assert pe.spec == spec
    assert Shape.cast(pe.a.shape()).width == spec.a_bits
    assert Shape.cast(pe.b.shape()).width == spec.b_bits
    assert Shape.cast(pe.acc.shape()).width == spec.acc_bits
    assert (pe.lanes, pe.latency, pe.frac_bits) == (spec.lanes, spec.latency, spec.frac_bits)


def test_spec_families():
    assert isinstance(pe_spec("int4"), DotProductSpec) and pe_spec("int4").family == "mac"
    assert pe_spec("int4_dp4").family == "dp" and pe_spec("int4_dp4").lanes == 4
    bs = pe_spec("bitserial")
    assert isinstance(bs, BitSerialSpec) and bs.cycles_per_mac["int4"] == 3
    assert bs.macs_per_cycle == pytest.approx(1 / 3)
    mx = pe_spec("mxfp4")
    assert isinstance(mx, BlockScaledSpec) and mx.a_bits == 8 * 4 + 8 and mx.latency == 2
    assert pe_spec("int4_dp4", psum=True).has_psum
    assert pe_spec("lut_nf4").table_init[0] == -(1 << 14)      # NF4's -1.0 on 2**-14


def test_product_grid_matches_the_units():
    for fa, fb, product in (("int4", "int4", "exact"), ("fp4_e2m1", "fp4_e2m1", "exact"),
                            ("e3m0", "e3m0", "exact"), ("int8", "e3m0", "exact"),
                            ("int8", "nf4", "exact"), ("fp8_e4m3", "fp8_e4m3", "lmul")):
        f_a, f_b = get_format(fa), get_format(fb)
        cls = unit_class(f_a, f_b, product)        # built here, so this file owns it
        unit = cls(f_a, f_b, table_port=True) if cls is LutUnit else cls(f_a, f_b)
        assert product_grid(fa, fb, product=product) == (unit.frac_bits, unit.p_min,
                                                         unit.p_max)


def test_spec_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"^Lane count must be in 1\.\.256, not 0$"):
        DotProductSpec.make("int4", "int4", 0)
    with pytest.raises(ValueError, match=r"^Product must be one of 'exact', 'lmul', not 'x'$"):
        DotProductSpec.make("int4", "int4", 1, product="x")
    with pytest.raises(ValueError, match=r"^Block size must be a multiple of the lane count 8 "
                                         r"\(a k-step may not straddle two blocks\), not 12$"):
        BlockScaledSpec.make("fp4_e2m1", "fp4_e2m1", 8, block_size=12)
    with pytest.raises(ValueError, match=r"^BitSerialPE takes an integer activation, not "
                                         r"float8_e4m3fn \(kind 'float'\)$"):
        BitSerialSpec.make("fp8_e4m3")
    with pytest.raises(ValueError, match=r"^PE kind must be one of .*, not 'int3'$"):
        pe_spec("int3")
    with pytest.raises(ValueError, match=r"^lut_table must be one of 'pe', 'array', not 'row'$"):
        pe_spec("lut_nf4", lut_table="row")
    with pytest.raises(ValueError, match=r"^lut_table='array' applies to codebook \(LUT\) "
                                         r"weights only, not int4 x int4$"):
        pe_spec("int4", lut_table="array")
    assert get_format(pe_spec("int4").fmt_a).name == "int4"
