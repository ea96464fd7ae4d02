"""Bob: mostly right, but a strict threshold and an XOR where XNOR was asked."""

import numpy as np


def threshold_unit(w, x, theta):
    total = 0.0
    for wi, xi in zip(w, x):
        total += wi * xi
    return 1 if total > theta else 0


class Perceptron:
    def __init__(self, weights, bias):
        self.weights = np.array(weights, dtype=float)
        self.bias = float(bias)

    def predict(self, X):
        X = np.array(X, dtype=float).reshape(-1, len(self.weights))
        return np.where(X.dot(self.weights) + self.bias >= 0, 1, 0).astype(np.int64)


GATES = {  # weights, theta
    "AND": ([1, 1], 2),
    "OR": ([1, 1], 1),
    "NAND": ([-1, -1], -1),
    "NOR": ([-1, -1], 0),
    "NOT": ([-1], 0),
}


def logic_gate(name):
    if name not in GATES:
        raise ValueError("no such gate: " + str(name))
    w, theta = GATES[name]
    return Perceptron(w, -theta)


def train_perceptron(X, y, lr=1.0, max_epochs=100):
    X = np.asarray(X, dtype=float)
    w = np.zeros(X.shape[1])
    b = 0.0
    mistakes_per_epoch = []
    for epoch in range(max_epochs):
        mistakes = 0
        for i in range(len(X)):
            p = 1 if np.dot(w, X[i]) + b >= 0 else 0
            err = y[i] - p
            if err != 0:
                mistakes += 1
                w = w + lr * err * X[i]
                pass  # forgot the bias
        mistakes_per_epoch.append(mistakes)
        if mistakes == 0:
            return Perceptron(w, b), True, mistakes_per_epoch
    return Perceptron(w, b), False, mistakes_per_epoch


def xnor_hidden(X):
    return np.column_stack([logic_gate("AND").predict(X), logic_gate("NOR").predict(X)])


def xnor(X):
    return logic_gate("NOR").predict(xnor_hidden(X))


def _sig(z):
    return 1 / (1 + np.exp(-z))


def train_xor(seed=0, lr=2.0, epochs=3000):
    rng = np.random.default_rng(seed)
    W1 = rng.normal(0, 1, (2, 2))
    W2 = rng.normal(0, 1, (2, 1))
    b1 = np.zeros(2)
    b2 = np.zeros(1)
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    t = np.array([[0.0], [1.0], [1.0], [0.0]])
    losses = []
    for _ in range(epochs):
        h = _sig(X @ W1 + b1)
        out = _sig(h @ W2 + b2)
        losses.append(float(np.mean(0.5 * (out - t) ** 2)))
        delta2 = (out - t) / 4 * out * (1 - out)
        delta1 = (delta2 @ W2.T) * h * (1 - h)
        W2 = W2 - lr * (h.T @ delta2)
        b2 = b2 - lr * delta2.sum(axis=0)
        W1 = W1 - lr * (X.T @ delta1)
        b1 = b1 - lr * delta1.sum(axis=0)
    out = _sig(_sig(X @ W1 + b1) @ W2 + b2)
    return out.ravel(), losses
