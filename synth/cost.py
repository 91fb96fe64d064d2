"""The cost model: area and throughput of every PE kind, measured and fitted.

:func:`cost_sweep` synthesises one PE of each kind (:data:`DEFAULT_KINDS`: the 4-bit kinds and
the int8 / int16 / fp8 e4m3 / bf16 / fp16 baselines, as single MACs and as 4-lane dot
products) with :func:`nybble.synth.area.pe_area` -- accumulators at equal width
(:data:`nybble.synth.area.ACC_CONVENTION`) -- optionally places and routes each one on an ECP5
for its Fmax (:func:`nybble.synth.fpga.pe_fmax`), optionally synthesises whole
``R x C`` arrays (:func:`nybble.synth.area.array_area`), and fits :class:`AreaModel` to the
measured points.  :func:`cost_report` assembles the rows and the summary that ``nybble cost``
prints and writes.

Throughput: ``macs_per_cycle`` is ``lanes`` for MAC and dot-product PEs and ``1 / cycles``
for the bit-serial PE (int4 weights: 3 cycles, one per significand bit); with an Fmax,
``gmacs_per_s = macs_per_cycle * fmax``, and operations are 2 per MAC.

At equal array size: ``R x C`` PEs of each kind (area: the PE's area times ``R*C``, PEs only,
unless arrays are synthesised).  At equal area: as many PEs of each kind as fit in the area of
``R x C`` int8 MAC PEs (the reference kind, :data:`EQUAL_AREA_REFERENCE`).

The analytic model (:class:`AreaModel`), in CMOS transistors, one term per category of the
breakdown, each fitted by least squares (relative to the PE's total) on that category alone::

    multiplier  = lanes * (a * n * m + b * (n + m) + x * exp_bits + s * shift)
                  + t * table_bits + u * lanes * table_bits + v * rom_entries
    adder tree  = e * tree_bits
    accumulator = c * acc_bits + d * wide_input_bits + c0
    registers   = r * register_bits

``n``, ``m``: significand widths (integers: their bits; floats: mantissa + 1; powers of two:
1; a LUT weight: its table entry width; the bit-serial PE: 1 weight bit per cycle);
``exp_bits``: exponent bits of the two operands (float / power-of-two decode); ``shift``: the
barrel shift that aligns a float / power-of-two product to the fixed-point grid, ``product
bits * log2(alignment positions)``; ``table_bits``: the LUT PE's register table (stored once,
read by every lane); ``rom_entries``: the bit-serial PE's decode ROM (data types x codes);
``tree_bits``: the widths of the dot product's adders, summed; ``wide_input_bits``: product
bits beyond the accumulator that only feed its overflow detection (the bf16 window);
``register_bits``: forwarding and pipeline flip-flops.  Some terms are exercised by few points
and so fitted almost exactly: ``v`` by the bit-serial PE alone, ``t`` and ``u`` by the two LUT
PEs, ``d`` by the two bf16 PEs.  Bit-serial throughput is one MAC per significand bit of the
weight.

The model is fitted to, and its error (``model_error``) measured against, the hierarchical
synthesis whose breakdown it decomposes (``hier_transistors``); ``model_error_flat`` compares it
with the flattened total, which is smaller where flattening removes logic across module
boundaries (bf16: the product unit's bits below the accumulator window).
:data:`HOROWITZ_45NM` is the published anchor, shown beside the model, not fitted.
"""

import dataclasses
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import pe_kind
from nybble.hw.product import signed_width
from nybble.sw import get_format
from nybble.sw.formats import format_names
from .fpga import pe_fmax, pe_fmax_verilog
from .verilog import top_verilog
from .area import (ACC_CONVENTION, CATEGORIES, array_area, convention_acc_bits, pe_area,
                   pe_verilog)
from nybble.sw.errors import InputFileError, ParameterError

__all__ = [
    "DEFAULT_KINDS", "MAC_KINDS", "DP_KINDS", "EQUAL_AREA_REFERENCE", "HOROWITZ_45NM",
    "RATIO_PAIRS", "PEFeatures", "pe_features", "AreaModel", "fit_model", "cost_sweep",
    "cost_report", "select_kinds", "find_liberty", "LIBERTY_CANDIDATES",
]

