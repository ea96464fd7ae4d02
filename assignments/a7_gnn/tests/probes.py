"""Probes for a7_gnn: edge_index tools, scatter, the layers (weights set by parameter name),
batching, and two trained models on data the judge makes and holds.

The graphs are small, seeded, and chosen for the README's promises: an isolated node (no
incoming edges), a duplicate edge, a directed edge without its reverse.
"""


import io
import time
import numpy as np


def _torch():
    """torch, imported where a probe runs: the judges import this file and stay torch-free."""
    import torch

    return torch


def _np(t):
    return t.detach().cpu().numpy()


def notes_example(impl):
    """The notes' three-node graph through degree, add_self_loops and GCNConv(1, 1)."""
    torch = _torch()
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    x = torch.tensor([[-1.0], [0.0], [1.0]], dtype=torch.float64)
    conv = impl.GCNConv(1, 1).double()
    with torch.no_grad():
        conv.lin.weight.fill_(2.0)
        conv.bias.fill_(0.5)
    return {"degree": _np(impl.degree(impl.add_self_loops(ei, 3)[1], 3)).tolist(),
            "out": _np(conv(x, ei))}


def scatter_example(impl):
    torch = _torch()
    src = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    index = torch.tensor([0, 2, 0, 2])
    return {r: _np(impl.scatter(src, index, 4, r)) for r in ("sum", "mean", "max")}
