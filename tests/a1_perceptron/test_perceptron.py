"""Hidden judges for a1_perceptron."""

import numpy as np
import probes
import pytest

from grader.checks import assert_allclose, assert_equal, check, check_dtype_kind, check_shape

XOR, XNOR = [0, 1, 1, 0], [1, 0, 0, 1]
SEPARABLE = {"AND": [0, 0, 0, 1], "OR": [0, 1, 1, 1], "NAND": [1, 1, 1, 0], "NOR": [1, 0, 0, 0]}


def separable(H: np.ndarray, t: list[int], epochs: int = 200) -> bool:
    """The judge's own test of linear separability: the perceptron rule converges."""
    H = np.asarray(H, dtype=np.float64)
    w, b = np.zeros(H.shape[1]), 0.0
    for _ in range(epochs):
        errors = 0
        for x, y in zip(H, t):
            p = int(x @ w + b >= 0)
            if p != y:
                errors += 1
                w, b = w + (y - p) * x, b + (y - p)
        if errors == 0:
            return True
    return False


@pytest.mark.points(10)
def test_perceptron_predict(student, reference):
    """Perceptron.predict fires when w . x + b >= 0, on random inputs and on the boundary"""
    for seed in (1, 2):
        got, want = student(probes.perceptron_predict, seed=seed), reference(probes.perceptron_predict, seed=seed)
        pred = check_dtype_kind(check_shape(got[0], want[0].shape, "predict(X)"), "iu",
                                "predict(X) (the README asks for int64 outputs)")
        assert_equal(pred.astype(np.int64), want[0], "predict on random inputs")
    assert_equal(np.asarray(got[1]).astype(np.int64), want[1],
                 "predict exactly on the boundary (w . x + b == 0 must give 1)")


@pytest.mark.points(10)
def test_rosenblatt_learns_gates(student):
    """the Rosenblatt rule converges on AND, OR, NAND, NOR and then classifies the truth table"""
    for name, t in SEPARABLE.items():
        got = student(probes.rosenblatt_truth_table, targets=t)
        check(got["converged"] is True, f"{name}: train_perceptron did not report convergence")
        assert_equal(np.asarray(got["predictions"]).astype(np.int64), np.array(t),
                     f"{name}: predictions of the trained perceptron")


@pytest.mark.points(10)
def test_rosenblatt_follows_the_rule(student, reference):
    """train_perceptron follows the rule exactly: same weights, bias and mistakes per epoch"""
    cases = [("rosenblatt_truth_table", {"targets": t}) for t in SEPARABLE.values()]
    cases.append(("rosenblatt_cloud", {"seed": 3}))
    for probe, kwargs in cases:
        fn = getattr(probes, probe)
        got, want = student(fn, **kwargs), reference(fn, **kwargs)
        what = f"{probe}({kwargs})"
        check(list(got["history"]) == want["history"],
              f"{what}: mistakes per epoch differ from the rule (got {got['history'][:8]}...)")
        assert_allclose(got["weights"], want["weights"], f"{what}: learned weights")
        assert_allclose(got["bias"], want["bias"], f"{what}: learned bias")


@pytest.mark.points(10)
def test_rosenblatt_separable_clouds(student):
    """the Rosenblatt rule converges on linearly separable point clouds"""
    for seed in (11, 12, 13):
        _, y = probes.separable_cloud(seed)
        got = student(probes.rosenblatt_cloud, seed=seed)
        check(got["converged"] is True, f"cloud {seed}: did not converge within 1000 epochs")
        pred = check_shape(got["predictions"], y.shape, f"cloud {seed}: predictions")
        wrong = int(np.sum(pred.astype(np.int64) != y))
        check(wrong == 0, f"cloud {seed}: {wrong} of {len(y)} training points misclassified")


@pytest.mark.points(5)
def test_rosenblatt_reports_xor_failure(student):
    """the Rosenblatt rule reports non-convergence on XOR and XNOR within the epoch bound"""
    for name, t in (("XOR", XOR), ("XNOR", XNOR)):
        got = student(probes.rosenblatt_truth_table, targets=t, max_epochs=50)
        check(got["converged"] is False, f"{name}: reported convergence on data no line separates")
        check(len(got["history"]) == 50,
              f"{name}: expected 50 epochs of mistakes, got {len(got['history'])}")


@pytest.mark.points(5)
def test_xnor_hidden_layer_separable(student):
    """the XNOR network's hidden layer makes the four inputs linearly separable"""
    hidden = student(probes.xnor_hidden_codes)
    hidden = check_shape(hidden, (4, 2), "xnor_hidden(X)")
    check(set(np.unique(hidden).tolist()) <= {0, 1}, "xnor_hidden must return 0/1 values")
    check(separable(hidden, XNOR), "the hidden representation is not linearly separable for XNOR")
    check(len({tuple(r) for r in hidden.tolist()}) >= 3,
          "the hidden layer maps too many inputs to the same code")


@pytest.mark.points(10)
def test_xor_backprop_classifies(student):
    """the 2-2-1 sigmoid network trained by backprop classifies all four XOR points"""
    outputs, _ = student(probes.xor_backprop, seed=0)
    outputs = check_shape(outputs, (4,), "train_xor outputs")
    pred = (outputs > 0.5).astype(np.int64)
    assert_equal(pred, np.array(XOR), "XOR predictions (output > 0.5) on 00, 01, 10, 11",
                 show_expected=True)


@pytest.mark.points(5)
def test_xor_loss_curve(student, reference):
    """the XOR loss curve decreases and follows gradient descent as specified"""
    _, losses = student(probes.xor_backprop, seed=0)
    _, want = reference(probes.xor_backprop, seed=0)
    losses = check_shape(losses, want.shape, "losses (one per epoch)")
    check(bool(np.all(np.isfinite(losses))), "the loss became NaN or infinite")
    check(losses[-1] < 0.1 * losses[0], "the loss did not fall to a tenth of its starting value")
    steps_up = int(np.sum(np.diff(losses) > 1e-12))
    check(steps_up <= 0.05 * len(losses), f"the loss went up in {steps_up} of {len(losses)} epochs")
    # the README lets train_xor compute in float32: over 3000 epochs that drifts ~1e-5 relative
    assert_allclose(losses, want, "loss curve", rtol=1e-4, atol=1e-7)
