"""Drive a block-scaled PE (:mod:`nybble.hw.block_pe`) in Amaranth's simulator and check it
against :func:`nybble.sw.gemm_block_codes`.

A run is a list of k-steps (:class:`BlockSteps`): ``lanes`` element codes of A and of B, the
two block scale codes (the same in every step of a block, as the array's feeders deliver
them) and ``first``.  Blocks are ``pe.steps_per_block`` consecutive steps; a dot product (a
*job*) starts at a step with ``first`` and is a whole number of blocks.  :func:`simulate`
applies the steps back to back, one per cycle, and returns ``acc`` / ``overflow`` as they
stand once each step has landed (``pe.latency`` edges later); they change only at a block's
last step, so :func:`expected` gives the golden values there (``mask``) -- the golden
cross-block accumulator of the job's blocks so far.
"""

from dataclasses import dataclass
import time

import numpy as np

from nybble.sw import get_format
from .pe_drive import CheckResult, drive_pipelined, operand_words, run_testbench
from nybble.sw.errors import ParameterError

__all__ = ["BlockSteps", "simulate", "expected", "compare", "random_jobs", "unit_scale",
           "check_block_pairs", "adversarial_jobs", "scale_extremes"]


@dataclass
class BlockSteps:
    """``a``, ``b``: ``(n, lanes)`` codes; ``sa``, ``sb``: ``(n,)`` scale codes; ``first``:
    ``(n,)`` bool."""
    a: np.ndarray
    b: np.ndarray
    sa: np.ndarray
    sb: np.ndarray
    first: np.ndarray

    def __len__(self):
        return len(self.first)

    @classmethod
    def concat(cls, parts):
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("a", "b", "sa", "sb", "first")))


def _words(pe, steps):
    return (operand_words(steps.a, pe.fmt_a.bits, steps.sa, pe.scale_bits),
            operand_words(steps.b, pe.fmt_b.bits, steps.sb, pe.scale_bits))


def simulate(pe, steps, *, vcd=None):
    """Run ``steps`` through ``pe``, one per cycle; ``(acc, overflow)`` after each step has
    landed (object / bool arrays)."""
    n = len(steps)
    acc = np.zeros(n, dtype=object)
    ovf = np.zeros(n, dtype=bool)
    aw, bw = _words(pe, steps)

    async def bench(ctx):
        await drive_pipelined(ctx, pe, aw, bw, steps.first, acc, ovf)

    run_testbench(pe, bench, vcd)
    return acc, ovf


def expected(pe, steps):
    """Golden ``(acc, overflow, mask)``: at every block's last step (``mask``) the golden
    accumulator and sticky overflow flag of the job's blocks so far."""
    n = len(steps)
    spb = pe.steps_per_block
    first = np.asarray(steps.first, dtype=bool)
    if n and not first[0]:
        raise ParameterError("the first step must have first=1")
    acc = np.zeros(n, dtype=object)
    ovf = np.zeros(n, dtype=bool)
    mask = np.zeros(n, dtype=bool)
    starts = list(np.flatnonzero(first)) + [n]
    for s, e in zip(starts[:-1], starts[1:]):
        if (e - s) % spb:
            raise ParameterError(f"the job at step {s} has {e - s} steps, not a whole number of "
                             f"blocks of {spb} steps")
        for end in range(s + spb, e + 1, spb):
            a = steps.a[s:end].reshape(1, -1)
            b = steps.b[s:end].reshape(-1, 1)
            sa = steps.sa[s:end:spb].reshape(1, -1)
            sb = steps.sb[s:end:spb].reshape(-1, 1)
            got, flag = pe.model_codes(a, sa, b, sb, return_overflow=True)
            acc[end - 1] = int(got[0, 0])
            ovf[end - 1] = bool(flag[0, 0])
            mask[end - 1] = True
    return acc, ovf, mask


