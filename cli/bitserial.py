"""``nybble gemm`` and ``nybble cycles`` on bit-serial mixed-data-type arrays (``--pe bitserial``).

:mod:`.cmd_gemm` and :mod:`.cmd_cycles` add the flags (:func:`add_gemm_args`,
:func:`add_cycles_args`) and hand the run over when :func:`wants_bitserial` says so.

``nybble gemm --pe bitserial``: int8 activations and weights with one data type per group of
``--group`` k per column -- random codes with ``--dtype-mix int4=0.5,fp4_e2m1=0.3,e3m0=0.2``,
or float ``--a A.npy --b W.npy --scheme bitmod_g128`` (W quantized per group by BitMoD's
min-error type choice, A to int8 per row; one job per group, the host applies the group
scales).  Reports mismatches against :mod:`nybble.sw`, the relative error against the float64
product, RTL and model cycles, utilization against the bit-parallel ideal and the mean cycles
per MAC of the chosen types.

``nybble cycles --pe bitserial``: every layer's weights draw their types from ``--dtype-mix``
(seeded by ``--seed``), or ``--weights W.npy`` (K x N floats, BitMoD-quantized) gives one
GEMM of ``--m`` rows with that file's types.

``nybble bench bitserial``: native simulation speed of the bit-serial array, and its
throughput per area (whole arrays synthesized) at three data-type mixes beside bit-parallel
int8 x int4 / fp4 / e3m0 arrays of the same shape.
"""

import resource
import sys

import numpy as np

from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import PE_KINDS
from nybble.hw.spec import TypedWeights
from nybble.sim.bitserial import (MIXES, RIVALS, bitmod_weights, check_bitserial_gemm,
                                  int8_rows, parse_dtype_mix, random_types, random_weights,
                                  tradeoff_rows)
from nybble.sim.check import check_gemm
from nybble.sim.cycles import gemm_cycles
from nybble.sim.schedule import fit_config, schedule_for
from nybble.sw import decode, get_format, get_scheme
from nybble.sw.errors import ParameterError
from nybble.synth.array_parts import array_area_parts
from nybble.synth.plots import plot_bitserial_tradeoff
from .common import (UsageError, check_output_file, config_from_args, emit, load_npy,
                     parse_array, write_npy)

__all__ = ["add_gemm_args", "add_cycles_args", "wants_bitserial", "run_gemm",
           "cycle_function", "weights_workload", "add_bench", "bench", "DEFAULT_MIX"]

DEFAULT_MIX = "int4=0.5,fp4_e2m1=0.3,e3m0=0.2"
DEFAULT_GROUP = 128


def _group_flags(g):
    g.add_argument("--dtype-mix", metavar="TYPE=FRAC,...",
                   help=f"data types of the weight groups, drawn at random (default "
                        f"{DEFAULT_MIX}; types: int4, fp4_e2m1, e3m0, bitmod_er_pos, "
                        "bitmod_er_neg, bitmod_ea_pos, bitmod_ea_neg)")
    g.add_argument("--group", type=int, default=None,
                   help=f"k per data-type group (default {DEFAULT_GROUP}; with --scheme "
                        "bitmod_g<N>: N)")


def add_gemm_args(p):
    """The bit-serial flags of ``nybble gemm``."""
    _group_flags(p.add_argument_group("bit-serial arrays (--pe bitserial)"))


def add_cycles_args(p, source):
    """The bit-serial flags of ``nybble cycles``; ``--weights`` joins the workload sources."""
    g = p.add_argument_group("bit-serial arrays (--pe bitserial)")
    _group_flags(g)
    source.add_argument("--weights", metavar="W.npy",
                        help="bit-serial: one GEMM whose K x N float weights are quantized "
                             "with bitmod_g<group> (M from --m)")
    g.add_argument("--m", type=int, default=None, help="--weights: rows of A (default 2048)")
    g.add_argument("--seed", type=int, default=0, help="seed of the --dtype-mix draws")