#: Single-MAC kinds of the default sweep: the 4-bit kinds, then the baselines.
MAC_KINDS = ("int4", "fp4_e2m1", "e3m0", "int4_e3m0", "int8_e3m0", "lut_nf4", "bitserial",
             "lmul_fp4_e2m1", "int8", "int16", "fp8_e4m3", "bf16", "fp16")
#: Dot-product kinds of the default sweep (4 lanes).
DP_KINDS = ("int4_dp4", "fp4_e2m1_dp4", "e3m0_dp4", "int8_e3m0_dp4", "lut_nf4_dp4",
            "int8_dp4", "int16_dp4", "fp8_e4m3_dp4", "bf16_dp4", "fp16_dp4")
DEFAULT_KINDS = MAC_KINDS + DP_KINDS

#: The kind whose ``R x C`` array sets the area budget of the equal-area comparison.
EQUAL_AREA_REFERENCE = "int8"

#: (numerator, denominator) kinds whose measured area ratios the report shows.
RATIO_PAIRS = (("int8", "int4"), ("int16", "int4"), ("fp8_e4m3", "fp4_e2m1"),
               ("fp16", "fp4_e2m1"), ("bf16", "fp4_e2m1"), ("e3m0", "int4"),
               ("fp4_e2m1", "int4"))

#: Published anchor: Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm.
#: operation -> (energy pJ, area um^2).
HOROWITZ_45NM = {
    "8b int add": (0.03, 36),
    "32b int add": (0.1, 137),
    "8b int mult": (0.2, 282),
    "32b int mult": (3.1, 3495),
    "16b fp add": (0.4, 1360),
    "16b fp mult": (1.1, 1640),
    "32b fp add": (0.9, 4184),
    "32b fp mult": (3.7, 7700),
}

#: Liberty files used by ``liberty="auto"`` when present (Debian's qflow-tech-osu018).
LIBERTY_CANDIDATES = ("/usr/share/qflow/tech/osu018/osu018_stdcells.lib",)


def find_liberty(liberty="auto"):
    """``"auto"``: ``$NYBBLE_LIBERTY`` or the first of :data:`LIBERTY_CANDIDATES` that
    exists, else None; ``None`` / ``"none"``: None; anything else: that path (which must
    exist)."""
    import os
    if liberty is None or liberty == "none":
        return None
    if liberty == "auto":
        env = os.environ.get("NYBBLE_LIBERTY")
        if env:
            liberty = env
        else:
            return next((p for p in LIBERTY_CANDIDATES if os.path.isfile(p)), None)
    if not os.path.isfile(liberty):
        raise InputFileError(f"Liberty file {liberty!r} does not exist (give a .lib path, "
                                f"'auto' or 'none')")
    return liberty


def select_kinds(formats=None, pes=None):
    """The sweep: :data:`DEFAULT_KINDS`, narrowed to kinds whose operand formats are all in
    ``formats`` (format names), plus the kinds named in ``pes`` (any PE kind name)."""
    kinds = list(DEFAULT_KINDS)
    if formats:
        wanted = set()
        for name in formats:
            try:
                wanted.add(get_format(name).name)
            except (KeyError, ValueError):
                raise ParameterError(f"--formats: unknown format {name!r}; formats are "
                                 f"{', '.join(format_names())}") from None
        kinds = [k for k in kinds
                 if {get_format(f).name for f in pe_kind(k).formats} <= wanted]
    for name in pes or ():
        pe_kind(name)  # ValueError naming the kinds
        if name not in kinds:
            kinds.append(name)
    if not kinds:
        raise ParameterError(f"No PE kind of the sweep uses only the formats {list(formats)}; "
                         f"name kinds with --pe")
    return kinds


# --- features --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PEFeatures:
    """What the analytic model reads from one PE (module docstring)."""
    lanes: int
    n: int
    m: int
    exp_bits: int
    shift: int
    table_bits: int
    rom_entries: int
    tree_bits: int
    acc_bits: int
    wide_input_bits: int
    register_bits: int
    macs_per_cycle: float


