"""``nybble gemm``: run a GEMM on the RTL array and check it against the golden model.

The path from the flags to the verdict: operands (random codes, ``.npy`` codes or floats
quantized with ``--scheme``, block-scaled schemes and GGUF tensors via :mod:`.gemm_block`)
-> an :class:`~nybble.hw.config.ArrayConfig` with buffers fitted to the GEMM ->
:func:`nybble.sim.check.check_gemm` (run, golden, mismatches, cycles) -> text or JSON.  The
exit status is 1 when any result differs from the golden model.
"""

import sys

import numpy as np

from nybble.hw.kinds import pe_kind
from nybble.sim.check import check_gemm, result_values
from nybble.sim.schedule import fit_config, schedule_for
from nybble.sw import decode, encode, get_format, get_scheme, min_acc_bits, quantize
from nybble.synth.toolchain import available_simulators
from .common import (UsageError, add_array_args, check_cache_dirs, check_output_file,
                     check_positive, config_from_args, emit, load_npy, write_npy)
from . import bitserial
from .gemm_block import add_block_args, block_operands, wants_block
from .stream_mode import add_stream_args, stream_gemm, wants_stream

SIM_CHOICES = ("verilator", "amaranth", "icarus")


def register(sub):
    p = sub.add_parser("gemm", help="run a GEMM on the RTL array, check it against nybble.sw")
    add_array_args(p)
    add_block_args(p)
    add_stream_args(p)
    bitserial.add_gemm_args(p)
    p.add_argument("--m", type=int, default=64, help="rows of A (default 64)")
    p.add_argument("--n", type=int, default=64, help="columns of B (default 64)")
    p.add_argument("--k", type=int, default=64, help="reduction length (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random codes")
    p.add_argument("--a", help="A (M x K) .npy: values of the PE's activation format "
                               "(integers or exact floats), floats quantized with --scheme, "
                               "or raw codes with --codes")
    p.add_argument("--b", help="B (K x N) .npy: values of the PE's weight format, floats "
                               "quantized with --scheme, or raw codes with --codes")
    p.add_argument("--codes", action="store_true",
                   help="--a/--b hold raw element codes (0 .. 2**bits - 1), not values")
    p.add_argument("--scheme", help="scheme for float inputs (one scale along K: "
                                    "int4_tensor, int4_channel, ...; block-scaled: mxfp4, "
                                    "mxint8, nvfp4, q4_0)")
    p.add_argument("--out", help="write the exact result (float64 .npy) here")
    p.add_argument("--sim", default="verilator", choices=SIM_CHOICES,
                   help="simulator (default verilator: the native C++ harness)")
    p.add_argument("--cocotb", action="store_true",
                   help="run through the cocotb testbench instead (slower; verification path)")
    p.add_argument("--waves", help="dump waveforms to FILE.vcd or FILE.fst")
    p.add_argument("--build-dir", default="build",
                   help="builds and caches (default build/; `nybble cache info` shows the size)")
    p.add_argument("--area", action="store_true",
                   help="also report the PEs' synthesized area (Yosys, cached): one PE x "
                        "rows x cols")
    p.add_argument("--energy", action="store_true",
                   help="also report compute energy (one PE's netlist on the run's operands) "
                        "and memory energy (the run's buffer and external traffic)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def _load(path, name):
    x = load_npy(path, f"--{name}")
    if x.ndim != 2:
        raise UsageError(f"--{name} must be a 2-D array, not shape {x.shape}")
    return x


def values_to_codes(flag, x, fmt):
    """The codes of ``fmt`` whose values are exactly ``x``; UsageError naming the first value
    that is not one of the format's values."""
    fmt = get_format(fmt)
    bad = ~np.isfinite(x)
    codes = encode(np.where(bad, 0, x), fmt)
    bad |= decode(codes, fmt) != x
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        v = x[idx].item()
        raise UsageError(f"{flag} holds {v!r} at {idx}, which is not a {fmt.name} value "
                         f"({fmt.min_value:g} .. {fmt.max_value:g}); quantize floats with "
                         "--scheme, or give raw codes with --codes")
    return codes


def _raw_codes(flag, x, fmt):
    fmt = get_format(fmt)
    if not np.issubdtype(x.dtype, np.integer):
        raise UsageError(f"--codes: {flag} must hold integer codes, not {x.dtype}")
    if x.size and (x.min() < 0 or x.max() >= fmt.n_codes):
        raise UsageError(f"--codes: {flag} must hold {fmt.name} codes 0..{fmt.n_codes - 1}")
    return x


def plain_operands(args, fmt_a, fmt_b):
    """``(a_codes, b_codes, a_scale (M,) or None, b_scale (N,) or None, float A @ B or
    None)`` from the flags, for PE kinds without block scales."""
    if (args.a is None) != (args.b is None):
        raise UsageError("--a and --b go together")
    if args.a is None:
        if args.codes:
            raise UsageError("--codes applies to --a/--b files")
        rng = np.random.default_rng(args.seed)
        fa, fb = get_format(fmt_a), get_format(fmt_b)
        a = rng.choice(np.flatnonzero(fa.finite), size=(args.m, args.k))
        b = rng.choice(np.flatnonzero(fb.finite), size=(args.k, args.n))
        return a, b, None, None, None
    a, b = _load(args.a, "a"), _load(args.b, "b")
    if a.shape[1] != b.shape[0]:
        raise UsageError(f"K mismatch: --a is {a.shape[0]} x {a.shape[1]}, --b is "
                         f"{b.shape[0]} x {b.shape[1]}")
    if args.codes:
        if args.scheme:
            raise UsageError("--codes and --scheme exclude each other")
        return _raw_codes("--a", a, fmt_a), _raw_codes("--b", b, fmt_b), None, None, None
    if not args.scheme:   # values of the PE's formats, encoded exactly
        return (values_to_codes("--a", a, fmt_a), values_to_codes("--b", b, fmt_b), None,
                None, None)
    sch = get_scheme(args.scheme)
    if sch.block not in (0, None):
        raise UsageError(f"--scheme {sch.name} scales blocks of {sch.block} along K; the "
                         "plain arrays take one scale per row / column (int4_tensor, "
                         "int4_channel, ...)")
    if get_format(sch.element) is not get_format(fmt_a) or \
            get_format(sch.element) is not get_format(fmt_b):
        raise UsageError(f"--scheme {sch.name} has {sch.element} elements but --pe "
                         f"{args.pe} takes {fmt_a} x {fmt_b}")
    qa, qb = quantize(a, sch, axis=-1), quantize(b, sch, axis=0)
    sa = np.broadcast_to(qa.block_scale_values(), (a.shape[0], 1))[:, 0]
    sb = np.broadcast_to(qb.block_scale_values(), (1, b.shape[1]))[0, :]
    return qa.codes, qb.codes, sa, sb, a.astype(np.float64) @ b.astype(np.float64)


def _simulator(args):
    if args.cocotb:
        return "icarus" if args.sim == "icarus" else "cocotb"
    if args.sim == "icarus":
        raise UsageError("--sim icarus runs through cocotb: add --cocotb")
    return args.sim


def run(args):
    if args.waves and not str(args.waves).endswith((".vcd", ".fst")):
        raise UsageError(f"--waves must name a .vcd or .fst file, not {args.waves!r}")
    check_positive(args, "m", "n", "k", "depth")
    check_positive(args, "seed", minimum=0)
    check_output_file("--out", args.out)
    check_output_file("--waves", args.waves)
    check_cache_dirs(args.build_dir)
    if args.a is None and args.b is None and not (args.a_gguf or args.b_gguf):
        # random operands: refuse before making them what the array could never hold
        elements = args.m * args.k + args.k * args.n
        if elements > MAX_BUFFER_BITS // 4:
            raise UsageError(f"a {args.m}x{args.k} @ {args.k}x{args.n} GEMM has {elements:,} "
                             f"operand elements; the simulated array holds at most "
                             f"{MAX_BUFFER_BITS // 4:,}: use a smaller --m/--n/--k")
    if args.energy and wants_block(args):
        raise UsageError("--energy takes MAC and dot-product PE kinds, not block-scaled "
                         "schemes")
    sim = _simulator(args)
    if sim == "icarus" and "icarus" not in available_simulators():
        raise UsageError("--cocotb --sim icarus needs Icarus Verilog (iverilog), which is not "
                         "installed (apt-get install iverilog); use --cocotb alone for "
                         "Verilator")
    if bitserial.wants_bitserial(args) or args.dtype_mix or args.group is not None:
        out, text, status = bitserial.run_gemm(args, sim)
        emit(args, out, text)
        return status
    extra = {}
    if wants_block(args):
        scheme, changes, a, b, floats = block_operands(args)
        cfg = config_from_args(args, **changes)
        ref = floats["a"] @ floats["b"] if len(floats) == 2 else None
        extra = {"scheme": scheme, "block_size": cfg.pe_spec.block_size,
                 "acc_frac_bits": cfg.pe_spec.frac_bits,
                 "inputs": {f: ("gguf:" + getattr(args, f"{f}_tensor"))
                            if getattr(args, f"{f}_gguf") else (getattr(args, f) or "random")
                            for f in ("a", "b")}}
    else:
        fa, fb = pe_kind(args.pe).formats[:2]
        a, b, sa, sb, ref = plain_operands(args, fa, fb)
        cfg = config_from_args(args)
    m, k = a.shape
    n = b.shape[1]
    extra.update(_accumulator_note(cfg, k, refuse=args.overflow == "error"))
    if wants_stream(args):
        payload, text, status = stream_gemm(args, cfg, a, b, sim)
        emit(args, {**payload, **extra}, text)
        return status
    sched = schedule_for(cfg, m, n, k)     # once: it sizes the buffers and runs the job
    if args.depth is None:
        _check_buffer_size(cfg, sched, (m, n, k))
        cfg = fit_config(cfg, sched)
    check = check_gemm(cfg, a, b, sim=sim, waves=args.waves, build_dir=args.build_dir,
                       schedule=sched)
    value = result_values(cfg, check.result, a, b)
    if not wants_block(args) and sa is not None:
        value = value * (sa[:, None] * sb[None, :])
    out = {**check.summary(), **extra}
    if wants_block(args):
        exact = a.dequantize() @ b.dequantize()
        out["max_abs_error_vs_dequantized"] = float(np.max(np.abs(value - exact)))
        if ref is not None:
            out["max_abs_error_vs_float"] = float(np.max(np.abs(value - ref)))
    elif ref is not None:  # the 4-bit result against the float64 product of the inputs
        out["rel_error"] = float(np.linalg.norm(value - ref) /
                                 max(np.linalg.norm(ref), 1e-300))
    if args.out:
        out["out"] = write_npy("--out", args.out, value)
    if args.waves:
        out["waves"] = args.waves
    if args.area:
        out["area"] = _pe_array_area(cfg, args.build_dir)
    if args.energy:
        out["energy"] = _energy(cfg, sched, a, b, args)
    emit(args, out, _text(cfg, check, out))
    return 1 if check.mismatches else 0


#: The most on-chip buffer the simulated array may hold (bits): beyond it, elaborating and
#: compiling the model would take longer than any user waits (the buffers hold the whole GEMM).
MAX_BUFFER_BITS = 1 << 30
MAX_DEPTH = 1 << 24          # ArrayConfig's largest buffer depth


def _check_buffer_size(cfg, sched, shape):
    lay = cfg.top_layout
    bits = (sched.a_writes * lay.a_word_bits + sched.b_writes * lay.b_word_bits
            + sched.c_words * cfg.cols * cfg.acc_bits)
    words = max(sched.a_writes, sched.b_writes, sched.c_words)
    if bits > MAX_BUFFER_BITS or words > MAX_DEPTH:
        m, n, k = shape
        raise UsageError(f"a {m}x{k} @ {k}x{n} GEMM needs {bits / 8 / 2 ** 20:.0f} MiB of "
                         f"on-chip buffers on a {cfg.rows}x{cfg.cols} array (they hold the whole "
                         f"GEMM, {words:,} words deep); the limits are "
                         f"{MAX_BUFFER_BITS / 8 / 2 ** 20:.0f} MiB and {MAX_DEPTH:,} words: use "
                         "a smaller --m/--n/--k or a larger --array")


def _accumulator_note(cfg, k, *, refuse=False):
    """The narrowest accumulator that cannot overflow on this K, and a warning on stderr when
    the configured one is narrower (results then wrap or saturate, exactly as the golden
    model does, so the check still passes)."""
    spec = cfg.pe_spec
    if spec.family == "dp" or spec.family == "mac":
        need = min_acc_bits(spec.fmt_a, spec.fmt_b, k, product=spec.product,
                            acc_frac_bits=spec.golden_frac)
    else:
        return {}
    if cfg.acc_bits < need and refuse:
        raise UsageError(f"--overflow error: --acc-bits {cfg.acc_bits} is narrower than the "
                         f"{need} bits a K = {k} dot product can need "
                         "(nybble.sw.min_acc_bits); raise --acc-bits")
    if cfg.acc_bits < need:
        print(f"nybble gemm: warning: --acc-bits {cfg.acc_bits} is narrower than the {need} "
              f"bits a K = {k} dot product can need (nybble.sw.min_acc_bits): results "
              f"{'wrap' if cfg.overflow == 'wrap' else 'saturate'} where they overflow",
              file=sys.stderr)
    return {"acc_bits_needed": need, "acc_may_overflow": cfg.acc_bits < need}


def _text(cfg, check, out):
    m, n, k = check.m, check.n, check.k
    what = f"{cfg.rows}x{cfg.cols} {cfg.pe} {cfg.dataflow}"
    if "scheme" in out:
        what = (f"{cfg.rows}x{cfg.cols} {cfg.pe} array, {out['scheme']} (blocks of "
                f"{out['block_size']}); accumulator {cfg.acc_bits} bits, "
                f"{out['acc_frac_bits']} fraction bits, {cfg.overflow}")
    lines = [
        f"{m}x{k} @ {k}x{n} on a {what} ({check.simulator})",
        f"  cycles {check.cycles} (ideal {check.ideal_cycles:.0f}, utilization "
        f"{check.utilization:.1%}; cycle model {check.model_cycles})",
        f"  mismatches vs nybble.sw golden: {check.mismatches} of {m * n}"
        + ("" if check.first_mismatch is None else
           " (first at row {}, column {}: got {}, want {})".format(*check.first_mismatch)),
    ]
    if "rel_error" in out:
        lines.append(f"  relative error vs the float64 product: {out['rel_error']:.4g}")
    if "max_abs_error_vs_dequantized" in out:
        lines.append(f"  max |result - dequantized A @ B| = "
                     f"{out['max_abs_error_vs_dequantized']:.3g}"
                     + (f", max |result - float A @ B| = {out['max_abs_error_vs_float']:.3g}"
                        if "max_abs_error_vs_float" in out else ""))
    lines.append(f"  simulated {check.macs_per_second or 0:.3g} MAC/s "
                 f"({check.sim_seconds:.3f} s), build {check.build_seconds:.1f} s"
                 f"{' (cached)' if check.cached_build else ''}")
    if "area" in out:
        ar = out["area"]
        lines.append(f"  area (Yosys generic, PEs only): {ar['pe_transistors']} transistors / "
                     f"{ar['pe_cells']} cells per PE x {cfg.pes} = "
                     f"{ar['array_transistors']} transistors")
    if "energy" in out:
        e = out["energy"]
        lines.append(f"  energy: compute {e['compute_pj']:.4g} pJ ({e['pe_pj_per_mac']:.3f} "
                     f"pJ/MAC), SRAM {e['sram_pj']:.4g} pJ, DRAM {e['dram_pj'][0]:.4g}-"
                     f"{e['dram_pj'][1]:.4g} pJ; compute share {e['compute_share'][1]:.1%}-"
                     f"{e['compute_share'][0]:.1%}")
    return "\n".join(lines)


def _energy(cfg, sched, a, b, args):
    """``--energy``: :func:`nybble.sim.gemm_energy.gemm_energy` of the run."""
    from nybble.sim.gemm_energy import gemm_energy
    print("measuring energy on the PE's netlist (Yosys + Verilator, cached) ...",
          file=sys.stderr)
    return gemm_energy(cfg, sched, a, b, build_dir=args.build_dir, log=sys.stderr)


def _pe_array_area(cfg, build_dir):
    """Synthesized area of one PE of ``cfg`` (cached) times the PE count."""
    from nybble.synth.area import pe_area
    print(f"synthesizing one {cfg.pe} PE with Yosys (cached) ...", file=sys.stderr)
    r = pe_area(cfg.pe, acc_bits=cfg.acc_bits, overflow=cfg.overflow, build_dir=build_dir)
    return {"pe_cells": r.cells, "pe_transistors": r.transistors,
            "array_cells": r.cells * cfg.pes, "array_transistors": r.transistors * cfg.pes,
            "scope": "PEs only (buffers, sequencer, skew and drain excluded: nybble cost "
                     "--array synthesizes whole arrays)"}
