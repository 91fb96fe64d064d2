"""The cost model: area and throughput of every PE kind, measured and fitted.

:func:`cost_sweep` synthesises one PE of each kind (:data:`DEFAULT_KINDS`: the 4-bit kinds,
the int8 / int16 / fp8 e4m3 / bf16 / fp16 baselines as single MACs and 4-lane dot products,
16-lane int4 / int8 / int16 dot products, and every IEEE-style baseline registered in
:mod:`nybble.hw.kinds`) with :func:`nybble.synth.area.pe_area` -- accumulators sized by an
accumulator policy (:mod:`nybble.synth.acc_policy`; the :data:`HEADLINE_KINDS` under both
policies) -- optionally places and routes each one on an ECP5 for its Fmax
(:func:`nybble.synth.fpga.pe_fmax`), optionally adds whole ``R x C`` array tops from their
parts (:func:`nybble.synth.array_parts.array_area_parts`), and fits :class:`AreaModel` to
the measured points.  :func:`cost_report` assembles the rows and the summary that
``nybble cost`` prints and writes; :func:`headline_ratios` the int8/int4 and int16/int4
table under each policy.

Throughput: ``macs_per_cycle`` is ``lanes`` for MAC and dot-product PEs and ``1 / cycles``
for the bit-serial PE (int4 weights: 3 cycles, one per significand bit); with an Fmax,
``gmacs_per_s = macs_per_cycle * fmax``, and operations are 2 per MAC.

At equal array size: ``R x C`` PEs of each kind (area: the PE's area times ``R*C``, PEs only,
unless arrays are synthesised).  At equal area: as many PEs of each kind as fit in the area of
``R x C`` int8 MAC PEs (the reference kind, :data:`EQUAL_AREA_REFERENCE`).

The analytic area model (:mod:`nybble.synth.area_model`) is fitted once on the full sweep
and stored in the package; the report quotes it against the flattened totals with its
leave-one-out error.  :data:`HOROWITZ_45NM` is the published anchor, shown beside the model, not fitted.
"""

import multiprocessing
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import PE_KINDS, pe_kind
from nybble.sw import get_format
from nybble.sw.formats import format_names
from .fpga import pe_fmax, pe_fmax_verilog
from .verilog import top_rtlil
from .acc_policy import (ACC_POLICIES, DEFAULT_ACC_POLICY, DEFAULT_K, check_policy,
                         policy_acc_bits, policy_text)
from .area import CATEGORIES, pe_area, pe_verilog
from .asic_clock import CLOCK_TEXT, DEFAULT_NODE_NM, clock_mhz
from .array_parts import array_area_parts
from .yosys import SynthesisTimeout
from .area_model import (MODEL_FILE, AreaModel, PEFeatures, fit_model, load_model,
                         loo_errors, pe_features, save_model)
from .sram import liberty_node
from nybble.sw.errors import InputFileError, ParameterError

__all__ = [
    "DEFAULT_KINDS", "MAC_KINDS", "DP_KINDS", "DP16_KINDS", "HEADLINE_PAIRS", "HEADLINE_KINDS", "EQUAL_AREA_REFERENCE", "HOROWITZ_45NM",
    "RATIO_PAIRS", "UNMODELLED_FAMILIES", "PEFeatures", "headline_ratios", "fit_stored_model", "pe_features", "AreaModel", "fit_model", "cost_sweep",
    "cost_report", "select_kinds", "find_liberty", "LIBERTY_CANDIDATES",
]

#: Single-MAC kinds of the default sweep: the 4-bit kinds, then the baselines.
MAC_KINDS = ("int4", "fp4_e2m1", "e3m0", "int4_e3m0", "int8_e3m0", "lut_nf4", "lut_nf4_shared",
             "bitserial",
             "lmul_fp4_e2m1", "int8", "int16", "fp8_e4m3", "bf16", "fp16")
