"""Probes for a2_backprop: seeded inputs in, plain arrays out."""


import numpy as np


LAYERS = ["affine", "relu", "leaky_relu", "sigmoid", "tanh"]


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


def worked_example(impl):
    got = impl.worked_example()
    return {k: np.asarray(got[k], dtype=np.float64) for k in
            ("x1", "x2", "x3", "L", "dL_dx3", "dL_dx2", "dL_dx1", "dL_dW1", "dL_dW0",
             "W1_new", "W0_new")}
