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
    # BEGIN SOLUTION
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for child in node._prev:
            if id(child) not in visited:
                stack.append((child, False))
    return order
    # END SOLUTION


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
        # BEGIN SOLUTION
        other = Value.lift(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out
        # END SOLUTION

    def __mul__(self, other) -> Value:
        """self * other."""
        # BEGIN SOLUTION
        other = Value.lift(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out
        # END SOLUTION

    def __pow__(self, k: float) -> Value:
        """self ** k for a constant number k."""
        # BEGIN SOLUTION
        out = Value(self.data**k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out
        # END SOLUTION

    def _unary(self, value: float, local: float, op: str) -> Value:
        """An elementary function with value f(x) and local derivative f'(x)."""
        out = Value(value, (self,), op)

        def _backward():
            self.grad += local * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        # BEGIN SOLUTION
        e = math.exp(self.data)
        return self._unary(e, e, "exp")
        # END SOLUTION

    def log(self) -> Value:
        """Natural log; its derivative is 1/x, taken at the input x."""
        # BEGIN SOLUTION
        return self._unary(math.log(self.data), 1.0 / self.data, "log")
        # END SOLUTION

    def tanh(self) -> Value:
        """tanh; its derivative is 1 - tanh(x)^2, from the output."""
        # BEGIN SOLUTION
        t = math.tanh(self.data)
        return self._unary(t, 1 - t * t, "tanh")
        # END SOLUTION

    def sigmoid(self) -> Value:
        # BEGIN SOLUTION
        s = 1.0 / (1.0 + math.exp(-self.data)) if self.data >= 0 else (
            math.exp(self.data) / (1.0 + math.exp(self.data)))
        return self._unary(s, s * (1 - s), "sigmoid")
        # END SOLUTION

    def relu(self) -> Value:
        """max(0, x); the gradient is routed through only where x > 0."""
        # BEGIN SOLUTION
        return self._unary(max(0.0, self.data), 1.0 if self.data > 0 else 0.0, "relu")
        # END SOLUTION

    def sin(self) -> Value:
        # BEGIN SOLUTION
        return self._unary(math.sin(self.data), math.cos(self.data), "sin")
        # END SOLUTION

    def cos(self) -> Value:
        # BEGIN SOLUTION
        return self._unary(math.cos(self.data), -math.sin(self.data), "cos")
        # END SOLUTION

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
        # BEGIN SOLUTION
        self.grad = 1.0
        for node in reversed(topological_order(self)):
            node._backward()
        # END SOLUTION

    def zero_grad(self) -> None:
        """Reset the gradient of every node of the graph, the leaves included."""
        # BEGIN SOLUTION
        for node in topological_order(self):
            node.grad = 0.0
        # END SOLUTION


# ---------------------------------------------------------------- part 2: tensors


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a gradient back to the shape of an input that numpy broadcast in the forward pass."""
    # BEGIN SOLUTION
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
    # END SOLUTION


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
        # BEGIN SOLUTION
        other = Tensor.lift(other)

        def backward(g):
            self.grad += unbroadcast(g, self.shape)
            other.grad += unbroadcast(g, other.shape)

        return self._make(self.data + other.data, (self, other), "+", backward)
        # END SOLUTION

    def __mul__(self, other) -> Tensor:
        """Broadcasting elementwise product."""
        # BEGIN SOLUTION
        other = Tensor.lift(other)

        def backward(g):
            self.grad += unbroadcast(g * other.data, self.shape)
            other.grad += unbroadcast(g * self.data, other.shape)

        return self._make(self.data * other.data, (self, other), "*", backward)
        # END SOLUTION

    def __truediv__(self, other) -> Tensor:
        """Broadcasting elementwise division."""
        # BEGIN SOLUTION
        other = Tensor.lift(other)

        def backward(g):
            self.grad += unbroadcast(g / other.data, self.shape)
            other.grad += unbroadcast(-g * self.data / other.data**2, other.shape)

        return self._make(self.data / other.data, (self, other), "/", backward)
        # END SOLUTION

    def __matmul__(self, other) -> Tensor:
        """Matrix product of 2-D tensors."""
        # BEGIN SOLUTION
        other = Tensor.lift(other)

        def backward(g):
            self.grad += g @ other.data.T
            other.grad += self.data.T @ g

        return self._make(self.data @ other.data, (self, other), "@", backward)
        # END SOLUTION

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        """Sum over an axis (or all); the gradient is copied back to every summed element."""
        # BEGIN SOLUTION
        def backward(g):
            if axis is not None and not keepdims:
                g = np.expand_dims(g, axis)
            self.grad += np.broadcast_to(g, self.shape)

        return self._make(self.data.sum(axis=axis, keepdims=keepdims), (self,), "sum", backward)
        # END SOLUTION

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        n = self.data.size if axis is None else self.data.shape[axis]
        return self.sum(axis, keepdims) * (1.0 / n)

    def reshape(self, *shape) -> Tensor:
        # BEGIN SOLUTION
        def backward(g):
            self.grad += g.reshape(self.shape)

        return self._make(self.data.reshape(*shape), (self,), "reshape", backward)
        # END SOLUTION

    def transpose(self) -> Tensor:
        """Reverse the axes (a matrix's transpose)."""
        # BEGIN SOLUTION
        def backward(g):
            self.grad += g.transpose()

        return self._make(self.data.transpose(), (self,), "T", backward)
        # END SOLUTION

    def exp(self) -> Tensor:
        # BEGIN SOLUTION
        e = np.exp(self.data)

        def backward(g):
            self.grad += g * e

        return self._make(e, (self,), "exp", backward)
        # END SOLUTION

    def log(self) -> Tensor:
        # BEGIN SOLUTION
        def backward(g):
            self.grad += g / self.data

        return self._make(np.log(self.data), (self,), "log", backward)
        # END SOLUTION

    def relu(self) -> Tensor:
        """max(0, x) elementwise; the gradient passes only where x > 0 (it is 0 at x == 0)."""
        # BEGIN SOLUTION
        def backward(g):
            self.grad += g * (self.data > 0)

        return self._make(np.maximum(self.data, 0), (self,), "relu", backward)
        # END SOLUTION

    def tanh(self) -> Tensor:
        # BEGIN SOLUTION
        t = np.tanh(self.data)

        def backward(g):
            self.grad += g * (1 - t**2)

        return self._make(t, (self,), "tanh", backward)
        # END SOLUTION

    def log_softmax(self, axis: int = -1) -> Tensor:
        """log(softmax(x)) along an axis, stable for large inputs (subtract the max)."""
        # BEGIN SOLUTION
        shifted = self.data - self.data.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        soft = np.exp(out)

        def backward(g):
            self.grad += g - soft * g.sum(axis=axis, keepdims=True)

        return self._make(out, (self,), "log_softmax", backward)
        # END SOLUTION

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
        # BEGIN SOLUTION
        self.grad = np.ones_like(self.data)
        for node in reversed(topological_order(self)):
            node._backward()
        # END SOLUTION

    def zero_grad(self) -> None:
        for node in topological_order(self):
            node.grad = np.zeros_like(node.data)


def cross_entropy(logits: Tensor, labels: np.ndarray) -> Tensor:
    """Mean cross-entropy of softmax(logits) against integer labels, from log_softmax."""
    # BEGIN SOLUTION
    n = logits.shape[0]
    onehot = np.zeros(logits.shape)
    onehot[np.arange(n), labels] = 1.0
    return -(logits.log_softmax(axis=1) * onehot).sum() * (1.0 / n)
    # END SOLUTION


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
    # BEGIN SOLUTION
    model = MLP(2, 16, 2, seed)
    for _ in range(1500):
        loss = cross_entropy(model(X), y)
        for p in model.parameters():
            p.grad = np.zeros_like(p.data)
        loss.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.5 * p.grad
    return model
    # END SOLUTION


class Dual:
    """Forward mode: a number a + b eps with eps^2 = 0; ``tangent`` carries the derivative."""

    def __init__(self, value: float, tangent: float = 0.0):
        self.value, self.tangent = float(value), float(tangent)

    @staticmethod
    def lift(x) -> Dual:
        return x if isinstance(x, Dual) else Dual(x)

    def __add__(self, other) -> Dual:
        # BEGIN SOLUTION
        other = Dual.lift(other)
        return Dual(self.value + other.value, self.tangent + other.tangent)
        # END SOLUTION

    def __mul__(self, other) -> Dual:
        # BEGIN SOLUTION
        other = Dual.lift(other)
        return Dual(self.value * other.value,
                    self.tangent * other.value + self.value * other.tangent)
        # END SOLUTION

    def __pow__(self, k: float) -> Dual:
        # BEGIN SOLUTION
        return Dual(self.value**k, k * self.value ** (k - 1) * self.tangent)
        # END SOLUTION

    def _chain(self, value: float, derivative: float) -> Dual:
        return Dual(value, derivative * self.tangent)

    def exp(self) -> Dual:
        # BEGIN SOLUTION
        return self._chain(math.exp(self.value), math.exp(self.value))
        # END SOLUTION

    def log(self) -> Dual:
        # BEGIN SOLUTION
        return self._chain(math.log(self.value), 1.0 / self.value)
        # END SOLUTION

    def tanh(self) -> Dual:
        # BEGIN SOLUTION
        t = math.tanh(self.value)
        return self._chain(t, 1 - t * t)
        # END SOLUTION

    def sigmoid(self) -> Dual:
        # BEGIN SOLUTION
        s = 1.0 / (1.0 + math.exp(-self.value))
        return self._chain(s, s * (1 - s))
        # END SOLUTION

    def relu(self) -> Dual:
        # BEGIN SOLUTION
        return self._chain(max(0.0, self.value), 1.0 if self.value > 0 else 0.0)
        # END SOLUTION

    def sin(self) -> Dual:
        # BEGIN SOLUTION
        return self._chain(math.sin(self.value), math.cos(self.value))
        # END SOLUTION

    def cos(self) -> Dual:
        # BEGIN SOLUTION
        return self._chain(math.cos(self.value), -math.sin(self.value))
        # END SOLUTION

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
    # BEGIN SOLUTION
    out = f(*[Dual(xi, vi) for xi, vi in zip(x, v)])
    return out.value, out.tangent
    # END SOLUTION
