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
  torch.randint, torch.randperm); where a noise argument is given, it is used instead.
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

_EXACT = "donot_use_mm_for_euclid_dist"  # cdist from differences, not ||a||^2 + ||b||^2 - 2ab


def _rows(x: torch.Tensor) -> torch.Tensor:
    """A 1-D tensor is a column of 1-D samples; anything else is (n, d) already."""
    return x.unsqueeze(-1) if x.dim() == 1 else x


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (m, n) between the rows of a (m, d) and b (n, d)."""
    return torch.cdist(_rows(a), _rows(b), p=2.0, compute_mode=_EXACT)


def _offdiag_mean(k: torch.Tensor) -> torch.Tensor:
    """Mean of a square matrix over its off-diagonal entries."""
    n = k.shape[0]
    mask = ~torch.eye(n, dtype=torch.bool, device=k.device)
    return k.masked_select(mask).sum() / (n * (n - 1))


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """The unbiased MMD^2 between samples x (m, d) and y (n, d), m, n >= 2, with the RBF kernel
    of the given bandwidth h; 1-D tensors are samples of 1-D data. A 0-d tensor."""
    x, y = _rows(x), _rows(y)
    gamma = 1.0 / (2.0 * float(bandwidth) ** 2)
    kern = lambda a, b: torch.exp(-gamma * _pairwise(a, b).square())  # noqa: E731
    return _offdiag_mean(kern(x, x)) + _offdiag_mean(kern(y, y)) - 2.0 * kern(x, y).mean()


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sqrt(2 E||X - Y|| - E||X - X'|| - E||Y - Y'||) over all pairs (i = j included) of x (m, d)
    and y (n, d); 1-D tensors are samples of 1-D data. A 0-d tensor."""
    x, y = _rows(x), _rows(y)
    e2 = 2.0 * _pairwise(x, y).mean() - _pairwise(x, x).mean() - _pairwise(y, y).mean()
    return e2.clamp_min(0.0).sqrt()


