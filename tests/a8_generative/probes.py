"""Probes for a8_generative: each function on seeded float64 inputs, the grader's own callables
as denoisers, weights loaded by parameter name, and four training runs on data the judge makes
and holds (the probes return samples; the judges score them).

The judges import this file for its numpy helpers (the data, the scoring) and stay torch-free.
"""

import io
import time

import numpy as np

T_SMALL = 10  # the schedule the exact sampler probes use: linear_betas(10, 1e-3, 0.2)


def _torch():
    """torch, imported where a probe runs: the judges import this file and stay torch-free."""
    import torch

    return torch


def _np(t):
    torch = _torch()
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy().astype(np.float64)
    return np.asarray(t, dtype=np.float64)


def _float(v):
    """A 0-d result as a float, or NaN when it is not one number (the judge says so)."""
    a = _np(v)
    return float(a) if a.size == 1 else float("nan")


def _randn(*shape, seed, scale=1.0):
    torch = _torch()
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64) * scale


def set_weights(module, seed, scale=0.5):
    """Every parameter, in the order of its name, from one seeded generator: two modules with
    the README's attribute names get the same weights."""
    torch = _torch()
    module.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * scale)
    return module


def _params(module):
    return {name: _np(p).copy() for name, p in sorted(module.named_parameters())}


# ------------------------------------------------------------------ part 1: distances


def distance_data():
    """Seeded samples for the distance judges (numpy, so the judge can ask scipy too)."""
    rng = np.random.default_rng(11)
    return {"x": rng.normal(size=(40, 2)), "y": rng.normal(0.5, 1.5, size=(25, 2)),
            "u": rng.normal(size=37), "v": rng.normal(1.0, 2.0, size=53),
            "u_ties": np.round(rng.normal(size=30), 1), "v_ties": np.round(rng.normal(size=20), 1)}


def distances(impl):
    """MMD^2 (2-D, 1-D, a sample against itself), energy distance (2-D, 1-D, itself) and W1
    (different sizes, ties, a sample against itself)."""
    torch = _torch()
    d = {k: torch.tensor(v) for k, v in distance_data().items()}
    return {
        "mmd_2d": _float(impl.mmd2_unbiased(d["x"], d["y"], 0.8)),
        "mmd_1d": _float(impl.mmd2_unbiased(d["u"], d["v"], 1.5)),
        "mmd_same": _float(impl.mmd2_unbiased(d["x"], d["x"], 1.0)),
        "energy_2d": _float(impl.energy_distance(d["x"], d["y"])),
        "energy_1d": _float(impl.energy_distance(d["u"], d["v"])),
        "energy_same": _float(impl.energy_distance(d["x"], d["x"])),
        "w1": _float(impl.wasserstein_1d(d["u"], d["v"])),
        "w1_ties": _float(impl.wasserstein_1d(d["u_ties"], d["v_ties"])),
        "w1_same": _float(impl.wasserstein_1d(d["u"], d["u"])),
    }


# ------------------------------------------------------------------ part 2: GANs


def gan_losses(impl):
    """Both losses on moderate logits and on logits of +-1000."""
    torch = _torch()
    out = {}
    cases = {"moderate": ([2.0, -1.0, 0.5, 0.0, 3.5], [-3.0, 0.0, 1.2, -0.4, 0.7]),
             "extreme": ([1000.0, -1000.0, 2.0], [-1000.0, 1000.0, 0.3])}
    for name, (real, fake) in cases.items():
        r, f = torch.tensor(real, dtype=torch.float64), torch.tensor(fake, dtype=torch.float64)
        out[f"d_{name}"] = _float(impl.discriminator_loss(r, f))
        out[f"ns_{name}"] = _float(impl.generator_loss(f))
        out[f"minimax_{name}"] = _float(impl.generator_loss(f, "minimax"))
    return out


