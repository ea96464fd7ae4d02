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
    # BEGIN SOLUTION
    return x @ W + b, (x, W)
    # END SOLUTION


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (dx, dW, db) with the shapes of x, W and b."""
    # BEGIN SOLUTION
    x, W = cache
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)
    # END SOLUTION


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """max(0, x) elementwise."""
    # BEGIN SOLUTION
    return np.maximum(0, x), x
    # END SOLUTION


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """The gradient passes where x > 0 and is 0 elsewhere (also at x == 0)."""
    # BEGIN SOLUTION
    return dout * (cache > 0)
    # END SOLUTION


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    """x where x > 0, alpha * x elsewhere."""
    # BEGIN SOLUTION
    return np.where(x > 0, x, alpha * x), (x, alpha)
    # END SOLUTION


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Slope 1 where x > 0, alpha elsewhere."""
    # BEGIN SOLUTION
    x, alpha = cache
    return dout * np.where(x > 0, 1.0, alpha)
    # END SOLUTION


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """s = 1 / (1 + exp(-x)), computed without overflow for large |x|."""
    # BEGIN SOLUTION
    s = np.exp(-np.logaddexp(0, -x))
    return s, s
    # END SOLUTION


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """ds/dx = s (1 - s), computed from the output s."""
    # BEGIN SOLUTION
    s = cache
    return dout * s * (1 - s)
    # END SOLUTION


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tanh elementwise."""
    # BEGIN SOLUTION
    t = np.tanh(x)
    return t, t
    # END SOLUTION


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """d tanh(x)/dx = 1 - tanh(x)^2."""
    # BEGIN SOLUTION
    return dout * (1 - cache**2)
    # END SOLUTION


# ---------------------------------------------------------------- losses: (loss, dpred)


def mse_half_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """The notes' convention: L = (1/N) sum_i 1/2 ||pred_i - target_i||^2 over the N rows."""
    # BEGIN SOLUTION
    n = pred.shape[0]
    diff = pred - target
    return float(0.5 * np.sum(diff**2) / n), diff / n
    # END SOLUTION


def mse_mean_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean convention: L = mean over every element of (pred - target)^2."""
    # BEGIN SOLUTION
    diff = pred - target
    return float(np.mean(diff**2)), 2 * diff / diff.size
    # END SOLUTION


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels y, and dL/dlogits.

    Must stay finite for logits in the thousands: subtract each row's max first.
    """
    # BEGIN SOLUTION
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -log_probs[np.arange(n), y].mean()
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), y] -= 1
    return float(loss), dlogits / n
    # END SOLUTION


