"""Operands and the run-and-check of bit-serial mixed-data-type arrays (BitMoD-style).

A bit-serial array (``ArrayConfig(pe="bitserial")``) takes int8 activation codes and
:class:`~nybble.hw.spec.TypedWeights`: weight codes with one data type per weight, in practice
one per group of ``group`` consecutive k per output column (BitMoD's per-group types).

* :func:`parse_dtype_mix` / :func:`random_weights` (:func:`random_types`): random codes whose groups draw their data
  types from a mix (``"int4=0.5,fp4_e2m1=0.3,e3m0=0.2"``);
* :func:`bitmod_weights`: real weights quantized with ``bitmod_g<group>`` (each group's type
  and float32 scale chosen by :func:`nybble.sw.quantize`);
* :func:`int8_rows`: real activations as int8 codes with one float scale per row;
* :func:`tradeoff_rows`: throughput per area at data-type mixes against bit-parallel arrays;
* :func:`check_bitserial_gemm`: the whole GEMM on the RTL, checked bit for bit.  The array's
  accumulator sums all of K on the integer grid, so weights with per-group float scales run
  as one job per group (K = ``group``, each checked against the golden model) and the host
  applies the scales to the partial sums in float64; weights without scales run as one job.
"""

from dataclasses import dataclass
import sys

import numpy as np

from nybble.hw.spec import TypedWeights
from nybble.sw import encode, get_format, quantize
from nybble.sw.errors import ParameterError, ParameterTypeError
from nybble.sw.formats import check_integral
from nybble.sw.golden import acc_to_float
from nybble.sw.quantize import BITMOD_TYPES
from .check import check_gemm
from .cycles import gemm_cycles
from .schedule import fit_config, schedule_for

__all__ = ["parse_dtype_mix", "random_types", "random_weights", "bitmod_weights", "int8_rows",
           "BitSerialCheck", "check_bitserial_gemm", "MIXES", "RIVALS", "tradeoff_rows"]

#: Named data-type mixes of the comparisons: all-int4, 50/30/20 int4/fp4/e3m0, all-e3m0.
MIXES = {"all-int4": {"int4": 1.0},
         "int4/fp4/e3m0=50/30/20": {"int4": 0.5, "fp4_e2m1": 0.3, "e3m0": 0.2},
         "all-e3m0": {"e3m0": 1.0}}


def parse_dtype_mix(text, dtypes):
    """``"int4=0.5,fp4_e2m1=0.3,e3m0=0.2"`` -> ``{name: fraction}`` over ``dtypes`` (the PE's
    data types); the fractions must be >= 0 and sum to 1."""
    if not isinstance(text, str):
        raise ParameterTypeError(f"dtype mix must be a string like 'int4=0.5,e3m0=0.5', "
                                 f"not {text!r}")
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, frac = part.partition("=")
        name = name.strip()
        if name not in dtypes:
            raise ParameterError(f"dtype mix: data type must be one of {', '.join(dtypes)}, "
                                 f"not {name!r}")
        try:
            f = float(frac) if eq else float("nan")
        except ValueError:
            f = float("nan")
        if not f >= 0:
            raise ParameterError(f"dtype mix: {name} needs a fraction >= 0 ({name}=0.5), not "
                                 f"{frac.strip()!r}")
        mix[name] = mix.get(name, 0.0) + f
    if not mix or abs(sum(mix.values()) - 1) > 1e-6:
        raise ParameterError(f"dtype mix: the fractions must sum to 1, not "
                             f"{sum(mix.values()):g} ({text!r})")
    return mix


