"""``ArrayConfig``: every bad field is one error naming the field and the allowed values
(whole messages checked), and the derived values (PE spec, host layout) are right."""
import re

import pytest

from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import PE_KINDS
from nybble.hw.layout import TopLayout
from nybble.sw import get_format
from nybble.sw.errors import NybbleError
from nybble.sw.formats import FormatError

KINDS = ", ".join(sorted(PE_KINDS))


@pytest.mark.parametrize("fields,exc,message", [
    (dict(rows=0), ValueError, "ArrayConfig.rows must be in 1..256, not 0"),
    (dict(cols=257), ValueError, "ArrayConfig.cols must be in 1..256, not 257"),
    (dict(rows=1.5), TypeError, "ArrayConfig.rows must be an integer, not 1.5"),
    (dict(a_depth=0), ValueError, "ArrayConfig.a_depth must be in 1..16777216, not 0"),
    (dict(pe="int3"), ValueError, f"ArrayConfig.pe must be one of {KINDS}, not 'int3'"),
    (dict(pe=4), TypeError, "ArrayConfig.pe must be a PE kind name, not 4"),
    (dict(pe="bitserial", dataflow="ws"), ValueError,
     "ArrayConfig.dataflow must be 'os' for the bit-serial PE 'bitserial' (its lockstep array "
     "is output-stationary), not 'ws'"),
    (dict(dataflow="rs"), ValueError, "ArrayConfig.dataflow must be one of os, ws, is, not 'rs'"),
    (dict(overflow="error"), ValueError,
     "ArrayConfig.overflow must be one of wrap, saturate, not 'error'"),
    (dict(clock_mhz=0), ValueError, "ArrayConfig.clock_mhz must be a positive number, not 0"),
    (dict(acc_bits=4), ValueError,
     "ArrayConfig(pe='int4', acc_bits=4): Accumulator width must be at least 8 bits "
     "(nybble.sw.min_acc_bits('int4', 'int4', 1)) to hold one int4 x int4 product, not 4"),
    (dict(pe="bf16"), ValueError,
     "ArrayConfig(pe='bf16', acc_bits=32): Accumulator width must be at least 34 bits "
     "(nybble.sw.min_acc_bits('bfloat16', 'bfloat16', 1, acc_frac_bits=32) or acc_frac_bits "
     "+ 2 = 34) to hold one bfloat16 x bfloat16 product, not 32"),
    (dict(pe="int4_dp4", block_size=16), ValueError,
     "ArrayConfig.block_size applies to block-scaled PE kinds (mxfp4, mxint8, nvfp4, q4_0), "
     "not 'int4_dp4': leave it None"),
    (dict(pe="mxfp4", dataflow="ws"), ValueError,
     "ArrayConfig.dataflow must be 'os' for the block-scaled PE 'mxfp4' (its block adder has "
     "no partial-sum input), not 'ws'"),
])
def test_bad_fields(fields, exc, message):
    with pytest.raises(exc, match="^" + re.escape(message) + "$") as e:
        ArrayConfig(**fields)
    assert isinstance(e.value, NybbleError)


def test_parse_array():
    assert ArrayConfig.parse_array("16x8") == (16, 8)
    with pytest.raises(ValueError, match=r"^array must look like ROWSxCOLS \(e\.g\. 16x16\), "
                                         r"not '16by16'$"):
        ArrayConfig.parse_array("16by16")


def test_format_errors_name_the_valid_values():
    with pytest.raises(FormatError) as e:
        get_format("fp5")
    assert re.fullmatch(r"unknown format 'fp5'; valid formats: (\w+, )+\w+ \(and e3m0_b<bias>, "
                        r"fp4_r4_b<bias>, or a user codebook from nybble\.sw\.codebook\)",
                        str(e.value))
    with pytest.raises(TypeError, match=r"^fmt must be a format name or a Format, not 3$"):
        get_format(3)
    with pytest.raises(FormatError, match=r"^bias of e3m0 must be in -16\.\.16, not 99$"):
        get_format("e3m0_b99")


@pytest.mark.parametrize("pe,dataflow", [("int4", "os"), ("int4_dp4", "ws"), ("lut_nf4", "os"),
                                         ("mxfp4", "os"), ("q4_0", "os")])
def test_derived_values(pe, dataflow):
    cfg = ArrayConfig(rows=4, cols=3, pe=pe, dataflow=dataflow, a_depth=100, c_depth=5000)
    spec, lay = cfg.pe_spec, cfg.top_layout
    assert spec is cfg.pe_spec                       # derived once
    assert spec.acc_bits == cfg.acc_bits and spec.overflow_mode == cfg.overflow
    assert getattr(spec, "has_psum", False) == (dataflow == "ws")
    assert lay == TopLayout.of(cfg)
    assert (lay.a_word_bits, lay.b_word_bits) == (4 * spec.a_bits, 3 * spec.b_bits)
    assert lay.col_bits == 2 and lay.addr_bits == 13 and lay.rd_addr_bits == 13 + 2
    assert lay.wr_bits == max(lay.a_word_bits, lay.b_word_bits, cfg.acc_bits, lay.lut_bits)
    assert cfg.formats == PE_KINDS[pe].formats


def test_block_options():
    c = ArrayConfig(pe="nvfp4", acc_bits=64)
    assert c.block_scaled and c.pe_options == {"block_size": 16, "acc_frac_bits": 20}
    c = ArrayConfig(pe="mxfp4", block_size=16, acc_frac_bits=10)
    assert (c.pe_spec.block_size, c.pe_spec.frac_bits, c.pe_spec.steps_per_block) == (16, 10, 2)
    assert ArrayConfig(pe="int4", dataflow="ws").pe_options == {"psum": True}
    # input-stationary runs on the weight-stationary array (the transposed GEMM)
    assert ArrayConfig(pe="int4", dataflow="is").pe_options == {"psum": True}
    assert ArrayConfig(pe="int4").pe_options == {}
