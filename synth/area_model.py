"""The analytic area model of a PE: features from its pure spec, coefficients fitted once.

The analytic model (:class:`AreaModel`), in CMOS transistors, one term per category of the
breakdown, each fitted by least squares (relative to the PE's total) on that category alone::

    multiplier  = lanes * (a * n * m + b * (n + m) + x * exp_bits + s * shift)
                  + t * table_held_bits + u * lanes * table_bits + v * rom_entries
    adder tree  = e * tree_bits
    accumulator = c * acc_bits + d * wide_input_bits + c0
    registers   = r * register_bits

``n``, ``m``: significand widths (integers: their bits; floats: mantissa + 1; powers of two:
1; a LUT weight: its table entry width; the bit-serial PE: 1 weight bit per cycle);
``exp_bits``: exponent bits of the two operands (float / power-of-two decode); ``shift``: the
barrel shift that aligns a float / power-of-two product to the fixed-point grid, ``product
bits * log2(alignment positions)``; ``table_bits``: the LUT PE's table (read by every lane's mux);
``table_held_bits``: the part of it held in the PE's registers (all of it, or none when the
array holds the table and broadcasts it, ``lut_table="array"``); ``rom_entries``: the bit-serial PE's decode ROM (data types x codes);
``tree_bits``: the widths of the dot product's adders, summed; ``wide_input_bits``: product
bits beyond the accumulator that only feed its overflow detection (the bf16 window);
``register_bits``: forwarding and pipeline flip-flops.  Some terms are exercised by few points
and so fitted almost exactly: ``v`` by the bit-serial PE alone, ``t`` and ``u`` by the LUT
PEs (per-PE and array-held tables), ``d`` by the two bf16 PEs.  Bit-serial throughput is one MAC per significand bit of the
weight.

Each category is fitted to the hierarchical synthesis's breakdown (the only place the
categories are measured); the model's error is quoted against the flattened totals that are
reported as the area, in sample and leave one out (:func:`loo_errors`: each PE predicted by
the model fitted to all the others).

Fitted once: ``nybble cost --fit-model`` on the full default sweep writes
:data:`MODEL_FILE` (``area_model.json`` in this package: coefficients, the kinds and policy
it was fitted on, the kinds it excludes and why -- the IEEE-style PEs, which it has no terms
for, and any synthesis a ``--timeout`` left out -- in-sample and leave-one-out errors against
the flattened totals, and the errors of the excluded kinds it predicts, ``held_out``);
:func:`load_model` reads it, and reports use it instead of refitting on whatever sweep they
ran.
"""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from nybble.hw.kinds import pe_kind
from nybble.hw.product import signed_width

__all__ = ["PEFeatures", "pe_features", "AreaModel", "fit_model", "loo_errors",
           "MODEL_FILE", "load_model", "save_model"]

#: The stored model (package data).
MODEL_FILE = Path(__file__).with_name("area_model.json")


# --- features --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PEFeatures:
    """What the analytic model reads from one PE (module docstring)."""
    lanes: int
    n: int
    m: int
    exp_bits: int
    shift: int
    table_bits: int
    rom_entries: int
    tree_bits: int
    acc_bits: int
    wide_input_bits: int
    register_bits: int
    macs_per_cycle: float
    table_held_bits: int = 0


def _sig_bits(fmt, lut_bits):
    if fmt.kind == "int":
        return fmt.bits
    if fmt.kind == "float":
        return fmt.man_bits + 1
    if fmt.kind == "codebook":
        return lut_bits
    return 1  # powers of two: a one-hot significand


def _exp_bits(fmt):
    return fmt.exp_bits if fmt.kind in ("float", "pow2") else 0


def pe_features(kind, acc_bits, register_bits):
    """:class:`PEFeatures` of ``kind`` at ``acc_bits`` (from its pure spec); ``register_bits``
    (flip-flops outside the accumulator) comes from the synthesis."""
    spec = pe_kind(kind).spec(acc_bits=acc_bits)
    if spec.family == "bitserial":
        decode = spec.decode
        mag_bits = max(c for _, c in decode)
        max_shift = max(r[2] for rows, _ in decode for r in rows) + mag_bits
        term = spec.fmt_a.bits + max_shift + 1
        sh_bits = max_shift.bit_length()
        cycles = spec.cycles_per_mac[spec.dtypes[0]]
        rom = sum(len(rows) for rows, _ in decode)
        exp_bits = sum(_exp_bits(d) for d in spec.dtype_formats) + _exp_bits(spec.fmt_a)
        return PEFeatures(1, spec.fmt_a.bits, 1, exp_bits, term * sh_bits, 0, rom, 0,
                          acc_bits, max(0, term - acc_bits - 1), register_bits, 1 / cycles)
    if spec.family == "ieee" or not hasattr(spec, "p_min"):
        # a family the model has no terms of its own for (e.g. IEEE-style floating point):
        # its significand product and operand exponents; the rest falls to the residual
        n, m = _sig_bits(spec.fmt_a, 0), _sig_bits(spec.fmt_b, 0)
        return PEFeatures(spec.lanes, n, m, _exp_bits(spec.fmt_a) + _exp_bits(spec.fmt_b), 0,
                          0, 0, 0, acc_bits, 0, register_bits, float(spec.lanes))
    n, m = _sig_bits(spec.fmt_a, spec.lut_bits), _sig_bits(spec.fmt_b, spec.lut_bits)
    p_bits = signed_width(spec.p_min, spec.p_max)   # one product unit's output
    # the product unit, synthesised as its own module, computes all of its output bits
    positions = max(1, p_bits - (n + m) + 1)  # where the significand product can land
    shift = p_bits * math.ceil(math.log2(positions)) if positions > 1 else 0
    table = (1 << spec.fmt_b.bits) * spec.lut_bits if spec.is_lut else 0
    held = table if spec.is_lut and spec.lut_table == "pe" else 0
    d = spec.frac_bits - spec.unit_frac
    term = max(1, p_bits + d)          # after the window shift, as the PE builds it
    widths, tree = [term] * spec.lanes, 0
    while len(widths) > 1:
        nxt = [max(widths[i], widths[i + 1]) + 1 for i in range(0, len(widths) - 1, 2)]
        tree += sum(nxt)
        if len(widths) % 2:
            nxt.append(widths[-1])
        widths = nxt
    return PEFeatures(spec.lanes, n, m, _exp_bits(spec.fmt_a) + _exp_bits(spec.fmt_b), shift,
                      table, 0, tree, acc_bits, max(0, widths[0] - acc_bits - 1),
                      register_bits, float(spec.lanes), held)


