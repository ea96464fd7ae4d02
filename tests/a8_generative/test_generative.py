"""Hidden judges for a8_generative: each function against the reference on its own (float64,
seeded inputs, the grader's own denoiser), the 1-D distances against scipy, the GAN step watched
optimiser by optimiser, and four trained models whose samples the judge scores on data it
holds."""

import numpy as np
import probes
import pytest
from scipy import stats

from grader import datasets
from grader.checks import check, mismatch


def _verdict(wrong, total, score, intro=""):
    score.fraction(1 - min(1.0, len(wrong) / total))
    check(not wrong, "\n".join([intro, *wrong] if intro else wrong))


def _credit(score, fraction):
    score.fraction(min(1.0, max(0.0, fraction)))


@pytest.mark.points(9)
def test_distances(student, reference, score):
    """mmd2_unbiased, energy_distance and wasserstein_1d against the reference; the 1-D energy
    and Wasserstein distances also against scipy.stats"""
    got, want = student(probes.distances), reference(probes.distances)
    d = probes.distance_data()
    scipy_values = {"energy_1d": stats.energy_distance(d["u"], d["v"]),
                    "w1": stats.wasserstein_distance(d["u"], d["v"]),
                    "w1_ties": stats.wasserstein_distance(d["u_ties"], d["v_ties"])}
    names = {"mmd_2d": "mmd2_unbiased on 2-D samples of 40 and 25 points",
             "mmd_1d": "mmd2_unbiased on 1-D samples (1-D tensors)",
             "mmd_same": "mmd2_unbiased of a sample against itself (unbiased: not 0)",
             "energy_2d": "energy_distance on 2-D samples of 40 and 25 points",
             "energy_1d": "energy_distance on 1-D samples of 37 and 53 points",
             "w1": "wasserstein_1d on samples of 37 and 53 points",
             "w1_ties": "wasserstein_1d on samples with tied values"}
    wrong = []
    for key, what in names.items():
        why = mismatch(got[key], want[key], what)
        if not why and key in scipy_values:
            why = mismatch(got[key], scipy_values[key], what + " against scipy")
        if why:
            wrong.append(why)
    for key, what in (("energy_same", "energy_distance"), ("w1_same", "wasserstein_1d")):
        if not abs(got[key]) < 1e-6:
            wrong.append(f"{what} of a sample against itself should be 0 (tolerance 1e-6)")
    _verdict(wrong, 5, score)


@pytest.mark.points(5)
def test_gan_losses(student, reference, score):
    """discriminator_loss and generator_loss (non-saturating and minimax) on moderate logits and
    on logits of +-1000 (finite, no overflow)"""
    got, want = student(probes.gan_losses), reference(probes.gan_losses)
    names = {"d": "discriminator_loss", "ns": "generator_loss (non_saturating)",
             "minimax": "generator_loss (minimax)"}
    wrong = [why for key, what in names.items() for case in ("moderate", "extreme")
             if (why := mismatch(got[f"{key}_{case}"], want[f"{key}_{case}"],
                                 f"{what} on {case} logits"
                                 + (" (+-1000)" if case == "extreme" else "")))]
    _verdict(wrong, 4, score)


def _step_problems(got, want, label):
    """What is wrong with a student's two gan_steps: the order of the optimiser steps, what
    each step changed, and the values against the reference."""
    order = [e["after"] for e in got["events"]]
    if order != ["D", "G", "D", "G"]:
        return [f"{label}: over two gan_step calls the optimiser steps went {order or 'nowhere'}"
                "; expected D's step, then G's, in each call"]
    wrong, before = [], got["start"]
    for k, (event, ref) in enumerate(zip(got["events"], want["events"])):
        step = f"{label}, call {k // 2 + 1}, after {event['after']}'s step"
        still, moved = ("G", "D") if event["after"] == "D" else ("D", "G")
        if any(not np.array_equal(before[still][n], event[still][n]) for n in before[still]):
            wrong.append(f"{step}: {still} changed (only {moved} may)")
        for name in ref[moved]:
            if name not in event[moved]:
                return wrong + [f"{label}: {moved} has no parameter {name!r} (is the network "
                                "in `net`, as the README says?)"]
            if why := mismatch(event[moved][name], ref[moved][name], f"{step}: {moved}'s {name}"):
                wrong.append(why)
                break
        before = event
        if wrong:
            break
    if not wrong and (why := mismatch(got["losses"], want["losses"], f"{label}: the returned "
                                      "(D loss, G loss) of each call")):
        wrong.append(why)
    return wrong


