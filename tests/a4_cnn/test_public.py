"""Public self-checks for a4_cnn: the notes' worked examples, gradients against finite
differences, and the speed of the loops against the vectorised forward pass."""

import numpy as np
import probes
import pytest

from grader.checks import check, rel_error

pytestmark = pytest.mark.public


@pytest.mark.points(10)
def test_notes_examples(student):
    """the notes' worked examples: the identity kernel, the Laplacian on a step, a 3x3 max-pool"""
    got = student(probes.notes_examples)
    want = {
        "identity": [[5, 38, 39], [9, 4, 66], [2, 25, 12]],
        "laplacian": [[9, -18, -9], [9, -9, 0], [9, -9, 0]],
        "max_pool": [[3, 3, 3], [3, 3, 3], [3, 2, 3]],
    }
    for key, value in want.items():
        for suffix in ("", "_loops") if key != "max_pool" else ("",):
            arr = np.asarray(got[key + suffix])
            name = {"": "conv2d_forward", "_loops": "conv2d_loops"}[suffix]
            if key == "max_pool":
                name = "max_pool_forward(size=3, stride=1)"
            check(arr.shape == (3, 3) and np.allclose(arr, value),
                  f"{name} on the notes' {key.replace('_', ' ')} example: expected\n"
                  f"{np.asarray(value)}\ngot\n{arr}")


@pytest.mark.points(10)
def test_conv_gradients_match_finite_differences(student, score):
    """conv2d_backward agrees with central differences of conv2d_forward (every padding, stride
    and dilation case)"""
    wrong = []
    for case in range(len(probes.CONV_CASES)):
        got = student(probes.numeric_conv_gradients, case=case)
        for name, g, n in zip(("dx", "dw", "db"), got["analytic"], got["numeric"]):
            if np.shape(g) != np.shape(n):
                wrong.append(f"case {case}: {name} has shape {np.shape(g)}, expected {np.shape(n)}")
                break
            if rel_error(g, n) > 1e-6:
                wrong.append(f"case {case}: {name} is off by {rel_error(g, n):.1e} (tolerance 1e-6)")
                break
    score.fraction(1 - len({w.split(':')[0] for w in wrong}) / len(probes.CONV_CASES))
    check(not wrong, probes.describe_conv_cases() + "\n" + "\n".join(wrong))


@pytest.mark.points(0)
def test_speed_of_loops_and_vectorised(student, score):
    """the loop and the vectorised forward pass, timed on a batch of 4 3x24x24 images, 8 filters"""
    got = student(probes.speeds)
    ratio = got["loops"] / max(got["vectorised"], 1e-9)
    score.note("| version | seconds |\n|---|---|\n"
               f"| conv2d_loops | {got['loops']:.4f} |\n| conv2d_forward | {got['vectorised']:.4f} |\n"
               f"vectorised is {ratio:.0f}x faster")
