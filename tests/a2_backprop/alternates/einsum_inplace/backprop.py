"""Backpropagation by hand, in numpy (einsum / np.add.at version, in-place optimiser steps)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

VERBOSE = True


def _log(*args):
    if VERBOSE:
        print("[backprop]", *args)


# ---------------------------------------------------------------- layers


def affine_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    x2d = x.reshape(x.shape[0], -1)
    out = np.einsum("nd,dm->nm", x2d, W) + b
    return out, (x, W)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, W = cache
    x2d = x.reshape(x.shape[0], -1)
    dx = np.einsum("nm,dm->nd", dout, W).reshape(x.shape)
    dW = np.einsum("nd,nm->dm", x2d, dout)
    db = np.einsum("nm->m", dout)
    return dx, dW, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mask = x > 0
    return np.where(mask, x, 0.0), mask   # cache the boolean mask of the units that passed


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    return np.where(cache, dout, 0.0)


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    slope = np.where(x > 0, 1.0, alpha)
    return x * slope, (slope, alpha)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    slope, _alpha = cache
    return dout * slope


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # sigmoid(x) = exp(-log(1 + exp(-x))); logaddexp never overflows
    s = np.exp(-np.logaddexp(0.0, -x))
    return s, s


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    return dout * cache * (1 - cache)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.tanh(x), x           # cache the input; the backward recomputes tanh


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    th = np.tanh(cache)
    return dout * (1 - th * th)


# ---------------------------------------------------------------- losses: (loss, dpred)


def mse_half_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    r = (pred - target).reshape(pred.shape[0], -1)
    n = r.shape[0]
    loss = 0.5 * np.einsum("ij,ij->", r, r) / n
    return float(loss), (pred - target) / n


def mse_mean_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    r = pred - target
    return float(np.mean(np.square(r))), r * (2.0 / r.size)


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    n = logits.shape[0]
    rows = np.arange(n)
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    sums = e.sum(axis=1)
    loss = np.mean(np.log(sums) - z[rows, y])
    grad = e / sums[:, None]
    np.add.at(grad, (rows, y), -1.0)
    grad /= n
    return float(loss), grad


def hinge_loss(scores: np.ndarray, y: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    n = scores.shape[0]
    rows = np.arange(n)
    m = scores - scores[rows, y][:, None] + margin
    m[rows, y] = 0.0
    active = m > 0
    loss = np.sum(m * active) / n
    grad = active.astype(np.float64)
    np.add.at(grad, (rows, y), -active.sum(axis=1))
    return float(loss), grad / n


# ---------------------------------------------------------------- gradient checking


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    g = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(*x.shape):
        keep = x[idx]
        x[idx] = keep + h
        up = float(f(x))
        x[idx] = keep - h
        down = float(f(x))
        x[idx] = keep                         # restore
        g[idx] = (up - down) / (2.0 * h)
    return g


def grad_check(f: Callable[[np.ndarray], float], x: np.ndarray, analytic: np.ndarray,
               h: float = 1e-5) -> float:
    n = numeric_gradient(f, x, h)
    a = np.asarray(analytic, dtype=np.float64).reshape(n.shape)
    rel = np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))
    worst = float(rel.max()) if rel.size else 0.0
    _log("grad_check: max relative error", worst)
    return worst


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
        fwd = ACTIVATIONS[self.activation][0]
        caches: list = []
        h = X
        for layer in range(1, self.n_layers + 1):
            h, c = affine_forward(h, self.params["W%d" % layer], self.params["b%d" % layer])
            caches.append(("affine", c))
            if layer != self.n_layers:
                h, c = fwd(h)
                caches.append(("act", c))
        return h, caches

    def loss(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        out, caches = self.scores(X)
        data_loss, g = softmax_cross_entropy(out, y)
        weights = [self.params["W%d" % l] for l in range(1, self.n_layers + 1)]
        total = data_loss + 0.5 * self.reg * sum(np.einsum("ij,ij->", W, W) for W in weights)
        bwd = ACTIVATIONS[self.activation][1]
        grads: dict[str, np.ndarray] = {}
        layer = self.n_layers
        for kind, c in reversed(caches):
            if kind == "act":
                g = bwd(g, c)
            else:
                g, dW, db = affine_backward(g, c)
                grads["W%d" % layer] = dW + self.reg * self.params["W%d" % layer]
                grads["b%d" % layer] = db
                layer -= 1
        return float(total), grads

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most likely class of each row."""
        return np.argmax(self.scores(X)[0], axis=1)


