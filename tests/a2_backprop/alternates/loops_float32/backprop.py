"""Backpropagation by hand, in numpy.

Layers as (forward, backward) pairs; losses return (loss, dpred). Written mostly with explicit
loops over the rows; the digits are trained in float32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# ---------------------------------------------------------------- layers


def affine_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    out = np.matmul(x, W)
    out = out + b[np.newaxis, :]
    return out, (x, W, b)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, W, b = cache
    dx = np.matmul(dout, W.T)
    dW = np.zeros_like(W, dtype=np.result_type(x, dout))
    for n in range(x.shape[0]):                # sum of the per-sample outer products
        dW += np.outer(x[n], dout[n])
    db = np.zeros_like(b, dtype=dout.dtype)
    for n in range(dout.shape[0]):
        db += dout[n]
    return dx, dW, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = x.copy()
    y[y < 0] = 0
    return y, x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    dx = dout.copy()
    dx[cache <= 0] = 0
    return dx


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    y = x.copy()
    neg = x <= 0
    y[neg] = alpha * x[neg]
    return y, (x, alpha)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    x, alpha = cache
    dx = dout.copy()
    dx[x <= 0] *= alpha
    return dx


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    s = np.empty_like(x, dtype=np.result_type(x, np.float32))
    pos = x >= 0
    s[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    s[~pos] = ex / (1.0 + ex)
    return s, s


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    s = cache
    return dout * (s - s * s)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.tanh(x)
    return y, y


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    return dout * (1.0 - np.square(cache))


# ---------------------------------------------------------------- losses: (loss, dpred)


def mse_half_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    N = len(pred)
    total = 0.0
    for i in range(N):
        d = np.asarray(pred[i] - target[i])
        total += 0.5 * float(np.sum(d * d))
    return total / N, (pred - target) / N


def mse_mean_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    d = pred - target
    count = d.size
    total = 0.0
    for v in d.flat:
        total += float(v) ** 2
    return total / count, 2 * d / count


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    N, C = logits.shape
    dlogits = np.zeros_like(logits, dtype=np.float64)
    loss = 0.0
    for i in range(N):
        row = logits[i] - np.max(logits[i])
        e = np.exp(row)
        Z = e.sum()
        p = e / Z
        loss += np.log(Z) - row[y[i]]         # -log p_y
        dlogits[i] = p
        dlogits[i, y[i]] -= 1.0
    return float(loss / N), dlogits / N


def hinge_loss(scores: np.ndarray, y: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    N, C = scores.shape
    dscores = np.zeros_like(scores, dtype=np.float64)
    loss = 0.0
    for i in range(N):
        sy = scores[i, y[i]]
        for j in range(C):
            if j == y[i]:
                continue
            m = scores[i, j] - sy + margin
            if m > 0:
                loss += m
                dscores[i, j] += 1.0
                dscores[i, y[i]] -= 1.0
    return float(loss / N), dscores / N


# ---------------------------------------------------------------- gradient checking


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    grad = np.zeros(x.shape)
    for flat in range(x.size):
        i = np.unravel_index(flat, x.shape)
        orig = x[i].copy()
        x[i] = orig + h
        f_plus = f(x)
        x[i] = orig - h
        f_minus = f(x)
        x[i] = orig
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def grad_check(f: Callable[[np.ndarray], float], x: np.ndarray, analytic: np.ndarray,
               h: float = 1e-5) -> float:
    numeric = numeric_gradient(f, x, h)
    worst = 0.0
    for a, n in zip(np.ravel(analytic), np.ravel(numeric)):
        err = abs(a - n) / max(1e-8, abs(a) + abs(n))
        worst = max(worst, float(err))
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
        forward_act = ACTIVATIONS[self.activation][0]
        caches = {}
        a = X
        L = self.n_layers
        for l in range(1, L + 1):
            z, caches[("affine", l)] = affine_forward(a, self.params["W" + str(l)],
                                                      self.params["b" + str(l)])
            if l == L:
                a = z
            else:
                a, caches[("act", l)] = forward_act(z)
        return a, [caches]

    def loss(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        s, (caches,) = self.scores(X)
        loss, d = softmax_cross_entropy(s, y)
        backward_act = ACTIVATIONS[self.activation][1]
        grads = {}
        for l in range(self.n_layers, 0, -1):
            W = self.params["W" + str(l)]
            loss += 0.5 * self.reg * float(np.sum(W * W))
            if l != self.n_layers:
                d = backward_act(d, caches[("act", l)])
            d, dW, db = affine_backward(d, caches[("affine", l)])
            grads["W" + str(l)] = dW + self.reg * W
            grads["b" + str(l)] = db
        return loss, grads

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most likely class of each row."""
        return np.argmax(self.scores(X)[0], axis=1)


def sgd_step(w: np.ndarray, dw: np.ndarray, lr: float) -> np.ndarray:
    new_w = np.array(w, dtype=np.result_type(w, dw, 1.0))     # a fresh copy
    new_w -= lr * dw
    return new_w