#: Dot-product kinds of the default sweep (4 lanes).
DP_KINDS = ("int4_dp4", "fp4_e2m1_dp4", "e3m0_dp4", "int8_e3m0_dp4", "lut_nf4_dp4",
            "lut_nf4_shared_dp4",
            "int8_dp4", "int16_dp4", "fp8_e4m3_dp4", "bf16_dp4", "fp16_dp4")
#: Dot products of 16 lanes of the headline kinds.
DP16_KINDS = ("int4_dp16", "int8_dp16", "int16_dp16")

_IEEE_NAME = re.compile(r"_ieee(_dp\d+)?$")


def _registered_baselines():
    """IEEE-style floating-point baselines registered in :mod:`nybble.hw.kinds` (names ending
    ``_ieee`` or ``_ieee_dp<k>``), with the 4-lane dot product of each MAC among them."""
    out = []
    for name, kind in PE_KINDS.items():
        if not _IEEE_NAME.search(name):
            continue
        out.append(name)
        if kind.pe == "mac" and f"{name}_dp4" not in PE_KINDS:
            out.append(f"{name}_dp4")
    return tuple(dict.fromkeys(out))


#: The default sweep: the kinds above and every IEEE-style baseline the registry holds.
DEFAULT_KINDS = MAC_KINDS + DP_KINDS + DP16_KINDS + _registered_baselines()

#: (numerator, denominator) MAC kinds of the headline ratios, reported under both accumulator
#: policies, as MACs, 4- and 16-lane dot products and whole arrays.
HEADLINE_PAIRS = (("int8", "int4"), ("int16", "int4"))
HEADLINE_SUFFIXES = ("", "_dp4", "_dp16")
HEADLINE_KINDS = tuple(dict.fromkeys(
    k + suffix for pair in HEADLINE_PAIRS for k in pair for suffix in HEADLINE_SUFFIXES))

#: The kind whose ``R x C`` array sets the area budget of the equal-area comparison.
EQUAL_AREA_REFERENCE = "int8"

#: (numerator, denominator) kinds whose measured area ratios the report shows.
#: Pairs whose kinds are not in a sweep are left out (the IEEE-style baselines: van Baalen et
#: al. 2023 report FP8 1.5-2.8x an INT8 MAC, Horowitz 2014 fp16 mult 5.8x an int8 mult).
RATIO_PAIRS = (("int8", "int4"), ("int16", "int4"), ("fp8_e4m3", "fp4_e2m1"),
               ("fp16", "fp4_e2m1"), ("bf16", "fp4_e2m1"), ("e3m0", "int4"),
               ("fp4_e2m1", "int4"), ("fp8_e4m3", "int8"), ("fp16", "int8"),
               ("fp8_e4m3_ieee", "int8"), ("fp8_e5m2_ieee", "int8"), ("fp16_ieee", "int8"),
               ("bf16_ieee", "int8"), ("fp8_e4m3_ieee", "fp8_e4m3"), ("fp16_ieee", "fp16"),
               ("lut_nf4", "int8"), ("lut_nf4_shared", "int8"), ("lut_nf4_shared", "lut_nf4"))

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
    """The sweep: exactly the kinds named in ``pes`` (any PE kind name) when only ``pes`` is
    given; else :data:`DEFAULT_KINDS`, narrowed to kinds whose operand formats are all in
    ``formats`` (format names), plus the kinds named in ``pes``."""
    if pes and not formats:
        return list(dict.fromkeys(pe_kind(name).name for name in pes))
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


def _finished_pe(future):
    """The PE result an array task waits for; a PE left out leaves its array out."""
    _, _, name, value = future.result()
    if value is None:
        raise SynthesisTimeout(f"its PE ({name}) was left out")
    return value


def _array_rtlil(config, build_dir):
    """The RTLIL of an array top, in an elaboration process (a module-level function, so
    the process pool can call it)."""
    return top_rtlil(config, build_dir=build_dir, log=None)[0]


