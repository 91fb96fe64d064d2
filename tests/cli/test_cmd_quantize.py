"""``nybble quantize``: codes, scales and error metrics; strict JSON even for extreme data."""
import json

import numpy as np

from nybble.__main__ import main
from nybble.sw import quantize


def test_writes_codes_and_scales(tmp_path, capsys, rng):
    x = rng.standard_normal((4, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    rc = main(["quantize", str(tmp_path / "x.npy"), "--scheme", "mxfp4", "-o",
               str(tmp_path / "q" / "x.npz"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["scheme"] == "mxfp4" and doc["block"] == 32
    qt = quantize(x, "mxfp4", axis=-1)
    z = np.load(tmp_path / "q" / "x.npz")
    assert np.array_equal(z["codes"], qt.codes) and np.array_equal(z["scales"], qt.scales)
    assert doc["mse"] == np.mean((x.astype(np.float64) - qt.dequantize()) ** 2)
    assert 0.9 < doc["cosine"] <= 1


def test_huge_values_are_refused_with_the_range(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([[1e300, 1.0] * 16]))
    rc = main(["quantize", str(tmp_path / "x.npy"), "--scheme", "int4_tensor", "--json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert rc == 2 and doc["error"].startswith("x needs int4_tensor scales from 1.42857e+299")
    assert "but its float32 scales hold" in err and "Infinity" not in out


def test_missing_input_is_one_line(capsys):
    assert main(["quantize", "nope.npy", "--scheme", "mxfp4"]) == 2
    assert capsys.readouterr().err == ("nybble quantize: error: input file 'nope.npy' does not "
                                       "exist\n")
