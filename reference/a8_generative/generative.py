"""Generative models: distances between samples, a GAN, and a denoising diffusion model.

The notes: a generative model learns to sample from p(x) (or p(x|y)) without writing p(x) down;
it is judged by how far its samples are from real ones, with a distance between distributions.

- Distances between two sets of samples x (m, d) and y (n, d):
  the unbiased MMD^2 with the RBF kernel k(a, b) = exp(-||a - b||^2 / (2 h^2)),
      MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
                - 2 sum_{i, j} k(x_i, y_j) / (m n)      (it can be slightly negative);
  the energy distance sqrt(2 E||X - Y|| - E||X - X'|| - E||Y - Y'||), every expectation a mean
  over all pairs, i = j included (for d = 1 this is scipy.stats.energy_distance);
  and the 1-D Wasserstein distance W1 = integral |F_x(s) - F_y(s)| ds between the two empirical
  CDFs (m and n may differ; scipy.stats.wasserstein_distance).
- A GAN (the notes' adversarial training): the discriminator D outputs a logit, trained to say 1
  for real and 0 for generated samples; the generator G maps noise z ~ N(0, I) (and a class label,
  for a conditional GAN) to a sample, trained so that D says 1 for its samples (the
  non-saturating loss) or, in the minimax form, so that D's loss on its samples is largest.
- DDPM (Ho et al.): the forward process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) with
  abar_t = prod_{s <= t} (1 - beta_s); a network eps_theta(x_t, t) learns the noise by
  minimising E ||eps - eps_theta(x_t, t)||^2, and the reverse process removes it step by step.

Conventions the graders rely on:
- Timesteps are 1-indexed: t runs over 1..T, and a schedule tensor of length T holds step t at
  index t - 1 (betas[t - 1] is beta_t). abar_0 = 1 (nothing added yet).
- A denoiser is called as model(x_t, t) with t a (B,) int64 tensor of timesteps in 1..T; it
  returns the predicted noise, shaped like x_t. The graders pass their own callables as models.
- The losses are means: over the batch (GAN) or over every entry (diffusion).
- Every function that draws random numbers uses torch's global generator (torch.randn,
  torch.randint, torch.randperm); where a noise argument is given, it is used instead. The
  order of the draws is yours: no grader depends on it (the trained models are judged by
  their samples' statistics, the exact checks pass their own t, eps and noise).
- Modules keep the attribute names their docstrings give: the graders load weights by name.
- Everything works in float32 and float64 (the graders use float64 for exact comparisons).

What is graded, besides the public self-checks (float64, relative error 1e-9 unless said):
- mmd2_unbiased, energy_distance and wasserstein_1d against the reference and scipy, on samples
  of different sizes, identical samples, 1-D and 2-D data, and ties.
- discriminator_loss and generator_loss (both kinds) on fixed logits, including logits of
  +-1000 (finite, no overflow); gan_step with SGD: after D's update G is unchanged, after G's
  update D is unchanged, and both match the reference over two steps.
- The coin-toss GAN (the notes' barebones example with P(heads) = 0.3): the share of generated
  samples above 0.5 within 0.05 of 0.3. A GAN on a ring of 8 Gaussians covering at least 7 of
  the 8 modes. A conditional GAN on the 8x8 digits whose samples a nearest-centroid classifier
  the grader holds assigns to the asked-for class.
- The beta schedules, alpha_bars, q_sample, diffusion_loss (fixed t and eps; and t drawn
  uniformly from 1..T when not given), the posterior mean and variance, p_sample_step,
  ddpm_sample and ddim_sample exactly against the reference with the grader's own model.
- timestep_embedding and Denoiser with the grader's weights; a Denoiser trained on make_moons
  whose samples are within an energy distance of held-out data that the reference reaches.
The grader seeds torch; nothing needs seeding. The feedback page shows your ring GAN's samples,
your moons samples, a denoising trajectory and your generated digits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- part 1: distances


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (m, n) between the rows of a (m, d) and b (n, d)."""
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(-1).sqrt()


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, 1) if x.dim() == 1 else x


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """The unbiased MMD^2 between samples x (m, d) and y (n, d), m, n >= 2, with the RBF kernel
    of the given bandwidth h; 1-D tensors are samples of 1-D data. A 0-d tensor."""
    # BEGIN SOLUTION
    x, y = _rows(x), _rows(y)
    m, n = x.shape[0], y.shape[0]

    def k(a, b):
        return torch.exp(-(a[:, None, :] - b[None, :, :]).pow(2).sum(-1) / (2 * bandwidth ** 2))

    kxx, kyy = k(x, x), k(y, y)
    xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return xx + yy - 2 * k(x, y).mean()
    # END SOLUTION


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sqrt(2 E||X - Y|| - E||X - X'|| - E||Y - Y'||) over all pairs (i = j included) of x (m, d)
    and y (n, d); 1-D tensors are samples of 1-D data. A 0-d tensor."""
    # BEGIN SOLUTION
    x, y = _rows(x), _rows(y)
    d2 = 2 * _pairwise(x, y).mean() - _pairwise(x, x).mean() - _pairwise(y, y).mean()
    return d2.clamp(min=0).sqrt()
    # END SOLUTION


def wasserstein_1d(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """W1 between the empirical distributions of the 1-D samples u (m,) and v (n,): the area
    between their CDFs. A 0-d tensor."""
    # BEGIN SOLUTION
    u, v = u.reshape(-1), v.reshape(-1)
    points, _ = torch.sort(torch.cat([u, v]))
    widths = points[1:] - points[:-1]
    left = points[:-1]
    cdf_u = torch.searchsorted(torch.sort(u)[0], left, right=True).to(u.dtype) / u.numel()
    cdf_v = torch.searchsorted(torch.sort(v)[0], left, right=True).to(u.dtype) / v.numel()
    return ((cdf_u - cdf_v).abs() * widths).sum()
    # END SOLUTION


# ---------------------------------------------------------------- part 2: GANs


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on D's logits: real samples labelled 1, generated ones 0; the mean
    over the real batch plus the mean over the generated batch. Stable for logits of +-1000."""
    # BEGIN SOLUTION
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
    # END SOLUTION


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """G's loss from D's logits on generated samples, a mean over the batch.
    "non_saturating": the cross-entropy of labelling them 1, mean(-log D(G(z)));
    "minimax": minus D's cross-entropy of labelling them 0, mean(log(1 - D(G(z)))).
    Stable for logits of +-1000."""
    # BEGIN SOLUTION
    if kind == "non_saturating":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "minimax":
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    raise ValueError(f"unknown generator loss {kind!r}")
    # END SOLUTION


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """G(z, labels) -> samples (B, out_dim). Attribute ``net``: nn.Sequential(Linear(z_dim +
    n_classes, hidden), LeakyReLU(0.2), Linear(hidden, hidden), LeakyReLU(0.2), Linear(hidden,
    out_dim)); ``out`` "none" (no activation at the end), "sigmoid" (samples in (0, 1), the
    coin tosses) or "tanh" (in (-1, 1), the digits) applied to net's output. With n_classes > 0
    (a conditional GAN) the input is z followed by the one-hot label. ``z_dim`` and
    ``n_classes`` are kept as attributes."""

    def __init__(self, z_dim: int, hidden: int, out_dim: int, n_classes: int = 0,
                 out: str = "none"):
        super().__init__()
        # BEGIN SOLUTION
        self.z_dim, self.n_classes, self.out = z_dim, n_classes, out
        self.net = _mlp([z_dim + n_classes, hidden, hidden, out_dim])
        # END SOLUTION

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        if self.n_classes:
            z = torch.cat([z, F.one_hot(labels, self.n_classes).to(z.dtype)], dim=1)
        x = self.net(z)
        return {"none": x, "sigmoid": torch.sigmoid(x), "tanh": torch.tanh(x)}[self.out]
        # END SOLUTION


