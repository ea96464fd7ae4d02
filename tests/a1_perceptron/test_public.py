"""Public self-checks for a1_perceptron: shipped to students, graded too."""

import numpy as np
import probes
import pytest

from grader.checks import assert_equal, check, check_shape

pytestmark = pytest.mark.public

TRUTH = {
    "AND": [0, 0, 0, 1],
    "OR": [0, 1, 1, 1],
    "NAND": [1, 1, 1, 0],
    "NOR": [1, 0, 0, 0],
    "NOT": [1, 0],
}


@pytest.mark.points(10)
def test_threshold_unit(student):
    """threshold_unit fires exactly when w . x >= theta"""
    got = student(probes.threshold_outputs)
    want = [int(np.dot(w, x) >= t) for w, x, t in probes.THRESHOLD_CASES]
    check(isinstance(got, list) and len(got) == len(want),
          f"threshold_unit: expected {len(want)} outputs, got {got!r:.100}")
    for (w, x, theta), g, e in zip(probes.THRESHOLD_CASES, got, want):
        check(type(g) is int, f"threshold_unit must return a Python int, got {type(g).__name__}")
        check(g == e, f"threshold_unit(w={w}, x={x}, theta={theta}) returned {g}, expected {e}"
              + (" (at w . x == theta the unit fires)" if np.dot(w, x) == theta else ""))


@pytest.mark.points(15)
def test_logic_gates(student, score):
    """logic_gate gives the truth tables of AND, OR, NAND, NOR and NOT"""
    wrong = []
    for name, want in TRUTH.items():
        got = student(probes.gate_truth_table, name=name)
        got = check_shape(got, (len(want),), f"logic_gate({name!r}).predict")
        if [int(v) for v in got] != want:
            wrong.append(f"{name}: got {[int(v) for v in got]}, expected {want}")
    score.fraction(1 - len(wrong) / len(TRUTH))
    check(not wrong, "wrong truth tables (inputs in the order 00, 01, 10, 11):\n" + "\n".join(wrong))
    check(student(probes.unknown_gate_raises), "logic_gate('XOR') must raise ValueError")


@pytest.mark.points(10)
def test_xnor_network_truth_table(student):
    """the two-layer network computes XNOR"""
    out = student(probes.xnor_outputs)
    out = check_shape(out, (4,), "xnor(X)")
    assert_equal(out.astype(np.int64), np.array([1, 0, 0, 1]), "xnor on inputs 00, 01, 10, 11",
                 show_expected=True)
