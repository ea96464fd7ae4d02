"""Reverse-mode automatic differentiation, first on scalars, then on numpy tensors.

Every operation records its inputs and a ``_backward`` closure that pushes the output's gradient
to them by the chain rule: addition distributes the gradient, multiplication switches it, max
routes it. ``backward()`` visits the graph in reverse topological order and *adds* each
contribution, so a value used twice receives the sum over every path.

Use numpy only (torch, jax and autograd are not allowed).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def topological_order(root) -> list:
    """Every node reachable from root, each exactly once, inputs before the nodes that use them.

    Iterative (an explicit stack), so a chain of 100,000 operations does not hit Python's
    recursion limit. Nodes expose their inputs as ``_prev``.
    """
    raise NotImplementedError("not implemented yet: topological_order")


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
        """self + other, with a Value or a Python number on either side."""
        raise NotImplementedError("not implemented yet: Value.__add__")

    def __mul__(self, other) -> Value:
        """self * other."""
        raise NotImplementedError("not implemented yet: Value.__mul__")

    def __pow__(self, k: float) -> Value:
        """self ** k for a constant number k."""
        raise NotImplementedError("not implemented yet: Value.__pow__")

    def _unary(self, value: float, local: float, op: str) -> Value:
        """An elementary function with value f(x) and local derivative f'(x)."""
        out = Value(value, (self,), op)

        def _backward():
            self.grad += local * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        raise NotImplementedError("not implemented yet: Value.exp")

    def log(self) -> Value:
        """Natural log; its derivative is 1/x, taken at the input x."""
        raise NotImplementedError("not implemented yet: Value.log")

    def tanh(self) -> Value:
        """tanh; its derivative is 1 - tanh(x)^2, from the output."""
        raise NotImplementedError("not implemented yet: Value.tanh")

    def sigmoid(self) -> Value:
        raise NotImplementedError("not implemented yet: Value.sigmoid")

    def relu(self) -> Value:
        """max(0, x); the gradient is routed through only where x > 0."""
        raise NotImplementedError("not implemented yet: Value.relu")

    def sin(self) -> Value:
        raise NotImplementedError("not implemented yet: Value.sin")

    def cos(self) -> Value:
        raise NotImplementedError("not implemented yet: Value.cos")

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
        """Set d self/d self = 1 and push gradients to every node, in reverse topological order.
        Gradients accumulate (+=): call zero_grad() between two backward passes."""
        raise NotImplementedError("not implemented yet: Value.backward")

    def zero_grad(self) -> None:
        """Reset the gradient of every node of the graph, the leaves included."""
        raise NotImplementedError("not implemented yet: Value.zero_grad")


# ---------------------------------------------------------------- part 2: tensors


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a gradient back to the shape of an input that numpy broadcast in the forward pass."""
    raise NotImplementedError("not implemented yet: unbroadcast")


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
        """Broadcasting addition."""
        raise NotImplementedError("not implemented yet: Tensor.__add__")

    def __mul__(self, other) -> Tensor:
        """Broadcasting elementwise product."""
        raise NotImplementedError("not implemented yet: Tensor.__mul__")

    def __truediv__(self, other) -> Tensor:
        """Broadcasting elementwise division."""
        raise NotImplementedError("not implemented yet: Tensor.__truediv__")

    def __matmul__(self, other) -> Tensor:
        """Matrix product of 2-D tensors."""
        raise NotImplementedError("not implemented yet: Tensor.__matmul__")

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        """Sum over an axis (or all); the gradient is copied back to every summed element."""
        raise NotImplementedError("not implemented yet: Tensor.sum")

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        n = self.data.size if axis is None else self.data.shape[axis]
        return self.sum(axis, keepdims) * (1.0 / n)

    def reshape(self, *shape) -> Tensor:
        raise NotImplementedError("not implemented yet: Tensor.reshape")

    def transpose(self) -> Tensor:
        """Reverse the axes (a matrix's transpose)."""
        raise NotImplementedError("not implemented yet: Tensor.transpose")

    def exp(self) -> Tensor:
        raise NotImplementedError("not implemented yet: Tensor.exp")

    def log(self) -> Tensor:
        raise NotImplementedError("not implemented yet: Tensor.log")

    def relu(self) -> Tensor:
        """max(0, x) elementwise; the gradient passes only where x > 0 (it is 0 at x == 0)."""
        raise NotImplementedError("not implemented yet: Tensor.relu")

    def tanh(self) -> Tensor:
        raise NotImplementedError("not implemented yet: Tensor.tanh")

    def log_softmax(self, axis: int = -1) -> Tensor:
        """log(softmax(x)) along an axis, stable for large inputs (subtract the max)."""
        raise NotImplementedError("not implemented yet: Tensor.log_softmax")

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
        """Seed with ones (the gradient of sum(self)) and run every node's backward in reverse
        topological order."""
        raise NotImplementedError("not implemented yet: Tensor.backward")

    def zero_grad(self) -> None:
        for node in topological_order(self):
            node.grad = np.zeros_like(node.data)


def cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    """Mean cross-entropy of softmax(logits) against integer labels, from log_softmax."""
    raise NotImplementedError("not implemented yet: cross_entropy")


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
    """Train an MLP(2, hidden, 2) on make_moons data with your engine (full-batch gradient descent
    on cross_entropy is enough). The graders need 95% accuracy on held-out points."""
    raise NotImplementedError("not implemented yet: train_moons")


class Dual:
    """Forward mode: a number a + b eps with eps^2 = 0; ``tangent`` carries the derivative."""

    def __init__(self, value: float, tangent: float = 0.0):
        self.value, self.tangent = float(value), float(tangent)

    @staticmethod
    def lift(x) -> Dual:
        return x if isinstance(x, Dual) else Dual(x)

    def __add__(self, other) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.__add__")

    def __mul__(self, other) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.__mul__")

    def __pow__(self, k: float) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.__pow__")

    def _chain(self, value: float, derivative: float) -> Dual:
        return Dual(value, derivative * self.tangent)

    def exp(self) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.exp")

    def log(self) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.log")

    def tanh(self) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.tanh")

    def sigmoid(self) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.sigmoid")

    def relu(self) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.relu")

    def sin(self) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.sin")

    def cos(self) -> Dual:
        raise NotImplementedError("not implemented yet: Dual.cos")

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
    """Forward mode: (f(x), the directional derivative of f at x along v), from one pass of f on
    Dual numbers whose tangents are v. f takes one argument per input, unpacked: for
    x = [x1, x2] it is called as f(Dual(x1, v1), Dual(x2, v2)), never with one list."""
    raise NotImplementedError("not implemented yet: jvp")
