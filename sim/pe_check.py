"""Drive a PE of :mod:`nybble.hw.pe` in Amaranth's simulator and check it against the golden model.

A PE is exercised as a list of *steps* (:class:`Steps`): one step is what the PE takes in one
``valid`` cycle -- ``lanes`` activation codes, ``lanes`` weight codes, the ``first`` flag and,
for the bit-serial PE, the data-type selector.  :func:`simulate` applies them back to back
(every cycle for the MAC / dot-product PEs; as soon as ``ready`` allows for the bit-serial
one) and returns ``acc`` and ``overflow`` as they stand once each step has landed.
:func:`expected` computes the same from :mod:`nybble.sw` (the PE's :meth:`model` is
``nybble.sw.gemm_codes`` with the PE's options): ``acc`` after each step is the golden block
accumulator of the job so far (the steps since the last ``first``), and ``overflow`` is set when
some step's exact sum ``acc + step`` left the accumulator's range.

:func:`check_pairs` runs every pair of input codes (every finite pair; a seeded random sample
for 16-bit formats), one pair per lane per step, each step a job of its own
(``first`` = 1), and counts mismatches.  :func:`check_product_unit` does the same for a
bare product unit, many pairs per simulated settle, which is how the 65,536 pairs of an 8-bit
format are checked in seconds.
"""

from dataclasses import dataclass
import time

import numpy as np
from amaranth.sim import Simulator

from nybble.sw import gemm_codes, get_format
from nybble.hw.kinds import make_pe
from .block_check import check_block_pairs
from .pe_drive import CheckResult, drive_pipelined, operand_words, run_testbench
from nybble.sw.errors import ParameterError

__all__ = ["Steps", "simulate", "expected", "pair_steps", "check_pairs", "CheckResult",
           "check_product_unit", "SAMPLE_PAIRS", "compare", "random_jobs"]

#: Pairs checked for formats with more than 256 codes (a seeded random sample).
SAMPLE_PAIRS = 4096


@dataclass
class Steps:
    """``a``, ``b``: int arrays ``(n, lanes)`` of codes; ``first``: bool ``(n,)``; ``sel``:
    int ``(n,)`` data-type selectors (bit-serial PE only, else None)."""
    a: np.ndarray
    b: np.ndarray
    first: np.ndarray
    sel: np.ndarray = None

    def __len__(self):
        return len(self.first)


def simulate(pe, steps, *, table=None, vcd=None):
    """Run ``steps`` through ``pe``; returns ``(acc, overflow)`` arrays (object / bool), the
    values after each step has landed (``pe.latency`` edges, or the data type's cycles).

    ``table``: codebook entries (integers on the LUT grid) written through the LUT PE's write
    port before the first step; a PE whose table is held by the array (``lut_table="array"``)
    gets them -- by default the spec's ``table_init``, what the array's table holds after
    reset -- on its ``lut_entries`` input.  ``vcd``: path of a waveform file to write.
    """
    n = len(steps)
    acc = np.zeros(n, dtype=object)
    ovf = np.zeros(n, dtype=bool)
    a_words = operand_words(steps.a, pe.fmt_a.bits)
    b_words = operand_words(steps.b, pe.fmt_b.bits)
    serial = _spec(pe).family == "bitserial"
    cycles = list(pe.cycles_per_mac.values()) if serial else None

    broadcast = getattr(_spec(pe), "lut_table", None) == "array"

    async def bench(ctx):
        if broadcast:
            for i, v in enumerate(_spec(pe).table_init if table is None else table):
                ctx.set(pe.lut_entries[i], int(v))
        elif table is not None:
            ctx.set(pe.lut_we, 1)
            for i, v in enumerate(table):
                ctx.set(pe.lut_addr, i)
                ctx.set(pe.lut_data, int(v))
                await ctx.tick()
            ctx.set(pe.lut_we, 0)
        if serial:
            for i in range(n):
                s = int(steps.sel[i])
                ctx.set(pe.a, a_words[i])
                ctx.set(pe.b, b_words[i])
                ctx.set(pe.sel, s)
                ctx.set(pe.first, int(steps.first[i]))
                ctx.set(pe.valid, 1)
                await ctx.tick()
                ctx.set(pe.valid, 0)
                c = cycles[s] if s < len(cycles) else 1
                if c > 1:
                    await ctx.tick().repeat(c - 1)
                acc[i] = ctx.get(pe.acc)
                ovf[i] = ctx.get(pe.overflow)
            return
        await drive_pipelined(ctx, pe, a_words, b_words, steps.first, acc, ovf)

    run_testbench(pe, bench, vcd)
    return acc, ovf