def gan_steps(impl, conditional=False):
    """Two gan_step calls with SGD on seeded weights. Each optimiser's step is watched: the
    parameters of both networks are copied right after D's step and right after G's."""
    torch = _torch()
    classes = 3 if conditional else 0
    G = set_weights(impl.Generator(3, 6, 2, n_classes=classes), 21)
    D = set_weights(impl.Discriminator(2, 6, n_classes=classes), 22)
    opt_g = torch.optim.SGD(G.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(D.parameters(), lr=0.1)
    events = []

    def watch(opt, who):
        step = opt.step

        def watched(*args, **kwargs):
            result = step(*args, **kwargs)
            events.append({"after": who, "G": _params(G), "D": _params(D)})
            return result

        opt.step = watched

    watch(opt_d, "D")
    watch(opt_g, "G")
    start = {"G": _params(G), "D": _params(D)}
    losses = []
    for k in range(2):
        real = _randn(5, 2, seed=30 + k)
        z = _randn(5, 3, seed=40 + k)
        labels = torch.tensor([0, 2, 1, 1, 0]) if conditional else None
        losses.append([_float(v) for v in impl.gan_step(G, D, opt_g, opt_d, real, z, labels)])
    return {"start": start, "events": events, "losses": losses}


def coin_gan(impl, data, settings):
    """The notes' coin-toss GAN: a sigmoid generator on noise of z_dim; 10000 samples."""
    torch = _torch()
    torch.manual_seed(settings.get("seed", 0))
    G = impl.Generator(settings["z_dim"], settings["hidden"], 1, out="sigmoid")
    D = impl.Discriminator(1, settings["hidden"])
    start = time.perf_counter()
    impl.train_gan(G, D, torch.as_tensor(data, dtype=torch.float32).reshape(-1, 1),
                   settings["steps"], settings["batch_size"], settings["lr"])
    seconds = time.perf_counter() - start
    with torch.no_grad():
        samples = G(torch.randn(10000, settings["z_dim"]))
    return {"samples": _np(samples).reshape(-1), "seconds": seconds}


def ring_gan(impl, data, settings, figure=False):
    """A GAN on the judge's ring of 8 Gaussians; 2000 samples (and their scatter plot)."""
    torch = _torch()
    torch.manual_seed(settings.get("seed", 0))
    G = impl.Generator(settings["z_dim"], settings["hidden"], 2)
    D = impl.Discriminator(2, settings["hidden"])
    start = time.perf_counter()
    impl.train_gan(G, D, torch.as_tensor(data, dtype=torch.float32), settings["steps"],
                   settings["batch_size"], settings["lr"])
    seconds = time.perf_counter() - start
    with torch.no_grad():
        samples = _np(G(torch.randn(2000, settings["z_dim"])))
    out = {"samples": samples, "seconds": seconds}
    if figure:
        out["png"] = _scatter([(np.asarray(data)[:2000], "real", "tab:gray"),
                               (samples, "generated", "tab:orange")], "GAN on a ring of 8 modes")
    return out


def digits_gan(impl, data, labels, settings, figure=False):
    """A conditional GAN on the judge's digits (scaled to [-1, 1], 64 features); 50 samples per
    class, asked for in the order 0, 1, ..., 9, 0, 1, ..."""
    torch = _torch()
    torch.manual_seed(settings.get("seed", 0))
    G = impl.Generator(settings["z_dim"], settings["hidden"], 64, n_classes=10, out="tanh")
    D = impl.Discriminator(64, settings["hidden"], n_classes=10)
    start = time.perf_counter()
    impl.train_gan(G, D, torch.as_tensor(data, dtype=torch.float32), settings["steps"],
                   settings["batch_size"], settings["lr"],
                   labels=torch.as_tensor(labels).long())
    seconds = time.perf_counter() - start
    asked = torch.arange(10).repeat(50)
    with torch.no_grad():
        samples = _np(G(torch.randn(500, settings["z_dim"]), asked))
    out = {"samples": samples, "seconds": seconds}
    if figure:
        out["png"] = _digits(samples[:40].reshape(-1, 8, 8))
    return out


# ------------------------------------------------------------------ part 3: diffusion


def _small_betas():
    torch = _torch()
    return torch.linspace(1e-3, 0.2, T_SMALL, dtype=torch.float64)


def toy_model(x_t, t):
    """The grader's denoiser for the exact probes: smooth in x_t, different at every t."""
    torch = _torch()
    tt = t.to(x_t.dtype).reshape(-1, *([1] * (x_t.dim() - 1)))
    return 0.3 * torch.sin(x_t * tt / 3) + 0.05 * tt - 0.2 * x_t


def schedules(impl):
    """Both schedules, alpha_bars, and q_sample at timesteps 1..T (1 and T included)."""
    torch = _torch()
    betas = _small_betas()
    abar = torch.cumprod(1 - betas, 0)
    x0, eps = _randn(6, 2, seed=50), _randn(6, 2, seed=51)
    t = torch.tensor([1, 10, 4, 7, 2, 10])
    x0_img, eps_img = _randn(3, 1, 2, 2, seed=52), _randn(3, 1, 2, 2, seed=53)
    return {
        "linear": _np(impl.linear_betas(T_SMALL, 1e-3, 0.2)),
        "linear_default": _np(impl.linear_betas(1000)),
        "cosine": _np(impl.cosine_betas(50)),
        "cosine_s0": _np(impl.cosine_betas(20, s=0.02, max_beta=0.5)),
        "alpha_bars": _np(impl.alpha_bars(betas)),
        "q_sample": _np(impl.q_sample(x0, t, abar, eps)),
        "q_sample_images": _np(impl.q_sample(x0_img, torch.tensor([3, 1, 10]), abar, eps_img)),
    }


def diffusion_loss_cases(impl):
    """The loss with fixed t and eps; then with t and eps left to the function, the timesteps
    the model was called with."""
    torch = _torch()
    abar = torch.cumprod(1 - _small_betas(), 0)
    x0 = _randn(6, 2, seed=60)
    fixed = _float(impl.diffusion_loss(toy_model, x0, abar, torch.tensor([1, 10, 3, 5, 2, 9]),
                                       _randn(6, 2, seed=61)))
    seen = []

    def spy(x_t, t):
        seen.append(_np(t).reshape(-1))
        return toy_model(x_t, t)

    torch.manual_seed(0)
    drawn = _float(impl.diffusion_loss(spy, _randn(4000, 2, seed=62), abar))
    t_seen = np.concatenate(seen) if seen else np.array([])
    return {"fixed": fixed, "drawn": drawn, "t": t_seen}


def posterior(impl):
    """posterior_mean_variance at timesteps 1..T; the variance broadcast to x0's shape."""
    torch = _torch()
    x0, xt = _randn(6, 2, seed=70), _randn(6, 2, seed=71)
    mean, var = impl.posterior_mean_variance(x0, xt, torch.tensor([1, 2, 5, 10, 10, 3]),
                                             _small_betas())
    var = _np(var)
    if var.ndim == 2 and var.shape[0] == 6 and var.shape[1] in (1, 2):
        var = np.broadcast_to(var, (6, 2)).copy()  # any other shape: the judge reports it
    return {"mean": _np(mean), "variance": var}


def samplers(impl):
    """p_sample_step at t = T, 3 and 1; ddpm_sample with the grader's noise; ddim_sample over
    every timestep and over a stride."""
    torch = _torch()
    betas = _small_betas()
    abar = torch.cumprod(1 - betas, 0)
    x = _randn(5, 2, seed=80)
    z = _randn(5, 2, seed=81)
    noise = _randn(T_SMALL, 5, 2, seed=82)
    return {
        "step_T": _np(impl.p_sample_step(toy_model, x, T_SMALL, betas, z)),
        "step_3": _np(impl.p_sample_step(toy_model, x, 3, betas, z)),
        "step_1": _np(impl.p_sample_step(toy_model, x, 1, betas, z)),
        "ddpm": _np(impl.ddpm_sample(toy_model, x, betas, noise)),
        "ddim": _np(impl.ddim_sample(toy_model, x, abar, list(range(T_SMALL, 0, -1)))),
        "ddim_stride": _np(impl.ddim_sample(toy_model, x, abar, [10, 7, 4, 1])),
    }


def denoiser(impl):
    """timestep_embedding (t from 1 to 1000) and a Denoiser with seeded weights."""
    torch = _torch()
    t = torch.tensor([1, 5, 50, 1000])
    model = set_weights(impl.Denoiser(2, 16, 8), 90, scale=0.3)
    with torch.no_grad():
        out = model(_randn(4, 2, seed=91), t)
    return {"embedding": _np(impl.timestep_embedding(t, 16)), "denoiser": _np(out)}


def moons_diffusion(impl, data, settings, figure=False):
    """A Denoiser trained with train_diffusion on the judge's moons; 1000 ddpm_sample samples
    (and a figure: the samples, and one denoising trajectory with p_sample_step)."""
    torch = _torch()
    torch.manual_seed(settings.get("seed", 0))
    T = settings["T"]
    betas = impl.linear_betas(T, 1e-4, settings["beta_end"])
    model = impl.Denoiser(2, settings["hidden"], settings["t_dim"])
    start = time.perf_counter()
    impl.train_diffusion(model, torch.as_tensor(data, dtype=torch.float32), betas,
                         settings["steps"], settings["batch_size"], settings["lr"])
    seconds = time.perf_counter() - start
    model.eval()
    betas32 = torch.as_tensor(betas).float()
    with torch.no_grad():
        samples = _np(impl.ddpm_sample(model, torch.randn(1000, 2), betas32))
    out = {"samples": samples, "seconds": seconds}
    if figure:
        out["png"] = _trajectory(impl, model, betas32, T, np.asarray(data), samples)
    return out


# ------------------------------------------------------------------ figures


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _scatter(sets, title):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.6, 3.4), dpi=80)
    ax = fig.subplots()
    for xy, label, colour in sets:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        ax.scatter(xy[:, 0], xy[:, 1], s=3, c=colour, alpha=0.5, label=label)
    ax.set(title=title, aspect="equal")
    ax.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    return _png(fig)


