# amaranth: UnusedElaboratable=no
"""The array components (:mod:`nybble.hw.array`) on their own: ports from the config's PE spec,
the dataflow each one takes.  (GEMMs on them, through the top: ``tests/sim/test_array.py``.)"""
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Shape

from nybble.hw.array import OutputStationaryArray, WeightStationaryArray
from nybble.hw.config import ArrayConfig


def _width(port):
    return Shape.cast(port.shape()).width


@pytest.mark.parametrize("pe", ["int4", "int4_dp4", "lut_nf4", "lut_nf4_shared", "mxfp4"])
def test_os_ports_follow_the_spec(pe):
    cfg = ArrayConfig(rows=3, cols=2, pe=pe, acc_bits=40)
    arr = OutputStationaryArray(cfg)
    spec = cfg.pe_spec
    assert len(arr.a) == 3 and len(arr.b) == 2 and len(arr.out_data) == 2
    assert _width(arr.a[0]) == spec.a_bits and _width(arr.b[0]) == spec.b_bits
    assert _width(arr.out_data[0]) == 40
    assert (arr.latency, arr.lanes, arr.frac_bits) == (spec.latency, spec.lanes, spec.frac_bits)
    assert hasattr(arr, "lut_we") == pe.startswith("lut")


@pytest.mark.parametrize("pe,tables", [("lut_nf4", 6), ("lut_nf4_shared", 1),
                                       ("lut_nf4_shared_dp4", 1)])
def test_lut_tables_per_pe_or_one_per_array(pe, tables):
    """The registers of a LUT array's tables: one table per PE, or (``lut_table="array"``)
    one for the whole array, its entries wired to every PE."""
    cfg = ArrayConfig(rows=3, cols=2, pe=pe, acc_bits=40)
    text = rtlil.convert(OutputStationaryArray(cfg))
    modules = [line for line in text.splitlines() if line.startswith("module ")]
    table_mods = [line for line in modules if line.endswith(("table", "lut_table"))]
    assert len(table_mods) == tables, (pe, modules)


def test_ws_ports_follow_the_spec():
    cfg = ArrayConfig(rows=2, cols=3, pe="fp4_e2m1_dp4", dataflow="ws")
    arr = WeightStationaryArray(cfg)
    assert len(arr.w_in) == 3 and _width(arr.w_in[0]) == cfg.pe_spec.b_bits
    assert len(arr.psum_in) == 3 and _width(arr.psum_in[0]) == cfg.acc_bits


def test_each_array_takes_its_dataflow():
    with pytest.raises(ValueError, match=r"^OutputStationaryArray needs ArrayConfig\.dataflow "
                                         r"'os', not 'ws'$"):
        OutputStationaryArray(ArrayConfig(dataflow="ws"))
    with pytest.raises(ValueError, match=r"^WeightStationaryArray needs ArrayConfig\.dataflow "
                                         r"'ws' \(its PEs take partial sums\), not 'os'$"):
        WeightStationaryArray(ArrayConfig())
    with pytest.raises(TypeError, match=r"^config must be an ArrayConfig, not 'int4'$"):
        OutputStationaryArray("int4")