def _spec(pe):
    """The pure spec of ``pe`` (a PE component or already a spec): the golden side of every
    check needs no component."""
    return getattr(pe, "spec", pe)


def _model(pe, a, b, sel=None, **override):
    """The PE spec's model for the dot products of rows of ``a`` (M, K) with columns of
    ``b`` (K, N) (``sel``: per-k data types of a bit-serial PE)."""
    if _spec(pe).family == "bitserial":
        return _spec(pe).model(a, b, sel, **override)
    return _spec(pe).model(a, b, **override)


def _exact_steps(pe, steps, idx):
    """Exact (no overflow) sum of each step in ``idx``, on the accumulator grid."""
    big = {"acc_bits": 4096, "overflow": "wrap"}
    out = np.zeros(len(idx), dtype=object)
    for o, i in enumerate(idx):
        sel = None if steps.sel is None else [steps.sel[i]] * steps.a.shape[1]
        out[o] = int(_model(pe, steps.a[i][None, :], steps.b[i][:, None], sel, **big)[0, 0])
    return out


def expected(pe, steps):
    """Golden ``(acc, overflow)`` after each step (see the module docstring; IEEE-style FP
    PEs: :meth:`~nybble.hw.spec.IeeeFpSpec.model_steps`)."""
    if _spec(pe).family == "ieee":
        return _spec(pe).model_steps(steps.a, steps.b, steps.first)
    n = len(steps)
    acc = np.zeros(n, dtype=object)
    ovf = np.zeros(n, dtype=bool)
    first = np.asarray(steps.first, dtype=bool)
    if n and not first[0]:
        raise ParameterError("the first step must have first=1 (a PE's power-on accumulator is "
                         "not part of the contract)")
    starts = list(np.flatnonzero(first)) + [n]
    lim = 1 << (pe.acc_bits - 1)
    single = [s for s, e in zip(starts[:-1], starts[1:]) if e - s == 1]
    # one-step jobs, the bulk of a pair sweep: batched, one gemm_codes per chunk
    _single_jobs(pe, steps, single, acc)
    exact = np.zeros(n, dtype=object)
    _single_jobs(pe, steps, single, exact, acc_bits=4096, overflow="wrap")
    for i in single:
        ovf[i] = not -lim <= exact[i] < lim
    for s, e in zip(starts[:-1], starts[1:]):
        if e - s == 1:
            continue
        exact = _exact_steps(pe, steps, range(s, e))
        prev, flag = 0, False
        for j in range(s, e):
            a = steps.a[s:j + 1].reshape(1, -1)
            b = steps.b[s:j + 1].reshape(-1, 1)
            sel = None if steps.sel is None else np.repeat(steps.sel[s:j + 1], steps.a.shape[1])
            acc[j] = int(_model(pe, a, b, sel)[0, 0])
            total = prev + exact[j - s]
            flag = flag or not -lim <= total < lim
            ovf[j] = flag
            prev = acc[j]
    return acc, ovf


def _single_jobs(pe, steps, idx, acc, chunk=64, **override):
    """Golden result of one-step jobs: rows of ``a`` times columns of ``b^T``, diagonal."""
    idx = np.asarray(idx, dtype=np.int64)
    if steps.sel is not None:
        groups = [idx[steps.sel[idx] == s] for s in np.unique(steps.sel[idx])]
    else:
        groups = [idx]
    for g in groups:
        for c in range(0, len(g), chunk):
            part = g[c:c + chunk]
            sel = None if steps.sel is None else [steps.sel[part[0]]] * steps.a.shape[1]
            r = _model(pe, steps.a[part], steps.b[part].T, sel, **override)
            for o, i in enumerate(part):
                acc[i] = int(r[o, o])


def _finite_codes(fmt):
    return np.flatnonzero(get_format(fmt).finite)