def _elaborate_arrays(configs, jobs, build_dir):
    """``(pool, {key: future of the RTLIL})`` of the array tops ``configs`` (key -> config),
    elaborated in up to ``jobs`` processes side by side (Amaranth holds the GIL: threads
    would take turns).  The processes come from a fork server, not from forking this
    process, whose other threads may hold locks."""
    if not configs:
        return None, {}
    pool = ProcessPoolExecutor(max_workers=max(1, min(int(jobs), len(configs))),
                               mp_context=multiprocessing.get_context("forkserver"))
    return pool, {key: pool.submit(_array_rtlil, config, build_dir)
                  for key, config in configs.items()}


def _other_policy(policy):
    return next(p for p in ACC_POLICIES if p != policy)


def cost_sweep(kinds=None, *, acc_policy=DEFAULT_ACC_POLICY, k=DEFAULT_K, acc_bits=32,
               compare_policies=True, liberty=None, fmax=False, array=None, array_depth=256,
               buffers="sram", jobs=2, cache_dir=None, fpga_cache_dir=None, build_dir="build",
               progress=None, on_result=None, timeout=None):
    """Synthesise every kind of ``kinds`` (default :data:`DEFAULT_KINDS`) with accumulators
    sized by ``acc_policy`` (:mod:`nybble.synth.acc_policy`: ``"exact-k"`` for ``k``
    products, or ``"equal"`` at ``acc_bits``); returns a dict with ``pes`` (kind ->
    :class:`~nybble.synth.area.AreaResult`), ``fmax`` (kind -> MHz, with ``fmax=True``),
    ``arrays`` (kind -> :class:`~nybble.synth.array_parts.ArrayParts` of an ``array = (R,
    C)`` top with buffers ``array_depth`` words deep costed as ``buffers``, bit-serial
    excepted), ``by_policy`` (policy -> ``{"pes", "arrays", "acc_bits"}``: with
    ``compare_policies``, the :data:`HEADLINE_KINDS` of the sweep under the other policy
    too), ``acc_bits`` (kind -> bits), ``policy``, ``k`` and ``seconds``.

    PE Verilog is elaborated here, in order (a progress line per kind), array tops' RTLIL in
    ``jobs`` processes; the Yosys and nextpnr runs go to ``jobs`` threads, an array after its
    PE and its RTLIL.  ``progress``: callable taking one
    line of text (stderr in the CLI); ``on_result(what, policy, kind, value)`` is called as
    each result arrives (``what``: ``"pe"``, ``"fmax"`` -- value ``(MHz, LUTs, seconds,
    cached)`` -- or ``"array"``), so a caller can write what finished.  Every result is cached
    on its own, so an interrupted sweep resumes where it stopped.

    ``timeout`` (seconds per Yosys run): a synthesis that does not finish in time is left
    out -- listed in ``failed`` (``[{"what", "policy", "pe", "error"}]``; an array whose PE
    was left out is left out too) -- and the sweep goes on; any other error stops it."""
    kinds = list(kinds or DEFAULT_KINDS)
    acc_policy, k = check_policy(acc_policy, k)
    policies = [acc_policy]
    if compare_policies:
        policies.append(_other_policy(acc_policy))
    start = time.perf_counter()
    say = progress or (lambda line: None)
    plan = []  # (policy, kind)
    for policy in policies:
        chosen = kinds if policy == acc_policy else [n for n in kinds if n in HEADLINE_KINDS]
        plan += [(policy, name) for name in chosen]
    accs = {p: {} for p in policies}
    for policy, name in plan:
        accs[policy][name] = policy_acc_bits(pe_kind(name), policy, k=k, acc_bits=acc_bits)
    array_configs = {}  # elaborated in other processes while the PEs elaborate and synthesise
    if array is not None:
        array_configs = {
            (policy, name): ArrayConfig(rows=array[0], cols=array[1], pe=name,
                                        acc_bits=accs[policy][name], a_depth=array_depth,
                                        b_depth=array_depth, c_depth=array_depth)
            for policy, name in plan
            if pe_kind(name).pe != "ieee"}  # ArrayConfig refuses FP32 accumulators
        say(f"  elaborating {len(array_configs)} {array[0]}x{array[1]} array tops in "
            f"{min(max(1, int(jobs)), len(array_configs))} processes")
    elaborations, rtlil_futures = _elaborate_arrays(array_configs, jobs, build_dir)
    pe_tasks, other_tasks = [], []
    try:
        for i, (policy, name) in enumerate(plan):
            kind, acc = pe_kind(name), accs[policy][name]
            say(f"  elaborating {name} ({acc}-bit accumulator, {policy}) "
                f"[{i + 1}/{len(plan)}]")
            text, _ = pe_verilog(kind, acc_bits=acc, build_dir=build_dir)
            pe_tasks.append((("pe", policy, name), f"{name} ({policy}): Yosys",
                             lambda kind=kind, acc=acc, text=text: pe_area(
                                 kind, acc_bits=acc, liberty=liberty, cache_dir=cache_dir,
                                 build_dir=build_dir, timeout=timeout, verilog=text)))
        if fmax:
            for name in kinds:
                text = pe_fmax_verilog(name, acc_bits=accs[acc_policy][name],
                                       build_dir=build_dir)
                other_tasks.append((("fmax", acc_policy, name),
                                    f"{name}: ECP5 place and route",
                                    lambda name=name, text=text: pe_fmax(
                                        name, verilog=text, cache_dir=fpga_cache_dir,
                                        timeout=timeout)))
    except BaseException:
        if elaborations is not None:
            elaborations.shutdown(wait=True, cancel_futures=True)
        raise
    lock = threading.Lock()
    results = {"pes": {}, "fmax": {}, "arrays": {}, "fmax_luts": {}, "failed": [],
               "by_policy": {p: {"pes": {}, "arrays": {}, "acc_bits": accs[p]}
                             for p in policies}}

    def run(task):
        (what, policy, name), label, fn = task
        tracker.start(label)
        t = time.perf_counter()
        try:
            value = fn()
        except SynthesisTimeout as error:
            reason = str(error).splitlines()[0]
            with lock:
                results["failed"].append({"what": what, "policy": policy, "pe": name,
                                          "error": reason})
            tracker.finish(label, f"left out: {reason}")
            return what, policy, name, None
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
        return what, policy, name, value

    total = len(pe_tasks) + len(other_tasks) + len(array_configs)
    with _Progress(total, progress) as tracker:
        pool = ThreadPoolExecutor(max_workers=max(1, int(jobs)))
        try:
            def arrived(future):
                if future.cancelled() or future.exception() is not None:
                    return
                what, policy, name, value = future.result()
                if value is None:  # left out (timeout)
                    return
                with lock:
                    if what == "fmax":
                        results["fmax"][name] = value[0]
                        results["fmax_luts"][name] = value[1]
                    else:
                        results["by_policy"][policy][what + "s"][name] = value
                    if on_result is not None:
                        on_result(what, policy, name, value)

            def submit(task):
                future = pool.submit(run, task)
                future.add_done_callback(arrived)
                return future

            # PEs first: an array task waits for its PE's future, which was submitted (and
            # so started) before it, so the pool cannot deadlock
            pe_futures = {task[0][1:]: submit(task) for task in pe_tasks}
            futures = list(pe_futures.values())
            futures += [submit(task) for task in other_tasks]
            for (policy, name), config in array_configs.items():
                fn = (lambda config=config, text=rtlil_futures[(policy, name)],
                      f=pe_futures[(policy, name)]:
                      array_area_parts(config, buffers=buffers, liberty=liberty,
                                       cache_dir=cache_dir, build_dir=build_dir,
                                       timeout=timeout, rtlil=text.result(),
                                       pe=_finished_pe(f)))
                futures.append(submit((("array", policy, name),
                                       f"{config.rows}x{config.cols} {name} array "
                                       f"({policy}): RTLIL + Yosys", fn)))
            for future in futures:
                future.result()  # the first error, in submission order
        finally:
            # on an error or an interrupt: let the runs under way finish (their results are
            # cached), start no new one
            pool.shutdown(wait=True, cancel_futures=True)
            if elaborations is not None:
                elaborations.shutdown(wait=True, cancel_futures=True)
    main = results["by_policy"][acc_policy]
    # in the order of the sweep, not of completion
    results["pes"] = {n: main["pes"][n] for n in kinds if n in main["pes"]}
    results["arrays"] = {n: main["arrays"][n] for n in kinds if n in main["arrays"]}
    results["seconds"] = time.perf_counter() - start
    results["node"] = liberty_node(liberty) or DEFAULT_NODE_NM
    results["acc_bits"] = accs[acc_policy]
    results["policy"] = acc_policy
    results["k"] = k
    results["equal_acc_bits"] = acc_bits
    return results