class Discriminator(nn.Module):
    """D(x, labels) -> logits (B,). Attribute ``net``: nn.Sequential(Linear(in_dim + n_classes,
    hidden), LeakyReLU(0.2), Linear(hidden, hidden), LeakyReLU(0.2), Linear(hidden, 1)); the
    last axis is dropped. With n_classes > 0 the input is x followed by the one-hot label."""

    def __init__(self, in_dim: int, hidden: int, n_classes: int = 0):
        super().__init__()
        # BEGIN SOLUTION
        self.n_classes = n_classes
        self.net = _mlp([in_dim + n_classes, hidden, hidden, 1])
        # END SOLUTION

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # BEGIN SOLUTION
        if self.n_classes:
            x = torch.cat([x, F.one_hot(labels, self.n_classes).to(x.dtype)], dim=1)
        return self.net(x).squeeze(-1)
        # END SOLUTION


def gan_step(G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer,
             opt_d: torch.optim.Optimizer, real: torch.Tensor, z: torch.Tensor,
             labels: torch.Tensor | None = None) -> tuple[float, float]:
    """One step: first D (discriminator_loss on D(real) and D of G(z) detached from G), then G
    (generator_loss, non-saturating, on the updated D's logits for G(z), the same z). Each
    optimiser clears its gradients before its own backward pass, so neither step leaks into the
    other. ``labels`` (conditional GANs) go to both G and D, for the real and the generated
    batch alike. Returns (D's loss, G's loss) as floats."""
    # BEGIN SOLUTION
    fake = G(z, labels)
    d_loss = discriminator_loss(D(real, labels), D(fake.detach(), labels))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = generator_loss(D(fake, labels))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()
    # END SOLUTION


