"""Backpropagation by hand, in numpy.

Every layer is a pair: ``*_forward`` returns (output, cache) and ``*_backward`` takes the upstream
gradient and the cache and returns the gradient with respect to each input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# ---------------------------------------------------------------- layers


def affine_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    out = x.dot(W) + b
    cache = (x, W, b)
    return out, cache


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, W, b = cache
    dx = dout.dot(W.T)
    dW = x.T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dW, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.maximum(0, x)
    return out, x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    x = cache
    dx = dout * (x > 0)
    return dx


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    out = np.where(x > 0, x, alpha * x)
    return out, (x, alpha)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    x, alpha = cache
    return dout * np.where(x > 0, 1.0, alpha)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pos = x >= 0
    z = np.exp(-np.abs(x))          # never overflows
    s = np.where(pos, 1.0 / (1.0 + z), z / (1.0 + z))
    return s, s


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    s = cache
    return dout * s * (1.0 - s)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    t = cache
    return dout * (1.0 - t ** 2)


# ---------------------------------------------------------------- losses: (loss, dpred)


def mse_half_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    N = pred.shape[0]
    diff = pred - target
    loss = 0.5 * np.sum(diff ** 2) / N
    return float(loss), diff / N


def mse_mean_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    diff = pred - target
    loss = np.mean(diff ** 2)
    return float(loss), 2.0 * diff / diff.size


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    probs = np.exp(log_probs)
    N = logits.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return float(loss), dx


def hinge_loss(scores: np.ndarray, y: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    N = scores.shape[0]
    correct = scores[np.arange(N), y][:, None]
    margins = np.maximum(0, scores - correct + margin)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = (margins > 0).astype(scores.dtype)
    dx[np.arange(N), y] -= num_pos
    dx /= N
    return float(loss), dx


# ---------------------------------------------------------------- gradient checking


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        oldval = x[ix]
        x[ix] = oldval + h
        fxph = f(x)
        x[ix] = oldval - h
        fxmh = f(x)
        x[ix] = oldval
        grad[ix] = (fxph - fxmh) / (2 * h)
        it.iternext()
    return grad


def grad_check(f: Callable[[np.ndarray], float], x: np.ndarray, analytic: np.ndarray,
               h: float = 1e-5) -> float:
    num = numeric_gradient(f, x, h)
    a = np.asarray(analytic, dtype=np.float64)
    return float(np.max(np.abs(a - num) / np.maximum(1e-8, np.abs(a) + np.abs(num))))


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
        act_fwd, _ = ACTIVATIONS[self.activation]
        caches = []
        out = X
        for i in range(1, self.n_layers + 1):
            out, fc_cache = affine_forward(out, self.params[f"W{i}"], self.params[f"b{i}"])
            if i < self.n_layers:
                out, act_cache = act_fwd(out)
            else:
                act_cache = None
            caches.append((fc_cache, act_cache))
        return out, caches

    def loss(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        scores, caches = self.scores(X)
        data_loss, dscores = softmax_cross_entropy(scores, y)
        reg_loss = 0.0
        for i in range(1, self.n_layers + 1):
            reg_loss += 0.5 * self.reg * np.sum(self.params[f"W{i}"] ** 2)
        loss = data_loss + reg_loss

        _, act_bwd = ACTIVATIONS[self.activation]
        grads = {}
        dout = dscores
        for i in range(self.n_layers, 0, -1):
            fc_cache, act_cache = caches[i - 1]
            if act_cache is not None:
                dout = act_bwd(dout, act_cache)
            dout, dW, db = affine_backward(dout, fc_cache)
            grads[f"W{i}"] = dW + self.reg * self.params[f"W{i}"]
            grads[f"b{i}"] = db
        return float(loss), grads

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most likely class of each row."""
        return np.argmax(self.scores(X)[0], axis=1)


def sgd_step(w: np.ndarray, dw: np.ndarray, lr: float) -> np.ndarray:
    return w - lr * dw