def _sig_bits(fmt, lut_bits):
    if fmt.kind == "int":
        return fmt.bits
    if fmt.kind == "float":
        return fmt.man_bits + 1
    if fmt.kind == "codebook":
        return lut_bits
    return 1  # powers of two: a one-hot significand


def _exp_bits(fmt):
    return fmt.exp_bits if fmt.kind in ("float", "pow2") else 0


def pe_features(kind, acc_bits, register_bits):
    """:class:`PEFeatures` of ``kind`` at ``acc_bits`` (from its pure spec); ``register_bits``
    (flip-flops outside the accumulator) comes from the synthesis."""
    spec = pe_kind(kind).spec(acc_bits=acc_bits)
    if spec.family == "bitserial":
        decode = spec.decode
        mag_bits = max(c for _, c in decode)
        max_shift = max(r[2] for rows, _ in decode for r in rows) + mag_bits
        term = spec.fmt_a.bits + max_shift + 1
        sh_bits = max_shift.bit_length()
        cycles = spec.cycles_per_mac[spec.dtypes[0]]
        rom = sum(len(rows) for rows, _ in decode)
        exp_bits = sum(_exp_bits(d) for d in spec.dtype_formats) + _exp_bits(spec.fmt_a)
        return PEFeatures(1, spec.fmt_a.bits, 1, exp_bits, term * sh_bits, 0, rom, 0,
                          acc_bits, max(0, term - acc_bits - 1), register_bits, 1 / cycles)
    n, m = _sig_bits(spec.fmt_a, spec.lut_bits), _sig_bits(spec.fmt_b, spec.lut_bits)
    p_bits = signed_width(spec.p_min, spec.p_max)   # one product unit's output
    # the product unit, synthesised as its own module, computes all of its output bits
    positions = max(1, p_bits - (n + m) + 1)  # where the significand product can land
    shift = p_bits * math.ceil(math.log2(positions)) if positions > 1 else 0
    table = (1 << spec.fmt_b.bits) * spec.lut_bits if spec.is_lut else 0
    d = spec.frac_bits - spec.unit_frac
    term = max(1, p_bits + d)          # after the window shift, as the PE builds it
    widths, tree = [term] * spec.lanes, 0
    while len(widths) > 1:
        nxt = [max(widths[i], widths[i + 1]) + 1 for i in range(0, len(widths) - 1, 2)]
        tree += sum(nxt)
        if len(widths) % 2:
            nxt.append(widths[-1])
        widths = nxt
    return PEFeatures(spec.lanes, n, m, _exp_bits(spec.fmt_a) + _exp_bits(spec.fmt_b), shift,
                      table, 0, tree, acc_bits, max(0, widths[0] - acc_bits - 1),
                      register_bits, float(spec.lanes))


# --- the model -------------------------------------------------------------------------------

_TERMS = {
    "multiplier": (("a", "lanes * n * m", lambda f: f.lanes * f.n * f.m),
                   ("b", "lanes * (n + m)", lambda f: f.lanes * (f.n + f.m)),
                   ("x", "lanes * exp_bits", lambda f: f.lanes * f.exp_bits),
                   ("s", "lanes * shift", lambda f: f.lanes * f.shift),
                   ("t", "table_bits", lambda f: f.table_bits),
                   ("u", "lanes * table_bits", lambda f: f.lanes * f.table_bits),
                   ("v", "rom_entries", lambda f: f.rom_entries)),
    "adder_tree": (("e", "tree_bits", lambda f: f.tree_bits),),
    "accumulator": (("c", "acc_bits", lambda f: f.acc_bits),
                    ("d", "wide_input_bits", lambda f: f.wide_input_bits),
                    ("c0", "1", lambda f: 1)),
    "registers": (("r", "register_bits", lambda f: f.register_bits),),
}