def wants_bitserial(args):
    """True when the flags ask for a bit-serial array."""
    pe = getattr(args, "pe", "")
    return bool(pe in PE_KINDS and PE_KINDS[pe].pe == "bitserial")


def _refuse_stray(args):
    """Bit-serial flags without ``--pe bitserial``."""
    if wants_bitserial(args):
        return
    for flag in ("dtype_mix", "group", "weights"):
        if getattr(args, flag, None) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} applies to --pe bitserial, not "
                             f"--pe {args.pe}")


def _mix(args, spec):
    try:
        return parse_dtype_mix(args.dtype_mix or DEFAULT_MIX, spec.dtypes)
    except ParameterError as e:
        raise UsageError(f"--dtype-mix: {e}") from None


def _group(args, default=DEFAULT_GROUP):
    g = default if args.group is None else args.group
    if g < 1:
        raise UsageError(f"--group must be at least 1, not {g}")
    return g


def _operands(args, spec):
    """``(a codes, TypedWeights, extras for check_bitserial_gemm, float64 reference, info)``."""
    if (args.a is None) != (args.b is None):
        raise UsageError("--a and --b go together")
    if args.a is None:
        if args.codes or args.scheme:
            raise UsageError(f"--{'codes' if args.codes else 'scheme'} applies to --a/--b "
                             "files")
        mix, group = _mix(args, spec), _group(args)
        rng = np.random.default_rng(args.seed)
        a = rng.integers(0, 256, size=(args.m, args.k))
        w = random_weights(spec, args.k, args.n, mix, group=group, rng=rng)
        ref = decode(a, spec.fmt_a) @ _weight_values(spec, w)
        return a, w, {}, ref, {"dtype_mix": mix, "group": group, "inputs": "random"}
    if args.dtype_mix is not None:
        raise UsageError("--dtype-mix draws random weights; with --a/--b the data types come "
                         "from --scheme bitmod_g<N>")
    if args.codes:
        raise UsageError("--codes: bit-serial weights need a data type per group; give float "
                         "--a/--b with --scheme bitmod_g<N>, or random codes with --dtype-mix")
    sch = get_scheme(args.scheme) if args.scheme else None
    if sch is None or not sch.element.startswith("bitmod") or not sch.block:
        raise UsageError(f"--pe bitserial takes float --a/--b with --scheme bitmod_g<N> (e.g. "
                         f"bitmod_g128), not {args.scheme or 'no --scheme'}")
    if args.group is not None and args.group != sch.block:
        raise UsageError(f"--group {args.group} contradicts --scheme {sch.name} (groups of "
                         f"{sch.block})")
    a, b = load_npy(args.a, "--a"), load_npy(args.b, "--b")
    for flag, x in (("--a", a), ("--b", b)):
        if x.ndim != 2:
            raise UsageError(f"{flag} must be a 2-D array, not shape {x.shape}")
        if not np.isfinite(x).all():
            raise UsageError(f"{flag} holds a non-finite value")
    if a.shape[1] != b.shape[0]:
        raise UsageError(f"K mismatch: --a is {a.shape[0]} x {a.shape[1]}, --b is "
                         f"{b.shape[0]} x {b.shape[1]}")
    qa, sa = int8_rows(a)
    w, scales = bitmod_weights(spec, b, sch.block)
    extra = dict(group_scales=scales, group=sch.block, row_scales=sa)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    types, counts = np.unique(np.asarray(w.sel)[::sch.block], return_counts=True)
    chosen = {spec.dtypes[t]: float(c / counts.sum()) for t, c in zip(types, counts)}
    return qa, w, extra, ref, {"scheme": sch.name, "group": sch.block, "dtype_mix": chosen,
                               "inputs": {"a": args.a, "b": args.b}}


def _weight_values(spec, w):
    """The exact values of TypedWeights (float64, K x N)."""
    out = np.zeros(np.shape(w.codes))
    for s, f in enumerate(spec.dtype_formats):
        at = np.asarray(w.sel) == s
        out[at] = decode(np.asarray(w.codes)[at], f)
    return out