def _special_codes(fmt):
    """Inf codes, NaN codes (the first and last two), zeros, the subnormal / normal boundary
    codes and the largest finite codes of a float format."""
    f = get_format(fmt)
    nan = f.nan_codes
    out = set(f.inf_codes) | set(nan[:2] + nan[-2:])  # quiet / signalling, both signs
    for s in (0, 1 << (f.bits - 1)):
        for c in (0, 1, (1 << f.man_bits) - 1, 1 << f.man_bits):
            out.add(s | c)
        fin = np.flatnonzero(f.finite & (np.arange(f.n_codes) >> (f.bits - 1) == s >> (f.bits - 1)))
        out.add(int(fin[np.argmax(np.abs(f.values[fin]))]))
    return np.array(sorted(out), dtype=np.int64)


def _pair_list(fmt_a, fmt_b, sample, seed, specials=False):
    """Every finite pair (a-major), or a seeded sample of ``sample`` pairs plus the extreme
    codes' pairs when there are more than 65,536.  ``specials``: every code (NaN and Inf too),
    and the sample of a float format starts with every pair of its special codes
    (:func:`_special_codes`)."""
    if specials:
        ca = np.arange(get_format(fmt_a).n_codes)
        cb = np.arange(get_format(fmt_b).n_codes)
        if len(ca) * len(cb) > 65536:
            sa, sb = _special_codes(fmt_a), _special_codes(fmt_b)
            rng = np.random.default_rng(seed)
            a = np.concatenate([np.repeat(sa, len(sb)), rng.choice(ca, sample)])
            b = np.concatenate([np.tile(sb, len(sa)), rng.choice(cb, sample)])
            return a, b, False
    else:
        ca, cb = _finite_codes(fmt_a), _finite_codes(fmt_b)
    if len(ca) * len(cb) <= 65536:
        a = np.repeat(ca, len(cb))
        b = np.tile(cb, len(ca))
        return a, b, True
    rng = np.random.default_rng(seed)
    fa, fb = get_format(fmt_a), get_format(fmt_b)
    ext_a = ca[[np.argmax(fa.values[ca]), np.argmin(fa.values[ca]), 0, 1]]
    ext_b = cb[[np.argmax(fb.values[cb]), np.argmin(fb.values[cb]), 0, 1]]
    a = np.concatenate([np.repeat(ext_a, 4), rng.choice(ca, sample - 16)])
    b = np.concatenate([np.tile(ext_b, 4), rng.choice(cb, sample - 16)])
    return a, b, False


