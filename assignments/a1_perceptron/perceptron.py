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
    raise NotImplementedError("not implemented yet: threshold_unit")


class Perceptron:
    """A threshold unit in bias form: fires when w . x + b >= 0."""

    def __init__(self, weights: np.ndarray, bias: float):
        """Store the weights as ``self.weights``, a float64 array of shape (n,), and the bias as
        ``self.bias``, a float (the graders read these two attributes)."""
        raise NotImplementedError("not implemented yet: Perceptron.__init__")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Outputs (0 or 1, as int64) for each row of X, shape (m, n) -> (m,)."""
        raise NotImplementedError("not implemented yet: Perceptron.predict")


def logic_gate(name: str) -> Perceptron:
    """A perceptron with hand-set weights for 'AND', 'OR', 'NAND', 'NOR' (two inputs) or 'NOT'
    (one input). Raise ValueError for any other name.

    The notes' AND: w1 = w2 = 1 and theta = 2, that is bias -2.
    """
    raise NotImplementedError("not implemented yet: logic_gate")


def train_perceptron(X: np.ndarray, y: np.ndarray, lr: float = 1.0,
                     max_epochs: int = 100) -> tuple[Perceptron, bool, list[int]]:
    """Rosenblatt's learning rule.

    Start from zero weights and zero bias. In each epoch visit the rows of X in order; for each,
    predict p (1 when w . x + b >= 0, else 0), then update w += lr * (t - p) * x and
    b += lr * (t - p). Count the mistakes (p != t) of the epoch. Stop after the first epoch with
    no mistakes (converged) or after max_epochs epochs (not converged).

    Return (perceptron, converged, mistakes per epoch as a list of ints).
    """
    raise NotImplementedError("not implemented yet: train_perceptron")


def xnor_hidden(X: np.ndarray) -> np.ndarray:
    """The hidden layer of a two-layer threshold network for XNOR, shape (m, 2) -> (m, 2).

    Use two threshold units: h1 = AND(x1, x2) and h2 = NOR(x1, x2). In this representation the
    four inputs become linearly separable for XNOR ("fire when both inputs are equal").
    Return int64 0/1 values.
    """
    raise NotImplementedError("not implemented yet: xnor_hidden")


def xnor(X: np.ndarray) -> np.ndarray:
    """XNOR of each row of X with the two-layer network: an OR unit on top of xnor_hidden."""
    raise NotImplementedError("not implemented yet: xnor")


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
    raise NotImplementedError("not implemented yet: train_xor")
