"""Perceptrons as logic gates.

A threshold unit fires when the weighted sum of its inputs reaches its threshold: w.x >= theta, or
equivalently w.x + b >= 0 with the bias b = -theta. One unit computes AND, OR, NAND, NOR and NOT;
the Rosenblatt rule learns such weights from examples, and fails on XOR, which no single line
separates. Two layers of units solve it, and so does a small sigmoid network trained by backprop.

Use numpy only.
"""

from __future__ import annotations

import numpy as np


def threshold_unit(w: np.ndarray, x: np.ndarray, theta: float) -> int:
    """Return 1 when the unit fires (w . x >= theta), else 0, as a Python int."""
    # BEGIN SOLUTION
    return int(np.dot(w, x) >= theta)
    # END SOLUTION


class Perceptron:
    """A threshold unit in bias form: fires when w . x + b >= 0."""

    def __init__(self, weights: np.ndarray, bias: float):
        """Store the weights as ``self.weights``, a float64 array of shape (n,), and the bias as
        ``self.bias``, a float (the graders read these two attributes)."""
        # BEGIN SOLUTION
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = float(bias)
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Outputs (0 or 1, as int64) for each row of X, shape (m, n) -> (m,)."""
        # BEGIN SOLUTION
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        return (X @ self.weights + self.bias >= 0).astype(np.int64)
        # END SOLUTION


def logic_gate(name: str) -> Perceptron:
    """A perceptron with hand-set weights for 'AND', 'OR', 'NAND', 'NOR' (two inputs) or 'NOT'
    (one input). Raise ValueError for any other name.

    The notes' AND: w1 = w2 = 1 and theta = 2, that is bias -2.
    """
    # BEGIN SOLUTION
    table = {
        "AND": ([1.0, 1.0], -2.0),
        "OR": ([1.0, 1.0], -1.0),
        "NAND": ([-1.0, -1.0], 1.5),
        "NOR": ([-1.0, -1.0], 0.0),
        "NOT": ([-1.0], 0.0),
    }
    if name not in table:
        raise ValueError(f"unknown gate {name!r}")
    weights, bias = table[name]
    return Perceptron(np.array(weights), bias)
    # END SOLUTION


def train_perceptron(X: np.ndarray, y: np.ndarray, lr: float = 1.0,
                     max_epochs: int = 100) -> tuple[Perceptron, bool, list[int]]:
    """Rosenblatt's learning rule.

    Start from zero weights and zero bias. In each epoch visit the rows of X in order; for each,
    predict p (1 when w . x + b >= 0, else 0), then update w += lr * (t - p) * x and
    b += lr * (t - p). Count the mistakes (p != t) of the epoch. Stop after the first epoch with
    no mistakes (converged) or after max_epochs epochs (not converged).

    Return (perceptron, converged, mistakes per epoch as a list of ints).
    """
    # BEGIN SOLUTION
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    w = np.zeros(X.shape[1])
    b = 0.0
    history: list[int] = []
    for _ in range(max_epochs):
        mistakes = 0
        for x, t in zip(X, y):
            p = int(x @ w + b >= 0)
            if p != t:
                mistakes += 1
                w = w + lr * (t - p) * x
                b = b + lr * (t - p)
        history.append(mistakes)
        if mistakes == 0:
            return Perceptron(w, b), True, history
    return Perceptron(w, b), False, history
    # END SOLUTION


def xnor_hidden(X: np.ndarray) -> np.ndarray:
    """The hidden layer of a two-layer threshold network for XNOR, shape (m, 2) -> (m, 2).

    Use two threshold units: h1 = AND(x1, x2) and h2 = NOR(x1, x2). In this representation the
    four inputs become linearly separable for XNOR ("fire when both inputs are equal").
    Return int64 0/1 values.
    """
    # BEGIN SOLUTION
    X = np.asarray(X)
    h1 = logic_gate("AND").predict(X)
    h2 = logic_gate("NOR").predict(X)
    return np.stack([h1, h2], axis=1)
    # END SOLUTION


def xnor(X: np.ndarray) -> np.ndarray:
    """XNOR of each row of X with the two-layer network: an OR unit on top of xnor_hidden."""
    # BEGIN SOLUTION
    return logic_gate("OR").predict(xnor_hidden(X))
    # END SOLUTION


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def train_xor(seed: int = 0, lr: float = 2.0, epochs: int = 3000) -> tuple[np.ndarray, list[float]]:
    """Train a 2-2-1 sigmoid network on XOR by full-batch gradient descent.

    Initialise with rng = np.random.default_rng(seed): W1 = rng.normal(0, 1, (2, 2)), then
    W2 = rng.normal(0, 1, (2, 1)), b1 = zeros(2), b2 = zeros(1). Inputs X are the four rows
    [0,0], [0,1], [1,0], [1,1] in that order, targets t = [0, 1, 1, 0] as a column.
    Forward: h = sigmoid(X W1 + b1), y = sigmoid(h W2 + b2). Loss: L = mean over the four rows of
    1/2 (y - t)^2. Each epoch: compute L (record it), backpropagate, then W -= lr * dL/dW for
    all four parameters. The sigmoid's derivative is s (1 - s), computed from its *output* s.

    Return (outputs y of the trained network for the four inputs, shape (4,), losses per epoch).
    """
    # BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    W1 = rng.normal(0, 1, (2, 2))
    W2 = rng.normal(0, 1, (2, 1))
    b1, b2 = np.zeros(2), np.zeros(1)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    t = np.array([[0], [1], [1], [0]], dtype=np.float64)
    losses = []
    for _ in range(epochs):
        h = sigmoid(X @ W1 + b1)
        y = sigmoid(h @ W2 + b2)
        losses.append(float(np.mean(0.5 * (y - t) ** 2)))
        dy = (y - t) / len(X)
        dz2 = dy * y * (1 - y)
        dW2, db2 = h.T @ dz2, dz2.sum(axis=0)
        dz1 = (dz2 @ W2.T) * h * (1 - h)
        dW1, db1 = X.T @ dz1, dz1.sum(axis=0)
        W1, b1, W2, b2 = W1 - lr * dW1, b1 - lr * db1, W2 - lr * dW2, b2 - lr * db2
    y = sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2)
    return y[:, 0], losses
    # END SOLUTION