@dataclasses.dataclass(frozen=True)
class AreaModel:
    """Fitted coefficients (transistors per unit of each term, module docstring)."""
    coefficients: dict

    def category(self, name, features):
        return sum(self.coefficients[c] * value(features) for c, _, value in _TERMS[name])

    def predict(self, features):
        """Model transistors of a PE with ``features``, per category and in total."""
        parts = {name: self.category(name, features) for name in _TERMS}
        return sum(parts.values()), parts

    def multiplier(self, n, m, exp_bits=0, shift=0, lanes=1):
        f = PEFeatures(lanes, n, m, exp_bits, shift, 0, 0, 0, 0, 0, 0, 1.0)
        return self.category("multiplier", f)

    def formula(self):
        out = []
        for name, terms in _TERMS.items():
            out.append(f"{name} = " + " + ".join(
                f"{self.coefficients[c]:.3g} * {text}" if text != "1"
                else f"{self.coefficients[c]:.3g}" for c, text, _ in terms))
        return out


def fit_model(points):
    """Fit :class:`AreaModel` to ``points``: ``[(PEFeatures, {category: transistors},
    total transistors)]``, each category on its own (``numpy.linalg.lstsq``), errors relative
    to the PE's total; a term no point exercises gets coefficient 0."""
    coefficients = {}
    for name, terms in _TERMS.items():
        X = np.array([[value(f) for _, _, value in terms] for f, _, _ in points], float)
        y = np.array([cats[name] for _, cats, _ in points], float)
        w = 1.0 / np.array([max(total, 1) for _, _, total in points], float)
        active = [i for i in range(len(terms)) if X[:, i].any()]
        coef = np.zeros(len(terms))
        if active:
            sol, *_ = np.linalg.lstsq(X[:, active] * w[:, None], y * w, rcond=None)
            coef[active] = sol
        for (c, _, _), v in zip(terms, coef):
            coefficients[c] = float(v)
    return AreaModel(coefficients)


# --- the sweep -------------------------------------------------------------------------------

class _Progress:
    """Numbered progress lines and a heartbeat naming the jobs still running."""

    def __init__(self, total, emit, every=20.0):
        self._total, self._emit, self._every = total, emit, every
        self._done = 0
        self._running = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self):
        if self._emit is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()

    def _beat(self):
        while not self._stop.wait(self._every):
            with self._lock:
                now = time.perf_counter()
                running = ", ".join(f"{what} ({now - t:.0f} s)"
                                    for what, t in self._running.items())
            if running:
                self._emit(f"  still running: {running}")

    def start(self, what):
        with self._lock:
            self._running[what] = time.perf_counter()

    def finish(self, what, note):
        with self._lock:
            self._running.pop(what, None)
            self._done += 1
            done = self._done
        if self._emit is not None:
            self._emit(f"[{done:>{len(str(self._total))}}/{self._total}] {what}: {note}")


