"""Public self-checks for a2_backprop: your gradients against numeric ones, and the notes' example."""

import numpy as np
import probes
import pytest

from grader.checks import assert_allclose, check, rel_error

pytestmark = pytest.mark.public


@pytest.mark.points(2)
@pytest.mark.parametrize("layer", probes.LAYERS)
def test_layer_gradients_match_numeric(student, score, layer):
    """each layer's backward pass agrees with central differences of its forward pass"""
    got = student(probes.layer_gradients, layer=layer, seed=1)
    for name in ("dx", "dW", "db") if layer == "affine" else ("dx",):
        err = rel_error(got["smooth_" + name], got["num_" + name])
        check(np.shape(got["smooth_" + name]) == np.shape(got["num_" + name]),
              f"{layer}: {name} has shape {np.shape(got['smooth_' + name])}, expected "
              f"{np.shape(got['num_' + name])}")
        check(err < 1e-6, f"{layer}_backward: {name} is off, relative error {err:.2e} "
              "against the numeric gradient (should be below 1e-6)")


@pytest.mark.points(10)
def test_worked_example(student):
    """the notes' worked example: every intermediate and the updated weights"""
    got = student(probes.worked_example)
    x0, W0, W1, y = np.array([1.0, 0.1]), np.array([[1.0, -3.0], [0.2, 1.0]]), np.array([1.0, -1.0]), 0.5
    x1 = W0 @ x0
    x2 = np.tanh(x1)
    x3 = W1 @ x2
    d3 = x3 - y
    d1 = d3 * W1 * (1 - x2**2)
    want = {"x1": x1, "x2": x2, "x3": x3, "L": 0.5 * d3**2, "dL_dx3": d3, "dL_dx2": d3 * W1,
            "dL_dx1": d1, "dL_dW1": d3 * x2, "dL_dW0": np.outer(d1, x0),
            "W1_new": W1 - 0.2 * d3 * x2, "W0_new": W0 - 0.2 * np.outer(d1, x0)}
    for key, value in want.items():
        assert_allclose(got[key], value, key, rtol=1e-6, show_expected=True)
