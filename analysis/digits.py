"""A real model through the 4-bit GEMM: scikit-learn's handwritten digits with a small MLP.

The model is trained in-process (numpy, float64, fixed seed; the data and the split come from
scikit-learn): 64 pixel inputs scaled to [0, 1], one hidden ReLU layer, 10 logits.  Inference then
runs every layer as one GEMM of 4-bit operands::

    h      = relu(gemm(Q(x), Q(W1^T)) + b1)        x: (M, 64),  W1^T: (64, H)
    logits = gemm(Q(h), Q(W2^T)) + b2              h: (M, H),   W2^T: (H, 10)

Both operands are quantized with the same scheme, blocked along the reduction dimension K
(``axis=-1`` for the activations, ``axis=0`` for the weights); biases are added in float64
after the GEMM.  ``matmul`` is the hook for the hardware: by default
:func:`nybble.sw.golden.gemm`, the integer-exact result a MAC array computes; an RTL runner
with the same signature ``matmul(a_qt, b_qt) -> float64 (M, N)`` can replace it and must then
reproduce the same accuracy bit for bit.

:func:`run_digits` returns the float32 accuracy (the trained model evaluated in float32) and,
per scheme, the accuracy and the fraction of test digits whose prediction matches float32.
"""

import numpy as np

from nybble.sw.formats import check_integral
from nybble.sw.golden import gemm
from nybble.sw.quantize import quantize
from .stability import DEFAULT_SCHEMES, check_scheme

__all__ = ["DigitsModel", "train_digits_mlp", "quantized_forward", "run_digits"]


class DigitsModel:
    """Trained weights (``w1`` H x 64, ``b1``, ``w2`` 10 x H, ``b2``) and the held-out test
    set (``x_test`` in [0, 1], ``y_test``)."""

    def __init__(self, w1, b1, w2, b2, x_test, y_test, hidden, seed):
        self.w1, self.b1, self.w2, self.b2 = w1, b1, w2, b2
        self.x_test, self.y_test = x_test, y_test
        self.hidden, self.seed = hidden, seed

    def forward_float32(self, x):
        """Logits in float32."""
        f = np.float32
        h = np.maximum(x.astype(f) @ self.w1.T.astype(f) + self.b1.astype(f), f(0))
        return h @ self.w2.T.astype(f) + self.b2.astype(f)


def train_digits_mlp(hidden=64, seed=0, test_fraction=0.3, epochs=150):
    """Train the MLP on 70% of ``sklearn.datasets.load_digits`` (stratified split by
    ``seed``): numpy, float64, softmax cross-entropy with L2 1e-4, Adam (lr 3e-3, batches
    of 64, cosine decay), He initialisation -- deterministic in ``seed``, ~1 s."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    hidden = check_integral("hidden", hidden, 1, 4096)
    seed = check_integral("seed", seed, 0)
    epochs = check_integral("epochs", epochs, 1)
    data = load_digits()
    x = data.data / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target, test_size=test_fraction,
                                              random_state=seed, stratify=data.target)
    rng = np.random.default_rng([seed, 0xD161])
    k, c = x.shape[1], 10
    params = [rng.standard_normal((hidden, k)) * np.sqrt(2.0 / k), np.zeros(hidden),
              rng.standard_normal((c, hidden)) * np.sqrt(2.0 / hidden), np.zeros(c)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    onehot = np.eye(c)[y_tr]
    n, batch, step = x_tr.shape[0], 64, 0
    total = epochs * (-(-n // batch))
    for _ in range(epochs):
        order = rng.permutation(n)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            xb, tb = x_tr[idx], onehot[idx]
            w1, b1, w2, b2 = params
            z = xb @ w1.T + b1
            h = np.maximum(z, 0.0)
            logits = h @ w2.T + b2
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            g = (p - tb) / len(idx)
            gw2 = g.T @ h + 1e-4 * w2
            gh = (g @ w2) * (z > 0)
            grads = [gh.T @ xb + 1e-4 * w1, gh.sum(axis=0), gw2, g.sum(axis=0)]
            step += 1
            lr = 3e-3 * 0.5 * (1 + np.cos(np.pi * step / total))
            for j, gr in enumerate(grads):
                m[j] = 0.9 * m[j] + 0.1 * gr
                v[j] = 0.999 * v[j] + 0.001 * gr * gr
                params[j] = params[j] - lr * (m[j] / (1 - 0.9 ** step)) / (
                    np.sqrt(v[j] / (1 - 0.999 ** step)) + 1e-8)
    w1, b1, w2, b2 = params
    return DigitsModel(w1, b1, w2, b2, x_te, y_te, hidden, seed)


def quantized_forward(model, x, scheme, *, matmul=None):
    """Logits (float64) with both GEMMs on ``scheme``-quantized operands via ``matmul``."""
    sch = check_scheme(scheme)
    mm = gemm if matmul is None else matmul

    def layer(a, w):
        return np.asarray(mm(quantize(a, sch, axis=-1), quantize(w.T, sch, axis=0)),
                          dtype=np.float64)

    h = np.maximum(layer(x, model.w1) + model.b1, 0.0)
    return layer(h, model.w2) + model.b2


def run_digits(schemes=DEFAULT_SCHEMES, *, hidden=64, seed=0, matmul=None, model=None):
    """Train (unless ``model`` is given), then evaluate float32 and every scheme.

    Returns a dict: ``float32_accuracy``, ``n_test``, ``hidden``, ``schemes`` (list of
    ``{scheme, accuracy, agreement_with_float32, delta_points}``), ``best`` (the scheme with
    the highest accuracy) and ``best_delta_points`` (float32 minus best, in points).
    """
    schemes = [check_scheme(s).name for s in schemes]  # fail before training
    model = model if model is not None else train_digits_mlp(hidden, seed)
    x, y = model.x_test, model.y_test
    ref = np.argmax(model.forward_float32(x), axis=1)
    acc32 = float(np.mean(ref == y))
    rows = []
    for s in schemes:
        pred = np.argmax(quantized_forward(model, x, s, matmul=matmul), axis=1)
        acc = float(np.mean(pred == y))
        rows.append({"scheme": s, "accuracy": acc,
                     "agreement_with_float32": float(np.mean(pred == ref)),
                     "delta_points": 100.0 * (acc32 - acc)})
    best = max(rows, key=lambda r: r["accuracy"]) if rows else None
    return {"float32_accuracy": acc32, "n_test": int(y.size), "hidden": model.hidden,
            "seed": model.seed, "schemes": rows,
            "best": best["scheme"] if best else None,
            "best_delta_points": best["delta_points"] if best else None}