def sgd_step(w: np.ndarray, dw: np.ndarray, lr: float) -> np.ndarray:
    """Updates w in place and returns it."""
    w -= lr * dw
    return w


def sgd_momentum_step(w: np.ndarray, dw: np.ndarray, v: np.ndarray, lr: float,
                      mu: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Updates v and w in place and returns them."""
    v *= mu
    v -= lr * dw
    w += v
    return w, v


# ---------------------------------------------------------------- the notes' worked example


def worked_example() -> dict[str, np.ndarray | float]:
    x0 = np.array([1.0, 0.1])
    W0 = np.array([[1.0, -3.0], [0.2, 1.0]])
    W1 = np.array([1.0, -1.0])
    y = 0.5
    eta = 0.2
    r = {}
    r["x1"] = np.einsum("ij,j->i", W0, x0)
    r["x2"] = np.tanh(r["x1"])
    r["x3"] = np.einsum("i,i->", W1, r["x2"])
    r["L"] = 0.5 * (r["x3"] - y) ** 2
    r["dL_dx3"] = r["x3"] - y
    r["dL_dx2"] = r["dL_dx3"] * W1                         # row vector dL/dx3 * W1
    r["dL_dx1"] = r["dL_dx2"] * (1 - r["x2"] ** 2)        # diag(1 - tanh^2)
    r["dL_dW1"] = r["dL_dx3"] * r["x2"]
    r["dL_dW0"] = np.einsum("i,j->ij", r["dL_dx1"], x0)
    r["W1_new"] = W1 - eta * r["dL_dW1"]
    r["W0_new"] = W0 - eta * r["dL_dW0"]
    _log("worked example:", {k: np.round(v, 4) for k, v in r.items()})
    return r


# ---------------------------------------------------------------- Fausett's delta rule


def delta_rule_gradients(x: np.ndarray, t: np.ndarray, V: np.ndarray,
                         W: np.ndarray) -> dict[str, np.ndarray]:
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))
    dsig = lambda a: sig(a) * (1.0 - sig(a))
    n_in, p = V.shape
    m = W.shape[1]
    z_in = [sum(x[i] * V[i, j] for i in range(n_in)) for j in range(p)]
    z = [sig(a) for a in z_in]
    y_in = [sum(z[j] * W[j, k] for j in range(p)) for k in range(m)]
    y = [sig(a) for a in y_in]
    delta_out = np.array([(t[k] - y[k]) * dsig(y_in[k]) for k in range(m)])
    delta_hidden = np.array([sum(delta_out[k] * W[j, k] for k in range(m)) * dsig(z_in[j])
                             for j in range(p)])
    dE_dW = np.array([[-delta_out[k] * z[j] for k in range(m)] for j in range(p)])
    dE_dV = np.array([[-delta_hidden[j] * x[i] for j in range(p)] for i in range(n_in)])
    return {"delta_out": delta_out, "delta_hidden": delta_hidden,
            "dE_dW": dE_dW.reshape(p, m), "dE_dV": dE_dV.reshape(n_in, p)}


# ---------------------------------------------------------------- training on the digits


def train_digits(X: np.ndarray, y: np.ndarray, seed: int = 0) -> FullyConnectedNet:
    net = FullyConnectedNet([X.shape[1], 100, 50, 10], activation="leaky_relu", reg=5e-4, seed=seed)
    rng = np.random.default_rng(seed + 1)
    vel = {name: np.zeros_like(p) for name, p in net.params.items()}
    n = len(X)
    lr = 0.03
    for epoch in range(80):
        if epoch == 60:
            lr /= 10
        perm = rng.permutation(n)
        for s in range(0, n, 32):
            b = perm[s:s + 32]
            loss, grads = net.loss(X[b], y[b])
            for name in net.params:
                sgd_momentum_step(net.params[name], grads[name], vel[name], lr=lr, mu=0.9)
        if epoch % 10 == 0:
            print(f"epoch {epoch} loss {loss:.4f} train acc {np.mean(net.predict(X) == y):.3f}")
    return net