def random_types(spec, k, n, mix, *, group=128, rng=None):
    """K x N selectors of the bit-serial PE ``spec``: every group of ``group`` k of every
    column draws its data type from ``mix`` (``{name: fraction}``)."""
    k, n = check_integral("k", k, 1), check_integral("n", n, 1)
    group = check_integral("group", group, 1)
    rng = np.random.default_rng(rng)
    names = list(mix)
    idx = np.array([spec.dtypes.index(d) for d in names], np.int16)
    p = np.array([mix[d] for d in names], np.float64)
    groups = -(-k // group)
    return np.repeat(idx[rng.choice(len(names), size=(groups, n), p=p / p.sum())], group,
                     axis=0)[:k]


def random_weights(spec, k, n, mix, *, group=128, rng=None):
    """Random :class:`TypedWeights` (K x N): data types from :func:`random_types`, every code
    uniform over the type's 16 codes."""
    rng = np.random.default_rng(rng)
    sel = random_types(spec, k, n, mix, group=group, rng=rng)
    return TypedWeights(rng.integers(0, 1 << spec.b_bits, size=sel.shape), sel)


def bitmod_weights(spec, w, group=128):
    """Real weights ``w`` (K x N floats) quantized with ``bitmod_g<group>`` along K: returns
    ``(TypedWeights, scales)``, ``scales`` the (groups x N) float32 group scales."""
    w = np.asarray(w, np.float64)
    if w.ndim != 2:
        raise ParameterError(f"weights must be a 2-D K x N array, not shape {w.shape}")
    q = quantize(w, f"bitmod_g{check_integral('group', group, 1)}", axis=0)
    missing = [t for t in BITMOD_TYPES if t not in spec.dtypes]
    if missing:
        raise ParameterError(f"the bit-serial PE lacks the BitMoD types {', '.join(missing)}")
    lut = np.array([spec.dtypes.index(t) for t in BITMOD_TYPES])
    sel = np.repeat(lut[np.asarray(q.extra["types"], np.int64)], group, axis=0)[:w.shape[0]]
    return TypedWeights(np.asarray(q.codes, np.int64), sel), np.asarray(q.scales, np.float64)


def int8_rows(a):
    """Activations ``a`` (M x K) as int8 codes: integers in -128..127 as they are (scale 1),
    other values symmetric per row (scale ``amax / 127``, round to nearest even).  Returns
    ``(codes, scales (M,))``."""
    a = np.asarray(a, np.float64)
    if a.ndim != 2 or not np.isfinite(a).all():
        raise ParameterError(f"activations must be a finite 2-D M x K array, not shape {a.shape}")
    if np.all(a == np.round(a)) and a.min(initial=0) >= -128 and a.max(initial=0) <= 127:
        return encode(a, "int8").astype(np.int64), np.ones(a.shape[0])
    amax = np.max(np.abs(a), axis=1)
    s = np.where(amax > 0, amax / 127.0, 1.0)
    return encode(a / s[:, None], "int8").astype(np.int64), s


@dataclass
class BitSerialCheck:
    """The verdict of a GEMM on a bit-serial array, over its jobs (one, or one per group):
    ``result`` (M x N float64: the accumulators as values, group and row scales applied),
    ``checks`` (the :class:`~nybble.sim.check.GemmCheck` of every job), ``mean_cycles_per_mac``
    (the weights' types), and the summed figures."""

    result: np.ndarray
    checks: list
    mean_cycles_per_mac: float

    mismatches = property(lambda self: sum(c.mismatches for c in self.checks))
    cycles = property(lambda self: sum(c.cycles for c in self.checks))
    model_cycles = property(lambda self: sum(c.model_cycles for c in self.checks))
    ideal_cycles = property(lambda self: sum(c.ideal_cycles for c in self.checks))
    sim_seconds = property(lambda self: sum(c.sim_seconds for c in self.checks))

    @property
    def utilization(self):
        """Bit-parallel ideal (one MAC per PE per cycle) over the cycles."""
        return self.ideal_cycles / self.cycles

    def summary(self):
        first = next((c for c in self.checks if c.mismatches), self.checks[0])
        s = first.summary()
        s.update(k=sum(c.k for c in self.checks), jobs=len(self.checks),
                 mismatches=self.mismatches, cycles=self.cycles,
                 model_cycles=self.model_cycles, ideal_cycles=self.ideal_cycles,
                 utilization=self.utilization, mean_cycles_per_mac=self.mean_cycles_per_mac,
                 sim_seconds=self.sim_seconds,
                 macs_per_second=(self.result.size * sum(c.k for c in self.checks)
                                  / self.sim_seconds if self.sim_seconds > 0 else None),
                 ideal_note="bit-parallel ideal: M*N*K / (rows*cols), one MAC per PE per cycle")
        return s


def check_bitserial_gemm(config, a, w, *, group_scales=None, group=None, row_scales=None,
                         sim="verilator", build_dir="build", log=sys.stderr, fit=True,
                         waves=None):
    """``a @ w`` on the bit-serial array ``config`` (int8 codes ``a``, :class:`TypedWeights`
    ``w``), checked bit for bit; returns a :class:`BitSerialCheck`.

    ``group_scales`` (groups x N, with ``group``): per-group weight scales -- one job per
    group, partial sums scaled on the host.  ``row_scales`` (M,): activation row scales.
    ``fit``: raise the buffer depths to the job (:func:`nybble.sim.schedule.fit_config`);
    ``waves``: a waveform file (one job only)."""
    if not config.bit_serial:
        raise ParameterError(f"ArrayConfig.pe must be bit-serial, not {config.pe!r}")
    config.pe_spec.check_weights("w", w)
    a = np.asarray(a)
    k = a.shape[1] if a.ndim == 2 else -1
    frac = config.pe_spec.frac_bits
    if group_scales is None:
        spans, scales = [(0, k)], None
    else:
        group = check_integral("group", group, 1)
        scales = np.asarray(group_scales, np.float64)
        spans = [(g, min(g + group, k)) for g in range(0, k, group)]
        if scales.shape != (len(spans), w.shape[1]):
            raise ParameterError(f"group_scales must have shape {(len(spans), w.shape[1])}, "
                                 f"not {scales.shape}")
    if waves and len(spans) > 1:
        raise ParameterError(f"waves: the GEMM runs as {len(spans)} jobs (one per group); "
                             "dump waveforms of a single-job GEMM")
    checks, total = [], 0.0
    for g, (lo, hi) in enumerate(spans):
        part = TypedWeights(np.asarray(w.codes)[lo:hi], np.asarray(w.sel)[lo:hi])
        sched = schedule_for(config, a.shape[0], w.shape[1], hi - lo, sel=part.sel)
        cfg = fit_config(config, sched) if fit else config
        c = check_gemm(cfg, a[:, lo:hi], part, sim=sim, build_dir=build_dir, log=log,
                       schedule=sched, waves=waves)
        checks.append(c)
        v = acc_to_float(c.result, frac)
        total = total + (v if scales is None else v * scales[g][None, :])
    if row_scales is not None:
        total = total * np.asarray(row_scales, np.float64)[:, None]
    mean = float(config.pe_spec.sel_cycles[np.asarray(w.sel)].mean())
    return BitSerialCheck(np.asarray(total, np.float64), checks, mean)


#: The bit-parallel arrays a bit-serial array is compared with (int8 activations).
RIVALS = ("int8_int4", "int8_fp4_e2m1", "int8_e3m0")


def tradeoff_rows(config, areas, *, mixes=None, shape=(256, 256, 256), group=128, seed=0):
    """Throughput per area of the bit-serial array ``config`` at each data-type mix against
    bit-parallel arrays of the same shape.

    ``areas``: PE kind -> (transistors, um^2 or None) of whole arrays (``bitserial`` and the
    rivals present); ``mixes``: name -> ``{type: fraction}`` (default :data:`MIXES`).  MACs per
    cycle are ``M*N*K / cycles`` of one ``shape`` GEMM from the exact cycle model (== RTL),
    the bit-serial weights' types drawn per group of ``group`` (seeded).  Returns rows with
    ``design``, ``mix``, ``cycles``, ``macs_per_cycle``, ``mean_cycles_per_mac``,
    ``transistors``, ``macs_per_cycle_per_mtransistor`` and ``macs_per_cycle_per_mm2``."""
    m, n, k = shape
    mixes = MIXES if mixes is None else mixes
    rows = []

    def row(design, mix, g, cycles_mean):
        tr, um2 = areas[design]
        mpc = m * n * k / g.cycles
        rows.append({"design": design, "mix": mix, "cycles": g.cycles, "macs_per_cycle": mpc,
                     "mean_cycles_per_mac": cycles_mean, "transistors": tr,
                     "macs_per_cycle_per_mtransistor": mpc / tr * 1e6,
                     "macs_per_cycle_per_mm2": None if um2 is None else mpc / (um2 * 1e-6)})

    spec = config.pe_spec
    for name, mix in mixes.items():
        sel = random_types(spec, k, n, mix, group=group, rng=seed)
        g = gemm_cycles(config, m, n, k, sel=sel)
        row(config.pe, name, g, g.mean_cycles_per_mac)
    for pe in RIVALS:
        if pe in areas:
            row(pe, "-", gemm_cycles(config.replace(pe=pe), m, n, k), 1.0)
    return rows