def _digits(images):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 2.2), dpi=80)
    axes = fig.subplots(4, 10)
    for i, ax in enumerate(axes.ravel()):
        ax.imshow(images[i], cmap="gray_r", vmin=-1, vmax=1)
        ax.set_axis_off()
        if i < 10:
            ax.set_title(str(i), fontsize=8)
    fig.suptitle("conditional GAN: 4 samples of each digit (column = asked-for class)",
                 fontsize=8)
    return _png(fig)


def _trajectory(impl, model, betas, T, data, samples):
    """300 points denoised step by step (the student's p_sample_step), five snapshots, then the
    1000 graded samples next to the training data."""
    from matplotlib.figure import Figure

    torch = _torch()
    torch.manual_seed(1)
    x = torch.randn(300, 2)
    shots, keep = [], {T, 3 * T // 4, T // 2, T // 4, 1}
    with torch.no_grad():
        for t in range(T, 0, -1):
            if t in keep:
                shots.append((t, _np(x)))
            x = impl.p_sample_step(model, x, t, betas, torch.randn_like(x))
    shots.append((0, _np(x)))
    fig = Figure(figsize=(2.0 * (len(shots) + 1), 2.3), dpi=80)
    axes = fig.subplots(1, len(shots) + 1)
    for ax, (t, xy) in zip(axes, shots):
        ax.scatter(xy[:, 0], xy[:, 1], s=2, c="tab:blue")
        ax.set(title=f"x_{t}", xlim=(-3, 3), ylim=(-3, 3), xticks=[], yticks=[])
    axes[-1].scatter(data[:1000, 0], data[:1000, 1], s=2, c="tab:gray", alpha=0.4)
    axes[-1].scatter(samples[:, 0], samples[:, 1], s=2, c="tab:orange", alpha=0.6)
    axes[-1].set(title="samples (orange)", xlim=(-3, 3), ylim=(-3, 3), xticks=[], yticks=[])
    fig.tight_layout()
    return _png(fig)


# ------------------------------------------------------------------ the judge's data (numpy)


def coin_tosses(n, seed, p_heads=0.3):
    """The notes' coin: 1 (heads) with probability p_heads, else 0."""
    return (np.random.default_rng(seed).random(n) < p_heads).astype(np.float64)


RING_CENTRES = np.c_[2 * np.cos(2 * np.pi * np.arange(8) / 8),
                     2 * np.sin(2 * np.pi * np.arange(8) / 8)]


def ring(n, seed, std=0.05):
    """n points from 8 Gaussians (std) centred on a circle of radius 2."""
    rng = np.random.default_rng(seed)
    return RING_CENTRES[rng.integers(0, 8, n)] + std * rng.normal(size=(n, 2))


def modes_covered(samples, radius=0.2, share=0.01):
    """(modes holding at least ``share`` of the samples within ``radius`` of their centre,
    share of samples within ``radius`` of some centre)."""
    s = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    d = np.linalg.norm(s[:, None, :] - RING_CENTRES[None], axis=2)
    near, which = d.min(1) < radius, d.argmin(1)
    counts = np.bincount(which[near], minlength=8)
    return int((counts >= share * len(s)).sum()), float(near.mean())


def moons(n, seed):
    """scikit-learn's two moons (noise 0.05), standardised to roughly zero mean, unit spread."""
    from sklearn.datasets import make_moons

    x, _ = make_moons(n, noise=0.05, random_state=seed)
    return (x - [0.5, 0.25]) / [0.87, 0.5]


def energy_distance_np(x, y):
    """The energy distance (V-statistics) between two sample sets, in numpy (the judge's own)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def mean_dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).mean()

    return float(np.sqrt(max(0.0, 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y))))


def nearest_centroid(train_x, train_y):
    """The judge's digit classifier: the class whose mean image is closest."""
    centres = np.stack([train_x[train_y == c].mean(0) for c in range(10)])

    def classify(x):
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        return ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)

    return classify


