"""Hidden judges for a4_cnn."""

import numpy as np
import probes
import pytest

from grader.checks import check, rel_error

CASES = probes.describe_conv_cases()


def _compare(got, want, names, tol, labels=None):
    """The first of ``names`` where got and want differ (shape, or relative error over tol),
    said with its label (``labels[name]``, else the name)."""
    for name in names:
        g, w = np.asarray(got[name]), np.asarray(want[name])
        what = (labels or {}).get(name, name)
        if g.shape != w.shape:
            return f"{what} has shape {g.shape}, expected {w.shape}"
        if rel_error(g, w) > tol:
            return f"{what} is off (relative error {rel_error(g, w):.0e}, tolerance {tol:.0e})"
    return ""


@pytest.mark.points(15)
def test_conv_forward_matches_reference(student, reference, score):
    """conv2d_forward and conv2d_loops: padding, stride, dilation, channels, batches, odd sizes"""
    wrong = []
    for case in range(len(probes.CONV_CASES)):
        got, want = student(probes.conv_case, case=case), reference(probes.conv_case, case=case)
        why = _compare(got, {**want, "loops": want["out"]}, ("out", "loops"), 1e-9,
                       {"out": "conv2d_forward", "loops": "conv2d_loops"})
        if why:
            wrong.append(f"case {case}: {why}")
    score.fraction(1 - len(wrong) / len(probes.CONV_CASES))
    check(not wrong, CASES + "\n" + "\n".join(wrong))


@pytest.mark.points(15)
def test_conv_backward_matches_reference(student, reference, score):
    """conv2d_backward's dx, dw and db for the same cases"""
    wrong = []
    for case in range(len(probes.CONV_CASES)):
        got, want = student(probes.conv_case, case=case), reference(probes.conv_case, case=case)
        if np.shape(got["out"]) != np.shape(want["out"]):
            wrong.append(f"case {case}: the forward output has the wrong shape")
            continue
        why = _compare(got, want, ("dx", "dw", "db"), 1e-9)
        if why:
            wrong.append(f"case {case}: {why}")
    score.fraction(1 - len(wrong) / len(probes.CONV_CASES))
    check(not wrong, CASES + "\n" + "\n".join(wrong))


def _pooling(student, reference, score, kind):
    wrong = []
    for case in range(len(probes.POOL_CASES)):
        got = student(probes.pool_case, kind=kind, case=case)
        want = reference(probes.pool_case, kind=kind, case=case)
        why = _compare(got, want, ("out", "dx"), 1e-12,
                       {"out": f"{kind}_pool_forward", "dx": f"{kind}_pool_backward"})
        if why:
            wrong.append(f"case {case}: {why}")
    score.fraction(1 - len(wrong) / len(probes.POOL_CASES))
    check(not wrong, "cases are (N, C, H, W, size, stride) = " + "; ".join(
        f"{k}: {c}" for k, c in enumerate(probes.POOL_CASES)) + " on integer-valued inputs "
        "(ties are common)\n" + "\n".join(wrong))


@pytest.mark.points(10)
def test_max_pool(student, reference, score):
    """max-pool forward and backward: the gradient goes to the first maximum of each window,
    overlapping windows add up"""
    _pooling(student, reference, score, "max")


@pytest.mark.points(5)
def test_avg_pool(student, reference, score):
    """average-pool forward and backward"""
    _pooling(student, reference, score, "avg")


@pytest.mark.points(15)
def test_recovered_filters(student, score):
    """fit_filter recovers three hidden 3x3 filters (one through tanh) to within 0.02 per tap"""
    out = student(probes.recover_filters, figure=True)
    score.figure("learned filters next to the true ones", out.get("png"))
    wrong = []
    for (name, kernel, bias, _), got in zip(probes.hidden_filters(), out["found"]):
        k = np.asarray(got["kernel"])
        if k.shape != (3, 3):
            wrong.append(f"{name}: the kernel has shape {k.shape}, expected (3, 3)")
        elif np.abs(k - kernel).max() > 0.02:
            hint = (" (it matches the true filter transposed: K[i, j] weighs image[r + i, c + j])"
                    if np.abs(k.T - kernel).max() <= 0.02 else "")
            wrong.append(f"{name}: some tap is more than 0.02 from the true filter{hint}")
        elif abs(got["bias"] - bias) > 0.02:
            wrong.append(f"{name}: the bias is more than 0.02 from the true bias")
    score.fraction(1 - len(wrong) / 3)
    check(not wrong, "\n".join(wrong))


@pytest.mark.points(10)
def test_plus_detector_fires_on_new_images(student, score):
    """the learned '+' detector's strongest responses on three new images are at their '+'
    centres (at least 90% of them)"""
    got = student(probes.plus_detector)
    k = np.asarray(got["kernel"])
    check(k.shape == (3, 3), f"fit_filter returned a kernel of shape {k.shape}, expected (3, 3)")
    hits = total = 0
    for seed in (11, 12, 13):
        image, centres = probes.shapes_scene(seed, p_plus=0.25)
        response = probes.correlate_valid(image, k) + got["bias"]
        top = np.argsort(response, axis=None)[::-1][:len(centres)]
        found = {tuple(int(v) + 1 for v in np.unravel_index(i, response.shape)) for i in top}
        hits += len(found & set(centres))
        total += len(centres)
    recall = hits / total
    score.fraction(min(1.0, max(0.0, (recall - 0.5) / 0.4)))
    check(recall >= 0.9, f"of the strongest responses, {recall:.0%} are at '+' centres; "
          "at least 90% should be")


@pytest.mark.points(10)
def test_cnn_accuracy(student, device, thresholds, score):
    """SmallCNN trained with train_cnn classifies held-out digits (MNIST on a GPU when the image
    has it) above the threshold for this device"""
    name, data = probes.first_dataset(thresholds["datasets"])
    t = thresholds[name]
    x_train, y_train, x_test, y_test = data
    out = student(probes.cnn_predictions, x_train=x_train, y_train=y_train, x_test=x_test,
                  epochs=t["epochs"], device=device, figure=True)
    score.figure("feature maps of one digit", out.get("png"))
    pred = np.asarray(out["pred"])
    check(pred.shape == y_test.shape, f"predict returned shape {pred.shape}, expected {y_test.shape}")
    acc = float(np.mean(pred == y_test))
    score.trained(out["seconds"])
    score.metric(f"{name} test accuracy", acc)
    score.leaderboard(f"{name} test accuracy", acc, order="desc")
    score.fraction(min(1.0, max(0.0, (acc - t["floor"]) / (t["min_accuracy"] - t["floor"]))))
    check(acc >= t["min_accuracy"], f"held-out {name} accuracy {acc:.1%} after {t['epochs']} "
          f"epochs; needs {t['min_accuracy']:.0%} on this device")
