"""Public self-checks for a8_generative: a five-step schedule worked by hand, and the losses and
distances on inputs small enough to check on paper."""

import numpy as np
import probes
import pytest

from grader.checks import check

pytestmark = pytest.mark.public


@pytest.mark.points(10)
def test_schedule_by_hand(student):
    """linear_betas(5, 0.1, 0.5) = [0.1, 0.2, 0.3, 0.4, 0.5]; alpha_bars = [0.9, 0.72, 0.504,
    0.3024, 0.1512]; q_sample of x0 = [[1, 2]] at t = 2 with eps = [[1, -1]] is
    sqrt(0.72) x0 + sqrt(0.28) eps"""
    got = student(probes.schedule_example)
    for key, want in (("betas", [0.1, 0.2, 0.3, 0.4, 0.5]),
                      ("alpha_bars", [0.9, 0.72, 0.504, 0.3024, 0.1512])):
        g = np.asarray(got[key]).ravel()
        check(g.shape == (5,) and np.allclose(g, want, atol=1e-12),
              f"{key} gave {g}, expected {want} (tolerance 1e-12)")
    want = np.sqrt(0.72) * np.array([1.0, 2.0]) + np.sqrt(0.28) * np.array([1.0, -1.0])
    g = np.asarray(got["q_sample"])
    check(g.shape == (1, 2) and np.allclose(g.ravel(), want, atol=1e-12),
          f"q_sample gave {g.ravel()}, expected {want} (t = 2 uses alpha_bars[1] = 0.72; "
          "tolerance 1e-12)")


@pytest.mark.points(10)
def test_losses_and_distances_by_hand(student):
    """at logit 0, discriminator_loss = 2 ln 2, the non-saturating generator loss ln 2 and the
    minimax one -ln 2; between the samples {0, 1} and {0.5}, W1 = 0.5 and the energy distance
    sqrt(2 * 0.5 - 0.5 - 0) = sqrt(0.5)"""
    got = student(probes.loss_and_distance_examples)
    ln2 = np.log(2.0)
    for key, want, what in (("d", 2 * ln2, "discriminator_loss(0, 0)"),
                            ("ns", ln2, "generator_loss(0)"),
                            ("minimax", -ln2, "generator_loss(0, 'minimax')"),
                            ("w1", 0.5, "wasserstein_1d([0, 1], [0.5])"),
                            ("energy", np.sqrt(0.5), "energy_distance([0, 1], [0.5])")):
        check(abs(got[key] - want) < 1e-12, f"{what} gave {got[key]!r}, expected {want:.12g} "
              "(tolerance 1e-12)")