# --- the report ------------------------------------------------------------------------------

def _cat_values(categories, key="transistors"):
    return {c: categories[c][key] for c in CATEGORIES}


def _error_stats(errors):
    """``{name: relative error}`` -> mean / max absolute error and where the max is."""
    if not errors:
        return {"mean_abs": None, "max_abs": None, "max_pe": None, "per_pe": {}}
    worst = max(errors, key=lambda n: abs(errors[n]))
    return {"mean_abs": round(float(np.mean([abs(e) for e in errors.values()])), 4),
            "max_abs": round(abs(errors[worst]), 4), "max_pe": worst,
            "per_pe": {n: round(e, 4) for n, e in errors.items()}}


#: PE families the analytic model has no terms for: excluded from the stored fit, predicted.
UNMODELLED_FAMILIES = ("ieee",)


def fit_stored_model(sweep, path=MODEL_FILE):
    """Fit :class:`~nybble.synth.area_model.AreaModel` to every PE of ``sweep`` (the full
    :data:`DEFAULT_KINDS` sweep; a kind may be missing only when the sweep left it out for
    its timeout, and is then named in ``excluded`` with the reason; the kinds of
    :data:`UNMODELLED_FAMILIES` are excluded too, and their errors as predicted are
    ``held_out``), with in-sample and leave-one-out errors against the flattened totals, and
    store it at ``path``; returns ``(model, about)``."""
    left_out = {f["pe"]: f["error"] for f in sweep.get("failed", ())
                if f["what"] == "pe" and f["policy"] == sweep["policy"]}
    missing = [k for k in DEFAULT_KINDS if k not in sweep["pes"] and k not in left_out]
    if missing:
        raise ParameterError(f"The stored model is fitted on the full default sweep; this "
                             f"sweep lacks {', '.join(missing)}")
    all_points = [(n, pe_features(n, r.acc_bits, r.register_bits), _cat_values(r.categories),
                   r.transistors) for n, r in sweep["pes"].items()]
    # the IEEE-style PEs' normalise / round / FP32 accumulator has no term of its own: fitted,
    # they would bend the other terms; they are predicted (held out) instead
    points = [p for p in all_points if pe_kind(p[0]).pe not in UNMODELLED_FAMILIES]
    held = [p for p in all_points if pe_kind(p[0]).pe in UNMODELLED_FAMILIES]
    model = fit_model([(f, c, sum(c.values())) for _, f, c, _ in points])
    in_sample = {n: model.predict(f)[0] / flat - 1 for n, f, _, flat in points}
    excluded = {k: f"synthesis left out of the sweep: {left_out[k]}"
                for k in DEFAULT_KINDS if k in left_out}
    excluded.update({n: "IEEE-style FP: the model has no terms for normalise / round / FP32 "
                        "accumulate (predicted, not fitted: held_out)" for n, *_ in held})
    source = f"stored ({path.name}): fitted once on the full default sweep"
    if excluded:
        source += f", except {', '.join(excluded)} (excluded: see why)"
    about = {"source": source, "policy": sweep["policy"], "k": sweep["k"],
             "kinds": [n for n, *_ in points], "excluded": excluded,
             "in_sample": _error_stats(in_sample), "loo": _error_stats(loo_errors(points)),
             "held_out": _error_stats({n: model.predict(f)[0] / flat - 1
                                       for n, f, _, flat in held})}
    save_model(model, path, **about)
    return model, about


