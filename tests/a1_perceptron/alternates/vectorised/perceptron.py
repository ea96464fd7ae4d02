"""Perceptrons as logic gates.

Vectorised numpy version; the training loops update the parameter arrays in place.
"""

from __future__ import annotations

import numpy as np

# (weights, bias) for each gate; any weights with the right truth table work
_GATES = {
    "AND": ((1.0, 1.0), -2.0),     # the notes' gate: theta = 2
    "OR": ((2.0, 2.0), -1.0),
    "NAND": ((-2.0, -2.0), 3.0),
    "NOR": ((-1.0, -1.0), 0.5),
    "NOT": ((-1.0,), 0.0),
}


def threshold_unit(w: np.ndarray, x: np.ndarray, theta: float) -> int:
    return int(np.dot(np.asarray(w, dtype=np.float64), np.asarray(x, dtype=np.float64)) >= theta)


class Perceptron:
    """A threshold unit in bias form: fires when w . x + b >= 0."""

    def __init__(self, weights: np.ndarray, bias: float):
        self.w = np.asarray(weights, dtype=np.float64).copy().ravel()
        self.b = float(bias)

    # a couple of aliases so either name works
    @property
    def weights(self) -> np.ndarray:
        return self.w

    @property
    def bias(self) -> float:
        return self.b

    def net_input(self, X: np.ndarray) -> np.ndarray:
        return np.atleast_2d(np.asarray(X, dtype=np.float64)) @ self.w + self.b

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.net_input(X) >= 0).astype(np.int64)


def logic_gate(name: str) -> Perceptron:
    try:
        w, b = _GATES[name]
    except (KeyError, TypeError):
        raise ValueError(f"no such gate: {name!r}") from None
    return Perceptron(np.array(w), b)


def train_perceptron(X: np.ndarray, y: np.ndarray, lr: float = 1.0,
                     max_epochs: int = 100) -> tuple[Perceptron, bool, list[int]]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    model = Perceptron(np.zeros(X.shape[1]), 0.0)
    mistakes: list[int] = []
    for _ in range(max_epochs):
        wrong = 0
        for xi, ti in zip(X, y):
            p = 1.0 if xi @ model.w + model.b >= 0 else 0.0
            err = ti - p
            if err != 0:
                wrong += 1
            model.w += lr * err * xi           # in place
            model.b += lr * err
        mistakes.append(wrong)
        if wrong == 0:
            return model, True, mistakes
    return model, False, mistakes


def xnor_hidden(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    # column 0: AND (w = 1, 1; b = -2); column 1: NOR (w = -1, -1; b = 0)
    W = np.array([[1.0, -1.0], [1.0, -1.0]])
    b = np.array([-2.0, 0.0])
    return (X @ W + b >= 0).astype(np.int64)


def xnor(X: np.ndarray) -> np.ndarray:
    H = xnor_hidden(X)
    return (H @ np.array([1.0, 1.0]) - 1.0 >= 0).astype(np.int64)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def train_xor(seed: int = 0, lr: float = 2.0, epochs: int = 3000) -> tuple[np.ndarray, list[float]]:
    rng = np.random.default_rng(seed)
    W1 = rng.normal(0, 1, (2, 2))
    W2 = rng.normal(0, 1, (2, 1))
    b1 = np.zeros(2)
    b2 = np.zeros(1)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    t = np.array([[0], [1], [1], [0]], dtype=np.float64)
    n = X.shape[0]
    losses = []
    for _ in range(epochs):
        h = sigmoid(X @ W1 + b1)
        out = sigmoid(h @ W2 + b2)
        losses.append(float(np.mean(0.5 * (out - t) ** 2)))
        d_out = (out - t) / n * out * (1 - out)
        d_h = (d_out @ W2.T) * h * (1 - h)
        gW2, gb2 = h.T @ d_out, d_out.sum(axis=0)
        gW1, gb1 = X.T @ d_h, d_h.sum(axis=0)
        W1 -= lr * gW1
        b1 -= lr * gb1
        W2 -= lr * gW2
        b2 -= lr * gb2
    final = sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2)
    return final.ravel(), losses