def compare(pe, steps, got, want):
    """Indices of block ends whose ``acc`` or ``overflow`` differ, and a message naming the
    first (codes, scales, got, expected)."""
    acc_g, ovf_g = got
    acc_w, ovf_w, mask = want
    bad = [i for i in np.flatnonzero(mask)
           if acc_g[i] != acc_w[i] or bool(ovf_g[i]) != bool(ovf_w[i])]
    msg = ""
    if bad:
        i = bad[0]
        msg = (f"step {i} (block end): a={[int(x) for x in steps.a[i]]}, "
               f"b={[int(x) for x in steps.b[i]]}, scales=({int(steps.sa[i])}, "
               f"{int(steps.sb[i])}): acc={acc_g[i]} overflow={bool(ovf_g[i])}, expected "
               f"acc={acc_w[i]} overflow={bool(ovf_w[i])}")
    return bad, msg


def unit_scale(pe):
    """The scale code whose value is 1.0."""
    vals = get_format(pe.scale_format).values
    return int(np.flatnonzero(vals == 1.0)[0])


def scale_extremes(pe):
    """``(smallest positive, largest, zero or None, negative largest or None)`` scale codes."""
    f = get_format(pe.scale_format)
    v = f.values
    fin = np.flatnonzero(np.isfinite(v))
    pos = fin[v[fin] > 0]
    neg = fin[v[fin] < 0]
    zero = fin[v[fin] == 0]
    return (int(pos[np.argmin(v[pos])]), int(pos[np.argmax(v[pos])]),
            int(zero[0]) if len(zero) else None,
            int(neg[np.argmin(v[neg])]) if len(neg) else None)


def _finite(fmt):
    return np.flatnonzero(get_format(fmt).finite)


def _extreme_codes(fmt):
    f = get_format(fmt)
    fin = _finite(fmt)
    return int(fin[np.argmax(f.values[fin])]), int(fin[np.argmin(f.values[fin])])


def random_jobs(pe, n_jobs, *, seed=0, max_blocks=4, scales=None):
    """Back-to-back jobs of 1..``max_blocks`` blocks with random elements and random finite
    scale codes (or codes drawn from ``scales``)."""
    rng = np.random.default_rng(seed)
    spb, k = pe.steps_per_block, pe.lanes
    sfin = _finite(pe.scale_format) if scales is None else np.asarray(scales)
    parts = []
    for _ in range(n_jobs):
        nb = int(rng.integers(1, max_blocks + 1))
        n = nb * spb
        a = rng.choice(_finite(pe.fmt_a), size=(n, k))
        b = rng.choice(_finite(pe.fmt_b), size=(n, k))
        sa = np.repeat(rng.choice(sfin, nb), spb)
        sb = np.repeat(rng.choice(sfin, nb), spb)
        first = np.zeros(n, bool)
        first[0] = True
        parts.append(BlockSteps(a, b, sa, sb, first))
    return BlockSteps.concat(parts)


def _job(pe, blocks):
    """One job from a list of ``(a_code, b_code, sa, sb)`` blocks (every element of the block
    the same codes) or ``(a_codes (block,), b_codes (block,), sa, sb)``."""
    spb, k = pe.steps_per_block, pe.lanes
    a, b, sa, sb = [], [], [], []
    for ca, cb, xa, xb in blocks:
        a.append(np.broadcast_to(np.asarray(ca), (pe.block_size,)).reshape(spb, k))
        b.append(np.broadcast_to(np.asarray(cb), (pe.block_size,)).reshape(spb, k))
        sa += [xa] * spb
        sb += [xb] * spb
    first = np.zeros(len(sa), bool)
    first[0] = True
    return BlockSteps(np.concatenate(a), np.concatenate(b), np.array(sa), np.array(sb), first)


