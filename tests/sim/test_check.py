"""The one run-and-check (:mod:`nybble.sim.check`): a fault is a failed check, utilization
counts lanes (``nybble gemm``'s side of both: ``tests/cli/test_cmd_gemm.py``)."""
# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from nybble.hw.config import ArrayConfig
from nybble.sim.check import check_gemm, golden_for, result_values
from nybble.sw import get_format


def _codes(rng, fmt, shape):
    return rng.choice(np.flatnonzero(get_format(fmt).finite), size=shape)




def test_an_injected_fault_is_a_failed_check(faulty_golden, rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="int4", a_depth=64, b_depth=64, c_depth=64)
    a, b = _codes(rng, "int4", (3, 5)), _codes(rng, "int4", (5, 4))
    c = check_gemm(cfg, a, b, sim="amaranth")
    assert c.mismatches == 1 and not c.passed
    row, col, got, want = c.first_mismatch
    assert (row, col) == (1, 2) and want == got + 1
    assert c.summary()["first_mismatch"] == {"row": 1, "col": 2, "got": got, "want": got + 1}








def test_golden_for_and_result_values(rng):
    cfg = ArrayConfig(rows=2, cols=2, pe="fp4_e2m1")
    a, b = _codes(rng, "fp4_e2m1", (2, 3)), _codes(rng, "fp4_e2m1", (3, 2))
    acc = golden_for(cfg, a, b)
    fa = get_format("fp4_e2m1").values
    exact = fa[a] @ fa[b]
    assert np.array_equal(result_values(cfg, acc), exact)   # fp4 products are exact
    with pytest.raises(ValueError, match=r"^K mismatch: a is 2 x 3, b is 2 x 2$"):
        golden_for(cfg, a, b[:2])