def cost_sweep(kinds=None, *, acc_bits=32, liberty=None, fmax=False, array=None,
               array_depth=16, jobs=2, cache_dir=None, fpga_cache_dir=None,
               build_dir="build", progress=None, timeout=None):
    """Synthesise every kind of ``kinds`` (default :data:`DEFAULT_KINDS`); returns a dict
    with ``pes`` (kind -> :class:`~nybble.synth.area.AreaResult`), ``fmax`` (kind ->
    MHz, with ``fmax=True``), ``arrays`` (kind -> AreaResult of an ``array = (R, C)`` array
    with buffers ``array_depth`` deep; the bit-serial one is its lockstep array) and ``seconds``.

    Verilog is elaborated here, in order; the Yosys and nextpnr runs go to ``jobs`` threads.
    Every result is cached on its own, so an interrupted sweep resumes where it stopped.
    ``progress``: callable taking one line of text (stderr in the CLI)."""
    kinds = list(kinds or DEFAULT_KINDS)
    start = time.perf_counter()
    tasks = []  # (label, callable)
    accs = {}
    for name in kinds:
        kind = pe_kind(name)
        acc = convention_acc_bits(kind, acc_bits)
        accs[name] = acc
        text, _ = pe_verilog(kind, acc_bits=acc, build_dir=build_dir)
        tasks.append((("pe", name), f"{name}: Yosys",
                      lambda kind=kind, acc=acc, text=text: pe_area(
                          kind, acc_bits=acc, liberty=liberty, cache_dir=cache_dir,
                          build_dir=build_dir, timeout=timeout, verilog=text)))
    if fmax:
        for name in kinds:
            text = pe_fmax_verilog(name, acc_bits=accs[name], build_dir=build_dir)
            tasks.append((("fmax", name), f"{name}: ECP5 place and route",
                          lambda name=name, text=text: pe_fmax(
                              name, verilog=text, cache_dir=fpga_cache_dir,
                              timeout=timeout)))
    if array is not None:
        rows, cols = array
        for name in kinds:
            config = ArrayConfig(rows=rows, cols=cols, pe=name, acc_bits=accs[name],
                                 a_depth=array_depth, b_depth=array_depth,
                                 c_depth=array_depth)
            text, _ = top_verilog(config, build_dir=build_dir, log=None)
            tasks.append((("array", name), f"{name} {rows}x{cols} array: Yosys",
                          lambda config=config, text=text: array_area(
                              config, liberty=liberty, cache_dir=cache_dir,
                              build_dir=build_dir, timeout=timeout, verilog=text)))
    results = {"pes": {}, "fmax": {}, "arrays": {}, "fmax_luts": {}}

    def run(task):
        (what, name), label, fn = task
        tracker.start(label)
        t = time.perf_counter()
        value = fn()
        wall = time.perf_counter() - t
        if what == "fmax":
            mhz, luts, seconds, cached = value
            note = f"{mhz:.1f} MHz, {luts} LUT4" + (" (cached)" if cached else
                                                    f" ({wall:.1f} s)")
        else:
            note = (f"{value.cells} cells, {value.transistors} transistors"
                    + (f", {value.area_um2:.0f} um^2" if value.area_um2 is not None else "")
                    + (" (cached)" if value.cached else f" ({wall:.1f} s)"))
        tracker.finish(label, note)
        return what, name, value

    with _Progress(len(tasks), progress) as tracker:
        pool = ThreadPoolExecutor(max_workers=max(1, int(jobs)))
        try:
            for future in [pool.submit(run, task) for task in tasks]:
                what, name, value = future.result()
                if what == "pe":
                    results["pes"][name] = value
                elif what == "fmax":
                    results["fmax"][name] = value[0]
                    results["fmax_luts"][name] = value[1]
                else:
                    results["arrays"][name] = value
        finally:
            # on an error or an interrupt: let the runs under way finish (their results are
            # cached), start no new one
            pool.shutdown(wait=True, cancel_futures=True)
    results["seconds"] = time.perf_counter() - start
    results["acc_bits"] = accs
    return results


# --- the report ------------------------------------------------------------------------------

def _cat_values(categories, key="transistors"):
    return {c: categories[c][key] for c in CATEGORIES}


