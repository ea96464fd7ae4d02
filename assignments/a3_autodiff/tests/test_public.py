"""Public self-checks for a3_autodiff: the notes' examples and every scalar operation."""

import math

import probes
import pytest

from grader.checks import check

pytestmark = pytest.mark.public


@pytest.mark.points(10)
def test_notes_examples(student):
    """the notes' examples: e = (a + b)(b + 1) and f = ln(x1) + x1 x2 - sin(x2)"""
    got = student(probes.notes_examples)
    want = {"e": 6.0, "de_da": 2.0, "de_db": 5.0, "f": math.log(2) + 10 - math.sin(5),
            "df_dx1": 1 / 2 + 5, "df_dx2": 2 - math.cos(5)}
    for key, value in want.items():
        check(abs(got[key] - value) < 1e-9, f"{key}: got {got[key]!r}, expected {value!r}")


@pytest.mark.points(10)
def test_scalar_operations_match_finite_differences(student, score):
    """every Value operation, with numbers on either side: value and gradient"""
    got = student(probes.scalar_ops)
    wrong = []
    for name, (value, grad, want_value, numeric) in got.items():
        if abs(value - want_value) > 1e-9 * max(1, abs(want_value)):
            wrong.append(f"{name}: value {value:.6g}, expected {want_value:.6g}")
        elif abs(grad - numeric) > 1e-5 * max(1, abs(numeric)):
            wrong.append(f"{name}: gradient {grad:.6g}, finite differences give {numeric:.6g}")
    score.fraction(1 - len(wrong) / len(got))
    check(not wrong, "\n".join(wrong))