def wasserstein_1d(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """W1 between the empirical distributions of the 1-D samples u (m,) and v (n,): the area
    between their CDFs. A 0-d tensor."""
    u, v = u.reshape(-1), v.reshape(-1)
    dtype = torch.promote_types(u.dtype, v.dtype)
    u_s, v_s = u.to(dtype).sort().values, v.to(dtype).sort().values
    knots = torch.cat([u_s, v_s]).sort().values
    widths = knots.diff()                       # lengths of the pieces where both CDFs are flat
    left = knots[:-1].contiguous()
    cdf_u = torch.searchsorted(u_s, left, right=True).to(dtype) / u_s.numel()
    cdf_v = torch.searchsorted(v_s, left, right=True).to(dtype) / v_s.numel()
    return ((cdf_u - cdf_v).abs() * widths).sum()


# ---------------------------------------------------------------- part 2: GANs


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on D's logits: real samples labelled 1, generated ones 0; the mean
    over the real batch plus the mean over the generated batch. Stable for logits of +-1000."""
    # -log sigmoid(r) for the reals, -log(1 - sigmoid(f)) = -log sigmoid(-f) for the fakes
    return -F.logsigmoid(real_logits).mean() - F.logsigmoid(-fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """G's loss from D's logits on generated samples, a mean over the batch.
    "non_saturating": the cross-entropy of labelling them 1, mean(-log D(G(z)));
    "minimax": minus D's cross-entropy of labelling them 0, mean(log(1 - D(G(z)))).
    Stable for logits of +-1000."""
    if kind == "non_saturating":
        return F.softplus(-fake_logits).mean()      # -log sigmoid(f)
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()      # log(1 - sigmoid(f)) = -softplus(f)
    raise ValueError(f"unknown generator loss kind {kind!r}")


def _with_label(x: torch.Tensor, labels: torch.Tensor | None, n_classes: int) -> torch.Tensor:
    """x followed by the one-hot label (in x's dtype) when the model is conditional."""
    if n_classes <= 0:
        return x
    if labels is None:
        raise ValueError("a conditional model needs labels")
    onehot = F.one_hot(labels.long().reshape(-1), n_classes).to(dtype=x.dtype, device=x.device)
    return torch.cat([x, onehot], dim=-1)


_OUT = {"none": nn.Identity, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


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
        if out not in _OUT:
            raise ValueError(f"unknown output activation {out!r}")
        self.z_dim = z_dim
        self.n_classes = n_classes
        self.out = out
        layers = [
            nn.Linear(z_dim + n_classes, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, out_dim),
        ]
        self.net = nn.Sequential(*layers)
        self.squash = _OUT[out]()          # parameter-free, so the state dict is net's alone

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.squash(self.net(_with_label(z, labels, self.n_classes)))


class Discriminator(nn.Module):
    """D(x, labels) -> logits (B,). Attribute ``net``: nn.Sequential(Linear(in_dim + n_classes,
    hidden), LeakyReLU(0.2), Linear(hidden, hidden), LeakyReLU(0.2), Linear(hidden, 1)); the
    last axis is dropped. With n_classes > 0 the input is x followed by the one-hot label."""

    def __init__(self, in_dim: int, hidden: int, n_classes: int = 0):
        super().__init__()
        self.in_dim = in_dim
        self.n_classes = n_classes
        layers = [
            nn.Linear(in_dim + n_classes, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_with_label(x, labels, self.n_classes)).squeeze(-1)


def gan_step(G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer,
             opt_d: torch.optim.Optimizer, real: torch.Tensor, z: torch.Tensor,
             labels: torch.Tensor | None = None) -> tuple[float, float]:
    """One step: first D (discriminator_loss on D(real) and D of G(z) detached from G), then G
    (generator_loss, non-saturating, on the updated D's logits for G(z), the same z). Each
    optimiser clears its gradients before its own backward pass, so neither step leaks into the
    other. ``labels`` (conditional GANs) go to both G and D, for the real and the generated
    batch alike. Returns (D's loss, G's loss) as floats."""
    fake = G(z, labels)

    # discriminator: G's output is cut from G's graph
    opt_d.zero_grad()
    d_loss = discriminator_loss(D(real, labels), D(fake.detach(), labels))
    d_loss.backward()
    opt_d.step()

    # generator: through the freshly updated D, with the same z (G has not moved, so same fake)
    opt_g.zero_grad()
    g_loss = generator_loss(D(fake, labels), "non_saturating")
    g_loss.backward()
    opt_g.step()
    return float(d_loss.detach()), float(g_loss.detach())


def train_gan(G: Generator, D: Discriminator, data: torch.Tensor, steps: int,
              batch_size: int = 64, lr: float = 1e-3, labels: torch.Tensor | None = None
              ) -> list[tuple[float, float]]:
    """``steps`` calls of gan_step with Adam(lr, betas=(0.5, 0.999)) for each network: a batch of
    ``batch_size`` rows of data (and their labels, for a conditional GAN) drawn with
    torch.randint each step, and z ~ N(0, I) of (batch_size, G.z_dim). Returns the losses."""
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    p = next(G.parameters())
    history = []
    for _ in range(steps):
        idx = torch.randint(0, data.shape[0], (batch_size,), device=data.device)
        real = data.index_select(0, idx)
        lab = None if labels is None else labels.index_select(0, idx.to(labels.device))
        z = torch.randn(batch_size, G.z_dim, dtype=p.dtype, device=p.device)
        history.append(gan_step(G, D, opt_g, opt_d, real, z, lab))
    return history


# ---------------------------------------------------------------- part 3: diffusion


def linear_betas(T: int, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """beta_1..beta_T evenly spaced from start to end (float64, (T,))."""
    return torch.linspace(start, end, T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol and Dhariwal's schedule: abar(t) = f(t) / f(0), f(t) = cos((t / T + s) / (1 + s) *
    pi / 2)^2, beta_t = 1 - abar(t) / abar(t - 1) capped at max_beta (float64, (T,))."""
    def f(t: torch.Tensor) -> torch.Tensor:
        return torch.cos((t / T + s) / (1 + s) * (math.pi / 2)).square()

    steps = torch.arange(T + 1, dtype=torch.float64)      # t = 0..T
    abar = f(steps) / f(torch.zeros((), dtype=torch.float64))
    return (1.0 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s <= t} (1 - beta_s), for t = 1..T ((T,))."""
    return torch.cumprod(1.0 - betas, dim=0)


def _lookup(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t - 1] (t 1-indexed), cast to like's dtype and viewed as (B, 1, ...)."""
    picked = values.gather(0, (t.reshape(-1).long() - 1).to(values.device))
    return picked.to(dtype=like.dtype, device=like.device).view(-1, *(1,) * (like.dim() - 1))


_at = _lookup


def q_sample(x0: torch.Tensor, t: torch.Tensor, abar: torch.Tensor,
             eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, for a batch x0 (B, ...) with timesteps
    t (B,) in 1..T and noise eps shaped like x0."""
    return _lookup(abar.sqrt(), t, x0) * x0 + _lookup((1.0 - abar).sqrt(), t, x0) * eps


def diffusion_loss(model, x0: torch.Tensor, abar: torch.Tensor, t: torch.Tensor | None = None,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over every entry of (eps - model(x_t, t))^2 with x_t = q_sample(x0, t, abar,
    eps). Without t, t is drawn uniformly from 1..T (torch.randint, one per row); without eps,
    eps ~ N(0, I) (torch.randn_like)."""
    if t is None:
        t = torch.randint(1, abar.shape[0] + 1, (x0.shape[0],), device=x0.device)
    if eps is None:
        eps = torch.randn_like(x0)
    x_t = q_sample(x0, t, abar, eps)
    return (eps - model(x_t, t)).square().mean()


def posterior_mean_variance(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                            betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(x_{t-1} | x_t, x0) = N(mean, variance I):
    mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) (1 - abar_{t-1}) /
    (1 - abar_t) x_t and variance = (1 - abar_{t-1}) / (1 - abar_t) beta_t (0 at t = 1).
    Returns (mean shaped like x0, variance (B, 1, ...) broadcastable to it)."""
    alphas = 1.0 - betas
    abar = torch.cumprod(alphas, dim=0)
    abar_prev = F.pad(abar[:-1], (1, 0), value=1.0)       # abar_0 = 1 in front
    coef_x0 = abar_prev.sqrt() * betas / (1.0 - abar)
    coef_xt = alphas.sqrt() * (1.0 - abar_prev) / (1.0 - abar)
    var = (1.0 - abar_prev) / (1.0 - abar) * betas
    mean = _lookup(coef_x0, t, x0) * x0 + _lookup(coef_xt, t, x0) * x_t
    return mean, _lookup(var, t, x0)


def p_sample_step(model, x_t: torch.Tensor, t: int, betas: torch.Tensor,
                  z: torch.Tensor) -> torch.Tensor:
    """One reverse step from x_t (B, ...) at timestep t (an int in 1..T) with noise z:
    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t) + sigma_t z, where
    eps_theta = model(x_t, t as a (B,) tensor) and sigma_t = sqrt(beta_t) for t > 1; at t = 1 no
    noise is added (x_0 is the mean)."""
    t = int(t)
    tt = torch.full((x_t.shape[0],), t, dtype=torch.int64, device=x_t.device)
    eps = model(x_t, tt)
    abar = torch.cumprod(1.0 - betas, dim=0)
    coef_eps = _lookup(betas / (1.0 - abar).sqrt(), tt, x_t)
    inv_sqrt_alpha = _lookup((1.0 - betas).rsqrt(), tt, x_t)
    mean = (x_t - coef_eps * eps) * inv_sqrt_alpha
    if t == 1:
        return mean
    return mean + _lookup(betas.sqrt(), tt, x_t) * z


@torch.no_grad()
def ddpm_sample(model, x_T: torch.Tensor, betas: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
    """Ancestral sampling: p_sample_step for t = T, T-1, ..., 1 from x_T. noise (T, *x_T.shape)
    gives the z of step t at noise[t - 1]; without it each step draws z with torch.randn_like.
    Returns x_0. Runs without building a graph (torch.no_grad)."""
    x = x_T
    for t in range(betas.shape[0], 0, -1):
        z = noise[t - 1] if noise is not None else torch.randn_like(x)
        x = p_sample_step(model, x, t, betas, z)
    return x


@torch.no_grad()
def ddim_sample(model, x_T: torch.Tensor, abar: torch.Tensor,
                timesteps: list[int]) -> torch.Tensor:
    """DDIM's deterministic sampler (eta = 0) over the decreasing timesteps (e.g. [T, ..., 1] or
    a subsequence): at each t, with eps = model(x, t) and the next timestep s (abar_0 = 1 after
    the last), x0_hat = (x - sqrt(1 - abar_t) eps) / sqrt(abar_t) and
    x <- sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps. Returns x after the last step (no grad)."""
    abar0 = F.pad(abar, (1, 0), value=1.0)                # abar0[t] = abar_t, abar0[0] = 1
    ts = [int(t) for t in timesteps]
    x = x_T
    B = x.shape[0]
    for t, s in zip(ts, ts[1:] + [0]):
        tt = torch.full((B,), t, dtype=torch.int64, device=x.device)
        ss = torch.full((B,), s, dtype=torch.int64, device=x.device)
        eps = model(x, tt)
        a_t = _lookup(abar0, tt + 1, x)                    # _lookup is 1-indexed
        a_s = _lookup(abar0, ss + 1, x)
        x0_hat = (x - (1.0 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_s.sqrt() * x0_hat + (1.0 - a_s).sqrt() * eps
    return x


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps t (B,) into (B, dim), dim even, float32 (the float
    value of t is used): with half = dim // 2 and frequencies w_k = 10000^(-k / half) for
    k = 0..half-1, the first half is sin(t w_k) and the second cos(t w_k)."""
    half = dim // 2
    k = torch.arange(half, dtype=torch.float64, device=t.device)
    w = torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=t.device), -k / half)
    arg = t.reshape(-1).to(torch.float32).to(torch.float64).unsqueeze(1) * w.unsqueeze(0)
    return torch.cat([arg.sin(), arg.cos()], dim=1).to(torch.float32)


class Denoiser(nn.Module):
    """eps_theta(x_t, t) for data of data_dim features. Attribute ``net``: nn.Sequential(
    Linear(data_dim + t_dim, hidden), SiLU, Linear(hidden, hidden), SiLU, Linear(hidden,
    hidden), SiLU, Linear(hidden, data_dim)); its input is x_t followed by
    timestep_embedding(t, t_dim) cast to x_t's dtype."""

    def __init__(self, data_dim: int = 2, hidden: int = 128, t_dim: int = 32):
        super().__init__()
        self.data_dim = data_dim
        self.t_dim = t_dim
        layers = [
            nn.Linear(data_dim + t_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, data_dim),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(t, self.t_dim).to(dtype=x_t.dtype, device=x_t.device)
        return self.net(torch.cat([x_t, emb], dim=-1))


def train_diffusion(model: Denoiser, data: torch.Tensor, betas: torch.Tensor, steps: int,
                    batch_size: int = 256, lr: float = 1e-3) -> list[float]:
    """``steps`` Adam(lr) steps on diffusion_loss, each on ``batch_size`` rows of data drawn with
    torch.randint, t and eps drawn by diffusion_loss. Returns the losses."""
    abar = alpha_bars(betas)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, data.shape[0], (batch_size,), device=data.device)
        loss = diffusion_loss(model, data.index_select(0, idx), abar)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
