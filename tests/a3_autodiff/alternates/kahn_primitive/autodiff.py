"""Reverse-mode automatic differentiation, first on scalars, then on numpy tensors.

Topological order by Kahn's algorithm; unary scalar ops through ``_unary``; tensor ops through
``_make``; log_softmax is one primitive with its own backward.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def topological_order(root) -> list:
    """Kahn's algorithm on the reversed graph (edges from a node to its inputs)."""
    # 1. find every reachable node and count how many times it is used as an input
    uses: dict = {root: 0}
    todo = [root]
    while todo:
        node = todo.pop()
        for parent in node._prev:
            if parent in uses:
                uses[parent] += 1
            else:
                uses[parent] = 1
                todo.append(parent)
    # 2. peel off nodes nobody still needs, starting at the root (outputs first)
    ready = [root]
    outputs_first = []
    while ready:
        node = ready.pop()
        outputs_first.append(node)
        for parent in node._prev:
            uses[parent] -= 1
            if uses[parent] == 0:
                ready.append(parent)
    outputs_first.reverse()
    return outputs_first


def _stable_sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


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
        rhs = Value.lift(other)
        res = Value(self.data + rhs.data, (self, rhs), "+")

        def back():
            # addition distributes the gradient
            self.grad += res.grad
            rhs.grad += res.grad

        res._backward = back
        return res

    def __mul__(self, other) -> Value:
        rhs = Value.lift(other)
        res = Value(self.data * rhs.data, (self, rhs), "*")

        def back():
            # multiplication switches the inputs
            a, b = self.data, rhs.data
            self.grad += b * res.grad
            rhs.grad += a * res.grad

        res._backward = back
        return res

    def __pow__(self, k: float) -> Value:
        if isinstance(k, Value):
            raise TypeError("the exponent must be a constant number")
        x = self.data
        local = 0.0 if k == 0 else k * x ** (k - 1)
        return self._unary(x ** k, local, f"**{k}")

    def _unary(self, value: float, local: float, op: str) -> Value:
        """An elementary function with value f(x) and local derivative f'(x)."""
        out = Value(value, (self,), op)

        def _backward():
            self.grad += local * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        e = math.exp(self.data)
        return self._unary(e, e, "exp")

    def log(self) -> Value:
        return self._unary(math.log(self.data), 1.0 / self.data, "log")

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return self._unary(t, 1.0 - t * t, "tanh")

    def sigmoid(self) -> Value:
        s = _stable_sigmoid(self.data)
        return self._unary(s, s * (1.0 - s), "sigmoid")

    def relu(self) -> Value:
        positive = self.data > 0
        return self._unary(self.data if positive else 0.0, 1.0 if positive else 0.0, "relu")

    def sin(self) -> Value:
        return self._unary(math.sin(self.data), math.cos(self.data), "sin")

    def cos(self) -> Value:
        return self._unary(math.cos(self.data), -math.sin(self.data), "cos")

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
        nodes = topological_order(self)
        self.grad = 1.0
        for i in range(len(nodes) - 1, -1, -1):
            nodes[i]._backward()

    def zero_grad(self) -> None:
        for v in topological_order(self):
            v.grad = 0.0


