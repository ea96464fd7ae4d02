"""Probes for a8_generative: each function on seeded float64 inputs, the grader's own callables
as denoisers, weights loaded by parameter name, and four training runs on data the judge makes
and holds (the probes return samples; the judges score them).

The judges import this file for its numpy helpers (the data, the scoring) and stay torch-free.
"""


import io
import time
import numpy as np


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
