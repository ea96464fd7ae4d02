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

# How often the training loops print a progress line.
_LOG_EVERY = 500

# ---------------------------------------------------------------- small private helpers


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (m, n) between the rows of a (m, d) and b (n, d)."""
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(-1).sqrt()


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, 1) if x.dim() == 1 else x


def _common_float(*tensors: torch.Tensor) -> torch.dtype:
    """The widest floating dtype among the tensors (never narrower than any of them)."""
    dtype = None
    for tensor in tensors:
        d = tensor.dtype if tensor.is_floating_point() else torch.get_default_dtype()
        dtype = d if dtype is None else torch.promote_types(dtype, d)
    return dtype


def _as_sample_matrix(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A sample set as an (m, d) matrix in ``dtype``: 1-D tensors are m samples of 1-D data."""
    x = torch.as_tensor(x)
    if x.dim() == 1:
        x = x.unsqueeze(1)
    return x.to(dtype)


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 for all pairs, computed from the differences (no cancellation)."""
    diff = a.unsqueeze(1) - b.unsqueeze(0)
    return (diff * diff).sum(dim=-1)


def _rbf_kernel(a: torch.Tensor, b: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """k(a_i, b_j) = exp(-||a_i - b_j||^2 / (2 h^2)), an (m, n) matrix."""
    return torch.exp(-_squared_distances(a, b) / (2.0 * float(bandwidth) ** 2))


def _off_diagonal_mean(k: torch.Tensor) -> torch.Tensor:
    """The mean of a square matrix's entries with i != j (the diagonal masked out by an eye)."""
    m = k.shape[0]
    keep = ~torch.eye(m, dtype=torch.bool, device=k.device)
    return torch.where(keep, k, torch.zeros((), dtype=k.dtype, device=k.device)).sum() / (
        m * (m - 1))


def _mean_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """E||A - B|| over all pairs of rows (i = j included)."""
    return _squared_distances(a, b).sqrt().mean()


def _softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))


def _timestep_vector(t, batch: int, device) -> torch.Tensor:
    """Timesteps as a (batch,) int64 tensor (an int or a 0-d tensor is repeated)."""
    t = torch.as_tensor(t, device=device)
    if t.dim() == 0:
        t = t.expand(batch)
    return t.to(torch.long).reshape(batch)


