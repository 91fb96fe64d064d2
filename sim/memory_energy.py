"""Energy of memory traffic: SRAM scratchpad and external DRAM, per byte.

Source: Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm, 0.9 V): a 64-bit read
costs 10 pJ from an 8 KiB SRAM, 20 pJ from 32 KiB and 100 pJ from 1 MiB; a 64-bit DRAM
access costs 1.3-2.6 nJ. SRAM energy per access grows with the array (longer word and bit
lines): between the anchors it is interpolated as a power law in the size (straight lines in
log-log, the shape CACTI's wire-dominated model gives); below 8 KiB and above 1 MiB the
nearest segment's exponent is extended (0.5 and ~0.46). Writes are taken to cost what reads
cost. DRAM is reported at both ends of the published range.

Per byte = per 64-bit access / 8: 4-bit operands travel packed, two per byte, so they cost
half of 8-bit operands' traffic energy.
"""

import math
import numbers

from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["SRAM_ANCHORS", "DRAM_PJ_PER_ACCESS", "ACCESS_BYTES", "sram_pj_per_byte",
           "dram_pj_per_byte", "memory_energy"]

#: (SRAM size in bytes, pJ per 64-bit read), Horowitz ISSCC 2014.
SRAM_ANCHORS = ((8 << 10, 10.0), (32 << 10, 20.0), (1 << 20, 100.0))

#: pJ per 64-bit DRAM access, (low, high) of the published range.
DRAM_PJ_PER_ACCESS = (1300.0, 2600.0)

#: Bytes per access of the anchors.
ACCESS_BYTES = 8


def _check_bytes(name, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"{name} must be a number of bytes, not {value!r}")
    if not value >= minimum or math.isinf(value):
        raise ParameterError(f"{name} must be a finite number of bytes >= {minimum}, "
                             f"not {value!r}")
    return float(value)


def sram_pj_per_byte(size_bytes):
    """pJ per byte read from (or written to) an SRAM of ``size_bytes`` (module docstring)."""
    size = _check_bytes("SRAM size", size_bytes, 1)
    pts = [(math.log(s), math.log(e)) for s, e in SRAM_ANCHORS]
    x = math.log(size)
    i = 0 if x <= pts[1][0] else 1  # segment: [8K, 32K] or [32K, 1M], extended outward
    (x0, y0), (x1, y1) = pts[i], pts[i + 1]
    y = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return math.exp(y) / ACCESS_BYTES


def dram_pj_per_byte():
    """``(low, high)`` pJ per byte of DRAM traffic (module docstring)."""
    return tuple(e / ACCESS_BYTES for e in DRAM_PJ_PER_ACCESS)


def memory_energy(*, sram_bytes, dram_bytes, sram_size):
    """Energy of ``sram_bytes`` of scratchpad traffic (an SRAM of ``sram_size`` bytes) and
    ``dram_bytes`` of external traffic, in pJ: ``{"sram_pj", "dram_pj_low", "dram_pj_high",
    "sram_pj_per_byte", "dram_pj_per_byte": [low, high]}``."""
    sram = _check_bytes("sram_bytes", sram_bytes)
    dram = _check_bytes("dram_bytes", dram_bytes)
    per_sram = sram_pj_per_byte(sram_size)
    low, high = dram_pj_per_byte()
    return {"sram_pj": sram * per_sram, "dram_pj_low": dram * low, "dram_pj_high": dram * high,
            "sram_pj_per_byte": per_sram, "dram_pj_per_byte": [low, high]}