def run_gemm(args, sim):
    """``nybble gemm --pe bitserial``: returns ``(payload, text, exit status)``."""
    _refuse_stray(args)
    if args.area:
        raise UsageError("--area with --pe bitserial: the lockstep array's area and its "
                         "throughput per area come from `nybble bench bitserial`")
    if args.dataflow != "os":
        raise UsageError(f"--pe bitserial runs output-stationary (--dataflow os), not "
                         f"{args.dataflow!r}")
    cfg = config_from_args(args)
    spec = cfg.pe_spec
    a, w, extra, ref, info = _operands(args, spec)
    if args.waves and "group_scales" in extra and a.shape[1] > extra["group"]:
        raise UsageError(f"--waves: --scheme {info['scheme']} runs one job per group of "
                         f"{extra['group']}; dump waveforms of a single group (K <= "
                         f"{extra['group']}) or of random codes")
    r = check_bitserial_gemm(cfg, a, w, sim=sim, build_dir=args.build_dir, waves=args.waves,
                             fit=args.depth is None, **extra)
    out = {**r.summary(), **info,
           "rel_error": float(np.linalg.norm(r.result - ref) /
                              max(np.linalg.norm(ref), 1e-300))}
    if args.out:
        out["out"] = write_npy("--out", args.out, r.result)
    if args.waves:
        out["waves"] = args.waves
    return out, _text(cfg, out), 1 if r.mismatches else 0


def _text(cfg, out):
    m, n, k = out["m"], out["n"], out["k"]
    mix = ", ".join(f"{t} {f:.0%}" for t, f in out["dtype_mix"].items())
    src = out.get("scheme", "random codes")
    lines = [
        f"{m}x{k} @ {k}x{n} on a {cfg.rows}x{cfg.cols} bit-serial os array "
        f"({out['simulator']}), {src}, groups of {out['group']}: {mix}",
        f"  cycles {out['cycles']} (cycle model {out['model_cycles']}; bit-parallel ideal "
        f"{out['ideal_cycles']:.0f}, utilization {out['utilization']:.1%}); mean cycles per "
        f"MAC {out['mean_cycles_per_mac']:.3f}; {out['jobs']} job(s)",
        f"  mismatches vs nybble.sw golden: {out['mismatches']} of {m * n * out['jobs']}",
        f"  relative error vs the float64 product: {out['rel_error']:.4g}",
        f"  simulated {out['macs_per_second'] or 0:.3g} MAC/s ({out['sim_seconds']:.3f} s)",
    ]
    return "\n".join(lines)


def cycle_function(args, spec):
    """``nybble cycles --pe bitserial --dtype-mix``: ``f(config, m, n, k)`` drawing each
    layer's weight types from the mix (seeded per shape), exact cycles.  Returns ``(f, info)``."""
    _refuse_stray(args)
    if not wants_bitserial(args):
        return None, {}
    mix, group = _mix(args, spec), _group(args)

    def cycles(config, m, n, k):
        rng = np.random.default_rng([args.seed, m, n, k])
        return gemm_cycles(config, m, n, k,
                           sel=random_types(spec, k, n, mix, group=group, rng=rng))
    return cycles, {"dtype_mix": mix, "group": group, "seed": args.seed}


def weights_workload(args, spec):
    """``--weights W.npy``: the one-layer workload and its cycle function (the file's BitMoD
    types).  Returns ``(layers, workload info, f)``."""
    from nybble.sim.workloads import Layer
    if not wants_bitserial(args):
        raise UsageError(f"--weights applies to --pe bitserial, not --pe {args.pe}")
    if args.dtype_mix is not None:
        raise UsageError("--weights and --dtype-mix exclude each other (the file's groups "
                         "have their own types)")
    w = load_npy(args.weights, "--weights")
    if w.ndim != 2 or not np.isfinite(w).all():
        raise UsageError(f"--weights must be a finite 2-D K x N array, not shape {w.shape}")
    m = 2048 if args.m is None else args.m
    if m < 1:
        raise UsageError(f"--m must be at least 1, not {m}")
    group = _group(args)
    tw, _ = bitmod_weights(spec, w, group)
    k, n = w.shape

    def cycles(config, mm, nn, kk):
        return gemm_cycles(config, mm, nn, kk, sel=tw.sel)
    types, counts = np.unique(np.asarray(tw.sel)[::group], return_counts=True)
    info = {"name": args.weights, "source": "weights", "scheme": f"bitmod_g{group}",
            "dtype_mix": {spec.dtypes[t]: float(c / counts.sum())
                          for t, c in zip(types, counts)}}
    return [Layer("weights", m, n, k)], info, cycles


