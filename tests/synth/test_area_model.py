"""The area model: the fit, its leave-one-out errors, its stored file (features:
tests/synth/test_cost.py)."""

import json

import numpy as np
import pytest

from nybble.synth.area_model import (MODEL_FILE, AreaModel, PEFeatures, fit_model, load_model,
                                     loo_errors, save_model)

TRUTH = {"a": 30.0, "b": 5.0, "x": 60.0, "s": 2.5, "t": 40.0, "u": 13.0, "v": 12.0,
         "e": 37.0, "c": 80.0, "d": 24.0, "c0": 230.0, "r": 28.0}


def _points(model, n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = PEFeatures(int(rng.integers(1, 5)), int(rng.integers(1, 17)),
                       int(rng.integers(1, 17)), int(rng.integers(0, 9)),
                       int(rng.integers(0, 500)), int(rng.integers(0, 300)),
                       int(rng.integers(0, 120)), int(rng.integers(0, 200)),
                       int(rng.integers(16, 96)), int(rng.integers(0, 50)),
                       int(rng.integers(4, 60)), 1.0, int(rng.integers(0, 300)))
        total, parts = model.predict(f)
        out.append((f"pe{i}", f, parts, total))
    return out


def test_fit_recovers_known_coefficients():
    points = _points(AreaModel(TRUTH), 40, 1)
    fitted = fit_model([(f, parts, total) for _, f, parts, total in points])
    for name, value in TRUTH.items():
        assert fitted.coefficients[name] == pytest.approx(value, rel=1e-6), name


def test_loo_of_an_exact_model_is_zero_and_sees_a_misfit():
    points = _points(AreaModel(TRUTH), 30, 2)
    assert max(abs(e) for e in loo_errors(points).values()) < 1e-9
    # one PE whose flattened total is 20% below its categories: held out, it is missed
    name, f, parts, total = points[0]
    points[0] = (name, f, parts, total * 0.8)
    loo = loo_errors(points)
    assert loo[name] == pytest.approx(0.25, rel=1e-3)


def test_save_and_load(tmp_path):
    model = fit_model([(f, c, t) for _, f, c, t in _points(AreaModel(TRUTH), 30, 3)])
    path = tmp_path / "m.json"
    save_model(model, path, kinds=["int4"], loo={"mean_abs": 0.1})
    loaded, about = load_model(path)
    assert loaded.coefficients == pytest.approx(model.coefficients)
    assert about == {"kinds": ["int4"], "loo": {"mean_abs": 0.1}}
    assert load_model(tmp_path / "none.json") == (None, None)
    path.write_text(json.dumps({"coefficients": {"a": 1.0}}))
    with pytest.raises(ValueError, match=r"coefficients \['b', 'c', 'c0', "):
        load_model(path)


def test_the_stored_model_is_the_package_file():
    assert MODEL_FILE.name == "area_model.json" and MODEL_FILE.parent.name in ("synth",)
    model, about = load_model()
    assert model is not None  # stored by `nybble cost --fit-model`, shipped with the package
    assert len(about["kinds"]) >= 20
    # the leave-one-out summary is the summary of its own per-PE errors
    loo = about["loo"]
    errs = {pe: abs(e) for pe, e in loo["per_pe"].items()}
    assert set(errs) == set(about["kinds"])
    assert loo["mean_abs"] == pytest.approx(sum(errs.values()) / len(errs), abs=1e-3)
    assert loo["max_abs"] == pytest.approx(max(errs.values()), abs=1e-4)
    assert errs[loo["max_pe"]] == max(errs.values())
