"""Perceptrons as logic gates.

A threshold unit fires when the weighted sum of its inputs reaches its threshold.
"""

from __future__ import annotations

import numpy as np

DEBUG = True


def threshold_unit(w: np.ndarray, x: np.ndarray, theta: float) -> int:
    activation = np.sum(np.multiply(w, x, dtype=np.float64))
    fired = 1 if activation >= theta else 0
    print(f"threshold_unit: w.x = {activation}, theta = {theta} -> {fired}")
    return fired


class Perceptron:
    """A threshold unit in bias form: fires when w . x + b >= 0."""

    def __init__(self, weights: np.ndarray, bias: float):
        # attribute names w / b (the README does not name the attributes)
        self.weights = np.array(weights, dtype=np.float64, copy=True).reshape(-1)
        self.bias = float(bias)

    def __repr__(self):
        return f"Perceptron(w={self.weights}, b={self.bias})"

    def predict(self, X: np.ndarray) -> np.ndarray:
        z = np.einsum("mn,n->m", np.asarray(X, dtype=np.float64), self.weights) + self.bias
        return np.where(z >= 0, 1, 0).astype(np.int64)


def logic_gate(name: str) -> Perceptron:
    name_u = name.upper() if isinstance(name, str) else name
    if name_u not in ("AND", "OR", "NAND", "NOR", "NOT") or name != name_u:
        raise ValueError("logic_gate: expected one of AND, OR, NAND, NOR, NOT, got %r" % (name,))
    if name == "NOT":
        return Perceptron(np.array([-2.0]), 1.0)
    # theta for AND is 2 (the notes), OR is 1; NAND / NOR are the negations
    theta = {"AND": 2.0, "OR": 1.0, "NAND": 2.0, "NOR": 1.0}[name]
    sign = 1.0 if name in ("AND", "OR") else -1.0
    w = sign * np.ones(2)
    # negation of "w.x >= theta" is "-w.x > -theta", i.e. -w.x - theta + 0.5 >= 0 on integer sums
    b = -theta if sign > 0 else theta - 0.5
    print("gate", name, "w =", w, "b =", b)
    return Perceptron(w, b)


def train_perceptron(X: np.ndarray, y: np.ndarray, lr: float = 1.0,
                     max_epochs: int = 100) -> tuple[Perceptron, bool, list[int]]:
    X = np.asarray(X, dtype=np.float64)
    targets = np.asarray(y).reshape(-1)
    weights = np.zeros(X.shape[1], dtype=np.float64)
    bias = 0.0
    per_epoch = []
    ok = False
    epoch = 0
    while epoch < max_epochs:
        epoch += 1
        count = 0
        for k in range(len(X)):
            p = int(weights @ X[k] + bias >= 0)
            delta = targets[k] - p
            weights = weights + lr * delta * X[k]
            bias = bias + lr * delta
            count += int(p != targets[k])
        per_epoch.append(count)
        if DEBUG:
            print(f"epoch {epoch}: {count} mistakes, w={weights}, b={bias}")
        if count == 0:
            ok = True
            break
    return Perceptron(weights, bias), ok, per_epoch


def xnor_hidden(X: np.ndarray) -> np.ndarray:
    and_unit = logic_gate("AND")
    nor_unit = logic_gate("NOR")
    return np.stack([and_unit.predict(X), nor_unit.predict(X)], axis=1).astype(np.int64)


def xnor(X: np.ndarray) -> np.ndarray:
    return logic_gate("OR").predict(xnor_hidden(X))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def train_xor(seed: int = 0, lr: float = 2.0, epochs: int = 3000) -> tuple[np.ndarray, list[float]]:
    """Same algorithm, computed in float32 (the README does not ask for float64 here)."""
    f32 = np.float32
    rng = np.random.default_rng(seed)
    W1 = rng.normal(0, 1, (2, 2)).astype(f32)
    W2 = rng.normal(0, 1, (2, 1)).astype(f32)
    b1 = np.zeros(2, dtype=f32)
    b2 = np.zeros(1, dtype=f32)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=f32)
    t = np.array([0, 1, 1, 0], dtype=f32).reshape(4, 1)
    lr = f32(lr)
    losses = []
    for ep in range(epochs):
        a1 = X @ W1 + b1
        h = sigmoid(a1)
        a2 = h @ W2 + b2
        yhat = sigmoid(a2)
        L = f32(0.5) * np.mean((yhat - t) ** 2)
        losses.append(float(L))
        if ep % 500 == 0:
            print("epoch", ep, "loss", float(L))
        dy = (yhat - t) / f32(4)
        da2 = dy * yhat * (1 - yhat)
        dW2 = h.T @ da2
        db2 = da2.sum(0)
        dh = da2 @ W2.T
        da1 = dh * h * (1 - h)
        dW1 = X.T @ da1
        db1 = da1.sum(0)
        W1 = W1 - lr * dW1
        W2 = W2 - lr * dW2
        b1 = b1 - lr * db1
        b2 = b2 - lr * db2
    y_out = sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2)[:, 0]
    print("final outputs", y_out)
    return y_out, losses