# ---------------------------------------------------------------- part 2: tensors


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    grad = np.asarray(grad, dtype=np.float64)
    shape = tuple(shape)
    extra = grad.ndim - len(shape)
    axes = list(range(extra))
    axes += [extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1]
    if axes:
        grad = grad.sum(axis=tuple(axes), keepdims=True)
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
        b = Tensor.lift(other)

        def back(g):
            self.grad += unbroadcast(g, self.shape)
            b.grad += unbroadcast(g, b.shape)

        return self._make(self.data + b.data, (self, b), "+", back)

    def __mul__(self, other) -> Tensor:
        b = Tensor.lift(other)

        def back(g):
            self.grad += unbroadcast(g * b.data, self.shape)
            b.grad += unbroadcast(g * self.data, b.shape)

        return self._make(self.data * b.data, (self, b), "*", back)

    def __truediv__(self, other) -> Tensor:
        b = Tensor.lift(other)
        q = self.data / b.data

        def back(g):
            self.grad += unbroadcast(g / b.data, self.shape)
            b.grad += unbroadcast(-g * q / b.data, b.shape)     # d(a/b)/db = -a/b^2

        return self._make(q, (self, b), "/", back)

    def __matmul__(self, other) -> Tensor:
        b = Tensor.lift(other)
        if self.data.ndim != 2 or b.data.ndim != 2:
            raise ValueError("matmul expects 2-D tensors")

        def back(g):
            self.grad += np.dot(g, b.data.T)
            b.grad += np.dot(self.data.T, g)

        return self._make(np.dot(self.data, b.data), (self, b), "@", back)

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        in_shape = self.shape
        kept = np.sum(self.data, axis=axis, keepdims=True)    # the shape with 1s where summed

        def back(g):
            self.grad += np.broadcast_to(np.reshape(g, kept.shape), in_shape)

        data = kept if keepdims else np.sum(self.data, axis=axis)
        return self._make(data, (self,), "sum", back)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        n = self.data.size if axis is None else self.data.shape[axis]
        return self.sum(axis, keepdims) * (1.0 / n)

    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])

        def back(g):
            self.grad += g.reshape(self.shape)

        return self._make(self.data.reshape(shape), (self,), "reshape", back)

    def transpose(self) -> Tensor:
        def back(g):
            self.grad += np.transpose(g)

        return self._make(np.transpose(self.data), (self,), "transpose", back)

    def exp(self) -> Tensor:
        e = np.exp(self.data)

        def back(g):
            self.grad += g * e

        return self._make(e, (self,), "exp", back)

    def log(self) -> Tensor:
        x = self.data

        def back(g):
            self.grad += g / x

        return self._make(np.log(x), (self,), "log", back)

    def relu(self) -> Tensor:
        mask = self.data > 0

        def back(g):
            self.grad += np.where(mask, g, 0.0)

        return self._make(np.where(mask, self.data, 0.0), (self,), "relu", back)

    def tanh(self) -> Tensor:
        t = np.tanh(self.data)

        def back(g):
            self.grad += g * (1.0 - t * t)

        return self._make(t, (self,), "tanh", back)

    def log_softmax(self, axis: int = -1) -> Tensor:
        z = self.data - np.max(self.data, axis=axis, keepdims=True)
        out = z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
        p = np.exp(out)

        def back(g):
            # d log_softmax: g - softmax * sum(g)
            self.grad += g - p * np.sum(g, axis=axis, keepdims=True)

        return self._make(out, (self,), "log_softmax", back)

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
        order = topological_order(self)
        self.grad = np.ones(self.shape)
        for node in order[::-1]:
            node._backward()

    def zero_grad(self) -> None:
        for node in topological_order(self):
            node.grad = np.zeros_like(node.data)


def cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    logp = logits.log_softmax(axis=-1)
    n, c = logp.shape
    pick = np.eye(c)[np.asarray(labels, dtype=int)]        # one-hot rows
    return (logp * pick).sum() * (-1.0 / n)


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
    net = MLP(2, 24, 2, seed=seed)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    for it in range(4000):
        loss = cross_entropy(net(X), y)
        loss.zero_grad()                 # clears the parameters too (they are leaves of the graph)
        loss.backward()
        step = 1.0 if it < 3000 else 0.3
        for p in net.parameters():
            p.data = p.data - step * p.grad
    return net


class Dual:
    """Forward mode: a number a + b eps with eps^2 = 0; ``tangent`` carries the derivative."""

    def __init__(self, value: float, tangent: float = 0.0):
        self.value, self.tangent = float(value), float(tangent)

    @staticmethod
    def lift(x) -> Dual:
        return x if isinstance(x, Dual) else Dual(x)

    def __add__(self, other) -> Dual:
        o = Dual.lift(other)
        return Dual(self.value + o.value, self.tangent + o.tangent)

    def __mul__(self, other) -> Dual:
        o = Dual.lift(other)
        # (a + a' eps)(b + b' eps) = ab + (a b' + a' b) eps
        return Dual(self.value * o.value, self.value * o.tangent + self.tangent * o.value)

    def __pow__(self, k: float) -> Dual:
        d = 0.0 if k == 0 else k * self.value ** (k - 1)
        return self._chain(self.value ** k, d)

    def _chain(self, value: float, derivative: float) -> Dual:
        return Dual(value, derivative * self.tangent)

    def exp(self) -> Dual:
        return self._chain(math.exp(self.value), math.exp(self.value))

    def log(self) -> Dual:
        return self._chain(math.log(self.value), 1.0 / self.value)

    def tanh(self) -> Dual:
        t = math.tanh(self.value)
        return self._chain(t, 1.0 - t ** 2)

    def sigmoid(self) -> Dual:
        s = _stable_sigmoid(self.value)
        return self._chain(s, s * (1.0 - s))

    def relu(self) -> Dual:
        if self.value > 0:
            return self._chain(self.value, 1.0)
        return self._chain(0.0, 0.0)

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
    if len(x) != len(v):
        raise ValueError("x and v must have the same length")
    result = f(*(Dual(a, b) for a, b in zip(x, v)))
    if not isinstance(result, Dual):              # f did not depend on its inputs
        return float(result), 0.0
    return result.value, result.tangent