def cost_report(sweep, *, array=None):
    """Rows (one per PE, then one per synthesised array) and a summary dict (ratios, model,
    anchor, conventions) from :func:`cost_sweep`'s result. ``array``: ``(R, C)`` of the
    equal-size / equal-area comparison (default 16 x 16)."""
    rows_n, cols_n = array or (16, 16)
    npe = rows_n * cols_n
    pes = sweep["pes"]
    points, feats = [], {}
    for name, res in pes.items():
        f = pe_features(name, res.acc_bits, res.register_bits)
        feats[name] = f
        cats = _cat_values(res.categories)
        points.append((f, cats, sum(cats.values())))
    model = fit_model(points)
    base = pes.get("int4")
    ref = pes.get(EQUAL_AREA_REFERENCE)
    rows = []
    for name, res in pes.items():
        kind = pe_kind(name)
        f = feats[name]
        formats = [get_format(x).name for x in kind.formats[:2]]
        if kind.pe == "bitserial":
            formats = [get_format(kind.formats[0]).name, "|".join(kind.formats[1:])]
        bits_a = get_format(kind.formats[0]).bits
        bits_b = get_format(kind.formats[1]).bits
        predicted, parts = model.predict(f)
        fmax = sweep["fmax"].get(name)
        mpc = f.macs_per_cycle
        tr = res.transistors
        row = {
            "pe": name, "scope": "pe", "array": "1x1", "kind": kind.pe,
            "formats": formats, "bits": max(bits_a, bits_b), "a_bits": bits_a,
            "b_bits": bits_b, "lanes": f.lanes, "acc_bits": res.acc_bits,
            "cells": res.cells, "transistors": tr, "area_um2": res.area_um2,
            "fmax_mhz": fmax, "macs_per_cycle": round(mpc, 4),
            "hier_transistors": sum(_cat_values(res.categories).values()),
            "model_area": round(predicted),
            "model_error": round(predicted / sum(_cat_values(res.categories).values()) - 1, 4),
            "model_error_flat": round(predicted / tr - 1, 4),
            "model_breakdown": {k: round(v) for k, v in parts.items()},
            "breakdown": _cat_values(res.categories),
            "breakdown_um2": (_cat_values(res.categories, "area_um2")
                              if res.area_um2 is not None else None),
            "rel_area_vs_int4": round(tr / base.transistors, 3) if base else None,
            "macs_per_cycle_per_mtransistor": round(mpc / tr * 1e6, 2),
            "gmacs_per_s": None if fmax is None else round(mpc * fmax / 1e3, 4),
            "gops_per_s_per_mtransistor": (None if fmax is None else
                                           round(2 * mpc * fmax / 1e3 / tr * 1e6, 2)),
            "gops_per_s_per_mm2": (None if fmax is None or res.area_um2 is None else
                                   round(2 * mpc * fmax / 1e3 / (res.area_um2 / 1e6), 1)),
            f"array_{rows_n}x{cols_n}_transistors": tr * npe,
            f"array_{rows_n}x{cols_n}_macs_per_cycle": round(mpc * npe, 3),
            "equal_area_pes": (int(ref.transistors * npe // tr) if ref else None),
            "seconds": round(res.seconds, 2), "cached": res.cached,
        }
        if ref:
            row["equal_area_macs_per_cycle"] = round(row["equal_area_pes"] * mpc, 2)
            row["equal_area_gmacs_per_s"] = (None if fmax is None else
                                             round(row["equal_area_pes"] * mpc * fmax / 1e3, 2))
        rows.append(row)
    for name, res in sweep["arrays"].items():
        pe_row = next(r for r in rows if r["pe"] == name)
        overhead = {c: res.categories[c]["transistors"] for c in CATEGORIES}
        pe_part = pe_row["model_area"] * res.rows * res.cols
        non_pe = overhead["buffers"] + overhead["control"]
        # the array's own skew / drain registers are part of `registers` too; keep them
        # measured: model = R*C * PE model + measured buffers, control and array registers
        array_regs = overhead["registers"] - res.rows * res.cols * pe_row["breakdown"]["registers"]
        predicted = pe_part + non_pe + max(0, array_regs)
        mpc = pe_row["macs_per_cycle"] * res.rows * res.cols
        fmax = pe_row["fmax_mhz"]
        rows.append({
            "pe": name, "scope": "array", "array": f"{res.rows}x{res.cols}",
            "kind": pe_row["kind"], "formats": pe_row["formats"], "bits": pe_row["bits"],
            "a_bits": pe_row["a_bits"], "b_bits": pe_row["b_bits"], "lanes": pe_row["lanes"],
            "acc_bits": res.acc_bits, "cells": res.cells, "transistors": res.transistors,
            "area_um2": res.area_um2, "fmax_mhz": fmax, "macs_per_cycle": round(mpc, 3),
            "model_area": round(predicted),
            "model_error": round(predicted / res.transistors - 1, 4),
            "breakdown": overhead,
            "breakdown_um2": (_cat_values(res.categories, "area_um2")
                              if res.area_um2 is not None else None),
            "pe_share": round(1 - (non_pe + max(0, array_regs)) / res.transistors, 3),
            "macs_per_cycle_per_mtransistor": round(mpc / res.transistors * 1e6, 2),
            "gmacs_per_s": None if fmax is None else round(mpc * fmax / 1e3, 3),
            "gops_per_s_per_mtransistor": (None if fmax is None else round(
                2 * mpc * fmax / 1e3 / res.transistors * 1e6, 2)),
            "seconds": round(res.seconds, 2), "cached": res.cached,
        })
    return rows, _summary(rows, model, sweep, (rows_n, cols_n))


def _ratio(rows, num, den, key="transistors", scope="pe"):
    by = {r["pe"]: r for r in rows if r["scope"] == scope}
    if num in by and den in by and by[num][key] and by[den][key]:
        return round(by[num][key] / by[den][key], 3)
    return None


def _mult_ratio(rows, num, den):
    by = {r["pe"]: r for r in rows if r["scope"] == "pe"}
    if num in by and den in by and by[den]["breakdown"]["multiplier"]:
        return round(by[num]["breakdown"]["multiplier"] / by[den]["breakdown"]["multiplier"], 2)
    return None


def _summary(rows, model, sweep, array):
    pe_rows = [r for r in rows if r["scope"] == "pe"]
    worst = max(pe_rows, key=lambda r: abs(r["model_error"])) if pe_rows else None
    ratios = []
    for num, den in RATIO_PAIRS:
        for suffix, label in (("", "MAC"), ("_dp4", "dot product (4 lanes)")):
            n, d = num + suffix, den + suffix
            t = _ratio(rows, n, d)
            if t is None:
                continue
            ratios.append({
                "pair": f"{n}/{d}", "pe": label, "transistors": t,
                "cells": _ratio(rows, n, d, "cells"),
                "area_um2": _ratio(rows, n, d, "area_um2"),
                "multiplier_only": _mult_ratio(rows, n, d),
            })
    anchor = []
    m8 = model.multiplier(8, 8)
    for op, (pj, um2) in HOROWITZ_45NM.items():
        ours = None
        note = ""
        if op == "8b int mult":
            ours = m8
        elif op == "32b int mult":
            ours = model.multiplier(32, 32)
        elif op == "8b int add":
            ours = model.coefficients["e"] * 8
            note = "adder-tree coefficient x 8 bits"
        elif op == "32b int add":
            ours = model.coefficients["e"] * 32
            note = "adder-tree coefficient x 32 bits"
        elif op == "16b fp mult":
            fp16 = next((r for r in pe_rows if r["pe"] == "fp16"), None)
            if fp16 is not None:
                ours = fp16["model_breakdown"]["multiplier"]
                note = "fp16 exact-product unit (no rounding, aligned to the Kulisch grid)"
        anchor.append({
            "op": op, "energy_pj": pj, "area_um2_45nm": um2,
            "area_vs_8b_mult": round(um2 / HOROWITZ_45NM["8b int mult"][1], 3),
            "model_transistors": None if ours is None else round(ours),
            "model_vs_8b_mult": None if ours is None else round(ours / m8, 3),
            "note": note,
        })
    return {
        "convention": ACC_CONVENTION,
        "units": ("transistors: Yosys `stat -tech cmos` estimate of generic-gate synthesis "
                  "(synth -booth, flattened); area_um2: the same gates mapped to the Liberty "
                  "library, when one is given"),
        "throughput": ("macs_per_cycle: lanes (MAC, dot product) or 1 / cycles (bit-serial, "
                       "int4 weights: 3 cycles); fmax_mhz: ECP5 LFE5U-25F, out of context, "
                       "registered inputs, LUT multipliers (nextpnr), when --fmax"),
        "equal_size": (f"{array[0]}x{array[1]} PEs of each kind; area = PEs only "
                       "(R*C x PE area) unless an array row is present"),
        "equal_area": (f"as many PEs as fit in the area of {array[0]}x{array[1]} "
                       f"{EQUAL_AREA_REFERENCE} MAC PEs"
                       + ("" if any(r["pe"] == EQUAL_AREA_REFERENCE for r in pe_rows) else
                          f"; {EQUAL_AREA_REFERENCE} is not in this sweep")),
        "ratios": ratios,
        "model": {
            "coefficients": {k: round(v, 4) for k, v in model.coefficients.items()},
            "formula": model.formula(),
            "max_abs_error": None if worst is None else abs(worst["model_error"]),
            "max_error_pe": None if worst is None else worst["pe"],
            "mean_abs_error": (None if not pe_rows else round(
                float(np.mean([abs(r["model_error"]) for r in pe_rows])), 4)),
            "points": len(pe_rows),
        },
        "anchor": {"source": "Horowitz, ISSCC 2014, 45 nm (published; not fitted)",
                   "rows": anchor},
        "seconds": round(sweep["seconds"], 1),
        "array": f"{array[0]}x{array[1]}",
    }
