# amaranth: UnusedElaboratable=no
"""The generated Verilog of representative PEs under cocotb: every pair of codes, then
back-to-back jobs that cross the saturation boundary, on Verilator (and Icarus if installed)."""
from pathlib import Path

import numpy as np
import pytest

from nybble.sw import codebook
from nybble.hw.kinds import make_pe, pe_spec
from nybble.hw.spec import DotProductSpec
from nybble.sim.pe_check import pair_steps, random_jobs, write_vectors, Steps
from nybble.sim.cocotb_runner import run_cocotb
from nybble.synth.toolchain import available_simulators
from nybble.synth.verilog import to_verilog

ROOT = Path(__file__).resolve().parents[2]
TB_DIR = ROOT / "tests" / "tb"
BUILD = ROOT / "build" / "cocotb"

KINDS = ["int4", "fp4_e2m1", "e3m0", "lut_nf4"]


def _verilog(pe):
    return to_verilog(pe, name="top")


def _concat(a, b):
    sel = None if a.sel is None else np.concatenate([a.sel, b.sel])
    return Steps(np.concatenate([a.a, b.a]), np.concatenate([a.b, b.b]),
                 np.concatenate([a.first, b.first]), sel)


def _simulators():
    params = []
    for sim in ("verilator", "icarus"):
        marks = [pytest.mark.cocotb]
        if sim not in available_simulators():
            reason = "iverilog not installed" if sim == "icarus" else "verilator not installed"
            marks.append(pytest.mark.skip(reason=reason))
        params.append(pytest.param(sim, marks=marks, id=sim))
    return params


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", _simulators())
@pytest.mark.parametrize("kind", KINDS)
def test_pe_verilog(kind, simulator, tmp_path):
    pe = make_pe(kind, overflow="saturate",
                 acc_bits=pe_spec(kind, overflow="saturate").min_acc_bits + 1)
    table = None
    model = pe
    if kind.startswith("lut"):
        # a user codebook written through the write port replaces the reset NF4 table
        rng = np.random.default_rng(5)
        user = codebook(np.sort(rng.uniform(-1.9, 1.9, 16)), name="user16")
        model = DotProductSpec.make("int8", user, 1, acc_bits=pe.acc_bits, overflow="saturate")
        table = user.fixed_values(pe.frac_bits)[0]
    pairs, n_pairs, exhaustive = pair_steps(model)
    assert exhaustive
    steps = _concat(pairs, random_jobs(model, 300, seed=11))
    vectors = write_vectors(model, steps, tmp_path / "vectors.json", table=table)
    result = run_cocotb(_verilog(pe), toplevel="top", test_module="tb_pe", test_dir=TB_DIR,
                        simulator=simulator, build_root=BUILD,
                        extra_env={"NYBBLE_PE_VECTORS": str(vectors)}, run_name=kind)
    assert result.passed, (f"{kind} on {simulator}: {result.failed} of {result.tests} cocotb "
                           f"tests failed ({n_pairs} pairs + 300 sequence steps); see "
                           f"{result.results_xml}")