def train_gan(G: Generator, D: Discriminator, data: torch.Tensor, steps: int,
              batch_size: int = 64, lr: float = 1e-3, labels: torch.Tensor | None = None
              ) -> list[tuple[float, float]]:
    """``steps`` calls of gan_step with Adam(lr, betas=(0.5, 0.999)) for each network: a batch of
    ``batch_size`` rows of data (and their labels, for a conditional GAN) drawn with
    torch.randint each step, and z ~ N(0, I) of (batch_size, G.z_dim). Returns the losses."""
    # BEGIN SOLUTION
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    history = []
    for _ in range(steps):
        idx = torch.randint(0, data.shape[0], (batch_size,))
        z = torch.randn(batch_size, G.z_dim, dtype=data.dtype)
        history.append(gan_step(G, D, opt_g, opt_d, data[idx], z,
                                None if labels is None else labels[idx]))
    return history
    # END SOLUTION


# ---------------------------------------------------------------- part 3: diffusion


def linear_betas(T: int, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """beta_1..beta_T evenly spaced from start to end (float64, (T,))."""
    # BEGIN SOLUTION
    return torch.linspace(start, end, T, dtype=torch.float64)
    # END SOLUTION


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol and Dhariwal's schedule: abar(t) = f(t) / f(0), f(t) = cos((t / T + s) / (1 + s) *
    pi / 2)^2, beta_t = 1 - abar(t) / abar(t - 1) capped at max_beta (float64, (T,))."""
    # BEGIN SOLUTION
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)
    # END SOLUTION


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s <= t} (1 - beta_s), for t = 1..T ((T,))."""
    # BEGIN SOLUTION
    return torch.cumprod(1 - betas, dim=0)
    # END SOLUTION


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t - 1] shaped to broadcast against a batch like ``like`` (B, ...)."""
    return values[t - 1].to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def q_sample(x0: torch.Tensor, t: torch.Tensor, abar: torch.Tensor,
             eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, for a batch x0 (B, ...) with timesteps
    t (B,) in 1..T and noise eps shaped like x0."""
    # BEGIN SOLUTION
    a = _at(abar, t, x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps
    # END SOLUTION


def diffusion_loss(model, x0: torch.Tensor, abar: torch.Tensor, t: torch.Tensor | None = None,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over every entry of (eps - model(x_t, t))^2 with x_t = q_sample(x0, t, abar,
    eps). Without t, t is drawn uniformly from 1..T (torch.randint, one per row); without eps,
    eps ~ N(0, I) (torch.randn_like)."""
    # BEGIN SOLUTION
    if t is None:
        t = torch.randint(1, abar.shape[0] + 1, (x0.shape[0],))
    if eps is None:
        eps = torch.randn_like(x0)
    return (eps - model(q_sample(x0, t, abar, eps), t)).pow(2).mean()
    # END SOLUTION


def posterior_mean_variance(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                            betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(x_{t-1} | x_t, x0) = N(mean, variance I):
    mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) (1 - abar_{t-1}) /
    (1 - abar_t) x_t and variance = (1 - abar_{t-1}) / (1 - abar_t) beta_t (0 at t = 1).
    Returns (mean shaped like x0, variance (B, 1, ...) broadcastable to it)."""
    # BEGIN SOLUTION
    abar = alpha_bars(betas)
    prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    a, a_prev, b = _at(abar, t, x0), _at(prev, t, x0), _at(betas, t, x0)
    mean = a_prev.sqrt() * b / (1 - a) * x0 + (1 - b).sqrt() * (1 - a_prev) / (1 - a) * x_t
    return mean, (1 - a_prev) / (1 - a) * b
    # END SOLUTION


def p_sample_step(model, x_t: torch.Tensor, t: int, betas: torch.Tensor,
                  z: torch.Tensor) -> torch.Tensor:
    """One reverse step from x_t (B, ...) at timestep t (an int in 1..T) with noise z:
    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t) + sigma_t z, where
    eps_theta = model(x_t, t as a (B,) tensor) and sigma_t = sqrt(beta_t) for t > 1; at t = 1 no
    noise is added (x_0 is the mean)."""
    # BEGIN SOLUTION
    abar = alpha_bars(betas)
    beta, a = float(betas[t - 1]), float(abar[t - 1])
    eps = model(x_t, torch.full((x_t.shape[0],), t, dtype=torch.long))
    mean = (x_t - beta / math.sqrt(1 - a) * eps) / math.sqrt(1 - beta)
    return mean + math.sqrt(beta) * z if t > 1 else mean
    # END SOLUTION


def ddpm_sample(model, x_T: torch.Tensor, betas: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
    """Ancestral sampling: p_sample_step for t = T, T-1, ..., 1 from x_T. noise (T, *x_T.shape)
    gives the z of step t at noise[t - 1]; without it each step draws z with torch.randn_like.
    Returns x_0. Runs without building a graph (torch.no_grad)."""
    # BEGIN SOLUTION
    x = x_T
    with torch.no_grad():
        for t in range(betas.shape[0], 0, -1):
            z = torch.randn_like(x) if noise is None else noise[t - 1]
            x = p_sample_step(model, x, t, betas, z)
    return x
    # END SOLUTION


def ddim_sample(model, x_T: torch.Tensor, abar: torch.Tensor,
                timesteps: list[int]) -> torch.Tensor:
    """DDIM's deterministic sampler (eta = 0) over the decreasing timesteps (e.g. [T, ..., 1] or
    a subsequence): at each t, with eps = model(x, t) and the next timestep s (abar_0 = 1 after
    the last), x0_hat = (x - sqrt(1 - abar_t) eps) / sqrt(abar_t) and
    x <- sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps. Returns x after the last step (no grad)."""
    # BEGIN SOLUTION
    x = x_T
    with torch.no_grad():
        for i, t in enumerate(timesteps):
            a = float(abar[t - 1])
            a_next = float(abar[timesteps[i + 1] - 1]) if i + 1 < len(timesteps) else 1.0
            eps = model(x, torch.full((x.shape[0],), t, dtype=torch.long))
            x0_hat = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
            x = math.sqrt(a_next) * x0_hat + math.sqrt(1 - a_next) * eps
    return x
    # END SOLUTION


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps t (B,) into (B, dim), dim even: with half = dim // 2
    and frequencies w_k = 10000^(-k / half) for k = 0..half-1, the first half is sin(t w_k) and
    the second cos(t w_k). Returned as float32 and graded to an absolute 1e-4, so float32
    arithmetic is enough (the reference works in float64 and casts at the end)."""
    # BEGIN SOLUTION
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    args = t.to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1).float()
    # END SOLUTION


class Denoiser(nn.Module):
    """eps_theta(x_t, t) for data of data_dim features. Attribute ``net``: nn.Sequential(
    Linear(data_dim + t_dim, hidden), SiLU, Linear(hidden, hidden), SiLU, Linear(hidden,
    hidden), SiLU, Linear(hidden, data_dim)); its input is x_t followed by
    timestep_embedding(t, t_dim) cast to x_t's dtype."""

    def __init__(self, data_dim: int = 2, hidden: int = 128, t_dim: int = 32):
        super().__init__()
        # BEGIN SOLUTION
        self.t_dim = t_dim
        self.net = nn.Sequential(
            nn.Linear(data_dim + t_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, data_dim))
        # END SOLUTION

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        emb = timestep_embedding(t, self.t_dim).to(x_t.dtype)
        return self.net(torch.cat([x_t, emb], dim=1))
        # END SOLUTION


def train_diffusion(model: Denoiser, data: torch.Tensor, betas: torch.Tensor, steps: int,
                    batch_size: int = 256, lr: float = 1e-3) -> list[float]:
    """``steps`` Adam(lr) steps on diffusion_loss, each on ``batch_size`` rows of data drawn with
    torch.randint, t and eps drawn by diffusion_loss. Returns the losses."""
    # BEGIN SOLUTION
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    abar = alpha_bars(betas).to(data.dtype)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, data.shape[0], (batch_size,))
        loss = diffusion_loss(model, data[idx], abar)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
    # END SOLUTION