def cost_report(sweep, *, array=None, model=None):
    """Rows (one per PE, then one per synthesised array) and a summary dict (ratios, model,
    anchor, conventions) from :func:`cost_sweep`'s result. ``array``: ``(R, C)`` of the
    equal-size / equal-area comparison (default 16 x 16).  ``model``: the area model (default:
    the stored one, :func:`~nybble.synth.area_model.load_model`; fitted on this sweep when
    none is stored)."""
    rows_n, cols_n = array or (16, 16)
    npe = rows_n * cols_n
    node = sweep.get("node", DEFAULT_NODE_NM)
    pes = sweep["pes"]
    points, feats = [], {}
    for name, res in pes.items():
        f = pe_features(name, res.acc_bits, res.register_bits)
        feats[name] = f
        points.append((name, f, _cat_values(res.categories), res.transistors))
    if model is None:
        model, about = load_model()
    else:
        about = {"source": "given"}
    if model is None:
        model = fit_model([(f, c, sum(c.values())) for _, f, c, _ in points])
        loo = loo_errors(points) if len(points) > 2 else {}
        about = {"source": "fitted on this sweep (no stored model; nybble cost --fit-model "
                           "stores one)", "kinds": list(pes), "loo": _error_stats(loo)}
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
        depth = res.report.logic_depth
        mhz = None if depth is None else clock_mhz(depth, node)
        row = {
            "pe": name, "scope": "pe", "array": "1x1", "kind": kind.pe,
            "formats": formats, "bits": max(bits_a, bits_b), "a_bits": bits_a,
            "b_bits": bits_b, "lanes": f.lanes, "acc_bits": res.acc_bits,
            "cells": res.cells, "transistors": tr, "area_um2": res.area_um2,
            "fmax_mhz": fmax, "fpga_luts": sweep["fmax_luts"].get(name),
            "logic_depth": depth, "asic_mhz": None if mhz is None else round(mhz, 1),
            "macs_per_cycle": round(mpc, 4),
            "hier_transistors": sum(_cat_values(res.categories).values()),
            "model_area": round(predicted),
            "model_error": round(predicted / tr - 1, 4),
            "model_error_hier": round(
                predicted / sum(_cat_values(res.categories).values()) - 1, 4),
            "model_breakdown": {k: round(v) for k, v in parts.items()},
            "breakdown": _cat_values(res.categories),
            "breakdown_um2": (_cat_values(res.categories, "area_um2")
                              if res.area_um2 is not None else None),
            "rel_area_vs_int4": round(tr / base.transistors, 3) if base else None,
            "macs_per_cycle_per_mtransistor": round(mpc / tr * 1e6, 2),
            "gmacs_per_s": None if mhz is None else round(mpc * mhz / 1e3, 4),
            "gops_per_s_per_mtransistor": (None if mhz is None else
                                           round(2 * mpc * mhz / 1e3 / tr * 1e6, 2)),
            "gops_per_s_per_mm2": (None if mhz is None or res.area_um2 is None else
                                   round(2 * mpc * mhz / 1e3 / (res.area_um2 / 1e6), 1)),
            f"array_{rows_n}x{cols_n}_transistors": tr * npe,
            f"array_{rows_n}x{cols_n}_macs_per_cycle": round(mpc * npe, 3),
            "equal_area_pes": (int(ref.transistors * npe // tr) if ref else None),
            "seconds": round(res.seconds, 2), "cached": res.cached,
        }
        if ref:
            row["equal_area_macs_per_cycle"] = round(row["equal_area_pes"] * mpc, 2)
            row["equal_area_gmacs_per_s"] = (None if mhz is None else
                                             round(row["equal_area_pes"] * mpc * mhz / 1e3, 2))
        rows.append(row)
    for name, res in sweep["arrays"].items():
        rows.append(_array_row(res, next(r for r in rows if r["pe"] == name), node))
    return rows, _summary(rows, model, sweep, (rows_n, cols_n), about)


def _array_row(res, pe_row, node=DEFAULT_NODE_NM):
    """One row of a whole array (:class:`~nybble.synth.array_parts.ArrayParts`): its parts
    measured, the model's ``R*C`` PEs plus the measured rest and buffers."""
    n = res.rows * res.cols
    parts = {p: v["transistors"] for p, v in res.parts.items()}
    pe_cats = pe_row["breakdown"]
    breakdown = {c: n * pe_cats[c] for c in ("multiplier", "adder_tree", "accumulator",
                                             "registers")}
    breakdown["buffers"] = parts["buffers"]
    breakdown["control"] = parts["rest"]
    predicted = n * pe_row["model_area"] + parts["rest"] + parts["buffers"]
    mpc = pe_row["macs_per_cycle"] * n
    depths = [res.pe.report.logic_depth, res.rest.logic_depth]
    depth = None if None in depths else max(depths)
    mhz = None if depth is None else clock_mhz(depth, node)
    return {
        "pe": res.name, "scope": "array", "array": f"{res.rows}x{res.cols}",
        "kind": pe_row["kind"], "formats": pe_row["formats"], "bits": pe_row["bits"],
        "a_bits": pe_row["a_bits"], "b_bits": pe_row["b_bits"], "lanes": pe_row["lanes"],
        "acc_bits": res.acc_bits, "depth": res.depth, "buffer_model": res.buffer_model,
        "cells": res.cells, "transistors": res.transistors, "area_um2": res.area_um2,
        "parts": parts,
        "parts_um2": {p: v["area_um2"] for p, v in res.parts.items()},
        "buffer_kib": round(sum(m.get("kib", m["width"] * m["depth"] / 8192)
                                for m in res.memories), 3),
        "fmax_mhz": None, "fpga_luts": None, "macs_per_cycle": round(mpc, 3),
        "logic_depth": depth, "rest_logic_depth": depths[1], "pe_logic_depth": depths[0],
        "asic_mhz": None if mhz is None else round(mhz, 1),
        "pe_asic_mhz": pe_row["asic_mhz"],
        "model_area": round(predicted),
        "model_error": round(predicted / res.transistors - 1, 4),
        "breakdown": breakdown,
        "breakdown_um2": None,
        "pe_share": round(parts["pes"] / res.transistors, 3),
        "macs_per_cycle_per_mtransistor": round(mpc / res.transistors * 1e6, 2),
        "gmacs_per_s": None if mhz is None else round(mpc * mhz / 1e3, 3),
        "gops_per_s_per_mtransistor": (None if mhz is None else round(
            2 * mpc * mhz / 1e3 / res.transistors * 1e6, 2)),
        "gops_per_s_per_mm2": (None if mhz is None or res.area_um2 is None else round(
            2 * mpc * mhz / 1e3 / (res.area_um2 / 1e6), 1)),
        "rest_seconds": round(res.rest.seconds, 2),
        "seconds": round(res.seconds, 2), "cached": res.cached,
    }


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


def _pair_ratio(results, num, den, key):
    a, b = results.get(num), results.get(den)
    if a is None or b is None:
        return None
    x, y = getattr(a, key), getattr(b, key)
    return None if not x or not y else round(x / y, 3)


def headline_ratios(sweep):
    """The headline table: for each :data:`HEADLINE_PAIRS` pair as MAC, 4- and 16-lane dot
    product and whole array, the area ratio (transistors, and um^2 with a Liberty) under
    every accumulator policy the sweep ran, with the accumulator widths."""
    out = []
    for num, den in HEADLINE_PAIRS:
        for suffix, label in (("", "MAC"), ("_dp4", "dot product (4 lanes)"),
                              ("_dp16", "dot product (16 lanes)"), ("array", "array")):
            scope = "arrays" if suffix == "array" else "pes"
            n, d = (num, den) if suffix == "array" else (num + suffix, den + suffix)
            entry = {"pair": f"{n}/{d}", "pe": label}
            if suffix == "array":
                entry["pe"] = "array" + next(
                    (f" {r.rows}x{r.cols} (PEs + {r.buffer_model.upper()} buffers, "
                     f"{r.depth} words)" for p in sweep["by_policy"].values()
                     for r in p["arrays"].values()), "")
            found = False
            for policy, res in sweep["by_policy"].items():
                t = _pair_ratio(res[scope], n, d, "transistors")
                found = found or t is not None
                entry[policy] = {
                    "transistors": t, "area_um2": _pair_ratio(res[scope], n, d, "area_um2"),
                    "acc_bits": [res["acc_bits"].get(n), res["acc_bits"].get(d)]}
            if found:
                out.append(entry)
    return out


def _summary(rows, model, sweep, array, about):
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
        "acc_policy": sweep["policy"], "k": sweep["k"],
        "left_out": sweep.get("failed", []),
        "convention": policy_text(sweep["policy"], k=sweep["k"],
                                  acc_bits=sweep["equal_acc_bits"]),
        "conventions": {p: policy_text(p, k=sweep["k"], acc_bits=sweep["equal_acc_bits"])
                        for p in sweep["by_policy"]},
        "headline": headline_ratios(sweep),
        "units": ("transistors: Yosys `stat -tech cmos` estimate of generic-gate synthesis "
                  "(synth -booth, flattened); area_um2: the same gates mapped to the Liberty "
                  "library, when one is given"),
        "asic_clock": (f"logic depth (generic gates) -> clock estimate at "
                       f"{sweep.get('node', DEFAULT_NODE_NM)} nm; {CLOCK_TEXT}; GOPS/Mtr = "
                       "2 x MACs/cycle x ASIC clock / transistors"),
        "throughput": ("macs_per_cycle: lanes (MAC, dot product) or 1 / cycles (bit-serial, "
                       "int4 weights: 3 cycles); gmacs_per_s and gops_per_s_per_* use "
                       f"asic_mhz at {sweep.get('node', DEFAULT_NODE_NM)} nm ({CLOCK_TEXT}); "
                       "fmax_mhz: ECP5 LFE5U-25F, out of context, "
                       "registered inputs, LUT multipliers (nextpnr), when --fmax, FPGA "
                       "figures only (fpga_luts)"),
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
            "source": about.get("source"),
            "fitted_on": about.get("kinds"),
            "excluded": about.get("excluded") or {},
            "held_out": about.get("held_out") or {},
            "against": "flattened totals (model_error); model_error_hier: the hierarchical sum",
            "max_abs_error": None if worst is None else abs(worst["model_error"]),
            "max_error_pe": None if worst is None else worst["pe"],
            "mean_abs_error": (None if not pe_rows else round(
                float(np.mean([abs(r["model_error"]) for r in pe_rows])), 4)),
            "loo": {k: v for k, v in (about.get("loo") or {}).items() if k != "per_pe"},
            "points": len(pe_rows),
        },
        "anchor": {"source": "Horowitz, ISSCC 2014, 45 nm (published; not fitted)",
                   "rows": anchor},
        "seconds": round(sweep["seconds"], 1),
        "array": f"{array[0]}x{array[1]}",
    }