def sgd_momentum_step(w: np.ndarray, dw: np.ndarray, v: np.ndarray, lr: float,
                      mu: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    v = mu * v - lr * dw
    next_w = w + v
    return next_w, v


# ---------------------------------------------------------------- the notes' worked example


def worked_example() -> dict[str, np.ndarray | float]:
    x0 = np.array([1.0, 0.1])
    W0 = np.array([[1.0, -3.0], [0.2, 1.0]])
    W1 = np.array([1.0, -1.0])
    y = 0.5
    lr = 0.2

    x1 = W0 @ x0
    x2 = np.tanh(x1)
    x3 = W1 @ x2
    L = 0.5 * (x3 - y) ** 2

    dL_dx3 = x3 - y
    dL_dx2 = dL_dx3 * W1
    dL_dx1 = dL_dx2 * (1 - np.tanh(x1) ** 2)
    dL_dW1 = dL_dx3 * x2
    dL_dW0 = np.outer(dL_dx1, x0)      # same layout as W0: dL/dW0[i, j] = dL/dx1[i] * x0[j]

    return {"x1": x1, "x2": x2, "x3": float(x3), "L": float(L), "dL_dx3": float(dL_dx3),
            "dL_dx2": dL_dx2, "dL_dx1": dL_dx1, "dL_dW1": dL_dW1, "dL_dW0": dL_dW0,
            "W1_new": W1 - lr * dL_dW1, "W0_new": W0 - lr * dL_dW0}


# ---------------------------------------------------------------- Fausett's delta rule


def _f(a):
    return 1.0 / (1.0 + np.exp(-a))


def delta_rule_gradients(x: np.ndarray, t: np.ndarray, V: np.ndarray,
                         W: np.ndarray) -> dict[str, np.ndarray]:
    n_in, n_hidden = V.shape
    n_out = W.shape[1]
    z_in = np.zeros(n_hidden)
    z = np.zeros(n_hidden)
    for j in range(n_hidden):
        s = 0.0
        for i in range(n_in):
            s += x[i] * V[i, j]
        z_in[j] = s
        z[j] = _f(s)
    y_in = np.zeros(n_out)
    y = np.zeros(n_out)
    for k in range(n_out):
        s = 0.0
        for j in range(n_hidden):
            s += z[j] * W[j, k]
        y_in[k] = s
        y[k] = _f(s)

    delta_k = np.zeros(n_out)
    for k in range(n_out):
        delta_k[k] = (t[k] - y[k]) * y[k] * (1 - y[k])       # f'(y_in) = f(y_in)(1 - f(y_in))
    delta_j = np.zeros(n_hidden)
    for j in range(n_hidden):
        delta_in = 0.0
        for k in range(n_out):
            delta_in += delta_k[k] * W[j, k]
        delta_j[j] = delta_in * z[j] * (1 - z[j])

    dE_dW = np.zeros((n_hidden, n_out))
    for j in range(n_hidden):
        for k in range(n_out):
            dE_dW[j, k] = -delta_k[k] * z[j]
    dE_dV = np.zeros((n_in, n_hidden))
    for i in range(n_in):
        for j in range(n_hidden):
            dE_dV[i, j] = -delta_j[j] * x[i]
    return {"delta_out": delta_k, "delta_hidden": delta_j, "dE_dW": dE_dW, "dE_dV": dE_dV}


# ---------------------------------------------------------------- training on the digits


def train_digits(X: np.ndarray, y: np.ndarray, seed: int = 0) -> FullyConnectedNet:
    net = FullyConnectedNet([X.shape[1], 128, 10], activation="relu", reg=1e-4, seed=seed)
    rng = np.random.default_rng(seed)
    velocity = {k: np.zeros_like(v) for k, v in net.params.items()}
    N = X.shape[0]
    batch_size, lr, epochs = 64, 0.05, 60
    for epoch in range(epochs):
        order = rng.permutation(N)
        for start in range(0, N, batch_size):
            idx = order[start:start + batch_size]
            _, grads = net.loss(X[idx], y[idx])
            for k in net.params:
                net.params[k], velocity[k] = sgd_momentum_step(net.params[k], grads[k], velocity[k], lr)
        if epoch == 40:
            lr *= 0.1
    return net
