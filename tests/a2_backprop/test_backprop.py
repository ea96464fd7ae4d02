"""Hidden judges for a2_backprop."""

import numpy as np
import probes
import pytest

from grader.checks import assert_allclose, check, rel_error


def _fraction_right(student, reference, probe, cases, compare):
    wrong = []
    for kwargs in cases:
        got, want = student(probe, **kwargs), reference(probe, **kwargs)
        try:
            compare(got, want, kwargs)
        except AssertionError as exc:
            wrong.append(str(exc))
    return wrong


@pytest.mark.points(15)
def test_layers_match_reference(student, reference, score):
    """forward and backward of affine, ReLU, leaky ReLU, sigmoid and tanh on random inputs with
    an exact 0 (the kinks) and +-800 (no overflow)"""
    def compare(got, want, kw):
        for key in ("out", "dx", "dW", "db"):
            if key in want:
                assert_allclose(got[key], want[key], f"{kw['layer']}: {key}", rtol=1e-8)

    cases = [{"layer": layer, "seed": s} for layer in probes.LAYERS for s in (2, 3)]
    wrong = _fraction_right(student, reference, probes.layer_gradients, cases, compare)
    score.fraction(1 - len(wrong) / len(cases))
    check(not wrong, "\n".join(sorted(set(wrong))))


@pytest.mark.points(15)
def test_losses_match_reference(student, reference, score):
    """MSE (1/2 and mean conventions), softmax cross-entropy and hinge: values and gradients"""
    def compare(got, want, kw):
        assert_allclose(got[0], want[0], f"{kw['loss']} (scale {kw['scale']}): loss", rtol=1e-8)
        assert_allclose(got[1], want[1], f"{kw['loss']} (scale {kw['scale']}): gradient", rtol=1e-8)

    cases = [{"loss": loss, "seed": 4, "scale": 1.0} for loss in probes.LOSSES]
    cases.append({"loss": "softmax_cross_entropy", "seed": 5, "scale": 1000.0})
    cases.append({"loss": "hinge_loss", "seed": 6, "scale": 0})  # terms exactly at the margin
    wrong = _fraction_right(student, reference, probes.loss_values, cases, compare)
    score.fraction(1 - len(wrong) / len(cases))
    check(not wrong, "\n".join(wrong))


@pytest.mark.points(10)
def test_numeric_gradient_and_grad_check(student):
    """your numeric_gradient is right and restores x; grad_check tells right from wrong"""
    got = student(probes.numeric_gradient_of_known, seed=6)
    A, x = got["A"], got["x"]
    t = np.tanh(A @ x)
    analytic = A.T @ (2 * t * (1 - t**2))
    # the cause before its symptom: an x left perturbed also makes the gradient look off
    check(got["x_restored"], "numeric_gradient must restore x after perturbing it (x was "
          "changed when it returned)")
    err = rel_error(got["grad"], analytic)
    check(err < 1e-6, f"numeric_gradient is off by a relative error of {err:.2e} (tolerance "
          "1e-6)")
    right, wrong = student(probes.grad_check_verdicts, seed=7)
    check(right < 1e-7, f"grad_check of a correct gradient gave {right:.2e} (expected < 1e-7)")
    check(wrong > 1e-2, f"grad_check of a wrong gradient gave {wrong:.2e}: it must be large")


@pytest.mark.points(15)
def test_network_gradients(student, reference):
    """a 3-layer network with L2: loss and every gradient, against the reference and numerically"""
    for activation in ("relu", "tanh"):
        got = student(probes.network_loss_and_grads, seed=8, activation=activation)
        want = reference(probes.network_loss_and_grads, seed=8, activation=activation)
        assert_allclose(got["loss"], want["loss"], f"{activation} net: loss", rtol=1e-8)
        for k in sorted(k for k in want if not k.startswith(("loss", "num_"))):
            err = rel_error(got[k], got["num_" + k])
            check(err < 1e-5, f"{activation} net: gradient {k} is off by {err:.2e} numerically")
            assert_allclose(got[k], want[k], f"{activation} net: gradient {k}", rtol=1e-7)


@pytest.mark.points(5)
def test_sgd_and_momentum(student, reference):
    """an SGD step, and three steps of SGD with momentum"""
    got, want = student(probes.optimiser_steps, seed=9), reference(probes.optimiser_steps, seed=9)
    assert_allclose(got[0], want[0], "sgd_step")
    for i, (g, w) in enumerate(zip(got[1], want[1]), 1):
        assert_allclose(g, w, f"sgd_momentum_step, step {i}")


@pytest.mark.points(10)
def test_delta_rule_matches_matrix_form(student, reference):
    """Fausett's delta rule: deltas and gradients equal the matrix form"""
    for seed in (10, 11):
        got, want = student(probes.delta_rule, seed=seed), reference(probes.delta_rule, seed=seed)
        for key in ("delta_out", "delta_hidden", "dE_dW", "dE_dV"):
            assert_allclose(got[key], want[key], f"delta rule: {key}", rtol=1e-8)


@pytest.mark.points(10)
def test_digits_accuracy(student, score):
    """a network trained on the 8x8 digits reaches 95% held-out accuracy"""
    _, _, _, y_test = probes.digits_split()
    pred = student(probes.digits_predictions, seed=0)
    check(np.shape(pred) == y_test.shape,
          f"predictions have shape {np.shape(pred)}, expected {y_test.shape}")
    acc = float(np.mean(pred == y_test))
    score.fraction(min(1.0, max(0.0, (acc - 0.80) / 0.15)))
    check(acc >= 0.95, f"held-out accuracy {acc:.1%}, needs 95%")
