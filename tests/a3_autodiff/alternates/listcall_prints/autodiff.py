"""Reverse-mode automatic differentiation, first on scalars, then on numpy tensors.

My version: depth-first search with a stack of (node, iterator over its inputs); a small
``_node`` helper builds every scalar op from its local derivatives.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

DEBUG = True


def topological_order(root) -> list:
    seen = {id(root)}
    order = []
    stack = [(root, iter(root._prev))]
    while stack:
        node, inputs = stack[-1]
        for parent in inputs:
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(parent._prev)))
                break
        else:                       # every input of node is already placed
            stack.pop()
            order.append(node)
    return order


# ---------------------------------------------------------------- part 1: scalars


def _sigmoid(x: float) -> float:
    """exp only ever gets a non-positive argument: no overflow."""
    if x < 0:
        ex = math.exp(x)
        return ex / (1.0 + ex)
    return 1.0 / (1.0 + math.exp(-x))


def _node(value, parents_and_locals, op):
    """A Value whose backward adds local * out.grad into each parent."""
    out = Value(value, tuple(p for p, _ in parents_and_locals), op)

    def _backward():
        for p, local in parents_and_locals:
            p.grad += local * out.grad

    out._backward = _backward
    return out


class Value:
    """A scalar in a computation graph: ``data``, ``grad`` (dL/d this), and how it was made."""

    __slots__ = ("data", "grad", "_prev", "_op", "_backward")  # big graphs: less memory

    def __init__(self, data: float, _prev: tuple = (), _op: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self._prev = _prev
        self._op = _op
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    @staticmethod
    def lift(x) -> Value:
        return x if isinstance(x, Value) else Value(x)

    def __add__(self, other) -> Value:
        other = Value.lift(other)
        return _node(self.data + other.data, [(self, 1.0), (other, 1.0)], "+")

    def __mul__(self, other) -> Value:
        other = Value.lift(other)
        return _node(self.data * other.data, [(self, other.data), (other, self.data)], "*")

    def __pow__(self, k: float) -> Value:
        x = self.data
        d = k * x ** (k - 1) if k != 0 else 0.0
        return _node(x ** k, [(self, d)], "pow")

    def _unary(self, value: float, local: float, op: str) -> Value:
        """An elementary function with value f(x) and local derivative f'(x)."""
        out = Value(value, (self,), op)

        def _backward():
            self.grad += local * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        ex = math.exp(self.data)
        return _node(ex, [(self, ex)], "exp")

    def log(self) -> Value:
        return _node(math.log(self.data), [(self, 1 / self.data)], "log")

    def tanh(self) -> Value:
        # tanh(x) = (e^{2x} - 1) / (e^{2x} + 1); math.tanh is the stable version of that
        th = math.tanh(self.data)
        return _node(th, [(self, 1 - th ** 2)], "tanh")

    def sigmoid(self) -> Value:
        s = _sigmoid(self.data)
        return _node(s, [(self, s * (1 - s))], "sigmoid")

    def relu(self) -> Value:
        if self.data > 0:
            return _node(self.data, [(self, 1.0)], "relu")
        return _node(0.0, [(self, 0.0)], "relu")

    def sin(self) -> Value:
        return _node(math.sin(self.data), [(self, math.cos(self.data))], "sin")

    def cos(self) -> Value:
        return _node(math.cos(self.data), [(self, -math.sin(self.data))], "cos")

    def __neg__(self) -> Value:
        return self * -1

    def __sub__(self, other) -> Value:
        return self + (-Value.lift(other))

    def __truediv__(self, other) -> Value:
        return self * Value.lift(other) ** -1

    def __radd__(self, other) -> Value:
        return self + other

    def __rmul__(self, other) -> Value:
        return self * other

    def __rsub__(self, other) -> Value:
        return Value.lift(other) - self

    def __rtruediv__(self, other) -> Value:
        return Value.lift(other) / self

    def backward(self) -> None:
        order = topological_order(self)
        if DEBUG and len(order) < 20:
            print("backward through", [n._op or "leaf" for n in order])
        self.grad = 1.0
        for v in reversed(order):
            v._backward()

    def zero_grad(self) -> None:
        for v in topological_order(self):
            v.grad = 0.0


# ---------------------------------------------------------------- part 2: tensors


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    g = np.array(grad, dtype=np.float64, copy=True)
    target = (1,) * (g.ndim - len(shape)) + tuple(shape)     # left-pad with ones like numpy does
    for ax, (have, want) in enumerate(zip(g.shape, target)):
        if want == 1 and have != 1:
            g = np.sum(g, axis=ax, keepdims=True)
    return g.reshape(shape)


