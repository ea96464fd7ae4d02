"""Perceptrons as logic gates -- my solution (written with plain Python loops)."""

from __future__ import annotations

import math

import numpy as np


def threshold_unit(w: np.ndarray, x: np.ndarray, theta: float) -> int:
    """Return 1 when the unit fires (w . x >= theta), else 0, as a Python int."""
    total = 0.0
    for wi, xi in zip(np.ravel(w), np.ravel(x)):
        total += float(wi) * float(xi)
    if total >= theta:
        return 1
    return 0


class Perceptron:
    """A threshold unit in bias form: fires when w . x + b >= 0."""

    def __init__(self, weights: np.ndarray, bias: float):
        self.weights = np.array(weights, dtype=np.float64).reshape(-1)
        self.bias = float(bias)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        outputs = np.zeros(X.shape[0], dtype=np.int64)
        for row in range(X.shape[0]):
            s = self.bias
            for col in range(X.shape[1]):
                s += self.weights[col] * X[row, col]
            outputs[row] = 1 if s >= 0 else 0
        return outputs


def logic_gate(name: str) -> Perceptron:
    if name == "AND":
        return Perceptron([1.0, 1.0], -2.0)
    elif name == "OR":
        return Perceptron([1.0, 1.0], -1.0)
    elif name == "NAND":
        return Perceptron([-1.0, -1.0], 2.0 - 0.5)
    elif name == "NOR":
        return Perceptron([-1.0, -1.0], 0.0)
    elif name == "NOT":
        return Perceptron([-1.0], 0.5)
    else:
        raise ValueError(f"unknown gate {name!r}")


def train_perceptron(X: np.ndarray, y: np.ndarray, lr: float = 1.0,
                     max_epochs: int = 100) -> tuple[Perceptron, bool, list[int]]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    m, n = X.shape
    w = [0.0] * n
    b = 0.0
    history = []
    converged = False
    for epoch in range(max_epochs):
        errors = 0
        for i in range(m):
            s = b
            for j in range(n):
                s += w[j] * X[i, j]
            p = 1 if s >= 0 else 0
            t = float(y[i])
            diff = t - p
            for j in range(n):
                w[j] = w[j] + lr * diff * X[i, j]
            b = b + lr * diff
            if p != t:
                errors += 1
        history.append(int(errors))
        if errors == 0:
            converged = True
            break
    return Perceptron(np.array(w), b), converged, history


def xnor_hidden(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    out = np.zeros((X.shape[0], 2), dtype=np.int64)
    for i in range(X.shape[0]):
        out[i, 0] = threshold_unit(np.array([1.0, 1.0]), X[i], 2.0)    # AND
        out[i, 1] = threshold_unit(np.array([-1.0, -1.0]), X[i], 0.0)  # NOR
    return out


def xnor(X: np.ndarray) -> np.ndarray:
    H = xnor_hidden(X)
    result = np.zeros(H.shape[0], dtype=np.int64)
    for i in range(H.shape[0]):
        result[i] = threshold_unit(np.array([1.0, 1.0]), H[i], 1.0)    # OR
    return result


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def train_xor(seed: int = 0, lr: float = 2.0, epochs: int = 3000) -> tuple[np.ndarray, list[float]]:
    rng = np.random.default_rng(seed)
    W1 = rng.normal(0, 1, (2, 2))
    W2 = rng.normal(0, 1, (2, 1))
    b1 = np.zeros(2)
    b2 = np.zeros(1)
    X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    T = [0.0, 1.0, 1.0, 0.0]

    def forward():
        hs, ys = [], []
        for x in X:
            h = [1.0 / (1.0 + math.exp(-(x[0] * W1[0, j] + x[1] * W1[1, j] + b1[j])))
                 for j in range(2)]
            y = 1.0 / (1.0 + math.exp(-(h[0] * W2[0, 0] + h[1] * W2[1, 0] + b2[0])))
            hs.append(h)
            ys.append(y)
        return hs, ys

    losses = []
    for _ in range(epochs):
        hs, ys = forward()
        L = 0.0
        for y, t in zip(ys, T):
            L += 0.5 * (y - t) ** 2
        L /= 4
        losses.append(float(L))
        gW1 = np.zeros((2, 2))
        gW2 = np.zeros((2, 1))
        gb1 = np.zeros(2)
        gb2 = np.zeros(1)
        for x, h, y, t in zip(X, hs, ys, T):
            dy = (y - t) / 4.0             # dL/dy for this row
            dz2 = dy * y * (1.0 - y)       # through the output sigmoid
            gb2[0] += dz2
            for j in range(2):
                gW2[j, 0] += h[j] * dz2
                dz1 = dz2 * W2[j, 0] * h[j] * (1.0 - h[j])
                gb1[j] += dz1
                for i in range(2):
                    gW1[i, j] += x[i] * dz1
        for i in range(2):
            for j in range(2):
                W1[i, j] -= lr * gW1[i, j]
        for j in range(2):
            W2[j, 0] -= lr * gW2[j, 0]
            b1[j] -= lr * gb1[j]
        b2[0] -= lr * gb2[0]
    _, ys = forward()
    return np.array(ys), losses
