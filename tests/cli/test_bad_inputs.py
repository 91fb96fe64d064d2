"""The bad-input catalogue (:mod:`nybble.bad_inputs`): its verdicts, and a few of its cases run
for real (``nybble bench errors`` runs them all)."""
from nybble.bad_inputs import CASES, CLASSES, run_cases, summary, verdict


def test_verdicts():
    assert verdict("x", ["gemm"], 2, "", "nybble gemm: error: bad\n", None) == \
        (True, "nybble gemm: error: bad")
    assert verdict("x", ["gemm", "--json"], 2, "not json", "nybble gemm: error: bad\n",
                   None) == (False, "stdout is not one JSON document")
    assert verdict("x", ["gemm"], 0, "", "", None) == (False, "exit 0 without an error")
    assert verdict("x", ["gemm"], 0, "", "nybble gemm: warning: narrow\n", None)[0]
    assert verdict("x", ["gemm"], 1, "", "", "traceback: KeyError") == \
        (False, "traceback: KeyError")


def test_the_catalogue_covers_every_class():
    assert {c for c, *_ in CASES} == set(CLASSES) and len(CASES) >= 50


def test_some_cases_for_real():
    picked = [c for c in CASES if c[1] in ("gemm bad --array, --json", "truncated GGUF",
                                           "text file named .npy", "quantize 1e300")]
    rows = run_cases(picked)
    assert [r["ok"] for r in rows] == [True] * 4, rows
    s = summary(rows)
    assert sum(v[1] for v in s.values()) == 4
