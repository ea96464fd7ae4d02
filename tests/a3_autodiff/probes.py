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


OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0),
    "rsub": lambda a, b: 2.0 - a,
    "rdiv": lambda a, b: 1.5 / (a * a + 1.0),
    "exp": lambda a, b: a.tanh().exp(),
    "log": lambda a, b: (a * a + 0.5).log(),
    "tanh": lambda a, b: a.tanh(),
    "sigmoid": lambda a, b: a.sigmoid(),
    "relu": lambda a, b: (a + 0.3).relu(),
    "sin": lambda a, b: a.sin(),
    "cos": lambda a, b: a.cos(),
    "pow": lambda a, b: a**2,
    "neg": lambda a, b: -a,
}
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


def random_program(seed, n_inputs=3, n_ops=30):
    """A random DAG: each step applies an op to earlier nodes, so subexpressions are shared."""
    rng = np.random.default_rng(seed)
    names = sorted(OPS)
    steps = []
    for k in range(n_ops):
        avail = n_inputs + k
        steps.append((names[rng.integers(len(names))], int(rng.integers(avail)),
                      int(rng.integers(avail))))
    inputs = rng.uniform(-1, 1, size=n_inputs).tolist()
    return inputs, steps


def run_program(steps, xs):
    nodes = list(xs)
    for op, i, j in steps:
        nodes.append(OPS[op](nodes[i], nodes[j]))
    out = nodes[-1]
    for node in nodes[-4:-1]:
        out = out + node
    return out


def _numeric(steps, inputs, h=1e-6):
    grads = []
    for i in range(len(inputs)):
        plus = [Num(v + h * (k == i)) for k, v in enumerate(inputs)]
        minus = [Num(v - h * (k == i)) for k, v in enumerate(inputs)]
        grads.append((run_program(steps, plus).v - run_program(steps, minus).v) / (2 * h))
    return np.array(grads)


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


def random_dag(impl, seed):
    inputs, steps = random_program(seed)
    xs = [impl.Value(v) for v in inputs]
    out = run_program(steps, xs)
    out.backward()
    return {"value": float(out.data), "grads": np.array([x.grad for x in xs], dtype=np.float64),
            "numeric": _numeric(steps, inputs)}


def accumulation(impl):
    a = impl.Value(3.0)
    b = a * a + a
    b.backward()
    first = a.grad
    b.backward()
    twice = a.grad
    b.zero_grad()
    after_zero = a.grad
    b.backward()
    return {"first": first, "twice": twice, "after_zero": after_zero, "again": a.grad}


def deep_chain(impl, n=100_000):
    x = impl.Value(1.5)
    y = x
    for _ in range(n):  # 100,000 operations, each on the previous result
        y = y * 1.0
    start = time.perf_counter()
    y.backward()
    return {"grad": float(x.grad), "seconds": time.perf_counter() - start}


TENSOR_OPS = ["add_row", "add_column", "sub_scalar", "mul_broadcast", "div_broadcast", "matmul",
              "sum_all", "sum_axis0", "sum_axis1", "sum_axis0_keepdims", "sum_axis1_keepdims",
              "mean_all", "mean_axis0", "mean_axis1_keepdims", "reshape", "transpose",
              "exp", "log", "relu", "relu_at_zero", "tanh", "log_softmax"]
# at a kink central differences average the two slopes: judged against the reference only
KINKS = {"relu_at_zero"}