def sgd_momentum_step(w: np.ndarray, dw: np.ndarray, v: np.ndarray, lr: float,
                      mu: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    v_new = mu * v - lr * dw
    return w + v_new, v_new


# ---------------------------------------------------------------- the notes' worked example


def worked_example() -> dict[str, np.ndarray | float]:
    x0 = [1.0, 0.1]
    W0 = [[1.0, -3.0], [0.2, 1.0]]
    W1 = [1.0, -1.0]
    y = 0.5
    eta = 0.2
    # forward, one unit at a time
    x1 = [W0[0][0] * x0[0] + W0[0][1] * x0[1], W0[1][0] * x0[0] + W0[1][1] * x0[1]]
    x2 = [np.tanh(v) for v in x1]
    x3 = W1[0] * x2[0] + W1[1] * x2[1]
    L = 0.5 * (x3 - y) ** 2
    # backward
    g3 = x3 - y
    g2 = [g3 * W1[0], g3 * W1[1]]
    g1 = [g2[i] * (1 - x2[i] ** 2) for i in range(2)]
    gW1 = [g3 * x2[0], g3 * x2[1]]
    gW0 = [[g1[i] * x0[j] for j in range(2)] for i in range(2)]
    W1_new = [W1[j] - eta * gW1[j] for j in range(2)]
    W0_new = [[W0[i][j] - eta * gW0[i][j] for j in range(2)] for i in range(2)]
    arr = np.array
    return {"x1": arr(x1), "x2": arr(x2), "x3": x3, "L": L, "dL_dx3": g3, "dL_dx2": arr(g2),
            "dL_dx1": arr(g1), "dL_dW1": arr(gW1), "dL_dW0": arr(gW0), "W1_new": arr(W1_new),
            "W0_new": arr(W0_new)}


# ---------------------------------------------------------------- Fausett's delta rule


def delta_rule_gradients(x: np.ndarray, t: np.ndarray, V: np.ndarray,
                         W: np.ndarray) -> dict[str, np.ndarray]:
    def f(a):
        return 1.0 / (1.0 + np.exp(-a))

    def fprime(a):
        return f(a) * (1.0 - f(a))

    n_in, n_hidden = V.shape
    n_out = W.shape[1]
    # feed-forward, unit by unit
    z_in, z = np.zeros(n_hidden), np.zeros(n_hidden)
    for j in range(n_hidden):
        z_in[j] = np.dot(x, V[:, j])
        z[j] = f(z_in[j])
    y_in, yk = np.zeros(n_out), np.zeros(n_out)
    for k in range(n_out):
        y_in[k] = np.dot(z, W[:, k])
        yk[k] = f(y_in[k])
    # backpropagation of error
    delta_out = np.zeros(n_out)
    dE_dW = np.zeros((n_hidden, n_out))
    for k in range(n_out):
        delta_out[k] = (t[k] - yk[k]) * fprime(y_in[k])
        for j in range(n_hidden):
            dE_dW[j, k] = -delta_out[k] * z[j]
    delta_hidden = np.zeros(n_hidden)
    dE_dV = np.zeros((n_in, n_hidden))
    for j in range(n_hidden):
        delta_in_j = 0.0
        for k in range(n_out):
            delta_in_j += delta_out[k] * W[j, k]
        delta_hidden[j] = delta_in_j * fprime(z_in[j])
        for i in range(n_in):
            dE_dV[i, j] = -delta_hidden[j] * x[i]
    return {"delta_out": delta_out, "delta_hidden": delta_hidden, "dE_dW": dE_dW, "dE_dV": dE_dV}


# ---------------------------------------------------------------- training on the digits


def train_digits(X: np.ndarray, y: np.ndarray, seed: int = 0) -> FullyConnectedNet:
    """tanh network, trained in float32 to save time."""
    model = FullyConnectedNet([X.shape[1], 96, 10], activation="tanh", reg=1e-4, seed=seed)
    for key in model.params:
        model.params[key] = model.params[key].astype(np.float32)
    Xf = np.asarray(X, dtype=np.float32)
    labels = np.asarray(y, dtype=np.int64)
    vel = {key: np.zeros_like(p) for key, p in model.params.items()}
    rng = np.random.default_rng(seed)
    lr = np.float32(0.05)
    for epoch in range(70):
        idx = rng.permutation(len(Xf))
        for start in range(0, len(Xf), 50):
            batch = idx[start:start + 50]
            _, grads = model.loss(Xf[batch], labels[batch])
            for key in model.params:
                new_w, new_v = sgd_momentum_step(model.params[key], grads[key].astype(np.float32),
                                                 vel[key], lr)
                model.params[key] = new_w.astype(np.float32)
                vel[key] = new_v.astype(np.float32)
        if epoch in (40, 60):
            lr = lr * np.float32(0.3)
    return model