class Tensor:
    """A numpy array in a computation graph; ``grad`` has the array's shape."""

    def __init__(self, data, _prev: tuple = (), _op: str = ""):
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)
        self._prev = _prev
        self._op = _op
        self._backward: Callable[[], None] = lambda: None

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @staticmethod
    def lift(x) -> Tensor:
        return x if isinstance(x, Tensor) else Tensor(x)

    def _make(self, data: np.ndarray, prev: tuple, op: str, backward) -> Tensor:
        out = Tensor(data, prev, op)
        out._backward = lambda: backward(out.grad)
        return out

    def __add__(self, other) -> Tensor:
        other = Tensor.lift(other)
        a, b = self, other

        def bw(g):
            a.grad = a.grad + unbroadcast(g, a.shape)
            b.grad = b.grad + unbroadcast(g, b.shape)

        return self._make(a.data + b.data, (a, b), "add", bw)

    def __mul__(self, other) -> Tensor:
        other = Tensor.lift(other)
        a, b = self, other

        def bw(g):
            a.grad = a.grad + unbroadcast(g * b.data, a.shape)
            b.grad = b.grad + unbroadcast(g * a.data, b.shape)

        return self._make(a.data * b.data, (a, b), "mul", bw)

    def __truediv__(self, other) -> Tensor:
        other = Tensor.lift(other)
        a, b = self, other

        def bw(g):
            a.grad = a.grad + unbroadcast(g / b.data, a.shape)
            b.grad = b.grad - unbroadcast(g * a.data / (b.data * b.data), b.shape)

        return self._make(a.data / b.data, (a, b), "div", bw)

    def __matmul__(self, other) -> Tensor:
        other = Tensor.lift(other)
        a, b = self, other

        def bw(g):
            a.grad = a.grad + g @ b.data.T
            b.grad = b.grad + a.data.T @ g

        return self._make(a.data @ b.data, (a, b), "matmul", bw)

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        ndim = self.data.ndim
        if axis is None:
            axes = tuple(range(ndim))
        elif isinstance(axis, (tuple, list)):
            axes = tuple(a % ndim for a in axis)
        else:
            axes = (axis % ndim,)
        kept_shape = tuple(1 if i in axes else n for i, n in enumerate(self.shape))

        def bw(g):
            self.grad = self.grad + np.ones(self.shape) * np.reshape(g, kept_shape)

        return self._make(self.data.sum(axis=axes, keepdims=keepdims), (self,), "sum", bw)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        n = self.data.size if axis is None else self.data.shape[axis]
        return self.sum(axis, keepdims) * (1.0 / n)

    def reshape(self, *shape) -> Tensor:
        new_shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape

        def bw(g):
            self.grad = self.grad + np.reshape(g, self.shape)

        return self._make(np.reshape(self.data, new_shape), (self,), "reshape", bw)

    def transpose(self) -> Tensor:
        perm = tuple(reversed(range(self.data.ndim)))

        def bw(g):
            self.grad = self.grad + np.transpose(g, perm)     # reversing twice is the identity

        return self._make(np.transpose(self.data, perm), (self,), "transpose", bw)

    def exp(self) -> Tensor:
        def bw(g):
            self.grad = self.grad + g * np.exp(self.data)

        return self._make(np.exp(self.data), (self,), "exp", bw)

    def log(self) -> Tensor:
        def bw(g):
            self.grad = self.grad + g / self.data

        return self._make(np.log(self.data), (self,), "log", bw)

    def relu(self) -> Tensor:
        def bw(g):
            self.grad = self.grad + g * (self.data > 0).astype(np.float64)

        return self._make(self.data * (self.data > 0), (self,), "relu", bw)

    def tanh(self) -> Tensor:
        def bw(g):
            self.grad = self.grad + g * (1.0 - np.tanh(self.data) ** 2)

        return self._make(np.tanh(self.data), (self,), "tanh", bw)

    def log_softmax(self, axis: int = -1) -> Tensor:
        m = Tensor(np.max(self.data, axis=axis, keepdims=True))    # constant: no gradient needed
        shifted = self - m
        log_norm = shifted.exp().sum(axis=axis, keepdims=True).log()
        return shifted - log_norm

    def __neg__(self) -> Tensor:
        return self * -1.0

    def __sub__(self, other) -> Tensor:
        return self + (-Tensor.lift(other))

    def __radd__(self, other) -> Tensor:
        return self + other

    def __rmul__(self, other) -> Tensor:
        return self * other

    def __rsub__(self, other) -> Tensor:
        return Tensor.lift(other) - self

    def __rtruediv__(self, other) -> Tensor:
        return Tensor.lift(other) / self

    def backward(self) -> None:
        self.grad = np.ones_like(self.data)
        for t in reversed(topological_order(self)):
            t._backward()

    def zero_grad(self) -> None:
        for node in topological_order(self):
            node.grad = np.zeros_like(node.data)