def _broadcast_like(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-row values (B,) reshaped to (B, 1, ..., 1) and cast to x's dtype, for broadcasting."""
    return values.reshape(-1, *([1] * (x.dim() - 1))).to(dtype=x.dtype, device=x.device)


class _Schedule:
    """The quantities of a beta schedule, looked up at 1-indexed timesteps (abar_0 = 1).

    Everything is computed in the schedule's own floating dtype (or wider, when asked), and only
    the final per-row coefficients are cast to the batch's dtype."""

    def __init__(self, betas: torch.Tensor | None = None, abar: torch.Tensor | None = None,
                 dtype: torch.dtype | None = None):
        if betas is not None:
            betas = torch.as_tensor(betas)
            if dtype is not None:
                betas = betas.to(torch.promote_types(_common_float(betas), dtype))
            self.betas = betas
            self.abar = alpha_bars(betas)
        else:
            abar = torch.as_tensor(abar)
            if dtype is not None:
                abar = abar.to(torch.promote_types(_common_float(abar), dtype))
            self.betas = None
            self.abar = abar
        one = torch.ones(1, dtype=self.abar.dtype, device=self.abar.device)
        # abar_ext[t] = abar_t for t = 0..T
        self.abar_ext = torch.cat([one, self.abar])

    @property
    def T(self) -> int:
        return int(self.abar.shape[0])

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self.betas[t - 1]

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.betas[t - 1]

    def abar_at(self, t: torch.Tensor) -> torch.Tensor:
        return self.abar_ext[t]

    def abar_prev(self, t: torch.Tensor) -> torch.Tensor:
        return self.abar_ext[t - 1]


# ---------------------------------------------------------------- part 1: distances


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """The unbiased MMD^2 between samples x (m, d) and y (n, d), m, n >= 2, with the RBF kernel
    of the given bandwidth h; 1-D tensors are samples of 1-D data. A 0-d tensor."""
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    dtype = _common_float(x, y)
    a = _as_sample_matrix(x, dtype)
    b = _as_sample_matrix(y, dtype)
    kxx = _off_diagonal_mean(_rbf_kernel(a, a, bandwidth))
    kyy = _off_diagonal_mean(_rbf_kernel(b, b, bandwidth))
    kxy = _rbf_kernel(a, b, bandwidth).mean()
    return kxx + kyy - 2.0 * kxy


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sqrt(2 E||X - Y|| - E||X - X'|| - E||Y - Y'||) over all pairs (i = j included) of x (m, d)
    and y (n, d); 1-D tensors are samples of 1-D data. A 0-d tensor."""
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    dtype = _common_float(x, y)
    a = _as_sample_matrix(x, dtype)
    b = _as_sample_matrix(y, dtype)
    inside = 2.0 * _mean_distance(a, b) - _mean_distance(a, a) - _mean_distance(b, b)
    # round-off can leave a tiny negative number for (near-)identical samples
    return inside.clamp(min=0).sqrt()


def wasserstein_1d(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """W1 between the empirical distributions of the 1-D samples u (m,) and v (n,): the area
    between their CDFs. A 0-d tensor."""
    u, v = torch.as_tensor(u), torch.as_tensor(v)
    dtype = _common_float(u, v)
    us = torch.sort(u.reshape(-1).to(dtype)).values
    vs = torch.sort(v.reshape(-1).to(dtype)).values
    m, n = us.shape[0], vs.shape[0]
    # Quantile form: W1 = int_0^1 |F_u^{-1}(q) - F_v^{-1}(q)| dq.  The quantile functions are
    # step functions jumping at q = i/m and q = j/n; in units of 1/(m n) these are the exact
    # integers i n and j m, so the pieces are found without any floating comparisons.
    dev = us.device
    starts = torch.unique(torch.cat([torch.arange(m, device=dev) * n,
                                     torch.arange(n, device=dev) * m]))  # sorted
    ends = torch.cat([starts[1:], torch.tensor([m * n], device=dev)])
    widths = (ends - starts).to(dtype) / (m * n)
    qu = us[torch.div(starts, n, rounding_mode="floor")]
    qv = vs[torch.div(starts, m, rounding_mode="floor")]
    return ((qu - qv).abs() * widths).sum()


# ---------------------------------------------------------------- part 2: GANs


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on D's logits: real samples labelled 1, generated ones 0; the mean
    over the real batch plus the mean over the generated batch. Stable for logits of +-1000."""
    # -log sigmoid(l) = softplus(-l);  -log(1 - sigmoid(l)) = softplus(l)
    return _softplus(-real_logits).mean() + _softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """G's loss from D's logits on generated samples, a mean over the batch.
    "non_saturating": the cross-entropy of labelling them 1, mean(-log D(G(z)));
    "minimax": minus D's cross-entropy of labelling them 0, mean(log(1 - D(G(z)))).
    Stable for logits of +-1000."""
    if kind == "non_saturating":
        return _softplus(-fake_logits).mean()
    if kind == "minimax":
        return -_softplus(fake_logits).mean()
    raise ValueError(f"unknown generator loss kind {kind!r}")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _with_one_hot(x: torch.Tensor, labels: torch.Tensor | None, n_classes: int) -> torch.Tensor:
    """x followed by the one-hot label (in x's dtype) when the model is conditional."""
    if n_classes <= 0:
        return x
    if labels is None:
        raise ValueError("a conditional model (n_classes > 0) needs labels")
    labels = torch.as_tensor(labels, device=x.device).to(torch.long).reshape(-1)
    return torch.cat([x, F.one_hot(labels, n_classes).to(x.dtype)], dim=1)


def _param_dtype(module: nn.Module) -> torch.dtype:
    for p in module.parameters():
        return p.dtype
    return torch.get_default_dtype()


def _param_device(module: nn.Module):
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


_OUTPUT_ACTIVATIONS = {
    "none": lambda h: h,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


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
        if out not in _OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output activation {out!r}")
        self.z_dim = int(z_dim)
        self.n_classes = int(n_classes)
        self.out = out
        self.net = nn.Sequential(
            nn.Linear(self.z_dim + self.n_classes, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.net(_with_one_hot(z, labels, self.n_classes))
        return _OUTPUT_ACTIVATIONS[self.out](h)


class Discriminator(nn.Module):
    """D(x, labels) -> logits (B,). Attribute ``net``: nn.Sequential(Linear(in_dim + n_classes,
    hidden), LeakyReLU(0.2), Linear(hidden, hidden), LeakyReLU(0.2), Linear(hidden, 1)); the
    last axis is dropped. With n_classes > 0 the input is x followed by the one-hot label."""

    def __init__(self, in_dim: int, hidden: int, n_classes: int = 0):
        super().__init__()
        self.in_dim = int(in_dim)
        self.n_classes = int(n_classes)
        self.net = nn.Sequential(
            nn.Linear(self.in_dim + self.n_classes, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(_with_one_hot(x, labels, self.n_classes)).squeeze(-1)


def gan_step(G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer,
             opt_d: torch.optim.Optimizer, real: torch.Tensor, z: torch.Tensor,
             labels: torch.Tensor | None = None) -> tuple[float, float]:
    """One step: first D (discriminator_loss on D(real) and D of G(z) detached from G), then G
    (generator_loss, non-saturating, on the updated D's logits for G(z), the same z). Each
    optimiser clears its gradients before its own backward pass, so neither step leaks into the
    other. ``labels`` (conditional GANs) go to both G and D, for the real and the generated
    batch alike. Returns (D's loss, G's loss) as floats."""
    # --- the discriminator: G's output is produced without a graph back into G
    with torch.no_grad():
        fake_for_d = G(z, labels)
    opt_d.zero_grad()
    d_loss = discriminator_loss(D(real, labels), D(fake_for_d, labels))
    d_loss.backward()
    opt_d.step()

    # --- the generator: a fresh forward pass of G (unchanged so far) through the updated D
    opt_g.zero_grad()
    g_loss = generator_loss(D(G(z, labels), labels), "non_saturating")
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
    data = torch.as_tensor(data)
    d_dtype, g_dtype = _param_dtype(D), _param_dtype(G)
    g_device = _param_device(G)
    n = data.shape[0]
    history: list[tuple[float, float]] = []
    for step in range(int(steps)):
        idx = torch.randint(0, n, (batch_size,), device=data.device)
        real = data[idx].to(d_dtype)
        batch_labels = None if labels is None else torch.as_tensor(labels)[idx]
        z = torch.randn(batch_size, G.z_dim, dtype=g_dtype, device=g_device)
        history.append(gan_step(G, D, opt_g, opt_d, real, z, batch_labels))
        if (step + 1) % _LOG_EVERY == 0:
            d_l, g_l = history[-1]
            print(f"[gan] step {step + 1}/{steps}: D loss {d_l:.4f}, G loss {g_l:.4f}")
    return history


# ---------------------------------------------------------------- part 3: diffusion


def linear_betas(T: int, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """beta_1..beta_T evenly spaced from start to end (float64, (T,))."""
    return torch.linspace(start, end, int(T), dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol and Dhariwal's schedule: abar(t) = f(t) / f(0), f(t) = cos((t / T + s) / (1 + s) *
    pi / 2)^2, beta_t = 1 - abar(t) / abar(t - 1) capped at max_beta (float64, (T,))."""
    steps = torch.arange(int(T) + 1, dtype=torch.float64)

    def f(tt: torch.Tensor) -> torch.Tensor:
        return torch.cos((tt / T + s) / (1 + s) * (math.pi / 2)) ** 2

    fs = f(steps)
    abar = fs / fs[0]
    betas = 1.0 - abar[1:] / abar[:-1]
    return betas.clamp(max=max_beta)


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s <= t} (1 - beta_s), for t = 1..T ((T,))."""
    betas = torch.as_tensor(betas)
    if not betas.is_floating_point():
        betas = betas.to(torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t - 1] shaped to broadcast against a batch like ``like`` (B, ...)."""
    return values[t - 1].to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def q_sample(x0: torch.Tensor, t: torch.Tensor, abar: torch.Tensor,
             eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, for a batch x0 (B, ...) with timesteps
    t (B,) in 1..T and noise eps shaped like x0."""
    sched = _Schedule(abar=abar, dtype=x0.dtype)
    t = _timestep_vector(t, x0.shape[0], sched.abar.device)
    a = sched.abar_at(t)
    return _broadcast_like(a.sqrt(), x0) * x0 + _broadcast_like((1.0 - a).sqrt(), x0) * eps


def diffusion_loss(model, x0: torch.Tensor, abar: torch.Tensor, t: torch.Tensor | None = None,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over every entry of (eps - model(x_t, t))^2 with x_t = q_sample(x0, t, abar,
    eps). Without t, t is drawn uniformly from 1..T (torch.randint, one per row); without eps,
    eps ~ N(0, I) (torch.randn_like)."""
    batch = x0.shape[0]
    if t is None:
        t = torch.randint(1, int(abar.shape[0]) + 1, (batch,), device=x0.device)
    else:
        t = _timestep_vector(t, batch, x0.device)
    if eps is None:
        eps = torch.randn_like(x0)
    x_t = q_sample(x0, t, abar, eps)
    return (eps - model(x_t, t)).pow(2).mean()


def posterior_mean_variance(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                            betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(x_{t-1} | x_t, x0) = N(mean, variance I):
    mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) (1 - abar_{t-1}) /
    (1 - abar_t) x_t and variance = (1 - abar_{t-1}) / (1 - abar_t) beta_t (0 at t = 1).
    Returns (mean shaped like x0, variance (B, 1, ...) broadcastable to it)."""
    sched = _Schedule(betas=betas, dtype=x0.dtype)
    t = _timestep_vector(t, x0.shape[0], sched.betas.device)
    beta, alpha = sched.beta(t), sched.alpha(t)
    a_t, a_prev = sched.abar_at(t), sched.abar_prev(t)
    coef_x0 = a_prev.sqrt() * beta / (1.0 - a_t)
    coef_xt = alpha.sqrt() * (1.0 - a_prev) / (1.0 - a_t)
    variance = (1.0 - a_prev) / (1.0 - a_t) * beta
    mean = _broadcast_like(coef_x0, x0) * x0 + _broadcast_like(coef_xt, x0) * x_t
    return mean, _broadcast_like(variance, x0)


def p_sample_step(model, x_t: torch.Tensor, t: int, betas: torch.Tensor,
                  z: torch.Tensor) -> torch.Tensor:
    """One reverse step from x_t (B, ...) at timestep t (an int in 1..T) with noise z:
    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t) + sigma_t z, where
    eps_theta = model(x_t, t as a (B,) tensor) and sigma_t = sqrt(beta_t) for t > 1; at t = 1 no
    noise is added (x_0 is the mean)."""
    t = int(t)
    sched = _Schedule(betas=betas, dtype=x_t.dtype)
    t_vec = _timestep_vector(t, x_t.shape[0], x_t.device)
    eps_theta = model(x_t, t_vec)
    beta = sched.betas[t - 1]
    coef_eps = (beta / (1.0 - sched.abar[t - 1]).sqrt()).to(x_t.dtype)
    sqrt_alpha = (1.0 - beta).sqrt().to(x_t.dtype)
    mean = (x_t - coef_eps * eps_theta) / sqrt_alpha
    if t == 1:
        return mean
    return mean + beta.sqrt().to(x_t.dtype) * z


def ddpm_sample(model, x_T: torch.Tensor, betas: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
    """Ancestral sampling: p_sample_step for t = T, T-1, ..., 1 from x_T. noise (T, *x_T.shape)
    gives the z of step t at noise[t - 1]; without it each step draws z with torch.randn_like.
    Returns x_0. Runs without building a graph (torch.no_grad)."""
    T = int(torch.as_tensor(betas).shape[0])
    x = x_T
    with torch.no_grad():
        for t in range(T, 0, -1):
            z = noise[t - 1] if noise is not None else torch.randn_like(x)
            x = p_sample_step(model, x, t, betas, z)
    return x


def ddim_sample(model, x_T: torch.Tensor, abar: torch.Tensor,
                timesteps: list[int]) -> torch.Tensor:
    """DDIM's deterministic sampler (eta = 0) over the decreasing timesteps (e.g. [T, ..., 1] or
    a subsequence): at each t, with eps = model(x, t) and the next timestep s (abar_0 = 1 after
    the last), x0_hat = (x - sqrt(1 - abar_t) eps) / sqrt(abar_t) and
    x <- sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps. Returns x after the last step (no grad)."""
    sched = _Schedule(abar=abar, dtype=x_T.dtype)
    steps = [int(t) for t in timesteps]
    x = x_T
    with torch.no_grad():
        for i, t in enumerate(steps):
            s = steps[i + 1] if i + 1 < len(steps) else 0
            a_t, a_s = sched.abar_ext[t], sched.abar_ext[s]
            eps = model(x, _timestep_vector(t, x.shape[0], x.device))
            x0_hat = (x - (1.0 - a_t).sqrt().to(x.dtype) * eps) / a_t.sqrt().to(x.dtype)
            x = a_s.sqrt().to(x.dtype) * x0_hat + (1.0 - a_s).sqrt().to(x.dtype) * eps
    return x


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps t (B,) into (B, dim), dim even, float32 (the float
    value of t is used): with half = dim // 2 and frequencies w_k = 10000^(-k / half) for
    k = 0..half-1, the first half is sin(t w_k) and the second cos(t w_k)."""
    t = torch.as_tensor(t)
    half = dim // 2
    # evaluated in float64, rounded once to float32 at the end
    k = torch.arange(half, dtype=torch.float64, device=t.device)
    freqs = torch.pow(torch.tensor(10000.0, dtype=torch.float64, device=t.device), -k / half)
    args = t.reshape(-1).to(torch.float64)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1).to(torch.float32)


class Denoiser(nn.Module):
    """eps_theta(x_t, t) for data of data_dim features. Attribute ``net``: nn.Sequential(
    Linear(data_dim + t_dim, hidden), SiLU, Linear(hidden, hidden), SiLU, Linear(hidden,
    hidden), SiLU, Linear(hidden, data_dim)); its input is x_t followed by
    timestep_embedding(t, t_dim) cast to x_t's dtype."""

    def __init__(self, data_dim: int = 2, hidden: int = 128, t_dim: int = 32):
        super().__init__()
        self.data_dim = int(data_dim)
        self.t_dim = int(t_dim)
        self.net = nn.Sequential(
            nn.Linear(self.data_dim + self.t_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, self.data_dim),
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = _timestep_vector(t, x_t.shape[0], x_t.device)
        emb = timestep_embedding(t, self.t_dim).to(dtype=x_t.dtype, device=x_t.device)
        return self.net(torch.cat([x_t, emb], dim=1))


def train_diffusion(model: Denoiser, data: torch.Tensor, betas: torch.Tensor, steps: int,
                    batch_size: int = 256, lr: float = 1e-3) -> list[float]:
    """``steps`` Adam(lr) steps on diffusion_loss, each on ``batch_size`` rows of data drawn with
    torch.randint, t and eps drawn by diffusion_loss. Returns the losses."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    data = torch.as_tensor(data)
    abar = alpha_bars(betas)
    dtype = _param_dtype(model)
    n = data.shape[0]
    history: list[float] = []
    for step in range(int(steps)):
        idx = torch.randint(0, n, (batch_size,), device=data.device)
        x0 = data[idx].to(dtype)
        loss = diffusion_loss(model, x0, abar)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
        if (step + 1) % _LOG_EVERY == 0:
            print(f"[diffusion] step {step + 1}/{steps}: loss {history[-1]:.4f}")
    return history
