"""grader.checks: verdicts that are right, and messages a student can act on."""

import re

import numpy as np
import pytest

from grader.checks import (
    GradingFailure,
    assert_allclose,
    assert_equal,
    check_dtype_kind,
    check_shape,
    mismatch,
    numeric_gradient,
    rel_error,
)


def test_allclose_passes_within_tolerance():
    assert_allclose(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]))


def test_allclose_says_where_how_many_and_the_tolerance():
    want = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = want.copy()
    got[1, 0] = 3.5
    got[0, 1] = 2.1
    with pytest.raises(GradingFailure) as err:
        assert_allclose(got, want, "dW", rtol=1e-5)
    msg = str(err.value)
    assert "dW" in msg and "2 of 4" in msg and "first at index (0, 1)" in msg
    assert "rtol 1e-05" in msg and "relative error is about 1e-01" in msg


def _numbers(text):
    return {float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)}


@pytest.mark.parametrize("seed", range(20))
def test_a_hidden_allclose_message_gives_no_hidden_value_away(seed):
    rng = np.random.default_rng(seed)
    want = np.round(rng.normal(size=(3, 4)) * 10, 3) + 0.123  # no small whole numbers in want
    got = want.copy()
    i = tuple(rng.integers(0, [3, 4]))
    got[i] += rng.choice([0.5, -2.25, 7.0])
    with pytest.raises(GradingFailure) as err:
        assert_allclose(got, want, "loss", rtol=1e-6, atol=1e-8)
    shown = _numbers(str(err.value))
    assert not shown & {float(f"{w:.6g}") for w in want.ravel()} and not shown & set(want.ravel())
    error = abs(got[i] - want[i])
    assert not ({float(f"{got[i]:.6g}"), round(got[i], 3)} & shown
                and {float(f"{error:.3g}"), round(error, 3)} & shown)


def test_hidden_exact_checks_do_not_show_the_students_label():
    with pytest.raises(GradingFailure) as err:
        assert_equal(np.array([1, -1, -1]), np.array([1, -1, 1]), "predict(X)")
    assert str(err.value) == "predict(X): 1 of 3 entries wrong, first at index (2,)"
    with pytest.raises(GradingFailure) as err:
        assert_equal(False, True, "converged")
    assert "False" not in str(err.value) and "True" not in str(err.value)


def test_allclose_can_show_expected_values_in_visible_tests():
    with pytest.raises(GradingFailure, match="got 0, expected 1") as err:
        assert_allclose(np.zeros(2), np.ones(2), show_expected=True)
    assert "largest error 1 at index (0,)" in str(err.value)
    with pytest.raises(GradingFailure, match="got 3, expected 4"):
        assert_equal(3, 4, show_expected=True)


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
    with pytest.raises(GradingFailure, match="expected an int, got a bool"):
        assert_equal(True, 1)
    with pytest.raises(GradingFailure, match="first at index \\(2,\\)"):
        assert_equal(np.array([1, 0, 0, 1]), np.array([1, 0, 1, 1]))


def test_rel_error_as_cs231n_defines_it():
    assert rel_error(1.0, 1.0) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(0.0, 0.0) == 0.0


def test_rel_error_of_an_infinity_against_a_number_is_infinite():
    """inf - 0 over inf + 0 is NaN, and NaN > tol is False: without care, -inf where 0 was
    expected would pass every tolerance."""
    assert rel_error([0.0, -np.inf], [0.0, 0.0]) == np.inf
    assert rel_error([np.nan], [1.0]) == np.inf
    assert rel_error([np.inf, np.nan], [np.inf, np.nan]) == 0.0


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


def test_mismatch_says_why_in_words():
    assert mismatch([1.0, 2.0], [1.0, 2.0], "x") == ""
    assert mismatch(None, [1.0], "x") == "x is missing"
    assert mismatch([1.0], [[1.0]], "x") == "x has shape (1,), expected (1, 1)"
    assert "inf or NaN" in mismatch([-np.inf], [0.0], "x")
    assert mismatch([1, 2, 3], [1, 0, 3], "mask", 0) == ("mask differs in 1 of 3 entries "
                                                          "(compared exactly)")
    assert mismatch([1.0], [1.1], "x") == "x is off (relative error 5e-02, tolerance 1e-09)"