def _pick(t: Tensor, labels: np.ndarray) -> Tensor:
    """t[i, labels[i]] for every row i, as a graph node (a gather)."""
    rows = np.arange(t.shape[0])

    def bw(g):
        full = np.zeros_like(t.data)
        np.add.at(full, (rows, labels), g)
        t.grad = t.grad + full

    return t._make(t.data[rows, labels], (t,), "pick", bw)


def cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    labels = np.asarray(labels).astype(np.int64)
    picked = _pick(logits.log_softmax(axis=1), labels)
    return -picked.mean()


# ---------------------------------------------------------------- part 3: use it


class MLP:
    """x -> tanh(x W1 + b1) -> logits = h W2 + b2, parameters as Tensors.

    Initialise with rng = np.random.default_rng(seed): W1 = rng.normal(0, 1, (n_in, hidden)) /
    sqrt(n_in), then W2 = rng.normal(0, 1, (hidden, n_out)) / sqrt(hidden); biases zero.
    """

    def __init__(self, n_in: int, hidden: int, n_out: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.W1 = Tensor(rng.normal(0, 1, (n_in, hidden)) / np.sqrt(n_in))
        self.W2 = Tensor(rng.normal(0, 1, (hidden, n_out)) / np.sqrt(hidden))
        self.b1, self.b2 = Tensor(np.zeros(hidden)), Tensor(np.zeros(n_out))

    def parameters(self) -> list[Tensor]:
        return [self.W1, self.b1, self.W2, self.b2]

    def __call__(self, X) -> Tensor:
        return (Tensor.lift(X) @ self.W1 + self.b1).tanh() @ self.W2 + self.b2

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self(X).data, axis=1)


def train_moons(X: np.ndarray, y: np.ndarray, seed: int = 0) -> MLP:
    mlp = MLP(2, 32, 2, seed)
    params = mlp.parameters()
    learning_rate = 0.8
    for epoch in range(3000):
        for p in params:
            p.grad.fill(0.0)
        L = cross_entropy(mlp(X), y)
        L.backward()
        for p in params:
            p.data -= learning_rate * p.grad
        if DEBUG and epoch % 500 == 0:
            acc = np.mean(mlp.predict(X) == y)
            print(f"epoch {epoch}: loss {float(L.data):.4f}, train accuracy {acc:.3f}")
    return mlp


class Dual:
    """Forward mode: a number a + b eps with eps^2 = 0; ``tangent`` carries the derivative."""

    def __init__(self, value: float, tangent: float = 0.0):
        self.value, self.tangent = float(value), float(tangent)

    def __repr__(self):
        return f"Dual({self.value}, {self.tangent})"

    @staticmethod
    def lift(x) -> Dual:
        return x if isinstance(x, Dual) else Dual(x)

    def __add__(self, other) -> Dual:
        other = Dual.lift(other)
        return Dual(self.value + other.value, self.tangent + other.tangent)

    def __mul__(self, other) -> Dual:
        other = Dual.lift(other)
        return Dual(self.value * other.value, self.tangent * other.value + self.value * other.tangent)

    def __pow__(self, k: float) -> Dual:
        return Dual(self.value ** k, (k * self.value ** (k - 1) if k != 0 else 0.0) * self.tangent)

    def _chain(self, value: float, derivative: float) -> Dual:
        return Dual(value, derivative * self.tangent)

    def exp(self) -> Dual:
        e = math.exp(self.value)
        return self._chain(e, e)

    def log(self) -> Dual:
        return self._chain(math.log(self.value), 1 / self.value)

    def tanh(self) -> Dual:
        th = math.tanh(self.value)
        return self._chain(th, 1 - th * th)

    def sigmoid(self) -> Dual:
        s = _sigmoid(self.value)
        return self._chain(s, s * (1 - s))

    def relu(self) -> Dual:
        return self._chain(self.value if self.value > 0 else 0.0, float(self.value > 0))

    def sin(self) -> Dual:
        return self._chain(math.sin(self.value), math.cos(self.value))

    def cos(self) -> Dual:
        return self._chain(math.cos(self.value), -math.sin(self.value))

    def __neg__(self) -> Dual:
        return self * -1

    def __sub__(self, other) -> Dual:
        return self + (-Dual.lift(other))

    def __truediv__(self, other) -> Dual:
        return self * Dual.lift(other) ** -1

    def __radd__(self, other) -> Dual:
        return self + other

    def __rmul__(self, other) -> Dual:
        return self * other

    def __rsub__(self, other) -> Dual:
        return Dual.lift(other) - self

    def __rtruediv__(self, other) -> Dual:
        return Dual.lift(other) / self


def jvp(f: Callable, x: list[float], v: list[float]) -> tuple[float, float]:
    """f takes one argument per input, unpacked, as the README says."""
    xs = [Dual(xi, vi) for xi, vi in zip(x, v)]
    y = Dual.lift(f(*xs))
    if DEBUG:
        print("jvp:", y)
    return y.value, y.tangent
