"""Assertions for judges, with failure messages a student can act on.

Every helper raises ``GradingFailure`` (an AssertionError) whose message says what was compared and
what was wrong: shape and dtype mismatches in words, how many entries differ, where the first one
is, the tolerance and the order of magnitude of the error. Values from the reference are printed
only when ``show_expected`` is true (visible tests). A hidden test's message never holds a hidden
value, nor the student's value next to an exact error (the student can print their own value, so
the two together would give the hidden one back).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np


class GradingFailure(AssertionError):
    """A judge's verdict: the student's value is wrong, and the message says how."""


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _order(r: float) -> str:
    """Only the nearest power of ten of an error: with the exact figure and their own value, a
    student could work out the hidden value."""
    if not math.isfinite(r):
        return "not finite (an infinity on one side?)"
    return f"about {10.0 ** round(math.log10(r)):.0e}" if r > 0 else "tiny"


def _fmt(x: Any) -> str:
    return np.array2string(np.asarray(x), precision=6, threshold=20, max_line_width=100)


def as_array(got: Any, what: str) -> np.ndarray:
    """Convert a student's value to a numeric array or fail saying what it was."""
    if isinstance(got, np.ndarray):
        return got
    try:
        arr = np.asarray(got)
    except (ValueError, TypeError):
        raise GradingFailure(f"{what}: expected an array, got {_a(type(got).__name__)}") from None
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise GradingFailure(f"{what}: expected numbers, got {type(got).__name__} {got!r:.80}")
    return arr


def check_shape(got: Any, shape: tuple[int, ...], what: str = "result") -> np.ndarray:
    arr = as_array(got, what)
    if tuple(arr.shape) != tuple(shape):
        raise GradingFailure(
            f"{what}: wrong shape: expected {tuple(shape)}, got {tuple(arr.shape)}"
            + (" (transposed?)" if tuple(arr.shape) == tuple(shape)[::-1] else "")
        )
    return arr


def check_dtype_kind(got: Any, kinds: str, what: str = "result") -> np.ndarray:
    """Check the array's dtype kind: 'f' float, 'i'/'u' integer, 'b' bool."""
    arr = as_array(got, what)
    if arr.dtype.kind not in kinds:
        names = {"f": "floating point", "i": "integer", "u": "unsigned integer", "b": "bool"}
        wanted = " or ".join(names.get(k, k) for k in kinds)
        raise GradingFailure(f"{what}: expected {wanted} values, got dtype {arr.dtype}")
    return arr


