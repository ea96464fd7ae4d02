"""A graph neural network layer from scratch: message passing, GCNConv, EdgeConv and a GAT layer.

Alternate solution ("float32_everywhere"): every intermediate tensor takes the dtype (and
device) of the features it works on, so the same code runs in float32 and in float64; the GCN's
dropout is an ``nn.Dropout`` module; pooling uses ``index_reduce_`` for the max.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- part 1: edge_index tools


def add_self_loops(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """edge_index with the n edges i -> i appended after the existing ones (existing self-loops
    are kept: a node may then have two)."""
    loop = torch.arange(n, dtype=edge_index.dtype, device=edge_index.device).expand(2, n)
    return torch.cat((edge_index, loop), dim=1)


def degree(index: torch.Tensor, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """How many times each node 0..n-1 appears in ``index`` (edge_index[1]: in-degrees;
    edge_index[0]: out-degrees), as a (n,) tensor of ``dtype``."""
    deg = torch.zeros(n, dtype=dtype, device=index.device)
    return deg.scatter_add_(0, index, torch.ones_like(index, dtype=dtype))


def gcn_norm(edge_index: torch.Tensor, n: int, dtype: torch.dtype = torch.float32
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-loops added, then each edge j -> i weighted 1 / sqrt(deg(i) deg(j)) with deg the
    in-degree counted after the loops. Returns (edge_index with loops, weights (E + n,))."""
    ei = add_self_loops(edge_index, n)
    row, col = ei
    deg = degree(col, n, dtype)
    dis = deg.pow(-0.5)
    dis = dis.masked_fill(torch.isinf(dis), 0.0)
    return ei, dis[row] * dis[col]


def _zeros_like_rows(src: torch.Tensor, n: int) -> torch.Tensor:
    return src.new_zeros((n, *src.shape[1:]))


def scatter(src: torch.Tensor, index: torch.Tensor, n: int, reduce: str = "sum") -> torch.Tensor:
    """Reduce the rows of src (E, ...) into n groups by index (E,): "sum", "mean" or "max".
    A group no row falls into is 0. Returns (n, ...)."""
    if reduce not in ("sum", "mean", "max"):
        raise ValueError(f"unknown reduce {reduce!r}")
    out = _zeros_like_rows(src, n)
    if reduce == "max":
        return out.index_reduce_(0, index, src, "amax", include_self=False)
    out = out.index_add_(0, index, src)
    if reduce == "mean":
        cnt = src.new_zeros(n).index_add_(0, index, src.new_ones(index.shape[0]))
        out = out / cnt.clamp_min(1).view(n, *([1] * (src.dim() - 1)))
    return out


# ---------------------------------------------------------------- part 2: layers


