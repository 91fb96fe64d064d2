# amaranth: UnusedElaboratable=no
"""Whole-array area from its parts (one PE, the top without PEs and memories, buffers),
checked against one flat synthesis of the whole top."""

import pytest

from nybble.hw.config import ArrayConfig
from nybble.synth.area import memories_in, pe_area
from nybble.synth.array_parts import ArrayParts, array_area_parts
from nybble.synth.sram import sram_area
from nybble.synth.verilog import top_verilog
from nybble.synth.yosys import synth_area


def _flat(config, cache, build):
    text, _ = top_verilog(config, build_dir=build, log=None)
    return synth_area(text, "top", hierarchy=False, cache_dir=cache)


def _parts_vs_flat(config, cache, build):
    parts = array_area_parts(config, buffers="ff", cache_dir=cache, build_dir=build)
    flat = _flat(config, cache, build)
    return parts, flat, parts.transistors / flat.transistors - 1


@pytest.mark.synth
def test_parts_add_up_and_match_the_flat_synthesis(shared_cache, tmp_path_factory):
    build = tmp_path_factory.mktemp("verilog")
    config = ArrayConfig(rows=2, cols=2, pe="int4", acc_bits=20, a_depth=4, b_depth=4,
                         c_depth=4)
    parts, flat, error = _parts_vs_flat(config, shared_cache, build)
    assert isinstance(parts, ArrayParts) and parts.scope == "array"
    pe = pe_area("int4", acc_bits=20, cache_dir=shared_cache, build_dir=build)
    assert parts.parts["pes"]["transistors"] == 4 * pe.transistors
    assert parts.transistors == sum(p["transistors"] for p in parts.parts.values())
    # the rest holds no PE and no memory: no multiplier cell at all, fewer flip-flops
    assert parts.rest.transistors < flat.transistors - 4 * pe.transistors
    assert abs(error) < 0.10, (parts.parts, flat.transistors)
    # SRAM buffers: the model, one macro per memory of the top
    sram = array_area_parts(config, cache_dir=shared_cache, build_dir=build, pe=pe)
    text, _ = top_verilog(config, build_dir=build, log=None)
    assert sram.parts["buffers"]["transistors"] == sum(
        sram_area(d, w).transistors for _, w, d in memories_in(text))
    assert sram.parts["rest"] == parts.parts["rest"] and sram.cached


def test_wrong_arguments():
    config = ArrayConfig(rows=2, cols=2, pe="int4")
    with pytest.raises(TypeError, match=r"^config must be an ArrayConfig, not 'int4'$"):
        array_area_parts("int4")
    with pytest.raises(ValueError, match=r"^buffers must be one of 'sram', 'ff', not 'dram'$"):
        array_area_parts(config, buffers="dram")


@pytest.mark.slow
@pytest.mark.synth
@pytest.mark.parametrize("kind, size", [("int4", 16), ("int8", 8)])
def test_parts_within_ten_percent_of_one_flat_synthesis(kind, size, shared_cache,
                                                        tmp_path_factory):
    """MAC arrays, 32-bit accumulators, 16-word flip-flop buffers; measured (the rest from
    RTLIL, one ABC run): 16 x 16 int4 parts 1,734,764 transistors, flat 1,724,222 (+0.61%);
    8 x 8 int8 726,378 vs 725,652 (+0.10%)."""
    build = tmp_path_factory.mktemp("verilog")
    config = ArrayConfig(rows=size, cols=size, pe=kind, acc_bits=32, a_depth=16,
                         b_depth=16, c_depth=16)
    parts, flat, error = _parts_vs_flat(config, shared_cache, build)
    print(f"{kind} {size}x{size}: parts {parts.transistors}, flat {flat.transistors}, "
          f"{100 * error:+.2f}%")
    assert abs(error) < 0.10


@pytest.mark.slow
@pytest.mark.synth
def test_dot_product_arrays_differ_from_flat_in_the_pes_only(shared_cache, tmp_path_factory):
    """Dot-product arrays: one flat synthesis of the whole top is larger than the parts
    (4 x 4 int4_dp4, measured: parts 316,570, flat 354,212, -10.6%; 8 x 8: -14.7%).  The
    rest and buffers agree with the top synthesised with only its PEs boxed (205,952 vs
    206,074); the difference is the PEs, 148,260 transistors in the flat top against 16 x
    6,906 synthesised alone, while a hierarchy-preserving synthesis of the same top gives its
    16 PEs 102,732 -- generic synthesis of the dot products inside one large flat netlist
    comes out larger than of one PE."""
    build = tmp_path_factory.mktemp("verilog")
    config = ArrayConfig(rows=4, cols=4, pe="int4_dp4", acc_bits=32, a_depth=16,
                         b_depth=16, c_depth=16)
    parts, flat, error = _parts_vs_flat(config, shared_cache, build)
    text, _ = top_verilog(config, build_dir=build, log=None)
    boxed = synth_area(text, "top", hierarchy=False, cache_dir=shared_cache,
                       blackbox=("top.array.pe_*",))
    around = parts.parts["rest"]["transistors"] + parts.parts["buffers"]["transistors"]
    assert abs(boxed.transistors / around - 1) < 0.01
    in_flat = flat.transistors - boxed.transistors
    print(f"int4_dp4 4x4: parts {parts.transistors}, flat {flat.transistors} "
          f"({100 * error:+.2f}%); PEs in the flat top {in_flat}, alone "
          f"{parts.parts['pes']['transistors']}")
    assert in_flat > parts.parts["pes"]["transistors"]
    assert -0.2 < error < 0