def _tensor_case(op, rng):
    a = rng.normal(size=(3, 4))
    b = {"add_row": rng.normal(size=4), "add_column": rng.normal(size=(3, 1)),
         "mul_broadcast": rng.normal(size=(1, 4)), "div_broadcast": rng.uniform(1, 2, size=4),
         "matmul": rng.normal(size=(4, 2))}.get(op)
    if op == "log":
        a = np.abs(a) + 0.5
    if op == "relu_at_zero":
        a[:, ::2] = 0.0  # the README: the gradient passes only where x > 0
    fns = {
        "add_row": lambda x, y: x + y, "add_column": lambda x, y: x + y,
        "sub_scalar": lambda x, y: x - 2.5, "mul_broadcast": lambda x, y: x * y,
        "div_broadcast": lambda x, y: x / y, "matmul": lambda x, y: x @ y,
        "sum_all": lambda x, y: x.sum(), "sum_axis0": lambda x, y: x.sum(axis=0),
        "sum_axis1": lambda x, y: x.sum(axis=1),
        "sum_axis0_keepdims": lambda x, y: x.sum(axis=0, keepdims=True),
        "sum_axis1_keepdims": lambda x, y: x.sum(axis=1, keepdims=True),
        "mean_all": lambda x, y: x.mean(), "mean_axis0": lambda x, y: x.mean(axis=0),
        "mean_axis1_keepdims": lambda x, y: x.mean(axis=1, keepdims=True),
        "reshape": lambda x, y: x.reshape(2, 6), "relu_at_zero": lambda x, y: x.relu(),
        "transpose": lambda x, y: x.transpose(), "exp": lambda x, y: x.exp(),
        "log": lambda x, y: x.log(), "relu": lambda x, y: x.relu(), "tanh": lambda x, y: x.tanh(),
        "log_softmax": lambda x, y: x.log_softmax(axis=1),
    }
    return a, b, fns[op]


def tensor_op(impl, op, seed):
    """Forward value, gradients of sum(out * W) for a random W, and numeric gradients."""
    rng = np.random.default_rng(seed)
    a, b, fn = _tensor_case(op, rng)
    inputs = [a] if b is None else [a, b]
    ts = [impl.Tensor(v.copy()) for v in inputs]
    out = fn(*ts, *([None] if b is None else []))
    W = rng.normal(size=np.shape(out.data))
    loss = (out * impl.Tensor(W)).sum()
    loss.backward()

    def f(*arrays):
        o = fn(*[impl.Tensor(x) for x in arrays], *([None] if b is None else []))
        return float(np.sum(np.asarray(o.data) * W))

    numeric = []
    for k, v in enumerate(inputs):
        g = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            plus = [x.copy() for x in inputs]
            minus = [x.copy() for x in inputs]
            plus[k][idx] += 1e-6
            minus[k][idx] -= 1e-6
            g[idx] = (f(*plus) - f(*minus)) / 2e-6
        numeric.append(g)
    return {"out": np.asarray(out.data, dtype=np.float64),
            "grads": [np.asarray(t.grad, dtype=np.float64) for t in ts], "numeric": numeric}


def cross_entropy_large_logits(impl, seed):
    rng = np.random.default_rng(seed)
    logits = impl.Tensor(rng.normal(size=(5, 4)) * 1000)
    labels = rng.integers(0, 4, size=5)
    loss = impl.cross_entropy(logits, labels)
    loss.backward()
    return float(np.asarray(loss.data)), np.asarray(logits.grad, dtype=np.float64)


def moons_split():
    from sklearn.datasets import make_moons

    X, y = make_moons(400, noise=0.1, random_state=0)
    X_test, y_test = make_moons(400, noise=0.1, random_state=1)
    return X, y, X_test, y_test


def moons_predictions(impl, seed=0):
    X, y, X_test, _ = moons_split()
    model = impl.train_moons(X, y, seed)
    return np.asarray(model.predict(X_test)).astype(np.int64)


def forward_vs_reverse(impl, seed):
    inputs, steps = random_program(seed, n_ops=20)
    v = np.random.default_rng(seed + 1).normal(size=len(inputs)).tolist()
    value, tangent = impl.jvp(lambda *xs: run_program(steps, xs), inputs, v)
    xs = [impl.Value(x) for x in inputs]
    out = run_program(steps, xs)
    out.backward()
    return {"value": float(value), "jvp": float(tangent),
            "vjp_dot_v": float(sum(x.grad * vi for x, vi in zip(xs, v)))}


def jvp_convention(impl):
    """The README's calling convention: f gets one Dual per input, unpacked."""
    value, tangent = impl.jvp(lambda a, b: a * b + a, [2.0, 3.0], [1.0, 0.0])
    return {"value": float(value), "tangent": float(tangent)}
