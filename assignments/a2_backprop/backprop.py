"""Backpropagation by hand, in numpy.

Every layer is a pair: ``*_forward`` returns (output, cache) and ``*_backward`` takes the upstream
gradient and the cache and returns the gradient with respect to each input. Shapes: a batch x is
(N, D), weights W are (D, M), biases b are (M,). The course derives backprop three ways: the chain
rule on a computation graph, Jacobians of layers (g_in = g_out W^T for an affine layer), and
Fausett's per-unit delta rule. You will meet all three.

Use numpy only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# ---------------------------------------------------------------- layers


def affine_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out = x W + b, shape (N, M). Cache what the backward pass needs."""
    raise NotImplementedError("not implemented yet: affine_forward")


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (dx, dW, db) with the shapes of x, W and b."""
    raise NotImplementedError("not implemented yet: affine_backward")


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """max(0, x) elementwise."""
    raise NotImplementedError("not implemented yet: relu_forward")


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """The gradient passes where x > 0 and is 0 elsewhere (also at x == 0)."""
    raise NotImplementedError("not implemented yet: relu_backward")


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    """x where x > 0, alpha * x elsewhere."""
    raise NotImplementedError("not implemented yet: leaky_relu_forward")


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Slope 1 where x > 0, alpha elsewhere."""
    raise NotImplementedError("not implemented yet: leaky_relu_backward")


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s = 1 / (1 + exp(-x)), computed without overflow for large |x|."""
    raise NotImplementedError("not implemented yet: sigmoid_forward")


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """ds/dx = s (1 - s), computed from the output s."""
    raise NotImplementedError("not implemented yet: sigmoid_backward")


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tanh elementwise."""
    raise NotImplementedError("not implemented yet: tanh_forward")


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """d tanh(x)/dx = 1 - tanh(x)^2."""
    raise NotImplementedError("not implemented yet: tanh_backward")


# ---------------------------------------------------------------- losses: (loss, dpred)


def mse_half_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """The notes' convention: L = (1/N) sum_i 1/2 ||pred_i - target_i||^2 over the N rows."""
    raise NotImplementedError("not implemented yet: mse_half_loss")


def mse_mean_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean convention: L = mean over every element of (pred - target)^2."""
    raise NotImplementedError("not implemented yet: mse_mean_loss")


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels y, and dL/dlogits.

    Must stay finite for logits in the thousands: subtract each row's max first.
    """
    raise NotImplementedError("not implemented yet: softmax_cross_entropy")


