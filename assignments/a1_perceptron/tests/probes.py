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


def xnor_outputs(impl):
    return np.asarray(impl.xnor(INPUTS_2))