# ------------------------------------------------------------------ public examples


def schedule_example(impl):
    """linear_betas(5, 0.1, 0.5), its alpha_bars, and q_sample of x0 = [[1, 2]] at t = 2 with
    eps = [[1, -1]]."""
    torch = _torch()
    betas = impl.linear_betas(5, 0.1, 0.5)
    abar = impl.alpha_bars(torch.as_tensor(betas, dtype=torch.float64))
    x = impl.q_sample(torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.tensor([2]),
                      torch.as_tensor(abar, dtype=torch.float64),
                      torch.tensor([[1.0, -1.0]], dtype=torch.float64))
    return {"betas": _np(betas), "alpha_bars": _np(abar), "q_sample": _np(x)}


def loss_and_distance_examples(impl):
    """The losses at logit 0, and the distances on two tiny samples."""
    torch = _torch()
    zero = torch.zeros(4, dtype=torch.float64)
    a = torch.tensor([0.0, 1.0], dtype=torch.float64)
    b = torch.tensor([0.5], dtype=torch.float64)
    return {"d": _float(impl.discriminator_loss(zero, zero)),
            "ns": _float(impl.generator_loss(zero)),
            "minimax": _float(impl.generator_loss(zero, "minimax")),
            "w1": _float(impl.wasserstein_1d(a, b)),
            "energy": _float(impl.energy_distance(a, b))}
