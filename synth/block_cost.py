"""What block scaling costs: measured area of block-scaled PEs against plain dot-product PEs,
and the cycle overhead of their schedule.

:func:`block_area_overhead` synthesises (Yosys generic gates, ``stat -tech cmos``, via
:func:`nybble.synth.yosys.synth_area`) a block-scaled PE of :mod:`nybble.hw.block_pe` and the
plain :class:`~nybble.hw.pe.DotProductPE` s with the same lanes and accumulator width --
fp4 e2m1 and int4 by default (int8 for MXINT8) -- and reports both, the overhead ratio and
where the block PE's area goes (product units, scaler, accumulator, the rest: adder tree,
block adder, stage-2 and forwarding registers, which carry the scales too).

:func:`block_cycle_overhead` (in the simulation layer's ``cycles`` module) compares the
schedule's cycle count with a plain array of the same geometry and lanes (latency 1, no
padding of K to whole blocks); the per-cycle throughput (``lanes`` MACs per PE) is the same,
so the overhead is only the extra pipeline cycle and the padding.
:func:`buffer_bits_overhead` is the operand-buffer width ratio (scales are stored in every
k-step word).
"""

from dataclasses import dataclass, field

from nybble.hw.block_pe import BlockScaledPE
from nybble.hw.kinds import pe_kind
from nybble.hw.spec import SCALE_FORMATS
from nybble.sw import get_format
from .verilog import to_verilog
from .yosys import synth_area
from nybble.sw.errors import ParameterError

__all__ = ["BlockAreaReport", "block_area_overhead", "buffer_bits_overhead",
           "default_baselines"]


@dataclass(frozen=True)
class BlockAreaReport:
    """Area of one block-scaled PE and its plain baselines (Yosys generic synthesis).

    ``transistors`` / ``cells``: the block PE, flattened.  ``parts``: its transistors by
    part (``products``, ``scaler``, ``accumulator``, ``rest``) from a hierarchical run.
    ``baselines``: ``{kind: {"cells", "transistors"}}``.  ``overhead``: ``{kind: block /
    baseline - 1}`` in transistors.
    """
    kind: str
    lanes: int
    block_size: int
    scale: str
    acc_bits: int
    acc_frac_bits: int
    cells: int
    transistors: int
    parts: dict
    baselines: dict
    overhead: dict = field(default_factory=dict)

    def as_dict(self):
        from dataclasses import asdict
        return asdict(self)


def default_baselines(kind, lanes):
    """Plain dot-product kinds to compare a block kind with: same elements, and int4."""
    elem = pe_kind(kind).formats[0]
    plain = {"fp4_e2m1": "fp4_e2m1", "int8_mx": "int8", "int4": "int4"}.get(elem)
    names = [f"{plain}_dp{lanes}"] if plain else []
    if f"int4_dp{lanes}" not in names:
        names.append(f"int4_dp{lanes}")
    return names


def _area(pe, cache_dir, liberty, hierarchy):
    return synth_area(to_verilog(pe, name="pe"), "pe", hierarchy=hierarchy, liberty=liberty,
                      cache_dir=cache_dir)


def block_area_overhead(kind="mxfp4", *, lanes=None, acc_bits=32, acc_frac_bits=None,
                        block_size=None, overflow="wrap", baselines=None, liberty=None,
                        cache_dir=None):
    """Synthesise the block-scaled PE ``kind`` and its plain baselines; a
    :class:`BlockAreaReport`.

    ``lanes`` / ``block_size`` default to the kind's; ``baselines`` to
    :func:`default_baselines` (plain dot-product kinds, built with the same ``acc_bits`` and
    ``overflow``).  Results are cached by :mod:`nybble.synth.yosys`.
    """
    k = pe_kind(kind)
    if k.pe != "block":
        raise ParameterError(f"kind must be a block-scaled PE kind (mxfp4, mxint8, nvfp4, q4_0), "
                         f"not {kind!r}")
    lanes = k.lanes if lanes is None else lanes
    opts = dict(k.options)
    if block_size is not None:
        opts["block_size"] = block_size
    pe = BlockScaledPE(k.formats[0], k.formats[1], lanes, acc_bits=acc_bits,
                       acc_frac_bits=acc_frac_bits, overflow=overflow, **opts)
    rep = _area(pe, cache_dir, liberty, True)
    bd = rep.breakdown
    parts = {"products": sum(v["transistors"] for n, v in bd.items() if ".product_" in n),
             "scaler": bd.get("pe.scaler", {}).get("transistors", 0),
             "accumulator": bd.get("pe.accumulator", {}).get("transistors", 0),
             "rest": bd.get("pe", {}).get("transistors", 0)}
    base = {}
    for name in (baselines if baselines is not None else default_baselines(kind, lanes)):
        plain = pe_kind(name).build(acc_bits=acc_bits, overflow=overflow)
        r = _area(plain, cache_dir, liberty, False)
        base[name] = {"cells": r.cells, "transistors": r.transistors}
    overhead = {n: rep.transistors / v["transistors"] - 1 for n, v in base.items()}
    return BlockAreaReport(kind=kind, lanes=lanes, block_size=pe.block_size, scale=pe.scale,
                           acc_bits=acc_bits, acc_frac_bits=pe.frac_bits, cells=rep.cells,
                           transistors=rep.transistors, parts=parts, baselines=base,
                           overhead=overhead)


def buffer_bits_overhead(kind, *, lanes=None):
    """Operand word bits per PE row / column, block-scaled over plain (scales in every
    k-step word): ``(lanes * element bits + scale bits) / (lanes * element bits)``."""
    k = pe_kind(kind)
    lanes = k.lanes if lanes is None else lanes
    w = get_format(k.formats[0]).bits * lanes
    return (w + get_format(SCALE_FORMATS[k.options["scale"]]).bits) / w
