"""grader.checks: verdicts that are right, and messages a student can act on."""

import numpy as np
import pytest

from grader.checks import (
    GradingFailure,
    assert_allclose,
    assert_equal,
    check_dtype_kind,
    check_shape,
    numeric_gradient,
    rel_error,
)


def test_allclose_passes_within_tolerance():
    assert_allclose(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]))


def test_allclose_names_the_worst_element_and_hides_expected_values():
    want = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = want.copy()
    got[1, 0] = 3.5
    got[0, 1] = 2.1
    with pytest.raises(GradingFailure) as err:
        assert_allclose(got, want, "dW")
    msg = str(err.value)
    assert "dW" in msg and "(1, 0)" in msg and "2 of 4" in msg and "0.5" in msg
    assert "expected" not in msg


def test_allclose_can_show_expected_values_in_visible_tests():
    with pytest.raises(GradingFailure, match="expected"):
        assert_allclose(np.zeros(2), np.ones(2), show_expected=True)


def test_shape_mismatch_is_explained_in_words():
    with pytest.raises(GradingFailure, match=r"expected \(2, 3\), got \(3, 2\) \(transposed\?\)"):
        assert_allclose(np.zeros((3, 2)), np.zeros((2, 3)), "W")


def test_nan_is_reported_as_nan():
    with pytest.raises(GradingFailure, match="NaN at index"):
        assert_allclose(np.array([1.0, np.nan]), np.array([1.0, 2.0]))


def test_non_numeric_results_fail_cleanly():
    with pytest.raises(GradingFailure, match="expected numbers"):
        assert_allclose("hello", np.zeros(1))
    with pytest.raises(GradingFailure, match="expected an array|expected numbers"):
        check_shape({"a": 1}, (1,))


def test_dtype_kind():
    check_dtype_kind(np.zeros(2), "f")
    with pytest.raises(GradingFailure, match="floating point"):
        check_dtype_kind(np.zeros(2, dtype=np.int64), "f")


def test_assert_equal_types_and_values():
    assert_equal(3, 3)
    with pytest.raises(GradingFailure, match="expected a int, got bool"):
        assert_equal(True, 1)
    with pytest.raises(GradingFailure, match="first at index \\(2,\\)"):
        assert_equal(np.array([1, 0, 0, 1]), np.array([1, 0, 1, 1]))


def test_rel_error_as_cs231n_defines_it():
    assert rel_error(1.0, 1.0) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(0.0, 0.0) == 0.0


def test_numeric_gradient_matches_an_analytic_gradient():
    A = np.random.default_rng(0).normal(size=(3, 4))

    def f(x):
        return np.tanh(A @ x)

    x = np.random.default_rng(1).normal(size=4)
    num, v = numeric_gradient(f, x.copy())
    analytic = A.T @ (v * (1 - np.tanh(A @ x) ** 2))
    assert rel_error(num, analytic) < 1e-7


def test_numeric_gradient_catches_a_wrong_gradient():
    x = np.array([0.3, -1.2])
    num, v = numeric_gradient(lambda z: z**3, x.copy())
    wrong = v * 2 * x  # d/dx x^3 is 3x^2, not 2x
    assert rel_error(num, wrong) > 1e-2