# --- the model -------------------------------------------------------------------------------

_TERMS = {
    "multiplier": (("a", "lanes * n * m", lambda f: f.lanes * f.n * f.m),
                   ("b", "lanes * (n + m)", lambda f: f.lanes * (f.n + f.m)),
                   ("x", "lanes * exp_bits", lambda f: f.lanes * f.exp_bits),
                   ("s", "lanes * shift", lambda f: f.lanes * f.shift),
                   ("t", "table_held_bits", lambda f: f.table_held_bits),
                   ("u", "lanes * table_bits", lambda f: f.lanes * f.table_bits),
                   ("v", "rom_entries", lambda f: f.rom_entries)),
    "adder_tree": (("e", "tree_bits", lambda f: f.tree_bits),),
    "accumulator": (("c", "acc_bits", lambda f: f.acc_bits),
                    ("d", "wide_input_bits", lambda f: f.wide_input_bits),
                    ("c0", "1", lambda f: 1)),
    "registers": (("r", "register_bits", lambda f: f.register_bits),),
}


@dataclasses.dataclass(frozen=True)
class AreaModel:
    """Fitted coefficients (transistors per unit of each term, module docstring)."""
    coefficients: dict

    def category(self, name, features):
        return sum(self.coefficients[c] * value(features) for c, _, value in _TERMS[name])

    def predict(self, features):
        """Model transistors of a PE with ``features``, per category and in total."""
        parts = {name: self.category(name, features) for name in _TERMS}
        return sum(parts.values()), parts

    def multiplier(self, n, m, exp_bits=0, shift=0, lanes=1):
        f = PEFeatures(lanes, n, m, exp_bits, shift, 0, 0, 0, 0, 0, 0, 1.0)
        return self.category("multiplier", f)

    def formula(self):
        out = []
        for name, terms in _TERMS.items():
            out.append(f"{name} = " + " + ".join(
                f"{self.coefficients[c]:.3g} * {text}" if text != "1"
                else f"{self.coefficients[c]:.3g}" for c, text, _ in terms))
        return out


def fit_model(points):
    """Fit :class:`AreaModel` to ``points``: ``[(PEFeatures, {category: transistors},
    total transistors)]``, each category on its own (``numpy.linalg.lstsq``), errors relative
    to the PE's total; a term no point exercises gets coefficient 0."""
    coefficients = {}
    for name, terms in _TERMS.items():
        X = np.array([[value(f) for _, _, value in terms] for f, _, _ in points], float)
        y = np.array([cats[name] for _, cats, _ in points], float)
        w = 1.0 / np.array([max(total, 1) for _, _, total in points], float)
        active = [i for i in range(len(terms)) if X[:, i].any()]
        coef = np.zeros(len(terms))
        if active:
            sol, *_ = np.linalg.lstsq(X[:, active] * w[:, None], y * w, rcond=None)
            coef[active] = sol
        for (c, _, _), v in zip(terms, coef):
            coefficients[c] = float(v)
    return AreaModel(coefficients)


def loo_errors(points):
    """Leave-one-out errors: for each of ``points`` (``[(name, PEFeatures, {category:
    transistors}, flat transistors)]``) the model fitted to all the others predicts it;
    returns ``{name: predicted / flat - 1}``."""
    out = {}
    for i, (name, f, _, flat) in enumerate(points):
        rest = [(g, cats, sum(cats.values())) for j, (_, g, cats, _) in enumerate(points)
                if j != i]
        predicted, _ = fit_model(rest).predict(f)
        out[name] = predicted / flat - 1
    return out


def save_model(model, path=MODEL_FILE, **about):
    """Write ``model`` (and ``about``: what it was fitted on, its errors) as JSON."""
    Path(path).write_text(json.dumps({"coefficients": model.coefficients, **about},
                                     indent=1, sort_keys=True) + "\n")


def load_model(path=MODEL_FILE):
    """``(AreaModel, about)`` from :func:`save_model`'s file, or ``(None, None)`` when there
    is none."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None, None
    coefficients = data.pop("coefficients")
    missing = {c for terms in _TERMS.values() for c, _, _ in terms} - set(coefficients)
    if missing:
        raise ValueError(f"{path}: coefficients {sorted(missing)} missing")
    return AreaModel(coefficients), data