@pytest.mark.points(10)
def test_gan_step(student, reference, score):
    """gan_step with SGD, twice: D's step leaves G unchanged, G's step leaves D unchanged, and
    the weights after each step match the reference's (unconditional and conditional)"""
    wrong = []
    for conditional in (False, True):
        label = "conditional GAN (3 classes)" if conditional else "unconditional GAN"
        got = student(probes.gan_steps, conditional=conditional)
        want = reference(probes.gan_steps, conditional=conditional)
        wrong += _step_problems(got, want, label)
    _verdict(wrong, 2, score, "Generator(3, 6, 2) and Discriminator(2, 6) with the grader's "
             "weights, SGD(lr=0.1) each, batches of 5:")


@pytest.mark.points(6)
def test_coin_toss_gan(student, thresholds, score):
    """the notes' coin-toss GAN: the share of generated samples above 0.5 is near 0.3"""
    t = thresholds["coin"]
    data = probes.coin_tosses(t["n"], seed=3)
    out = student(probes.coin_gan, data=data, settings=t)
    score.trained(out["seconds"])
    samples = np.asarray(out["samples"], dtype=np.float64).reshape(-1)
    check(samples.size == 10000 and np.isfinite(samples).all(), "the generator's 10000 samples "
          "are not 10000 finite numbers")
    heads = float(np.mean(samples > 0.5))
    score.metric("share of heads", heads)
    off = abs(heads - 0.3)
    _credit(score, (t["floor"] - off) / (t["floor"] - t["tolerance"]))
    check(off <= t["tolerance"], f"{heads:.1%} of the generated tosses are heads (above 0.5); "
          f"the coin gives 30%, and the tolerance is {t['tolerance']:.0%} either way")


@pytest.mark.points(7)
def test_ring_gan(student, thresholds, score):
    """a GAN on a ring of 8 Gaussians covers at least 7 of the 8 modes"""
    t = thresholds["ring"]
    out = student(probes.ring_gan, data=probes.ring(t["n"], seed=4), settings=t, figure=True)
    score.figure("GAN on a ring of 8 Gaussians: real (grey) and generated (orange) samples",
                 out.get("png"))
    score.trained(out["seconds"])
    modes, near = probes.modes_covered(out["samples"])
    score.metric("modes covered", modes)
    score.metric("share of samples near a mode", near)
    _credit(score, (modes - t["floor"]) / (t["min_modes"] - t["floor"]))
    check(modes >= t["min_modes"], f"the generated samples cover {modes} of the 8 modes (a mode "
          f"counts when 1% of the samples lie within 0.2 of its centre); needs {t['min_modes']}")


@pytest.mark.points(7)
def test_conditional_digits_gan(student, thresholds, score):
    """a conditional GAN on the 8x8 digits: a classifier the judge holds assigns its samples to
    the asked-for class"""
    t = thresholds["digits"]
    x_train, y_train, _, _ = datasets.digits()
    x = x_train.reshape(len(x_train), -1) * 2 - 1
    out = student(probes.digits_gan, data=x, labels=y_train, settings=t, figure=True)
    score.figure("conditional GAN: generated digits, one column per asked-for class",
                 out.get("png"))
    score.trained(out["seconds"])
    samples = np.asarray(out["samples"], dtype=np.float64)
    check(samples.shape == (500, 64) and np.isfinite(samples).all(), "the generator's samples "
          f"have shape {samples.shape} or are not finite; expected (500, 64)")
    acc = float(np.mean(probes.nearest_centroid(x, y_train)(samples) == np.tile(np.arange(10), 50)))
    score.metric("asked-for class recognised", acc)
    _credit(score, (acc - t["floor"]) / (t["min_accuracy"] - t["floor"]))
    check(acc >= t["min_accuracy"], f"{acc:.0%} of the generated digits were recognised as the "
          f"class asked for; needs {t['min_accuracy']:.0%}")


@pytest.mark.points(7)
def test_schedules_and_q_sample(student, reference, score):
    """linear_betas, cosine_betas (capped), alpha_bars and q_sample at timesteps 1..T"""
    got, want = student(probes.schedules), reference(probes.schedules)
    names = {"linear": "linear_betas(10, 1e-3, 0.2)", "linear_default": "linear_betas(1000)",
             "cosine": "cosine_betas(50)", "cosine_s0": "cosine_betas(20, s=0.02, max_beta=0.5)",
             "alpha_bars": "alpha_bars", "q_sample": "q_sample on (6, 2) at t in 1..10",
             "q_sample_images": "q_sample on (3, 1, 2, 2) images"}
    wrong = [why for key, what in names.items() if (why := mismatch(got[key], want[key], what))]
    _verdict(wrong, 4, score, "timesteps run over 1..T; betas[t - 1] is beta_t")


