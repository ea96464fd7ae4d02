"""Probes for a3_autodiff: seeded expression graphs replayed identically on both sides."""


import math
import time
import numpy as np


class Num:
    """Plain floats with the engine's method names: the probes' own finite differences."""

    def __init__(self, v):
        self.v = float(v)

    def _n(self, o):
        return o.v if isinstance(o, Num) else float(o)

    def __add__(self, o):
        return Num(self.v + self._n(o))

    __radd__ = __add__

    def __mul__(self, o):
        return Num(self.v * self._n(o))

    __rmul__ = __mul__

    def __sub__(self, o):
        return Num(self.v - self._n(o))

    def __rsub__(self, o):
        return Num(self._n(o) - self.v)

    def __truediv__(self, o):
        return Num(self.v / self._n(o))

    def __rtruediv__(self, o):
        return Num(self._n(o) / self.v)

    def __pow__(self, k):
        return Num(self.v**k)

    def __neg__(self):
        return Num(-self.v)

    def exp(self):
        return Num(math.exp(self.v))

    def log(self):
        return Num(math.log(self.v))

    def tanh(self):
        return Num(math.tanh(self.v))

    def sigmoid(self):
        return Num(1 / (1 + math.exp(-self.v)))

    def relu(self):
        return Num(max(0.0, self.v))

    def sin(self):
        return Num(math.sin(self.v))

    def cos(self):
        return Num(math.cos(self.v))


SCALAR_CASES = {  # name: (function of x, x)
    "add_number_left": (lambda x: 2 + x, 0.7), "sub_number_right": (lambda x: x - 3, 0.7),
    "sub_number_left": (lambda x: 3 - x, 0.7), "div_number_left": (lambda x: 2 / x, 0.7),
    "div_number_right": (lambda x: x / 2, 0.7), "pow_3": (lambda x: x**3, 0.7),
    "pow_negative": (lambda x: x**-2, 0.7), "neg": (lambda x: -x, 0.7),
    "exp": (lambda x: x.exp(), 0.7), "log": (lambda x: x.log(), 0.7),
    "tanh": (lambda x: x.tanh(), 0.7), "sigmoid": (lambda x: x.sigmoid(), -0.4),
    "relu_positive": (lambda x: x.relu(), 0.7), "relu_negative": (lambda x: x.relu(), -0.7),
    "sin": (lambda x: x.sin(), 0.7), "cos": (lambda x: x.cos(), 0.7),
    "mul_self": (lambda x: x * x, 0.7),
}


def notes_examples(impl):
    a, b = impl.Value(2.0), impl.Value(1.0)
    e = (a + b) * (b + 1)
    e.backward()
    x1, x2 = impl.Value(2.0), impl.Value(5.0)
    f = x1.log() + x1 * x2 - x2.sin()
    f.backward()
    return {"e": e.data, "de_da": a.grad, "de_db": b.grad,
            "f": f.data, "df_dx1": x1.grad, "df_dx2": x2.grad}


def scalar_ops(impl):
    """Every operation on its own: (value, gradient, expected value, finite differences), or
    the error it raised as text, so one unfinished operation hides no wrong one after it."""
    out = {}
    for name, (fn, x0) in SCALAR_CASES.items():
        try:
            x = impl.Value(x0)
            y = fn(x)
            y.backward()
            got = (float(y.data), float(x.grad))
        except NotImplementedError:
            out[name] = "not implemented yet"
            continue
        except Exception as exc:  # noqa: BLE001 - reported for this operation alone
            out[name] = f"raised {type(exc).__name__}: {exc}"
            continue
        h = 1e-6
        num = (fn(Num(x0 + h)).v - fn(Num(x0 - h)).v) / (2 * h)
        out[name] = (*got, fn(Num(x0)).v, num)
    return out


def jvp_convention(impl):
    """The README's calling convention: f gets one Dual per input, unpacked."""
    value, tangent = impl.jvp(lambda a, b: a * b + a, [2.0, 3.0], [1.0, 0.0])
    return {"value": float(value), "tangent": float(tangent)}
