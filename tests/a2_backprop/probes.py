"""Probes for a2_backprop: seeded inputs in, plain arrays out."""

import numpy as np

LAYERS = ["affine", "relu", "leaky_relu", "sigmoid", "tanh"]
LOSSES = ["mse_half_loss", "mse_mean_loss", "softmax_cross_entropy", "hinge_loss"]


def _num_grad(f, x, h=1e-6):
    """The probes' own central difference (independent of the student's)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        p = f(x)
        x[i] = old - h
        m = f(x)
        x[i] = old
        g[i] = (p - m) / (2 * h)
    return g


def _layer(impl, name, x, W=None, b=None):
    if name == "affine":
        return impl.affine_forward(x, W, b)
    return getattr(impl, f"{name}_forward")(x)


def layer_gradients(impl, layer, seed):
    """Forward output and the student's gradients at an input with an exact zero (ReLU's kink),
    plus, away from the kink, the student's gradients next to the probes' numeric ones."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4, 5))
    x[0, 0] = 0.0
    x[1, 1], x[1, 2] = 800.0, -800.0  # where the README promises no overflow
    W, b = rng.normal(size=(5, 3)), rng.normal(size=3)
    dout = rng.normal(size=(4, 3) if layer == "affine" else (4, 5))
    names = ("dx", "dW", "db") if layer == "affine" else ("dx",)
    backward = getattr(impl, f"{layer}_backward")

    def grads_at(xv):
        out, cache = _layer(impl, layer, xv, W, b)
        back = backward(dout, cache)
        back = back if layer == "affine" else (back,)
        return out, {n: np.asarray(g, dtype=np.float64) for n, g in zip(names, back)}

    out, grads = grads_at(x)
    result = {"out": np.asarray(out, dtype=np.float64), **grads}
    smooth = x.copy()  # away from the kink and the extremes: central differences are exact there
    smooth[0, 0], smooth[1, 1], smooth[1, 2] = 0.5, 0.3, -0.3
    inputs = {"dx": smooth, "dW": W, "db": b}
    _, smooth_grads = grads_at(smooth)
    for name in names:
        def f(v, name=name):
            kw = {**inputs, name: v}
            o, _ = _layer(impl, layer, kw["dx"], kw["dW"], kw["db"])
            return float(np.sum(np.asarray(o) * dout))

        result["smooth_" + name] = smooth_grads[name]
        result["num_" + name] = _num_grad(f, inputs[name])
    return result


def loss_values(impl, loss, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    # scale 0: small integers, so that hinge terms sit exactly at their margin (its kink)
    pred = rng.integers(-2, 3, size=(6, 4)).astype(np.float64) if scale == 0 else (
        rng.normal(size=(6, 4)) * scale)
    if loss.startswith("mse"):
        target = rng.normal(size=(6, 4))
    else:
        target = rng.integers(0, 4, size=6)
    value, grad = getattr(impl, loss)(pred, target)
    return float(value), np.asarray(grad, dtype=np.float64)


def numeric_gradient_of_known(impl, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(3, 3))
    x = rng.normal(size=3)
    before = x.copy()
    g = impl.numeric_gradient(lambda v: float(np.sum(np.tanh(A @ v) ** 2)), x)
    return {"grad": np.asarray(g, dtype=np.float64), "A": A, "x": before,
            "x_restored": bool(np.array_equal(x, before))}


def grad_check_verdicts(impl, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 2.0, size=(3, 2))

    def f(v):
        return float(np.sum(v**3))

    right = 3 * x**2
    wrong = 2 * x
    return float(impl.grad_check(f, x.copy(), right)), float(impl.grad_check(f, x.copy(), wrong))


def network_loss_and_grads(impl, seed, activation="relu", reg=0.1):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(7, 6)), rng.integers(0, 4, size=7)
    net = impl.FullyConnectedNet([6, 5, 4, 4], activation, reg, seed)
    for k in net.params:  # nonzero biases keep ReLU units off their kink at 0
        if k.startswith("b"):
            net.params[k] = rng.normal(0, 0.5, size=net.params[k].shape)
    loss, grads = net.loss(X, y)
    out = {"loss": float(loss)}
    for k in sorted(net.params):
        out[k] = np.asarray(grads[k], dtype=np.float64)

        def f(v, k=k):
            net.params[k] = v
            return float(net.loss(X, y)[0])

        original = net.params[k].copy()
        out["num_" + k] = _num_grad(f, original.copy())
        net.params[k] = original
    return out


def optimiser_steps(impl, seed):
    rng = np.random.default_rng(seed)
    w, dw = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    v = np.zeros_like(w)
    sgd = np.array(impl.sgd_step(w.copy(), dw.copy(), 0.1), dtype=np.float64)
    trail = []
    wm = w.copy()
    for _ in range(3):  # record copies: an update in place (the README allows it) must not
        wm, v = impl.sgd_momentum_step(wm, dw.copy(), v, 0.1, 0.9)  # rewrite earlier steps
        trail.append(np.array(wm, dtype=np.float64))
    return sgd, trail


def worked_example(impl):
    got = impl.worked_example()
    return {k: np.asarray(got[k], dtype=np.float64) for k in
            ("x1", "x2", "x3", "L", "dL_dx3", "dL_dx2", "dL_dx1", "dL_dW1", "dL_dW0",
             "W1_new", "W0_new")}


def delta_rule(impl, seed):
    rng = np.random.default_rng(seed)
    x, t = rng.normal(size=3), rng.uniform(size=2)
    V, W = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    got = impl.delta_rule_gradients(x, t, V, W)
    return {k: np.asarray(got[k], dtype=np.float64)
            for k in ("delta_out", "delta_hidden", "dE_dW", "dE_dV")}


def digits_split():
    """The fixed train/test split of scikit-learn's 8x8 digits (the judges hold the labels)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    return train_test_split(d.data / 16.0, d.target, test_size=0.25, random_state=0,
                            stratify=d.target)


def digits_predictions(impl, seed=0):
    X_train, X_test, y_train, _ = digits_split()
    net = impl.train_digits(X_train, y_train, seed)
    return np.asarray(net.predict(X_test)).astype(np.int64)