# -- nybble bench bitserial ----------------------------------------------------------------

def add_bench(bsub):
    """``nybble bench bitserial``: registered by :mod:`.cmd_bench`."""
    b = bsub.add_parser("bitserial", help="bit-serial array: native simulation speed, and "
                                          "throughput per area at three data-type mixes vs "
                                          "bit-parallel int8 x {int4, fp4, e3m0} arrays")
    b.add_argument("--array", default="16x16", help="ROWSxCOLS (default 16x16)")
    b.add_argument("--speed-size", type=int, default=256,
                   help="M = N = K of the speed run (default 256)")
    b.add_argument("--repeats", type=int, default=3,
                   help="runs of the speed GEMM; the fastest is reported (default 3)")
    b.add_argument("--dtype-mix", default=DEFAULT_MIX,
                   help=f"data types of the speed run (default {DEFAULT_MIX})")
    b.add_argument("--group", type=int, default=DEFAULT_GROUP,
                   help=f"k per data-type group (default {DEFAULT_GROUP})")
    b.add_argument("--size", type=int, default=256,
                   help="M = N = K of the GEMM whose cycles give MACs per cycle (default 256)")
    b.add_argument("--depth", type=int, default=16,
                   help="buffer depth of the synthesized arrays (default 16, as nybble cost)")
    b.add_argument("--liberty", help="Liberty file: also MACs per cycle per mm^2")
    b.add_argument("--reference", default="int4", metavar="PE|none",
                   help="bit-parallel PE kind whose output-stationary array runs the same speed "
                        "GEMM side by side, for simulated cycles per CPU second (default int4, "
                        "as `nybble bench sim`; none: skip)")
    b.add_argument("--no-speed", action="store_true", help="skip the simulation-speed run")
    b.add_argument("--no-area", action="store_true", help="skip synthesis (speed run only)")
    b.add_argument("--plot", metavar="FILE.png", help="bar chart of throughput per area")
    b.add_argument("--build-dir", default="build", help="builds and caches (default build/)")
    b.add_argument("--json", action="store_true", help="print one JSON document")
    b.set_defaults(func=bench)


