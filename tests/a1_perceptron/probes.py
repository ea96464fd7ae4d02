"""Probes for a1_perceptron: they call the implementation and return plain data.

They run inside the sandbox on the student's module and in the grader on the reference; inputs
are built here from seeds, answers live only in the judges.
"""

import numpy as np

INPUTS_2 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
INPUTS_1 = np.array([[0], [1]], dtype=np.float64)

THRESHOLD_CASES = [  # (w, x, theta): below, exactly at, and above the threshold
    ([1.0, 1.0], [1.0, 1.0], 2.0),
    ([1.0, 1.0], [1.0, 0.0], 2.0),
    ([0.5, -1.0], [2.0, 0.0], 1.0),
    ([0.5, -1.0], [2.0, 0.5], 1.0),
    ([2.0, 3.0, -1.0], [1.0, 1.0, 1.0], 4.0),
    ([2.0, 3.0, -1.0], [1.0, 1.0, 1.0], 4.5),
]


def separable_cloud(seed: int, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Two linearly separable point clouds with a margin; labels 0/1 (the judges use it too)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=2)
    w /= np.linalg.norm(w)
    X = rng.uniform(-3, 3, size=(4 * n, 2))
    margin = X @ w - 0.5
    keep = np.abs(margin) > 0.4
    X, margin = X[keep][:n], margin[keep][:n]
    return X, (margin > 0).astype(np.int64)


def threshold_outputs(impl):
    return [impl.threshold_unit(np.array(w), np.array(x), theta) for w, x, theta in THRESHOLD_CASES]


def gate_truth_table(impl, name):
    gate = impl.logic_gate(name)
    return np.asarray(gate.predict(INPUTS_1 if name == "NOT" else INPUTS_2))


def unknown_gate_raises(impl):
    try:
        impl.logic_gate("XOR")
    except ValueError:
        return True
    return False


def perceptron_predict(impl, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=3)
    X = rng.normal(size=(25, 3))
    X[0] = 0.0
    b = -float(np.median(X[1:] @ w))  # about half the rows fire: a constant answer fails
    out = [np.asarray(impl.Perceptron(w, b).predict(X))]
    # exactly on the boundary: w . x + b == 0 must fire
    out.append(np.asarray(impl.Perceptron(np.array([1.0, 1.0]), -2.0).predict(np.array([[1.0, 1.0]]))))
    return out


def rosenblatt_truth_table(impl, targets, max_epochs=100):
    p, converged, history = impl.train_perceptron(INPUTS_2, np.array(targets), 1.0, max_epochs)
    return {"converged": bool(converged), "history": [int(h) for h in history],
            "weights": np.asarray(p.weights, dtype=np.float64), "bias": float(p.bias),
            "predictions": np.asarray(p.predict(INPUTS_2))}


def rosenblatt_cloud(impl, seed, lr=0.5):
    X, y = separable_cloud(seed)
    p, converged, history = impl.train_perceptron(X, y, lr, 1000)
    return {"converged": bool(converged), "history": [int(h) for h in history],
            "weights": np.asarray(p.weights, dtype=np.float64), "bias": float(p.bias),
            "predictions": np.asarray(p.predict(X))}


def xnor_hidden_codes(impl):
    return np.asarray(impl.xnor_hidden(INPUTS_2))


def xnor_outputs(impl):
    return np.asarray(impl.xnor(INPUTS_2))


def xor_backprop(impl, seed=0):
    outputs, losses = impl.train_xor(seed)
    return np.asarray(outputs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
