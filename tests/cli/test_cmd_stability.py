"""``nybble stability``: the command line of :mod:`nybble.analysis.stability` (its numerics are
tested in ``tests/analysis/``)."""
import json
import re

import numpy as np
import pytest

from nybble.analysis.stability import DEFAULT_SCHEMES


def test_cli_stability_json_and_plot(run_cli, tmp_path):
    png = tmp_path / "cos.png"
    rc, out, err = run_cli(["stability", "--family", "orthogonal", "--n", "64", "--depth", "3",
                            "--schemes", "int4_tensor,mxfp4", "nf4_g64", "--trials", "32",
                            "--json", "--plot", str(png)])
    assert rc == 0, err
    res = json.loads(out)
    assert [r["scheme"] for r in res] == ["int4_tensor", "mxfp4", "nf4_g64"]
    assert len(res[0]["per_layer"]) == 3
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_stability_text_from_files(run_cli, tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.standard_normal((32, 16)) / 4)
    np.savez(tmp_path / "b.npz", rng.standard_normal((8, 32)) / 6)
    rc, out, err = run_cli(["stability", str(tmp_path / "a.npy"), str(tmp_path / "b.npz"),
                            "--schemes", "int4_g32", "--trials", "16"])
    assert rc == 0, err
    assert "int4_g32" in out and "dims 16x32x8" in out and "cheapest scheme" in out


def test_cli_stability_all_schemes_predict_only(run_cli):
    rc, out, err = run_cli(["stability", "--family", "gaussian", "--n", "32", "--depth", "2",
                            "--predict-only", "--json"])
    assert rc == 0, err
    res = json.loads(out)
    assert [r["scheme"] for r in res] == list(DEFAULT_SCHEMES)
    assert all(r["measured_cosine"] is None for r in res)


@pytest.mark.parametrize("argv, msg", [
    (["--family", "laplace"], r"family must be one of gaussian, orthogonal, .*not 'laplace'"),
    (["--family", "gaussian", "--schemes", "fp4"], r"scheme must be one of int4_tensor"),
    (["--family", "gaussian", "--rotate", "givens"],
     r"--rotate must be none or hadamard, not 'givens'"),
    ([], r"give matrix files \(\.npy/\.npz\) or --family \(gaussian, orthogonal"),
    (["missing.npy"], r"matrix file 'missing\.npy' does not exist"),
])
def test_cli_stability_errors(run_cli, argv, msg):
    rc, out, err = run_cli(["stability", "--n", "8", "--depth", "1"] + argv)
    assert rc == 2 and out == ""
    assert re.search(r"^nybble stability: error: " + msg, err), err


def test_cli_stability_shape_mismatch(run_cli, tmp_path):
    np.save(tmp_path / "a.npy", np.ones((4, 3)))
    np.save(tmp_path / "b.npy", np.ones((4, 5)))
    rc, out, err = run_cli(["stability", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")])
    assert rc == 2 and "shape mismatch in the chain" in err and "needs 4 columns" in err


@pytest.mark.slow
def test_all_schemes_n256_depth16(run_cli):
    rc, out, err = run_cli(["stability", "--family", "gaussian", "--n", "256", "--depth", "16",
                            "--json"])
    assert rc == 0
    res = json.loads(out)
    for r in res:
        assert abs(r["predicted_cosine"] - r["measured_cosine"]) < 0.03, r["scheme"]
