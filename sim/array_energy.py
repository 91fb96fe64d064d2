"""Energy per MAC of a whole output-stationary array, from its netlist switching on a GEMM.

The :class:`nybble.hw.array.OutputStationaryArray` of R x C PEs (input skew, forwarding,
shadow-register drain; no buffers or sequencer) is synthesised to a gate-level netlist and
fed the tiles of a GEMM the way the top's sequencer feeds it::

    tile (i, j): A[iR:(i+1)R, :] x B[:, jC:(j+1)C], K / lanes steps, `first` on the first,
                 idle cycles after it up to the drain period max(steps, 2R - 1)
    after the last tile: the flush token (first without valid), then idle until drained

Every value that leaves column j (``out_valid[j]``) is compared with the golden tile product
(``spec.model`` of the tile), rows in order, tile after tile; one difference is an error.
Energy counts every net of the array (PEs, skew, drain, clock) over the whole run, divided by
the MACs of the GEMM.
"""

import dataclasses
import math
import time

import numpy as np

from nybble.hw.array import OutputStationaryArray
from nybble.hw.config import ArrayConfig
from nybble.synth.area import convention_acc_bits
from nybble.synth.energy import GENERIC_45NM, netlist_energy
from nybble.synth.netlist import gate_netlist
from nybble.synth.verilog import cached_verilog
from .energy import _energy_kind
from .pe_drive import operand_words
from .toggles import build_toggle_model, run_netlist
from .words import to_signed
from nybble.sw.errors import ParameterError, ToolError

__all__ = ["ArrayEnergy", "array_energy", "array_tiles", "tiles_for"]


@dataclasses.dataclass(frozen=True)
class ArrayEnergy:
    """An R x C array on one GEMM: ``pj_per_mac`` and ``categories`` (pJ per MAC), ``macs``,
    ``tiles``, ``cycles``, ``checked_results`` (every result of every tile, equal to the
    golden model), ``nets``, ``cells``, ``seconds`` / ``sim_seconds``."""
    kind: str
    rows: int
    cols: int
    data: str
    macs: int
    tiles: int
    cycles: int
    pj_per_mac: float
    categories: dict
    checked_results: int
    nets: int
    cells: int
    seconds: float
    sim_seconds: float


def array_tiles(a, b, rows, cols):
    """The R x C tiles of ``a @ b`` (code matrices, M a multiple of ``rows``, N of ``cols``),
    row-major: a list of ``(A tile (R x K), B tile (K x C))``."""
    m, n = a.shape[0], b.shape[1]
    if m % rows or n % cols:
        raise ParameterError(f"A's rows ({m}) and B's columns ({n}) must be multiples of the "
                             f"array's {rows} x {cols}")
    return [(a[i:i + rows], b[:, j:j + cols])
            for i in range(0, m, rows) for j in range(0, n, cols)]


def _stream(spec, tiles, rows, cols):
    """Per-cycle inputs of the array for ``tiles`` (module docstring) and the cycle count."""
    lanes = spec.lanes
    k = tiles[0][0].shape[1]
    steps = k // lanes
    period = max(steps, 2 * rows - 1)
    drain = 2 * rows + cols + spec.latency + 4
    n = len(tiles) * period + 1 + drain
    a_codes = np.zeros((rows, n, lanes), np.int64)
    b_codes = np.zeros((cols, n, lanes), np.int64)
    valid = np.zeros(n, np.int64)
    first = np.zeros(n, np.int64)
    for t, (at, bt) in enumerate(tiles):
        c0 = t * period
        valid[c0:c0 + steps] = 1
        first[c0] = 1
        a_codes[:, c0:c0 + steps] = at.reshape(rows, steps, lanes)
        b_codes[:, c0:c0 + steps] = bt.T.reshape(cols, steps, lanes)
    first[len(tiles) * period] = 1  # the flush token
    stream = {"valid": valid, "first": first}
    for i in range(rows):
        stream[f"a__{i}"] = operand_words(a_codes[i], spec.fmt_a.bits)
    for j in range(cols):
        stream[f"b__{j}"] = operand_words(b_codes[j], spec.fmt_b.bits)
    return stream, n


def array_energy(kind, rows, cols, a, b, *, data="", model=GENERIC_45NM, build_dir="build",
                 cache_dir=None, log=None):
    """:class:`ArrayEnergy` of an ``rows`` x ``cols`` output-stationary array of ``kind`` on
    ``a @ b`` (code matrices; M a multiple of ``rows``, N of ``cols``, K of the PE's lanes).
    Raises :exc:`ToolError` when any result differs from the golden model."""
    t0 = time.perf_counter()
    kind = _energy_kind(kind)
    config = ArrayConfig(rows=rows, cols=cols, pe=kind.name,
                         acc_bits=convention_acc_bits(kind), a_depth=16, b_depth=16,
                         c_depth=16)
    spec = config.pe_spec
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.shape[1] % spec.lanes:
        raise ParameterError(f"A and B must be M x K and K x N code matrices with K a "
                             f"multiple of {spec.lanes}, not shapes {a.shape} and {b.shape}")
    tiles = array_tiles(a, b, rows, cols)
    text, _ = cached_verilog(f"osarray_{kind.name}_{rows}x{cols}", repr(config),
                             lambda: OutputStationaryArray(config), build_dir=build_dir)
    netlist = gate_netlist(text, "top", cache_dir=cache_dir)
    stream, n = _stream(spec, tiles, rows, cols)
    toggle_model = build_toggle_model(netlist, cache_dir=f"{build_dir}/verilator/toggles",
                                      log=log)
    run = run_netlist(toggle_model, stream, workdir=f"{build_dir}/verilator/toggle_jobs",
                      log=log)
    checked = 0
    for j in range(cols):
        got = to_signed(run.outputs[f"out_data__{j}"][run.outputs[f"out_valid__{j}"] == 1],
                        spec.acc_bits)
        want = [int(v) for at, bt in tiles for v in spec.model(at, bt[:, j:j + 1])[:, 0]]
        got = [int(v) for v in np.atleast_1d(got)]
        if got != want:
            first_bad = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w),
                             min(len(got), len(want)))
            raise ToolError(
                f"the netlist of the {rows}x{cols} {kind.name} array differs from the golden "
                f"model in column {j}: {len(got)} results out, {len(want)} expected; first "
                f"difference at result {first_bad} (tile {first_bad // rows}, row "
                f"{first_bad % rows})")
        checked += len(want)
    energy = netlist_energy(netlist, run.toggles, model=model, array=True)
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    return ArrayEnergy(
        kind=kind.name, rows=rows, cols=cols, data=data, macs=macs, tiles=len(tiles),
        cycles=n, pj_per_mac=energy["total"] / macs,
        categories={c: e / macs for c, e in energy["categories"].items()},
        checked_results=checked, nets=len(netlist.nets),
        cells=sum(netlist.cell_types.values()), seconds=time.perf_counter() - t0,
        sim_seconds=run.sim_seconds)


def tiles_for(macs, rows, cols, k):
    """``(m, n)``: the smallest M x N (multiples of the array) whose GEMM with this K has at
    least ``macs`` MACs, as square in tiles as it can be."""
    tiles = max(1, math.ceil(macs / (rows * cols * k)))
    side = math.isqrt(tiles - 1) + 1
    return side * rows, math.ceil(tiles / side) * cols