def hinge_loss(scores: np.ndarray, y: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    """Multiclass SVM loss: mean over rows of sum_{j != y} max(0, s_j - s_y + margin).

    A term exactly at its margin (s_j - s_y + margin == 0) is inactive: its gradient is 0."""
    # BEGIN SOLUTION
    n = scores.shape[0]
    correct = scores[np.arange(n), y][:, None]
    margins = np.maximum(0, scores - correct + margin)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n
    d = (margins > 0).astype(np.float64)
    d[np.arange(n), y] = -d.sum(axis=1)
    return float(loss), d / n
    # END SOLUTION


# ---------------------------------------------------------------- gradient checking


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar function f at x: (f(x + h e_i) - f(x - h e_i)) / 2h.

    Perturb x in place one element at a time and restore it afterwards.
    """
    # BEGIN SOLUTION
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = f(x)
        x[i] = old - h
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad
    # END SOLUTION


def grad_check(f: Callable[[np.ndarray], float], x: np.ndarray, analytic: np.ndarray,
               h: float = 1e-5) -> float:
    """Largest relative error max |a - n| / max(1e-8, |a| + |n|) between the analytic gradient
    and numeric_gradient(f, x, h). Below 1e-7 is a pass for float64."""
    # BEGIN SOLUTION
    num = numeric_gradient(f, x, h)
    return float(np.max(np.abs(analytic - num) / np.maximum(1e-8, np.abs(analytic) + np.abs(num))))
    # END SOLUTION


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
        # BEGIN SOLUTION
        act_forward = ACTIVATIONS[self.activation][0]
        caches = []
        h = X
        for i in range(1, self.n_layers + 1):
            h, c = affine_forward(h, self.params[f"W{i}"], self.params[f"b{i}"])
            caches.append(c)
            if i < self.n_layers:
                h, c = act_forward(h)
                caches.append(c)
        return h, caches
        # END SOLUTION

    def loss(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Softmax cross-entropy + 0.5 * reg * (sum of squared weights, biases excluded).

        Return (loss, grads) with grads[name] the gradient of the loss for each parameter.
        """
        # BEGIN SOLUTION
        act_backward = ACTIVATIONS[self.activation][1]
        scores, caches = self.scores(X)
        loss, d = softmax_cross_entropy(scores, y)
        grads: dict[str, np.ndarray] = {}
        for i in range(self.n_layers, 0, -1):
            if i < self.n_layers:
                d = act_backward(d, caches.pop())
            d, dW, db = affine_backward(d, caches.pop())
            W = self.params[f"W{i}"]
            loss += 0.5 * self.reg * float(np.sum(W * W))
            grads[f"W{i}"] = dW + self.reg * W
            grads[f"b{i}"] = db
        return loss, grads
        # END SOLUTION

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most likely class of each row."""
        return np.argmax(self.scores(X)[0], axis=1)


def sgd_step(w: np.ndarray, dw: np.ndarray, lr: float) -> np.ndarray:
    """Plain gradient descent: return the new w."""
    # BEGIN SOLUTION
    return w - lr * dw
    # END SOLUTION


def sgd_momentum_step(w: np.ndarray, dw: np.ndarray, v: np.ndarray, lr: float,
                      mu: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Momentum: v <- mu v - lr dw, then w <- w + v. Return (new w, new v)."""
    # BEGIN SOLUTION
    v = mu * v - lr * dw
    return w + v, v
    # END SOLUTION


# ---------------------------------------------------------------- the notes' worked example


def worked_example() -> dict[str, np.ndarray | float]:
    """The notes' two-layer example, one gradient-descent step.

    x0 = (1.0, 0.1); W0 = [[1, -3], [0.2, 1]]; W1 = [1, -1]; no biases; y = 0.5.
    x1 = W0 x0 (pre-activation), x2 = tanh(x1), x3 = W1 . x2, L = 1/2 (x3 - y)^2.
    Backpropagate, then update W <- W - 0.2 dL/dW. Return a dict with keys
    "x1", "x2", "x3", "L", "dL_dx3", "dL_dx2", "dL_dx1", "dL_dW1", "dL_dW0", "W1_new", "W0_new".
    """
    # BEGIN SOLUTION
    x0 = np.array([1.0, 0.1])
    W0 = np.array([[1.0, -3.0], [0.2, 1.0]])
    W1 = np.array([1.0, -1.0])
    y, lr = 0.5, 0.2
    x1 = W0 @ x0
    x2 = np.tanh(x1)
    x3 = float(W1 @ x2)
    L = 0.5 * (x3 - y) ** 2
    dL_dx3 = x3 - y
    dL_dW1 = dL_dx3 * x2
    dL_dx2 = dL_dx3 * W1
    dL_dx1 = dL_dx2 * (1 - x2**2)
    dL_dW0 = np.outer(dL_dx1, x0)
    return {"x1": x1, "x2": x2, "x3": x3, "L": L, "dL_dx3": dL_dx3, "dL_dx2": dL_dx2,
            "dL_dx1": dL_dx1, "dL_dW1": dL_dW1, "dL_dW0": dL_dW0,
            "W1_new": W1 - lr * dL_dW1, "W0_new": W0 - lr * dL_dW0}
    # END SOLUTION


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
    # BEGIN SOLUTION
    n_in, n_hidden = V.shape
    n_out = W.shape[1]
    z = np.zeros(n_hidden)
    for j in range(n_hidden):
        z[j] = 1 / (1 + np.exp(-sum(x[i] * V[i, j] for i in range(n_in))))
    y = np.zeros(n_out)
    for k in range(n_out):
        y[k] = 1 / (1 + np.exp(-sum(z[j] * W[j, k] for j in range(n_hidden))))
    delta_out = np.array([(t[k] - y[k]) * y[k] * (1 - y[k]) for k in range(n_out)])
    delta_hidden = np.array([
        sum(delta_out[k] * W[j, k] for k in range(n_out)) * z[j] * (1 - z[j])
        for j in range(n_hidden)])
    dE_dW = np.array([[-delta_out[k] * z[j] for k in range(n_out)] for j in range(n_hidden)])
    dE_dV = np.array([[-delta_hidden[j] * x[i] for j in range(n_hidden)] for i in range(n_in)])
    return {"delta_out": delta_out, "delta_hidden": delta_hidden, "dE_dW": dE_dW, "dE_dV": dE_dV}
    # END SOLUTION


# ---------------------------------------------------------------- training on the digits


def train_digits(X: np.ndarray, y: np.ndarray, seed: int = 0) -> FullyConnectedNet:
    """Train a FullyConnectedNet on the 8x8 digits (X scaled to [0, 1], y in 0..9) with your
    layers and SGD with momentum. Choose the architecture and hyperparameters yourself; the
    graders need at least 95% accuracy on held-out digits, within 60 s of CPU."""
    # BEGIN SOLUTION
    net = FullyConnectedNet([X.shape[1], 128, 10], "relu", reg=1e-4, seed=seed)
    rng = np.random.default_rng(seed)
    velocity = {k: np.zeros_like(v) for k, v in net.params.items()}
    for _ in range(40):
        order = rng.permutation(len(X))
        for start in range(0, len(X), 32):
            idx = order[start:start + 32]
            _, grads = net.loss(X[idx], y[idx])
            for k in net.params:
                net.params[k], velocity[k] = sgd_momentum_step(
                    net.params[k], grads[k], velocity[k], lr=0.05)
    return net
    # END SOLUTION
