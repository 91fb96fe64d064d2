"""Compute and memory energy of a GEMM run: the PE's measured pJ/MAC and the schedule's traffic."""
import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.sim.gemm_energy import gemm_energy
from nybble.sim.memory_energy import dram_pj_per_byte, sram_pj_per_byte
from nybble.sim.schedule import fit_config, schedule_for


def _run(pe, m, n, k, rng):
    cfg = ArrayConfig(rows=2, cols=2, pe=pe, acc_bits=32)
    sched = schedule_for(cfg, m, n, k)
    cfg = fit_config(cfg, sched)
    a = rng.integers(0, 16, (m, k))
    b = rng.integers(0, 16, (k, n))
    return cfg, sched, gemm_energy(cfg, sched, a, b)


def test_int4_gemm(rng):
    cfg, sched, e = _run("int4", 4, 6, 64, rng)
    assert e["macs"] == 4 * 6 * 64 == e["sampled_macs"]
    assert e["compute_pj"] == pytest.approx(e["pe_pj_per_mac"] * e["macs"])
    # A words: 2 rows x 4 bits; B words: 2 columns x 4 bits; C: 32-bit accumulators
    assert e["sram_bytes"] == {"a": (sched.a_writes + sched.a_reads) * 1.0,
                               "b": (sched.b_writes + sched.b_reads) * 1.0,
                               "c": (sched.c_writes + sched.c_reads) * 4.0}
    sram = (e["sram_bytes"]["a"] * sram_pj_per_byte(cfg.a_depth)
            + e["sram_bytes"]["b"] * sram_pj_per_byte(cfg.b_depth)
            + e["sram_bytes"]["c"] * sram_pj_per_byte(cfg.c_depth * 2 * 4))
    assert e["sram_pj"] == pytest.approx(sram)
    assert e["dram_bytes"] == sched.a_writes + sched.b_writes + 4 * sched.c_reads
    low, high = dram_pj_per_byte()
    assert e["dram_pj"] == pytest.approx([e["dram_bytes"] * low, e["dram_bytes"] * high])
    assert e["total_pj"][0] == pytest.approx(e["compute_pj"] + e["sram_pj"] + e["dram_pj"][0])
    assert 0 < e["compute_share"][1] < e["compute_share"][0] < 1


@pytest.mark.slow
def test_dot_product_pe_pads_k(rng):
    _, _, e = _run("int4_dp4", 2, 2, 6, rng)
    assert e["macs"] == 2 * 2 * 6 and e["sampled_macs"] == 2 * 2 * 8
