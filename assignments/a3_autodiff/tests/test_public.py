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
    """every Value operation, with numbers on either side: value and gradient (each reported:
    right, wrong, or not implemented yet)"""
    got = student(probes.scalar_ops)
    wrong = []
    for name, result in got.items():
        if isinstance(result, str):
            wrong.append(f"{name}: {result}")
            continue
        value, grad, want_value, numeric = result
        if abs(value - want_value) > 1e-9 * max(1, abs(want_value)):
            wrong.append(f"{name}: value {value:.6g}, expected {want_value:.6g}")
        elif abs(grad - numeric) > 1e-5 * max(1, abs(numeric)):
            wrong.append(f"{name}: gradient {grad:.6g}, finite differences give {numeric:.6g}")
    score.fraction(1 - len(wrong) / len(got))
    check(not wrong, "\n".join(wrong))


@pytest.mark.points(0)
def test_jvp_calls_f_with_one_dual_per_input(student):
    """jvp's calling convention: f(a, b) = a b + a at (2, 3) along (1, 0) is 8, with slope 4"""
    got = student(probes.jvp_convention)
    check(abs(got["value"] - 8.0) < 1e-12 and abs(got["tangent"] - 4.0) < 1e-12,
          f"jvp(f, [2, 3], [1, 0]) for f(a, b) = a*b + a should be (8, 4), got "
          f"({got['value']!r}, {got['tangent']!r}); f is called as f(Dual(2, 1), Dual(3, 0))")