def _child_cpu_seconds():
    """CPU seconds (user + system) of the finished child processes (the native harness)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class _ReferenceRun:
    """The speed GEMM (``size``^3, random codes) on a bit-parallel output-stationary array of
    kind ``pe``, through the same native path; :meth:`run` times one run, built beforehand."""

    def __init__(self, pe, rows, cols, size, build_dir):
        cfg = ArrayConfig(rows=rows, cols=cols, pe=pe)
        self.pe, self.size, self.build_dir = pe, size, build_dir
        self.sched = schedule_for(cfg, size, size, size)
        self.cfg = fit_config(cfg, self.sched)
        rng = np.random.default_rng(1)
        fa, fb = (get_format(f) for f in self.cfg.formats[:2])
        self.a = rng.choice(np.flatnonzero(fa.finite), size=(size, size))
        self.b = rng.choice(np.flatnonzero(fb.finite), size=(size, size))
        self.checks, self.cpu = [], []
        print(f"bench bitserial: building the {rows}x{cols} {pe} reference array ...",
              file=sys.stderr)
        self._check()   # the build, outside the timed runs

    def _check(self):
        return check_gemm(self.cfg, self.a, self.b, sim="verilator", build_dir=self.build_dir,
                          schedule=self.sched)

    def run(self):
        before = _child_cpu_seconds()
        self.checks.append(self._check())
        self.cpu.append(_child_cpu_seconds() - before)

    def summary(self):
        cpu = min(self.cpu)
        best = min(self.checks, key=lambda c: c.sim_seconds)
        return {"pe": self.pe, "cycles": best.cycles, "sim_seconds": best.sim_seconds,
                "macs_per_second": self.size ** 3 / best.sim_seconds,
                "harness_cpu_seconds": cpu,
                "macs_per_cpu_second": self.size ** 3 / cpu if cpu > 0 else None,
                "cycles_per_cpu_second": best.cycles / cpu if cpu > 0 else None,
                "mismatches": sum(c.mismatches for c in self.checks)}


def bench(args):
    """Speed of the native path on a ``--speed-size``^3 GEMM (checked bit for bit) and
    throughput per area of whole synthesized arrays; exit 1 on any mismatch."""
    for name in ("speed_size", "repeats", "group", "size", "depth"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, not "
                             f"{getattr(args, name)}")
    check_output_file("--plot", args.plot)
    if args.plot and not args.plot.endswith(".png"):
        raise UsageError(f"--plot must name a .png file, not {args.plot!r}")
    rows_n, cols_n = parse_array(args.array)
    cfg = ArrayConfig(rows=rows_n, cols=cols_n, pe="bitserial")
    spec = cfg.pe_spec
    mix = _mix(args, spec)
    out, lines = {"array": args.array}, []
    ref = None if args.reference == "none" else args.reference
    if ref is not None and (ref not in PE_KINDS or PE_KINDS[ref].pe not in ("mac", "dp")):
        raise UsageError(f"--reference must be a MAC or dot-product PE kind "
                         f"(e.g. int4, int8_int4) or none, not {args.reference!r}")
    if not args.no_speed:
        s = args.speed_size
        rng = np.random.default_rng(0)
        a = rng.integers(0, 256, size=(s, s))
        w = random_weights(spec, s, s, mix, group=args.group, rng=rng)
        runs, cpu = [], []
        check_bitserial_gemm(cfg, a[:1, :1], TypedWeights(w.codes[:1, :1], w.sel[:1, :1]),
                             build_dir=args.build_dir)   # the build, outside the timed runs
        reference = _ReferenceRun(ref, rows_n, cols_n, s, args.build_dir) if ref else None
        for r in range(args.repeats):
            print(f"bench bitserial: {s}^3 on {args.array} (verilator native), run {r + 1} of "
                  f"{args.repeats} ...", file=sys.stderr)
            before = _child_cpu_seconds()
            runs.append(check_bitserial_gemm(cfg, a, w, build_dir=args.build_dir))
            cpu.append(_child_cpu_seconds() - before)
            if reference is not None:   # interleaved: both see the same machine load
                reference.run()
        best = min(runs, key=lambda c: c.sim_seconds)
        macs = s ** 3
        out["speed"] = {**best.summary(), "dtype_mix": mix, "group": args.group,
                        "runs": args.repeats,
                        "mismatches": sum(c.mismatches for c in runs),
                        # the harness process's CPU time (loading, the clocked run, reading):
                        # what the run costs on a machine shared with other jobs
                        "harness_cpu_seconds": min(cpu),
                        "macs_per_cpu_second": macs / min(cpu) if min(cpu) > 0 else None,
                        "cycles_per_cpu_second": (best.cycles / min(cpu) if min(cpu) > 0
                                                  else None)}
        sp = out["speed"]
        lines.append(f"speed {s}^3 on {args.array} bit-serial (Verilator native, best of "
                     f"{args.repeats}): {sp['macs_per_second']:.3g} simulated MAC/s (wall), "
                     f"{sp['macs_per_cpu_second'] or 0:.3g} per harness CPU second; cycles "
                     f"{sp['cycles']} (model {sp['model_cycles']}), "
                     f"{sp['cycles_per_cpu_second'] or 0:.3g} cycles per CPU second, "
                     f"mismatches {sp['mismatches']}")
        if reference is not None:
            out["reference"] = rf = reference.summary()
            out["speed_ratio"] = {
                k: (sp[k] / rf[k] if sp[k] and rf[k] else None)
                for k in ("cycles_per_cpu_second", "macs_per_cpu_second")}
            lines.append(f"reference {s}^3 on {args.array} {ref} (same harness, interleaved): "
                         f"{rf['macs_per_cpu_second'] or 0:.3g} MAC per CPU second, "
                         f"{rf['cycles_per_cpu_second'] or 0:.3g} cycles per CPU second, "
                         f"mismatches {rf['mismatches']}; bit-serial / {ref}: "
                         f"{out['speed_ratio']['cycles_per_cpu_second'] or 0:.2f}x per cycle, "
                         f"{out['speed_ratio']['macs_per_cpu_second'] or 0:.2f}x per MAC")
    if not args.no_area:
        areas = {}
        for pe in ("bitserial",) + RIVALS:
            c = ArrayConfig(rows=rows_n, cols=cols_n, pe=pe, acc_bits=32, a_depth=args.depth,
                            b_depth=args.depth, c_depth=args.depth)
            print(f"bench bitserial: synthesizing the {args.array} {pe} array (Yosys, "
                  "cached) ...", file=sys.stderr)
            # the whole-array path of `nybble cost --array`: the PE synthesized once, the
            # rest of the top on its own, the buffers as SRAM macros
            r = array_area_parts(c, liberty=args.liberty, build_dir=args.build_dir)
            areas[pe] = (r.transistors, r.area_um2)
            out.setdefault("areas", {})[pe] = {
                "transistors": r.transistors, "cells": r.cells, "area_um2": r.area_um2,
                "breakdown": {k: v["transistors"] for k, v in r.parts.items()}}
        size = (args.size,) * 3
        rows = tradeoff_rows(cfg.replace(acc_bits=32), areas, shape=size, group=args.group)
        out["throughput"] = rows
        out["gemm"] = {"m": args.size, "n": args.size, "k": args.size, "group": args.group,
                       "mixes": MIXES}
        lines.append(f"throughput per area, {args.array}, int8 activations, a {args.size}^3 "
                     f"GEMM (cycle model == RTL), whole arrays: PEs + rest synthesized (Yosys), "
                     f"buffers as SRAM:")
        lines.append(f"  {'design':<15} {'mix':<24} {'MAC/cycle':>9} {'cyc/MAC':>7} "
                     f"{'transistors':>11} {'MAC/cyc/1e6 tr':>14}")
        for r in rows:
            lines.append(f"  {r['design']:<15} {r['mix']:<24} {r['macs_per_cycle']:>9.1f} "
                         f"{r['mean_cycles_per_mac']:>7.2f} {r['transistors']:>11,} "
                         f"{r['macs_per_cycle_per_mtransistor']:>14.2f}"
                         + (f"  {r['macs_per_cycle_per_mm2']:.3g} MAC/cyc/mm^2"
                            if r["macs_per_cycle_per_mm2"] is not None else ""))
        par = {r["design"]: r["macs_per_cycle_per_mtransistor"] for r in rows
               if r["mix"] == "-"}
        out["ratios"] = {}
        for r in rows:
            if r["mix"] == "-":
                continue
            ratio = {pe: r["macs_per_cycle_per_mtransistor"] / v for pe, v in par.items()}
            out["ratios"][r["mix"]] = ratio
            lines.append(f"  bit-serial {r['mix']}: "
                         + ", ".join(f"{v:.2f}x {pe}" for pe, v in ratio.items()))
        if args.plot:
            out["plot"] = str(plot_bitserial_tradeoff(rows, args.plot))
    out["mismatches"] = (out.get("speed", {}).get("mismatches", 0)
                         + out.get("reference", {}).get("mismatches", 0))
    emit(args, out, "\n".join(lines))
    return 1 if out["mismatches"] else 0