def adversarial_jobs(pe):
    """Named jobs at the edges: ``{name: BlockSteps}`` (all-zero blocks, the largest and
    smallest scales, saturated blocks, contributions below the LSB, sign flips)."""
    zero_a = int(np.flatnonzero(get_format(pe.fmt_a).values == 0)[0])
    zero_b = int(np.flatnonzero(get_format(pe.fmt_b).values == 0)[0])
    hi_a, lo_a = _extreme_codes(pe.fmt_a)
    hi_b, lo_b = _extreme_codes(pe.fmt_b)
    s_min, s_max, s_zero, s_neg = scale_extremes(pe)
    one = unit_scale(pe)
    small_a = int(_finite(pe.fmt_a)[np.argmin(np.where(get_format(pe.fmt_a).values[
        _finite(pe.fmt_a)] > 0, get_format(pe.fmt_a).values[_finite(pe.fmt_a)], np.inf))])
    jobs = {
        "all_zero_blocks_max_scales": [(zero_a, zero_b, s_max, s_max)] * 3,
        "all_zero_between_saturated": [(hi_a, hi_b, one, one), (zero_a, zero_b, s_max, s_max),
                                       (lo_a, hi_b, one, one)],
        "largest_scales_saturated": [(hi_a, hi_b, s_max, s_max), (hi_a, lo_b, s_max, s_max)],
        "largest_scales_small_elements": [(small_a, hi_b, s_max, s_max)],
        "smallest_scales": [(hi_a, hi_b, s_min, s_min), (lo_a, hi_b, s_min, s_min)],
        "vanish_positive_then_negative": [(hi_a, hi_b, one, one), (hi_a, hi_b, s_min, s_min),
                                          (lo_a, hi_b, s_min, s_min)],
        "mixed_extreme_scales": [(hi_a, hi_b, s_max, s_min), (lo_a, hi_b, s_min, s_max),
                                 (hi_a, lo_b, one, s_max)],
        "saturated_blocks_unit_scales": [(hi_a, hi_b, one, one)] * 4 + [(lo_a, hi_b, one, one)],
    }
    if s_zero is not None:
        jobs["zero_scale"] = [(hi_a, hi_b, s_zero, s_max), (hi_a, hi_b, one, one)]
    if s_neg is not None:
        jobs["negative_scales"] = [(hi_a, hi_b, s_neg, s_max), (hi_a, lo_b, s_neg, s_neg)]
    return {name: _job(pe, blocks) for name, blocks in jobs.items()}


def check_block_pairs(pe, *, name=None, progress=None):
    """Every finite element pair in every lane (unit scales, one block per job), then random
    scaled jobs: the :func:`nybble.sim.pe_check.check_pairs` of a block-scaled PE."""
    t0 = time.perf_counter()
    ca, cb = _finite(pe.fmt_a), _finite(pe.fmt_b)
    if len(ca) * len(cb) <= 65536:
        pa, pb, exhaustive = np.repeat(ca, len(cb)), np.tile(cb, len(ca)), True
    else:
        rng = np.random.default_rng(0)
        pa, pb, exhaustive = rng.choice(ca, 4096), rng.choice(cb, 4096), False
    n, k, spb = len(pa), pe.lanes, pe.steps_per_block
    n_steps = -(-n // spb) * spb
    stride = max(1, n // k)
    idx = (np.arange(n_steps)[:, None] + stride * np.arange(k)[None, :]) % n
    one = unit_scale(pe)
    first = (np.arange(n_steps) % spb) == 0
    pairs = BlockSteps(pa[idx], pb[idx], np.full(n_steps, one), np.full(n_steps, one), first)
    steps = BlockSteps.concat([pairs, random_jobs(pe, 24, seed=1)])
    if progress:
        progress(f"{name or type(pe).__name__}: {len(steps)} steps in the Amaranth simulator")
    bad, msg = compare(pe, steps, simulate(pe, steps), expected(pe, steps))
    return CheckResult(pe=name or type(pe).__name__, formats=pe.formats, latency=pe.latency,
                       cycles_per_mac=pe.cycles_per_mac, pairs_checked=n * k,
                       steps=len(steps), mismatches=len(bad), exhaustive=exhaustive,
                       seconds=time.perf_counter() - t0, first_mismatch=msg)
