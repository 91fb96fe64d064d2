"""``nybble example``: the README's inputs, written where asked, usable by the commands that
read them."""
import json

import numpy as np

from nybble.__main__ import main
from nybble.cmd_example import EXAMPLES


def test_writes_every_example_and_they_load(tmp_path, capsys):
    assert main(["example", "--out", str(tmp_path / "ex"), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert [w["name"] for w in written] == list(EXAMPLES)
    assert all((tmp_path / "ex" / n).stat().st_size > 0 for n in EXAMPLES)
    a = np.load(tmp_path / "ex" / "A_int4.npy")
    assert a.dtype.kind == "i" and a.min() >= -8 and a.max() <= 7
    again = tmp_path / "again"
    main(["example", "A.npy", "--out", str(again)])
    assert np.array_equal(np.load(again / "A.npy"), np.load(tmp_path / "ex" / "A.npy"))


def test_examples_run_through_their_commands(tmp_path, capsys):
    ex = tmp_path / "ex"
    main(["example", "--out", str(ex)])
    capsys.readouterr()
    for argv in (["quantize", str(ex / "X.npy"), "--scheme", "mxfp4"],
                 ["cycles", "--config", str(ex / "scalesim.cfg"), "--topology",
                  str(ex / "topology.csv")],
                 ["format-search", str(ex / "W.npy")],
                 ["stability", str(ex / "chain_0.npy"), str(ex / "chain_1.npy"), "--schemes",
                  "mxfp4", "--trials", "4"],
                 ["gemm", "--array", "2x2", "--b-gguf", str(ex / "tiny.gguf"), "--b-tensor",
                  "blk.0.attn_q.weight", "--m", "2", "--acc-bits", "48", "--sim",
                  "amaranth"]):
        assert main(argv + ["--json"]) == 0, argv
        json.loads(capsys.readouterr().out)


def test_unknown_example(capsys):
    assert main(["example", "nope.npy"]) == 2
    assert "example must be one of A.npy" in capsys.readouterr().err