class MessagePassing(nn.Module):
    """The notes' general layer. Subclasses override ``message`` (phi) and ``update`` (gamma);
    ``propagate`` gathers x_i (targets) and x_j (sources) per edge, calls message, aggregates at
    the targets with ``self.aggr`` ("sum", "mean" or "max") and calls update.
    The base class's message is x_j and its update returns the aggregate."""

    def __init__(self, aggr: str = "sum"):
        super().__init__()
        self.aggr = aggr

    def message(self, x_i: torch.Tensor, x_j: torch.Tensor,
                edge_attr: torch.Tensor | None) -> torch.Tensor:
        """phi for each edge; x_i, x_j (E, F) are the target's and the source's features."""
        return x_j

    def update(self, x: torch.Tensor, aggregated: torch.Tensor) -> torch.Tensor:
        """gamma: the node's new features from its old ones and the aggregate."""
        return aggregated

    def propagate(self, edge_index: torch.Tensor, x: torch.Tensor,
                  edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        """update(x, AGG over incoming edges of message(x_i, x_j, edge_attr))."""
        src, dst = edge_index
        out = self.message(x[dst], x[src], edge_attr)
        return self.update(x, scatter(out, dst, x.shape[0], self.aggr))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        """propagate over edge_index (subclasses such as GCNConv override this)."""
        return self.propagate(edge_index, x, edge_attr)


class GCNConv(MessagePassing):
    """Kipf and Welling's layer. Attributes: ``lin`` (nn.Linear(in, out, bias=False), W) and
    ``bias`` (a (out,) parameter, zeros at the start, or None when bias=False)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(aggr="sum")
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        nn.init.xavier_uniform_(self.lin.weight)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        """D^-1/2 (A + I) D^-1/2 (x W^T) + b, as sums over edges."""
        xw = self.lin(x)
        ei, norm = gcn_norm(edge_index, x.shape[0], dtype=xw.dtype)
        out = self.propagate(ei, xw, norm.to(xw.device))
        return out if self.bias is None else out + self.bias

    def message(self, x_i, x_j, edge_attr):
        """Each edge's normalisation weight (edge_attr, from gcn_norm) times x_j."""
        return edge_attr.view(-1, *([1] * (x_j.dim() - 1))) * x_j


class EdgeConv(MessagePassing):
    """x_i' = AGG_j mlp(x_i || x_j - x_i). Attribute: ``mlp`` (the module h, given)."""

    def __init__(self, mlp: nn.Module, aggr: str = "max"):
        super().__init__(aggr=aggr)
        self.mlp = mlp

    def message(self, x_i, x_j, edge_attr):
        """mlp of the target's features next to the difference source - target."""
        return self.mlp(torch.hstack((x_i, x_j - x_i)))


class GATConv(nn.Module):
    """A graph attention layer over N(i) u {i} (self-loops added). Attributes: ``lin``
    (nn.Linear(in, heads * out, bias=False)); ``att_src`` and ``att_dst`` ((heads, out)
    parameters); ``bias`` ((heads * out,) parameter). Head h uses features h*out..(h+1)*out of
    lin(x); the heads' outputs are concatenated, then the bias added. LeakyReLU slope 0.2."""

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1):
        super().__init__()
        self.heads, self.out_channels = heads, out_channels
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(heads, out_channels))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        self.bias = nn.Parameter(torch.zeros(heads * out_channels))
        self.leaky = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """(N, heads * out) features."""
        n, H, C = x.shape[0], self.heads, self.out_channels
        h = self.lin(x).view(n, H, C)
        src, dst = add_self_loops(edge_index, n)
        score = self.leaky(torch.einsum("nhc,hc->nh", h, self.att_src)[src]
                           + torch.einsum("nhc,hc->nh", h, self.att_dst)[dst])  # (E, H)
        m = scatter(score.detach(), dst, n, "max")
        w = torch.exp(score - m[dst])
        alpha = w / scatter(w, dst, n, "sum")[dst]
        out = scatter(alpha.unsqueeze(-1) * h[src], dst, n, "sum")
        return out.reshape(n, H * C) + self.bias


# ---------------------------------------------------------------- part 3: batches and models