def pair_steps(pe, *, sample=SAMPLE_PAIRS, seed=0):
    """Steps covering every input pair of ``pe`` (module docstring); returns ``(steps,
    lane_pairs, exhaustive)``.  Dot-product PEs rotate the pair list across lanes so that every
    lane sees every pair; the bit-serial PE repeats the sweep for every data type."""
    if _spec(pe).family == "bitserial":
        sa, sb, ss = [], [], []
        exhaustive = True
        for s, d in enumerate(pe.dtypes):
            a, b, ex = _pair_list(pe.fmt_a, d, sample, seed)
            exhaustive &= ex
            sa.append(a)
            sb.append(b)
            ss.append(np.full(len(a), s))
        a, b, sel = np.concatenate(sa), np.concatenate(sb), np.concatenate(ss)
        st = Steps(a[:, None], b[:, None], np.ones(len(a), bool), sel)
        return st, len(a), exhaustive
    ieee = _spec(pe).family == "ieee"
    a, b, exhaustive = _pair_list(pe.fmt_a, pe.fmt_b, sample, seed, specials=ieee)
    n, k = len(a), pe.lanes
    stride = max(1, n // k)
    idx = (np.arange(n)[:, None] + stride * np.arange(k)[None, :]) % n
    st = Steps(a[idx], b[idx], np.ones(n, bool))
    if ieee:
        st = _after_random_state(pe, st, seed)
    return st, n * k, exhaustive


def _after_random_state(pe, pairs, seed):
    """IEEE-style FP PEs: each pair step added to a random accumulator state -- a step of
    random finite codes with ``first`` before it -- so that the FP32 addition and its rounding
    see every pair (NaN / Inf pairs included)."""
    rng = np.random.default_rng(seed + 1)
    n, k = pairs.a.shape
    ra = rng.choice(_finite_codes(pe.fmt_a), (n, k))
    rb = rng.choice(_finite_codes(pe.fmt_b), (n, k))
    a = np.stack([ra, pairs.a], axis=1).reshape(2 * n, k)
    b = np.stack([rb, pairs.b], axis=1).reshape(2 * n, k)
    first = np.tile([True, False], n)
    return Steps(a, b, first)


def compare(pe, steps, got, want):
    """Indices of mismatching steps and a message naming the first (codes, got, want)."""
    acc_g, ovf_g = got
    acc_w, ovf_w = want
    bad = [i for i in range(len(steps)) if acc_g[i] != acc_w[i] or bool(ovf_g[i]) != bool(ovf_w[i])]
    msg = ""
    if bad:
        i = bad[0]
        sel = "" if steps.sel is None else f", sel={int(steps.sel[i])}"
        msg = (f"step {i}: a={[int(x) for x in steps.a[i]]}, b={[int(x) for x in steps.b[i]]}"
               f"{sel}, first={bool(steps.first[i])}: acc={acc_g[i]} overflow={bool(ovf_g[i])},"
               f" expected acc={acc_w[i]} overflow={bool(ovf_w[i])}")
    return bad, msg


def check_pairs(kind_or_pe, *, sample=SAMPLE_PAIRS, seed=0, progress=None):
    """Run every input pair of a PE (a kind name or a PE) and compare with the golden model."""
    t0 = time.perf_counter()
    name = kind_or_pe if isinstance(kind_or_pe, str) else type(kind_or_pe).__name__
    pe = make_pe(kind_or_pe) if isinstance(kind_or_pe, str) else kind_or_pe
    if _spec(pe).family == "block":  # block-scaled PEs: elements plus scales
        return check_block_pairs(pe, name=name, progress=progress)
    steps, lane_pairs, exhaustive = pair_steps(pe, sample=sample, seed=seed)
    if progress:
        progress(f"{name}: {len(steps)} steps ({lane_pairs} lane pairs) in the Amaranth simulator")
    got = simulate(pe, steps)
    want = expected(pe, steps)
    bad, msg = compare(pe, steps, got, want)
    return CheckResult(pe=name, formats=pe.formats, latency=pe.latency,
                       cycles_per_mac=pe.cycles_per_mac, pairs_checked=lane_pairs,
                       steps=len(steps), mismatches=len(bad), exhaustive=exhaustive,
                       seconds=time.perf_counter() - t0, first_mismatch=msg)


def check_product_unit(unit, a_codes, b_codes, *, product="exact"):
    """Settle ``unit`` (a product unit) on every ``(a_codes[i], b_codes[i])`` and compare ``p``
    with :func:`nybble.sw.gemm_codes` of that pair on the unit's grid.  Returns the list of
    mismatches ``(a, b, got, want)``."""
    a_codes = np.asarray(a_codes, dtype=np.int64)
    b_codes = np.asarray(b_codes, dtype=np.int64)
    kw = dict(acc_bits=4096, product=product, acc_frac_bits=unit.frac_bits)
    ua, ub = np.unique(a_codes), np.unique(b_codes)
    if len(ua) * len(ub) <= 1 << 17:  # the whole table of products at once
        table = gemm_codes(ua[:, None], ub[None, :], unit.fmt_a, unit.fmt_b, **kw)
        ia = {int(c): i for i, c in enumerate(ua)}
        ib = {int(c): i for i, c in enumerate(ub)}
        want = [int(table[ia[x], ib[y]]) for x, y in zip(a_codes.tolist(), b_codes.tolist())]
    else:  # a sample: 64 pairs per call, the diagonal of a 64 x 64 table
        want = []
        for c in range(0, len(a_codes), 64):
            t = gemm_codes(a_codes[c:c + 64, None], b_codes[None, c:c + 64], unit.fmt_a,
                           unit.fmt_b, **kw)
            want.extend(int(t[i, i]) for i in range(t.shape[0]))
    bad = []

    async def bench(ctx):
        prev_a = None
        for x, y, w in zip(a_codes.tolist(), b_codes.tolist(), want):
            if x != prev_a:
                ctx.set(unit.a, x)
                prev_a = x
            ctx.set(unit.b, y)
            await ctx.delay(1e-9)
            p = ctx.get(unit.p)
            if p != w:
                bad.append((x, y, p, w))

    sim = Simulator(unit)
    sim.add_testbench(bench)
    sim.run()
    return bad


def _signed_extremes(fmt, frac=0.25):
    """Finite codes of ``fmt`` in the top ``frac`` by magnitude, split by sign."""
    f = get_format(fmt)
    fin = np.flatnonzero(f.finite)
    v = f.values[fin]
    order = np.argsort(-np.abs(v), kind="stable")
    top = fin[order[:max(2, int(len(fin) * frac))]]
    pos = top[f.values[top] > 0]
    neg = top[f.values[top] < 0]
    return fin, pos, neg


def random_jobs(pe, n_steps, *, seed=0, max_len=24, extreme=0.8):
    """Back-to-back jobs of random length (1..``max_len`` steps, ``first`` on each job's
    first step) whose products mostly share one sign per job and are drawn from the largest
    codes, so that narrow accumulators cross their wrap / saturate boundaries -- and, with the
    other steps, come back.  For the bit-serial PE the data type is drawn per step."""
    rng = np.random.default_rng(seed)
    serial = _spec(pe).family == "bitserial"
    dtypes = pe.dtype_formats if serial else (pe.fmt_b,)
    k = pe.lanes
    ext_a = _signed_extremes(pe.fmt_a)
    ext_b = [_signed_extremes(d) for d in dtypes]
    a = np.zeros((n_steps, k), np.int64)
    b = np.zeros((n_steps, k), np.int64)
    first = np.zeros(n_steps, bool)
    sel = np.zeros(n_steps, np.int64) if serial else None
    i = 0
    while i < n_steps:
        length = int(rng.integers(1, max_len + 1))
        direction = 1 if rng.random() < 0.5 else -1
        first[i] = True
        for j in range(i, min(n_steps, i + length)):
            s = int(rng.integers(len(dtypes))) if serial else 0
            if serial:
                sel[j] = s
            fin_a, pos_a, neg_a = ext_a
            fin_b, pos_b, neg_b = ext_b[s]
            for lane in range(k):
                if rng.random() < extreme:
                    sa = 1 if (rng.random() < 0.5 or not len(neg_a)) and len(pos_a) else -1
                    want_b = sa * direction
                    ca = rng.choice(pos_a if sa > 0 else neg_a)
                    pool_b = pos_b if want_b > 0 else neg_b
                    if not len(pool_b):  # unsigned weights: flip the activation instead
                        pool_b = pos_b if len(pos_b) else neg_b
                    cb = rng.choice(pool_b)
                else:
                    ca, cb = rng.choice(fin_a), rng.choice(fin_b)
                a[j, lane], b[j, lane] = ca, cb
        i += length
    return Steps(a, b, first, sel)


def write_vectors(pe, steps, path, *, table=None):
    """Write ``steps`` and their golden ``(acc, overflow)`` as JSON for a testbench that
    drives the PE's generated Verilog (``tests/tb/tb_pe.py``): packed ``a`` / ``b`` words,
    ``first``, ``sel``, the expected values, the PE's latency and per-selector cycles."""
    import json
    acc, ovf = expected(pe, steps)
    a_words = operand_words(steps.a, pe.fmt_a.bits)
    b_words = operand_words(steps.b, pe.fmt_b.bits)
    serial = _spec(pe).family == "bitserial"
    doc = {
        "acc_bits": pe.acc_bits,
        "latency": pe.latency,
        "serial_cycles": list(pe.cycles_per_mac.values()) if serial else None,
        "table": None if table is None else [int(v) for v in table],
        "steps": [[a_words[i], b_words[i], int(steps.first[i]),
                   0 if steps.sel is None else int(steps.sel[i])] for i in range(len(steps))],
        "expected": [[int(acc[i]), int(bool(ovf[i]))] for i in range(len(steps))],
    }
    with open(path, "w") as f:
        json.dump(doc, f)
    return path