@pytest.mark.points(6)
def test_diffusion_loss(student, reference, score):
    """diffusion_loss with given t and eps; without them, one t per row drawn uniformly from
    1..T and eps from N(0, I)"""
    got, want = student(probes.diffusion_loss_cases), reference(probes.diffusion_loss_cases)
    wrong = []
    if why := mismatch(got["fixed"], want["fixed"], "the loss with the grader's t and eps"):
        wrong.append(why)
    t = np.asarray(got["t"])
    if t.size != 4000:
        wrong.append(f"without t, the model was called with {t.size} timesteps for 4000 rows; "
                     "expected one per row")
    elif t.min() < 1 or t.max() > probes.T_SMALL or not np.array_equal(t, np.round(t)):
        wrong.append(f"without t, the timesteps drawn run from {t.min():g} to {t.max():g}; "
                     f"expected integers 1..{probes.T_SMALL} (1-indexed)")
    else:
        counts = np.bincount(t.astype(int), minlength=probes.T_SMALL + 1)[1:]
        if counts.min() < 300 or counts.max() > 500:
            wrong.append("without t, the timesteps are not uniform over 1..10 (each should "
                         "come up about 400 times in 4000 rows)")
    if not abs(got["drawn"] - want["drawn"]) <= 0.1 * abs(want["drawn"]):
        wrong.append("without t and eps, the loss over 4000 rows is off by more than 10% from "
                     "what noise eps ~ N(0, I) gives")
    _verdict(wrong, 3, score)


@pytest.mark.points(6)
def test_posterior(student, reference, score):
    """posterior_mean_variance: the mean and the variance (0 at t = 1) at timesteps 1..T"""
    got, want = student(probes.posterior), reference(probes.posterior)
    wrong = [why for key in ("mean", "variance")
             if (why := mismatch(got[key], want[key], f"the posterior {key}"))]
    _verdict(wrong, 2, score, "x0 and x_t of (6, 2) at t = [1, 2, 5, 10, 10, 3], linear betas "
             "from 1e-3 to 0.2 over T = 10 (the variance compared broadcast to (6, 2)):")


@pytest.mark.points(7)
def test_reverse_samplers(student, reference, score):
    """p_sample_step at t = T, 3 and 1 (no noise at t = 1), ddpm_sample with the grader's noise,
    ddim_sample over every timestep and over a stride, with the grader's denoiser"""
    got, want = student(probes.samplers), reference(probes.samplers)
    names = {"step_T": "p_sample_step at t = T", "step_3": "p_sample_step at t = 3",
             "step_1": "p_sample_step at t = 1", "ddpm": "ddpm_sample",
             "ddim": "ddim_sample over [10, 9, ..., 1]", "ddim_stride": "ddim_sample over "
             "[10, 7, 4, 1]"}
    wrong = [why for key, what in names.items() if (why := mismatch(got[key], want[key], what))]
    _verdict(wrong, 4, score, "linear betas from 1e-3 to 0.2 over T = 10, x of (5, 2):")


def _near(got, want, what, atol):
    """mismatch's shape and finiteness checks, then an absolute tolerance: a float32 embedding
    (the README allows it) is off by ~1e-5 at t = 1000, relatively far more where a sine is
    near 0."""
    if why := mismatch(got, want, what, tol=float("inf")):
        return why
    off = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want)))
    return f"{what} is off by up to {off:.0e} (absolute tolerance {atol:.0e})" if off > atol else ""


@pytest.mark.points(4)
def test_denoiser(student, reference, score):
    """timestep_embedding (t up to 1000) and Denoiser(2, 16, 8) with the grader's weights, to an
    absolute 1e-4 (float32 arithmetic is enough)"""
    got, want = student(probes.denoiser), reference(probes.denoiser)
    wrong = [why for key, what in (("embedding", "timestep_embedding(t, 16) for t = 1, 5, 50, "
                                    "1000"), ("denoiser", "Denoiser(2, 16, 8)'s output"))
             if (why := _near(got[key], want[key], what, 1e-4))]
    _verdict(wrong, 2, score)


@pytest.mark.points(6)
def test_moons_diffusion(student, thresholds, score):
    """a Denoiser trained on two moons: its ddpm_sample samples are near held-out moons (energy
    distance)"""
    t = thresholds["moons"]
    out = student(probes.moons_diffusion, data=probes.moons(t["n"], seed=5), settings=t,
                  figure=True)
    score.figure("diffusion on two moons: one denoising trajectory, then the samples",
                 out.get("png"))
    score.trained(out["seconds"])
    samples = np.asarray(out["samples"], dtype=np.float64)
    check(samples.shape == (1000, 2) and np.isfinite(samples).all(), "ddpm_sample's samples "
          f"have shape {samples.shape} or are not finite; expected (1000, 2)")
    energy = probes.energy_distance_np(samples, probes.moons(1000, seed=6))
    score.metric("energy distance to held-out moons", energy)
    _credit(score, (t["floor"] - energy) / (t["floor"] - t["max_energy"]))
    check(energy <= t["max_energy"], f"the samples are at an energy distance of {energy:.3f} "
          f"from held-out moons; needs at most {t['max_energy']} (Gaussian noise is at 0.22)")