def rel_error(x: Any, y: Any) -> float:
    """Largest relative error, as CS231n defines it: |x - y| / max(1e-8, |x| + |y|)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        r = np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))
    # equal entries (the same infinity, NaN on both sides) agree; any other NaN (an infinity
    # against a number) is as wrong as can be, never a NaN that compares as within tolerance
    r = np.where((x == y) | (np.isnan(x) & np.isnan(y)), 0.0, r)
    return float(np.max(np.where(np.isnan(r), np.inf, r), initial=0.0))


def mismatch(got: Any, want: Any, what: str, tol: float = 1e-9) -> str:
    """Why ``got`` is not ``want``, in words, or "" when it is: missing, another shape, inf or
    NaN where a number was expected, entries that differ (``tol`` 0: compared exactly), or a
    relative error over ``tol`` (said to one digit, so no hidden value can be worked out). For
    judges that gather every reason before they score partial credit."""
    if got is None:
        return f"{what} is missing"
    g, w = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        return f"{what} has shape {g.shape}, expected {w.shape}"
    if (~np.isfinite(g) & np.isfinite(w)).any():
        return f"{what} holds inf or NaN where a number was expected"
    if tol == 0 and not np.array_equal(g, w):
        return f"{what} differs in {int((g != w).sum())} of {g.size} entries (compared exactly)"
    if rel_error(g, w) > tol:
        return f"{what} is off (relative error {rel_error(g, w):.0e}, tolerance {tol:.0e})"
    return ""


def assert_allclose(
    got: Any,
    want: Any,
    what: str = "result",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    show_expected: bool = False,
) -> None:
    """Compare arrays elementwise; on failure say how many differ, where the first is, and the
    error's order of magnitude (the exact figures only with ``show_expected``)."""
    want = np.asarray(want)
    arr = check_shape(got, want.shape, what)
    if arr.dtype.kind not in "biufc":
        raise GradingFailure(f"{what}: expected numbers, got dtype {arr.dtype}")
    a, b = arr.astype(np.float64), want.astype(np.float64)
    bad_nan = np.isnan(a) & ~np.isnan(b)
    if bad_nan.any():
        idx = tuple(int(i) for i in np.argwhere(bad_nan)[0])
        raise GradingFailure(
            f"{what}: contains NaN at index {idx} ({int(bad_nan.sum())} NaN values in all); "
            "look for overflow, log of zero or 0/0"
        )
    with np.errstate(invalid="ignore"):
        err = np.abs(a - b)
        tol = atol + rtol * np.abs(b)
        bad = ~((err <= tol) | (np.isnan(a) & np.isnan(b)) | (a == b))
    if not bad.any():
        return
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    with np.errstate(invalid="ignore"):
        worst = rel_error(a[bad], b[bad])
    msg = (
        f"{what}: {int(bad.sum())} of {bad.size} values differ from the expected ones by more than "
        f"the tolerance (rtol {rtol:g}, atol {atol:g}), the first at index {first}; the largest "
        f"relative error is {_order(worst)}"
    )
    if show_expected:
        flat = np.where(bad, np.nan_to_num(err, nan=np.inf, posinf=np.inf), -1.0)
        idx = np.unravel_index(int(np.argmax(flat)), a.shape)
        msg += (f"\n  largest error {float(err[idx]):.3g} at index {tuple(int(i) for i in idx)} "
                f"(got {a[idx]:.6g}, expected {b[idx]:.6g})"
                f"\n  expected {_fmt(b)}\n  got      {_fmt(a)}")
    raise GradingFailure(msg)


def assert_equal(got: Any, want: Any, what: str = "result", show_expected: bool = False) -> None:
    """Exact comparison for ints, bools, strings and integer arrays."""
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        want_arr = np.asarray(want)
        arr = check_shape(got, want_arr.shape, what)
        bad = arr != want_arr
        if np.any(bad):
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            msg = f"{what}: {int(np.sum(bad))} of {bad.size} entries wrong, first at index {first}"
            if show_expected:  # hidden: with few possible values (labels), got gives want away
                msg += (f" (got {arr[first].item()!r}, expected {want_arr[first].item()!r})"
                        f"\n  expected {_fmt(want_arr)}\n  got      {_fmt(arr)}")
            raise GradingFailure(msg)
        return
    if type(got) is not type(want) and not (
        isinstance(want, (int, float)) and type(got) in (int, float) and type(want) is not bool
    ):
        raise GradingFailure(
            f"{what}: expected {_a(type(want).__name__)}, got {_a(type(got).__name__)}"
        )
    if got != want:
        msg = f"{what}: not the expected value"
        if show_expected:  # hidden: a bool or a label would give the expected value away
            msg += f" (got {got!r:.200}, expected {want!r:.200})"
        raise GradingFailure(msg)


def check(condition: bool, message: str) -> None:
    """Assert a property of the student's result, with a student-readable message."""
    if not condition:
        raise GradingFailure(message)


def numeric_gradient(
    f: Callable[[np.ndarray], Any], x: np.ndarray, cotangent: np.ndarray | None = None,
    h: float = 1e-5, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient of <cotangent, f(x)> with respect to x.

    With a random cotangent (the default) this checks a vector-valued f with one pass over x.
    Returns (gradient, cotangent); x is restored after each perturbation.
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.asarray(f(x), dtype=np.float64)
    if cotangent is None:
        cotangent = np.random.default_rng(seed).standard_normal(out.shape)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = float(np.sum(np.asarray(f(x), dtype=np.float64) * cotangent))
        x[i] = old - h
        minus = float(np.sum(np.asarray(f(x), dtype=np.float64) * cotangent))
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad, cotangent
