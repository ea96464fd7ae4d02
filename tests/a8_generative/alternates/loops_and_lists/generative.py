"""Generative models: distances between samples, a GAN, and a denoising diffusion model.

Alternate solution "loops_and_lists": written the way a student who thinks in explicit loops
and plain Python would write it. Distances are accumulated row by row (the inner loop over the
other sample is a single vectorised tensor expression), W1 walks two sorted Python lists,
the schedules are built with Python loops over floats, and the samplers are explicit loops
over timesteps with per-step coefficients taken from plain Python lists.

Conventions (see the README): timesteps are 1-indexed (betas[t - 1] is beta_t, abar_0 = 1);
a denoiser is called as model(x_t, t) with t a (B,) int64 tensor; random numbers come from
torch's global generator unless a noise argument is given; float32 and float64 both work.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: F401  (kept from the stub)
from torch import nn

# ---------------------------------------------------------------- part 1: distances


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (m, n) between the rows of a (m, d) and b (n, d)."""
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(-1).sqrt()


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, 1) if x.dim() == 1 else x


def _as_samples(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both samples as 2-D (count, features) tensors of one common floating dtype."""
    x = torch.as_tensor(x)
    y = torch.as_tensor(y)
    dtype = torch.promote_types(x.dtype, y.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    x = x.to(dtype)
    y = y.to(dtype)
    if x.dim() == 1:
        x = x.reshape(-1, 1)
    if y.dim() == 1:
        y = y.reshape(-1, 1)
    return x, y


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, bandwidth: float,
                skip_diagonal: bool) -> torch.Tensor:
    """sum_i sum_j k(a_i, b_j), row by row; with skip_diagonal (a is b) the j = i terms are
    left out."""
    two_h2 = 2.0 * float(bandwidth) ** 2
    total = a.new_zeros(())
    for i in range(a.shape[0]):
        sq = ((a[i] - b) ** 2).sum(dim=1)          # squared distances of row i to every b_j
        k_row = torch.exp(-sq / two_h2)
        if skip_diagonal:
            total = total + k_row[:i].sum() + k_row[i + 1:].sum()
        else:
            total = total + k_row.sum()
    return total


def _distance_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum_i sum_j ||a_i - b_j|| (every pair, i = j included), row by row."""
    total = a.new_zeros(())
    for i in range(a.shape[0]):
        total = total + ((a[i] - b) ** 2).sum(dim=1).sqrt().sum()
    return total


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """The unbiased MMD^2 between samples x (m, d) and y (n, d), m, n >= 2, with the RBF kernel
    of the given bandwidth h; 1-D tensors are samples of 1-D data. A 0-d tensor."""
    x, y = _as_samples(x, y)
    m = x.shape[0]
    n = y.shape[0]
    kxx = _kernel_sum(x, x, bandwidth, skip_diagonal=True)
    kyy = _kernel_sum(y, y, bandwidth, skip_diagonal=True)
    kxy = _kernel_sum(x, y, bandwidth, skip_diagonal=False)
    return kxx / (m * (m - 1)) + kyy / (n * (n - 1)) - 2.0 * kxy / (m * n)


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sqrt(2 E||X - Y|| - E||X - X'|| - E||Y - Y'||) over all pairs (i = j included) of x (m, d)
    and y (n, d); 1-D tensors are samples of 1-D data. A 0-d tensor."""
    x, y = _as_samples(x, y)
    m = x.shape[0]
    n = y.shape[0]
    e_xy = _distance_sum(x, y) / (m * n)
    e_xx = _distance_sum(x, x) / (m * m)
    e_yy = _distance_sum(y, y) / (n * n)
    inside = 2.0 * e_xy - e_xx - e_yy
    # rounding can leave a tiny negative number where the distance is 0
    return torch.sqrt(torch.clamp(inside, min=0.0))


def wasserstein_1d(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """W1 between the empirical distributions of the 1-D samples u (m,) and v (n,): the area
    between their CDFs. A 0-d tensor."""
    u_t = torch.as_tensor(u)
    v_t = torch.as_tensor(v)
    dtype = torch.promote_types(u_t.dtype, v_t.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    us = sorted(float(a) for a in u_t.reshape(-1).tolist())
    vs = sorted(float(b) for b in v_t.reshape(-1).tolist())
    m = len(us)
    n = len(vs)

    # merge the two sorted lists into one sorted list of every sample point
    merged = []
    i = j = 0
    while i < m and j < n:
        if us[i] <= vs[j]:
            merged.append(us[i])
            i += 1
        else:
            merged.append(vs[j])
            j += 1
    merged.extend(us[i:])
    merged.extend(vs[j:])

    # walk along the merged points: between merged[k] and merged[k + 1] the two empirical
    # CDFs are constant, F_u = (#u <= merged[k]) / m and F_v = (#v <= merged[k]) / n
    area = 0.0
    i = j = 0
    for k in range(len(merged) - 1):
        here = merged[k]
        while i < m and us[i] <= here:
            i += 1
        while j < n and vs[j] <= here:
            j += 1
        width = merged[k + 1] - here
        if width > 0.0:
            area += abs(i / m - j / n) * width
    return torch.tensor(area, dtype=dtype, device=u_t.device)


# ---------------------------------------------------------------- part 2: GANs


def _log1p_exp(x: torch.Tensor) -> torch.Tensor:
    """log(1 + e^x) without overflow (log(e^0 + e^x)); its gradient is sigmoid(x)."""
    return torch.logaddexp(torch.zeros_like(x), x)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on D's logits: real samples labelled 1, generated ones 0; the mean
    over the real batch plus the mean over the generated batch. Stable for logits of +-1000."""
    # -log sigmoid(r) = log(1 + e^-r);  -log(1 - sigmoid(f)) = log(1 + e^f)
    real_part = _log1p_exp(-real_logits).mean()
    fake_part = _log1p_exp(fake_logits).mean()
    return real_part + fake_part


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """G's loss from D's logits on generated samples, a mean over the batch.
    "non_saturating": the cross-entropy of labelling them 1, mean(-log D(G(z)));
    "minimax": minus D's cross-entropy of labelling them 0, mean(log(1 - D(G(z)))).
    Stable for logits of +-1000."""
    if kind == "non_saturating":
        return _log1p_exp(-fake_logits).mean()          # -log sigmoid(f)
    if kind == "minimax":
        return (-_log1p_exp(fake_logits)).mean()        # log(1 - sigmoid(f))
    raise ValueError(f"unknown generator loss kind: {kind!r}")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _one_hot(labels: torch.Tensor, n_classes: int, like: torch.Tensor) -> torch.Tensor:
    """(B, n_classes) one-hot rows in like's dtype: row b has a 1 in column labels[b]."""
    labels = torch.as_tensor(labels, device=like.device).reshape(-1).long()
    columns = torch.arange(n_classes, device=like.device)
    return (labels[:, None] == columns[None, :]).to(like.dtype)


def _leaky_stack(sizes: list[int]) -> nn.Sequential:
    """Linear, LeakyReLU(0.2), ..., Linear through the given widths (no activation at the end)."""
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2:
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
        if out not in ("none", "sigmoid", "tanh"):
            raise ValueError(f"unknown output activation: {out!r}")
        self.z_dim = z_dim
        self.n_classes = n_classes
        self.out_dim = out_dim
        self.out = out
        self.net = _leaky_stack([z_dim + n_classes, hidden, hidden, out_dim])

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        inputs = z
        if self.n_classes > 0:
            if labels is None:
                raise ValueError("a conditional Generator needs labels")
            inputs = torch.cat([z, _one_hot(labels, self.n_classes, z)], dim=1)
        h = self.net(inputs)
        if self.out == "sigmoid":
            return torch.sigmoid(h)
        if self.out == "tanh":
            return torch.tanh(h)
        return h


class Discriminator(nn.Module):
    """D(x, labels) -> logits (B,). Attribute ``net``: nn.Sequential(Linear(in_dim + n_classes,
    hidden), LeakyReLU(0.2), Linear(hidden, hidden), LeakyReLU(0.2), Linear(hidden, 1)); the
    last axis is dropped. With n_classes > 0 the input is x followed by the one-hot label."""

    def __init__(self, in_dim: int, hidden: int, n_classes: int = 0):
        super().__init__()
        self.in_dim = in_dim
        self.n_classes = n_classes
        self.net = _leaky_stack([in_dim + n_classes, hidden, hidden, 1])

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        inputs = x
        if self.n_classes > 0:
            if labels is None:
                raise ValueError("a conditional Discriminator needs labels")
            inputs = torch.cat([x, _one_hot(labels, self.n_classes, x)], dim=1)
        return self.net(inputs)[:, 0]


def gan_step(G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer,
             opt_d: torch.optim.Optimizer, real: torch.Tensor, z: torch.Tensor,
             labels: torch.Tensor | None = None) -> tuple[float, float]:
    """One step: first D (discriminator_loss on D(real) and D of G(z) detached from G), then G
    (generator_loss, non-saturating, on the updated D's logits for G(z), the same z). Each
    optimiser clears its gradients before its own backward pass, so neither step leaks into the
    other. ``labels`` (conditional GANs) go to both G and D, for the real and the generated
    batch alike. Returns (D's loss, G's loss) as floats."""
    # --- the discriminator: G's samples made without a graph, so nothing reaches G
    with torch.no_grad():
        fake_for_d = G(z, labels)
    opt_d.zero_grad()
    d_loss = discriminator_loss(D(real, labels), D(fake_for_d, labels))
    d_loss.backward()
    opt_d.step()

    # --- the generator, against the discriminator just updated (same z)
    opt_g.zero_grad()
    g_loss = generator_loss(D(G(z, labels), labels), "non_saturating")
    g_loss.backward()
    opt_g.step()
    return float(d_loss.item()), float(g_loss.item())


def _param_dtype(module: nn.Module, fallback: torch.dtype) -> torch.dtype:
    for p in module.parameters():
        return p.dtype
    return fallback


def train_gan(G: Generator, D: Discriminator, data: torch.Tensor, steps: int,
              batch_size: int = 64, lr: float = 1e-3, labels: torch.Tensor | None = None
              ) -> list[tuple[float, float]]:
    """``steps`` calls of gan_step with Adam(lr, betas=(0.5, 0.999)) for each network: a batch of
    ``batch_size`` rows of data (and their labels, for a conditional GAN) drawn with
    torch.randint each step, and z ~ N(0, I) of (batch_size, G.z_dim). Returns the losses."""
    data = torch.as_tensor(data)
    if labels is not None:
        labels = torch.as_tensor(labels, device=data.device)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    n_rows = data.shape[0]
    d_dtype = _param_dtype(D, data.dtype if data.dtype.is_floating_point
                           else torch.get_default_dtype())
    g_dtype = _param_dtype(G, d_dtype)
    history: list[tuple[float, float]] = []
    for _ in range(steps):
        rows = torch.randint(0, n_rows, (batch_size,), device=data.device)
        real = data[rows].to(d_dtype)
        batch_labels = labels[rows] if labels is not None else None
        z = torch.randn(batch_size, G.z_dim, dtype=g_dtype, device=data.device)
        history.append(gan_step(G, D, opt_g, opt_d, real, z, batch_labels))
    return history


# ---------------------------------------------------------------- part 3: diffusion


def linear_betas(T: int, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """beta_1..beta_T evenly spaced from start to end (float64, (T,))."""
    values = []
    for k in range(T):
        if T == 1:
            values.append(float(start))
        elif k == T - 1:
            values.append(float(end))
        else:
            values.append(start + (end - start) * k / (T - 1))
    return torch.tensor(values, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol and Dhariwal's schedule: abar(t) = f(t) / f(0), f(t) = cos((t / T + s) / (1 + s) *
    pi / 2)^2, beta_t = 1 - abar(t) / abar(t - 1) capped at max_beta (float64, (T,))."""
    def f(t: int) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    f0 = f(0)
    abar = [f(t) / f0 for t in range(T + 1)]       # abar[0] = 1, ..., abar[T]
    values = []
    for t in range(1, T + 1):
        beta = 1.0 - abar[t] / abar[t - 1]
        values.append(min(beta, max_beta))
    return torch.tensor(values, dtype=torch.float64)


def _abar_list(betas: torch.Tensor) -> list[float]:
    """[abar_1, ..., abar_T] as Python floats (a running product of 1 - beta_s)."""
    running = 1.0
    out = []
    for b in torch.as_tensor(betas).reshape(-1).tolist():
        running = running * (1.0 - b)
        out.append(running)
    return out


def alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    """abar_t = prod_{s <= t} (1 - beta_s), for t = 1..T ((T,))."""
    betas = torch.as_tensor(betas)
    dtype = betas.dtype if betas.dtype.is_floating_point else torch.float64
    return torch.tensor(_abar_list(betas), dtype=dtype, device=betas.device)


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t - 1] shaped to broadcast against a batch like ``like`` (B, ...)."""
    return values[t - 1].to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def _per_row(numbers: list[float], like: torch.Tensor) -> torch.Tensor:
    """A list of one number per row as a (B, 1, ..., 1) tensor in like's dtype and device."""
    shape = [len(numbers)] + [1] * (like.dim() - 1)
    return torch.tensor(numbers, dtype=like.dtype, device=like.device).reshape(shape)


def _timestep_list(t, batch: int) -> list[int]:
    """The timesteps as a Python list of ints, one per row."""
    if isinstance(t, torch.Tensor):
        values = [int(v) for v in t.reshape(-1).tolist()]
    elif isinstance(t, (list, tuple)):
        values = [int(v) for v in t]
    else:
        values = [int(t)]
    if len(values) == 1 and batch != 1:
        values = values * batch
    return values


def q_sample(x0: torch.Tensor, t: torch.Tensor, abar: torch.Tensor,
             eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, for a batch x0 (B, ...) with timesteps
    t (B,) in 1..T and noise eps shaped like x0."""
    abar_values = torch.as_tensor(abar).reshape(-1).tolist()
    keep = []
    noise = []
    for step in _timestep_list(t, x0.shape[0]):
        a = abar_values[step - 1]
        keep.append(math.sqrt(a))
        noise.append(math.sqrt(1.0 - a))
    return _per_row(keep, x0) * x0 + _per_row(noise, x0) * eps


def diffusion_loss(model, x0: torch.Tensor, abar: torch.Tensor, t: torch.Tensor | None = None,
                   eps: torch.Tensor | None = None) -> torch.Tensor:
    """The mean over every entry of (eps - model(x_t, t))^2 with x_t = q_sample(x0, t, abar,
    eps). Without t, t is drawn uniformly from 1..T (torch.randint, one per row); without eps,
    eps ~ N(0, I) (torch.randn_like)."""
    T = torch.as_tensor(abar).shape[0]
    if t is None:
        t = torch.randint(1, T + 1, (x0.shape[0],), device=x0.device)
    if eps is None:
        eps = torch.randn_like(x0)
    x_t = q_sample(x0, t, abar, eps)
    predicted = model(x_t, t)
    return ((eps - predicted) ** 2).mean()


def posterior_mean_variance(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                            betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(x_{t-1} | x_t, x0) = N(mean, variance I):
    mean = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0 + sqrt(alpha_t) (1 - abar_{t-1}) /
    (1 - abar_t) x_t and variance = (1 - abar_{t-1}) / (1 - abar_t) beta_t (0 at t = 1).
    Returns (mean shaped like x0, variance (B, 1, ...) broadcastable to it)."""
    beta_values = torch.as_tensor(betas).reshape(-1).tolist()
    abar_values = _abar_list(betas)
    coef_x0 = []
    coef_xt = []
    variances = []
    for step in _timestep_list(t, x0.shape[0]):
        beta = beta_values[step - 1]
        abar_t = abar_values[step - 1]
        abar_prev = abar_values[step - 2] if step > 1 else 1.0     # abar_0 = 1
        alpha = 1.0 - beta
        coef_x0.append(math.sqrt(abar_prev) * beta / (1.0 - abar_t))
        coef_xt.append(math.sqrt(alpha) * (1.0 - abar_prev) / (1.0 - abar_t))
        variances.append((1.0 - abar_prev) / (1.0 - abar_t) * beta)
    mean = _per_row(coef_x0, x0) * x0 + _per_row(coef_xt, x0) * x_t
    return mean, _per_row(variances, x0)


def _reverse_step(model, x_t: torch.Tensor, t: int, beta: float, abar_t: float,
                  z: torch.Tensor | None) -> torch.Tensor:
    """One DDPM reverse step given beta_t and abar_t as plain floats."""
    steps = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
    eps_hat = model(x_t, steps)
    alpha = 1.0 - beta
    mean = (x_t - beta / math.sqrt(1.0 - abar_t) * eps_hat) / math.sqrt(alpha)
    if t > 1:
        if z is None:
            z = torch.randn_like(x_t)
        return mean + math.sqrt(beta) * z.to(mean.dtype)
    return mean


def p_sample_step(model, x_t: torch.Tensor, t: int, betas: torch.Tensor,
                  z: torch.Tensor) -> torch.Tensor:
    """One reverse step from x_t (B, ...) at timestep t (an int in 1..T) with noise z:
    x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta) / sqrt(alpha_t) + sigma_t z, where
    eps_theta = model(x_t, t as a (B,) tensor) and sigma_t = sqrt(beta_t) for t > 1; at t = 1 no
    noise is added (x_0 is the mean)."""
    t = int(t)
    beta_values = torch.as_tensor(betas).reshape(-1).tolist()
    abar_values = _abar_list(betas)
    return _reverse_step(model, x_t, t, beta_values[t - 1], abar_values[t - 1], z)


def ddpm_sample(model, x_T: torch.Tensor, betas: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
    """Ancestral sampling: p_sample_step for t = T, T-1, ..., 1 from x_T. noise (T, *x_T.shape)
    gives the z of step t at noise[t - 1]; without it each step draws z with torch.randn_like.
    Returns x_0. Runs without building a graph (torch.no_grad)."""
    beta_values = torch.as_tensor(betas).reshape(-1).tolist()
    abar_values = _abar_list(betas)
    T = len(beta_values)
    with torch.no_grad():
        x = x_T
        for t in range(T, 0, -1):
            if noise is not None:
                z = noise[t - 1].to(x.dtype)
            else:
                z = torch.randn_like(x)          # drawn at every step, t = 1 included
            x = _reverse_step(model, x, t, beta_values[t - 1], abar_values[t - 1], z)
    return x


def ddim_sample(model, x_T: torch.Tensor, abar: torch.Tensor,
                timesteps: list[int]) -> torch.Tensor:
    """DDIM's deterministic sampler (eta = 0) over the decreasing timesteps (e.g. [T, ..., 1] or
    a subsequence): at each t, with eps = model(x, t) and the next timestep s (abar_0 = 1 after
    the last), x0_hat = (x - sqrt(1 - abar_t) eps) / sqrt(abar_t) and
    x <- sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps. Returns x after the last step (no grad)."""
    abar_values = torch.as_tensor(abar).reshape(-1).tolist()
    if isinstance(timesteps, torch.Tensor):
        timesteps = timesteps.reshape(-1).tolist()
    schedule = [int(t) for t in timesteps]
    with torch.no_grad():
        x = x_T
        for k in range(len(schedule)):
            t = schedule[k]
            s = schedule[k + 1] if k + 1 < len(schedule) else 0
            abar_t = abar_values[t - 1]
            abar_s = abar_values[s - 1] if s > 0 else 1.0
            steps = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            eps_hat = model(x, steps)
            x0_hat = (x - math.sqrt(1.0 - abar_t) * eps_hat) / math.sqrt(abar_t)
            x = math.sqrt(abar_s) * x0_hat + math.sqrt(1.0 - abar_s) * eps_hat
    return x


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps t (B,) into (B, dim), dim even, float32 (the float
    value of t is used): with half = dim // 2 and frequencies w_k = 10000^(-k / half) for
    k = 0..half-1, the first half is sin(t w_k) and the second cos(t w_k)."""
    t = torch.as_tensor(t)
    times = t.reshape(-1).to(torch.float64)        # worked out in float64, returned as float32
    half = dim // 2
    sines = []
    cosines = []
    for k in range(half):
        w = 10000.0 ** (-k / half)
        angle = times * w
        sines.append(torch.sin(angle))
        cosines.append(torch.cos(angle))
    columns = sines + cosines
    if not columns:
        return torch.zeros(times.shape[0], 0, dtype=torch.float32, device=t.device)
    return torch.stack(columns, dim=1).to(torch.float32)


class Denoiser(nn.Module):
    """eps_theta(x_t, t) for data of data_dim features. Attribute ``net``: nn.Sequential(
    Linear(data_dim + t_dim, hidden), SiLU, Linear(hidden, hidden), SiLU, Linear(hidden,
    hidden), SiLU, Linear(hidden, data_dim)); its input is x_t followed by
    timestep_embedding(t, t_dim) cast to x_t's dtype."""

    def __init__(self, data_dim: int = 2, hidden: int = 128, t_dim: int = 32):
        super().__init__()
        self.data_dim = data_dim
        self.hidden = hidden
        self.t_dim = t_dim
        widths = [data_dim + t_dim, hidden, hidden, hidden, data_dim]
        layers: list[nn.Module] = []
        for k in range(len(widths) - 1):
            layers.append(nn.Linear(widths[k], widths[k + 1]))
            if k < len(widths) - 2:
                layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=x_t.device)
        if t.dim() == 0:
            t = t.repeat(x_t.shape[0])
        emb = timestep_embedding(t, self.t_dim).to(x_t.dtype)
        return self.net(torch.cat([x_t, emb], dim=1))


def train_diffusion(model: Denoiser, data: torch.Tensor, betas: torch.Tensor, steps: int,
                    batch_size: int = 256, lr: float = 1e-3) -> list[float]:
    """``steps`` Adam(lr) steps on diffusion_loss, each on ``batch_size`` rows of data drawn with
    torch.randint, t and eps drawn by diffusion_loss. Returns the losses."""
    abar = alpha_bars(betas)
    data = torch.as_tensor(data)
    data = data.to(_param_dtype(model, data.dtype if data.dtype.is_floating_point
                                else torch.get_default_dtype()))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    n_rows = data.shape[0]
    losses: list[float] = []
    for _ in range(steps):
        rows = torch.randint(0, n_rows, (batch_size,), device=data.device)
        loss = diffusion_loss(model, data[rows], abar)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.item()))
    return losses