def hinge_loss(scores: np.ndarray, y: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    """Multiclass SVM loss: mean over rows of sum_{j != y} max(0, s_j - s_y + margin).

    A term exactly at its margin (s_j - s_y + margin == 0) is inactive: its gradient is 0."""
    raise NotImplementedError("not implemented yet: hinge_loss")


# ---------------------------------------------------------------- gradient checking


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar function f at x: (f(x + h e_i) - f(x - h e_i)) / 2h.

    Perturb x in place one element at a time and restore it afterwards.
    """
    raise NotImplementedError("not implemented yet: numeric_gradient")


def grad_check(f: Callable[[np.ndarray], float], x: np.ndarray, analytic: np.ndarray,
               h: float = 1e-5) -> float:
    """Largest relative error max |a - n| / max(1e-8, |a| + |n|) between the analytic gradient
    and numeric_gradient(f, x, h). Below 1e-7 is a pass for float64."""
    raise NotImplementedError("not implemented yet: grad_check")


# ---------------------------------------------------------------- a network of any depth

ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
}


class FullyConnectedNet:
    """affine - activation - ... - affine - softmax cross-entropy, with L2 regularisation.

    ``dims`` = [input, hidden..., classes]. Initialise with rng = np.random.default_rng(seed):
    for i = 1, 2, ... in order, W{i} = rng.normal(0, 1, (d_in, d_out)) * sqrt(2 / d_in) and
    b{i} = zeros(d_out), stored in ``self.params`` under the names "W1", "b1", "W2", ...
    """

    def __init__(self, dims: list[int], activation: str = "relu", reg: float = 0.0, seed: int = 0):
        self.activation, self.reg = activation, reg
        self.n_layers = len(dims) - 1
        rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            self.params[f"W{i}"] = rng.normal(0, 1, (d_in, d_out)) * np.sqrt(2.0 / d_in)
            self.params[f"b{i}"] = np.zeros(d_out)

    def scores(self, X: np.ndarray) -> tuple[np.ndarray, list]:
        """Forward pass to the class scores; also return the caches."""
        raise NotImplementedError("not implemented yet: FullyConnectedNet.scores")

    def loss(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Softmax cross-entropy + 0.5 * reg * (sum of squared weights, biases excluded).

        Return (loss, grads) with grads[name] the gradient of the loss for each parameter.
        """
        raise NotImplementedError("not implemented yet: FullyConnectedNet.loss")

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most likely class of each row."""
        return np.argmax(self.scores(X)[0], axis=1)


def sgd_step(w: np.ndarray, dw: np.ndarray, lr: float) -> np.ndarray:
    """Plain gradient descent: return the new w."""
    raise NotImplementedError("not implemented yet: sgd_step")


def sgd_momentum_step(w: np.ndarray, dw: np.ndarray, v: np.ndarray, lr: float,
                      mu: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Momentum: v <- mu v - lr dw, then w <- w + v. Return (new w, new v)."""
    raise NotImplementedError("not implemented yet: sgd_momentum_step")


# ---------------------------------------------------------------- the notes' worked example


def worked_example() -> dict[str, np.ndarray | float]:
    """The notes' two-layer example, one gradient-descent step.

    x0 = (1.0, 0.1); W0 = [[1, -3], [0.2, 1]]; W1 = [1, -1]; no biases; y = 0.5.
    x1 = W0 x0 (pre-activation), x2 = tanh(x1), x3 = W1 . x2, L = 1/2 (x3 - y)^2.
    Backpropagate, then update W <- W - 0.2 dL/dW. Return a dict with keys
    "x1", "x2", "x3", "L", "dL_dx3", "dL_dx2", "dL_dx1", "dL_dW1", "dL_dW0", "W1_new", "W0_new".
    """
    raise NotImplementedError("not implemented yet: worked_example")


# ---------------------------------------------------------------- Fausett's delta rule


def delta_rule_gradients(x: np.ndarray, t: np.ndarray, V: np.ndarray,
                         W: np.ndarray) -> dict[str, np.ndarray]:
    """One sample through a one-hidden-layer sigmoid network, unit by unit (write the loops).

    z_in_j = sum_i x_i V_ij, z_j = f(z_in_j); y_in_k = sum_j z_j W_jk, y_k = f(y_in_k), f the
    sigmoid, no biases, E = 1/2 sum_k (t_k - y_k)^2.
    delta_k = (t_k - y_k) f'(y_in_k); delta_j = (sum_k delta_k W_jk) f'(z_in_j).
    Return {"delta_out": delta_k, "delta_hidden": delta_j, "dE_dW": -delta_k z_j as a matrix
    (n_hidden, n_out), "dE_dV": -delta_j x_i as a matrix (n_in, n_hidden)}.
    """
    raise NotImplementedError("not implemented yet: delta_rule_gradients")


# ---------------------------------------------------------------- training on the digits


def train_digits(X: np.ndarray, y: np.ndarray, seed: int = 0) -> FullyConnectedNet:
    """Train a FullyConnectedNet on the 8x8 digits (X scaled to [0, 1], y in 0..9) with your
    layers and SGD with momentum. Choose the architecture and hyperparameters yourself; the
    graders need at least 95% accuracy on held-out digits, within 60 s of CPU."""
    raise NotImplementedError("not implemented yet: train_digits")