def batch_graphs(graphs: list[tuple[torch.Tensor, torch.Tensor]]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Several graphs (x, edge_index) as one disjoint graph: features stacked, each graph's
    edge_index shifted by the number of nodes before it, and ``batch`` (N,) saying which graph
    each node is from (0, 1, ...). Returns (x, edge_index, batch)."""
    sizes = [g[0].shape[0] for g in graphs]
    starts = [0]
    for s in sizes[:-1]:
        starts.append(starts[-1] + s)
    x = torch.cat([g[0] for g in graphs])
    edge_index = torch.cat([ei + s for (_, ei), s in zip(graphs, starts)], dim=1)
    batch = torch.cat([x.new_full((s,), k, dtype=torch.long) for k, s in enumerate(sizes)])
    return x, edge_index, batch


def global_pool(x: torch.Tensor, batch: torch.Tensor, n_graphs: int,
                reduce: str = "mean") -> torch.Tensor:
    """One row per graph: the "sum", "mean" or "max" of its nodes' features. (n_graphs, F)."""
    out = x.new_zeros((n_graphs, *x.shape[1:]))
    if reduce == "max":
        return out.index_reduce_(0, batch, x, "amax", include_self=False)
    out = out.index_add_(0, batch, x)
    if reduce == "sum":
        return out
    if reduce == "mean":
        counts = torch.bincount(batch, minlength=n_graphs).to(x.dtype).clamp_min(1)
        return out / counts.view(n_graphs, *([1] * (x.dim() - 1)))
    raise ValueError(f"unknown reduce {reduce!r}")


class GCN(nn.Module):
    """Node classifier: GCNConv(in, hidden), ReLU, dropout, GCNConv(hidden, n_classes).
    Attributes ``conv1``, ``conv2``. ``embed`` returns the hidden features (after the ReLU)."""

    def __init__(self, in_channels: int, hidden: int, n_classes: int, dropout: float = 0.5):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.drop = nn.Dropout(dropout)
        self.conv2 = GCNConv(hidden, n_classes)

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """relu(conv1(x)): the hidden features (N, hidden) the feedback page plots."""
        return self.conv1(x, edge_index).relu()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes)."""
        return self.conv2(self.drop(self.embed(x, edge_index)), edge_index)


class GraphClassifier(nn.Module):
    """Graph classifier: GCNConv(in, hidden), ReLU, GCNConv(hidden, hidden), ReLU, global_pool
    with ``pool``, nn.Linear(hidden, n_classes). Attributes ``conv1``, ``conv2``, ``head``.
    forward(x, edge_index, batch, n_graphs) -> scores (n_graphs, n_classes)."""

    def __init__(self, in_channels: int, hidden: int, n_classes: int, pool: str = "mean"):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, hidden)
        self.head = nn.Linear(hidden, n_classes)
        self.pool = pool

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor,
                n_graphs: int) -> torch.Tensor:
        """Class scores (n_graphs, n_classes) for a batch from batch_graphs."""
        h = self.conv1(x, edge_index).relu()
        h = self.conv2(h, edge_index).relu()
        return self.head(global_pool(h, batch, n_graphs, self.pool))


def train_node_classifier(model: GCN, x: torch.Tensor, edge_index: torch.Tensor,
                          y: torch.Tensor, train_mask: torch.Tensor, epochs: int = 200,
                          lr: float = 0.01, weight_decay: float = 5e-4) -> list[float]:
    """Full-batch training: Adam(lr, weight_decay), cross-entropy on the nodes where train_mask
    is True, ``epochs`` steps. Leaves the model in eval mode. Returns the losses."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    m = train_mask.to(torch.bool)
    y_train = y[m].to(torch.long)
    losses = []
    model.train()
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, edge_index)[m], y_train)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    model.eval()
    return [float(v) for v in losses]


def train_graph_classifier(model: GraphClassifier, graphs: list[tuple[torch.Tensor, torch.Tensor]],
                           y: torch.Tensor, epochs: int = 60, lr: float = 0.01,
                           batch_size: int = 32) -> list[float]:
    """Mini-batches of ``batch_size`` graphs in a random order each epoch (batch_graphs),
    Adam(lr), cross-entropy. Leaves the model in eval mode. Returns each epoch's mean loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    y = torch.as_tensor(y, dtype=torch.long)
    n = len(graphs)
    epoch_losses = []
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n)
        running = torch.zeros((), dtype=torch.float64)
        for chunk in perm.split(batch_size):
            x, ei, b = batch_graphs([graphs[i] for i in chunk.tolist()])
            opt.zero_grad(set_to_none=True)
            # summed (not averaged) over the batch, so the epoch mean is per graph
            loss_sum = F.cross_entropy(model(x, ei, b, chunk.numel()),
                                       y[chunk].to(x.device), reduction="sum")
            (loss_sum / chunk.numel()).backward()
            opt.step()
            running = running + loss_sum.detach().to(torch.float64).cpu()
        epoch_losses.append(running / n)
    model.eval()
    return [float(v) for v in epoch_losses]
