"""Reverse-mode automatic differentiation, first on scalars, then on numpy tensors.

Every operation records its inputs and a ``_backward`` closure that pushes the output's gradient
to them by the chain rule. ``backward()`` visits the graph in reverse topological order and
*adds* each contribution.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def topological_order(root) -> list:
    """Post-order depth-first search with an explicit stack (no recursion)."""
    order = []
    visited = set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        for child in node._prev:
            if child not in visited:
                stack.append((child, False))
    return order


# ---------------------------------------------------------------- part 1: scalars


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
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other) -> Value:
        other = Value.lift(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, k: float) -> Value:
        assert isinstance(k, (int, float)), "only constant exponents"
        out = Value(self.data ** k, (self,), f"**{k}")

        def _backward():
            if k != 0:
                self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    def _unary(self, value: float, local: float, op: str) -> Value:
        """An elementary function with value f(x) and local derivative f'(x)."""
        out = Value(value, (self,), op)

        def _backward():
            self.grad += local * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        e = math.exp(self.data)
        out = Value(e, (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        x = self.data
        out = Value(math.log(x), (self,), "log")

        def _backward():
            self.grad += (1.0 / x) * out.grad

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1.0 - out.data ** 2) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        x = self.data
        if x >= 0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        out = Value(s, (self,), "sigmoid")

        def _backward():
            self.grad += out.data * (1.0 - out.data) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward():
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad

        out._backward = _backward
        return out

    def sin(self) -> Value:
        out = Value(math.sin(self.data), (self,), "sin")

        def _backward():
            self.grad += math.cos(self.data) * out.grad

        out._backward = _backward
        return out

    def cos(self) -> Value:
        out = Value(math.cos(self.data), (self,), "cos")

        def _backward():
            self.grad += -math.sin(self.data) * out.grad

        out._backward = _backward
        return out

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
        topo = topological_order(self)
        self.grad = 1.0
        for node in reversed(topo):
            node._backward()

    def zero_grad(self) -> None:
        for node in topological_order(self):
            node.grad = 0.0


# ---------------------------------------------------------------- part 2: tensors


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    grad = np.asarray(grad)
    shape = tuple(shape)
    # 1. axes numpy prepended
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    # 2. axes that were 1 and got stretched
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad.reshape(shape)


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
        out = Tensor(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += unbroadcast(out.grad, self.shape)
            other.grad += unbroadcast(out.grad, other.shape)

        out._backward = _backward
        return out

    def __mul__(self, other) -> Tensor:
        other = Tensor.lift(other)
        out = Tensor(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += unbroadcast(out.grad * other.data, self.shape)
            other.grad += unbroadcast(out.grad * self.data, other.shape)

        out._backward = _backward
        return out

    def __truediv__(self, other) -> Tensor:
        other = Tensor.lift(other)
        out = Tensor(self.data / other.data, (self, other), "/")

        def _backward():
            self.grad += unbroadcast(out.grad / other.data, self.shape)
            other.grad += unbroadcast(-out.grad * self.data / other.data ** 2, other.shape)

        out._backward = _backward
        return out

    def __matmul__(self, other) -> Tensor:
        other = Tensor.lift(other)
        out = Tensor(self.data @ other.data, (self, other), "@")

        def _backward():
            self.grad += out.grad @ other.data.T
            other.grad += self.data.T @ out.grad

        out._backward = _backward
        return out

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        out = Tensor(self.data.sum(axis=axis, keepdims=keepdims), (self,), "sum")

        def _backward():
            g = out.grad
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            self.grad += np.broadcast_to(g, self.shape)

        out._backward = _backward
        return out

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        n = self.data.size if axis is None else self.data.shape[axis]
        return self.sum(axis, keepdims) * (1.0 / n)

    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        out = Tensor(self.data.reshape(shape), (self,), "reshape")

        def _backward():
            self.grad += out.grad.reshape(self.shape)

        out._backward = _backward
        return out

    def transpose(self) -> Tensor:
        out = Tensor(self.data.T, (self,), "T")

        def _backward():
            self.grad += out.grad.T

        out._backward = _backward
        return out

    def exp(self) -> Tensor:
        out = Tensor(np.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Tensor:
        out = Tensor(np.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def relu(self) -> Tensor:
        out = Tensor(np.maximum(self.data, 0.0), (self,), "relu")

        def _backward():
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    def tanh(self) -> Tensor:
        out = Tensor(np.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1.0 - out.data ** 2) * out.grad

        out._backward = _backward
        return out

    def log_softmax(self, axis: int = -1) -> Tensor:
        # the max is a constant shift: log_softmax does not depend on it
        shift = self.data.max(axis=axis, keepdims=True)
        z = self - shift
        return z - z.exp().sum(axis=axis, keepdims=True).log()

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
        topo = topological_order(self)
        self.grad = np.ones_like(self.data)
        for node in reversed(topo):
            node._backward()

    def zero_grad(self) -> None:
        for node in topological_order(self):
            node.grad = np.zeros_like(node.data)


def cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    logp = logits.log_softmax(axis=1)
    labels = np.asarray(labels, dtype=np.int64)
    n = logp.shape[0]
    onehot = np.zeros(logp.shape)
    onehot[np.arange(n), labels] = 1.0
    return -(logp * onehot).sum() * (1.0 / n)


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
    model = MLP(2, 16, 2, seed=seed)
    lr = 1.0
    for step in range(3000):
        for p in model.parameters():
            p.grad = np.zeros_like(p.data)
        loss = cross_entropy(model(X), y)
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
    return model


class Dual:
    """Forward mode: a number a + b eps with eps^2 = 0; ``tangent`` carries the derivative."""

    def __init__(self, value: float, tangent: float = 0.0):
        self.value, self.tangent = float(value), float(tangent)

    @staticmethod
    def lift(x) -> Dual:
        return x if isinstance(x, Dual) else Dual(x)

    def __add__(self, other) -> Dual:
        other = Dual.lift(other)
        return Dual(self.value + other.value, self.tangent + other.tangent)

    def __mul__(self, other) -> Dual:
        other = Dual.lift(other)
        return Dual(self.value * other.value,
                    self.value * other.tangent + self.tangent * other.value)

    def __pow__(self, k: float) -> Dual:
        if k == 0:
            return Dual(1.0, 0.0)
        return Dual(self.value ** k, k * self.value ** (k - 1) * self.tangent)

    def _chain(self, value: float, derivative: float) -> Dual:
        return Dual(value, derivative * self.tangent)

    def exp(self) -> Dual:
        e = math.exp(self.value)
        return self._chain(e, e)

    def log(self) -> Dual:
        return self._chain(math.log(self.value), 1.0 / self.value)

    def tanh(self) -> Dual:
        t = math.tanh(self.value)
        return self._chain(t, 1.0 - t * t)

    def sigmoid(self) -> Dual:
        x = self.value
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return self._chain(s, s * (1.0 - s))

    def relu(self) -> Dual:
        return self._chain(max(self.value, 0.0), 1.0 if self.value > 0 else 0.0)

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
    """f is called on the Dual numbers as separate arguments: f(x1, x2, ...)."""
    duals = [Dual(xi, vi) for xi, vi in zip(x, v)]
    out = Dual.lift(f(*duals))
    return out.value, out.tangent
