"""A graph neural network layer from scratch: message passing, GCNConv, EdgeConv and a GAT layer.

Alternate solution ("scatter_add_style"): every reduction is a ``Tensor.scatter_add_`` or
``Tensor.scatter_reduce`` with the index expanded to the shape of the source, degrees come from
``torch.bincount``, and the GAT softmax uses its own segment-max helper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- helpers


def _expand_index(index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """index (E,) viewed as (E, 1, 1, ...) and expanded to like's shape (E, ...)."""
    view = index.reshape((-1,) + (1,) * (like.dim() - 1))
    return view.expand_as(like)


def _segment_max(src: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Per-group max of src rows (empty groups 0), via scatter_reduce('amax')."""
    out = src.new_zeros((n,) + tuple(src.shape[1:]))
    if src.shape[0] == 0:
        return out
    return out.scatter_reduce(0, _expand_index(index, src), src, reduce="amax",
                              include_self=False)


def _segment_softmax(scores: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Softmax of scores (E, ...) within the groups given by index (E,)."""
    idx = _expand_index(index, scores)
    seg_max = _segment_max(scores, index, n).detach()
    shifted = (scores - seg_max.gather(0, idx)).exp()
    denom = shifted.new_zeros((n,) + tuple(scores.shape[1:])).scatter_add_(0, idx, shifted)
    return shifted / denom.gather(0, idx)


# ---------------------------------------------------------------- part 1: edge_index tools


def add_self_loops(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """edge_index with the n edges i -> i appended after the existing ones (existing self-loops
    are kept: a node may then have two)."""
    loops = torch.arange(n, dtype=edge_index.dtype, device=edge_index.device)
    loops = loops.unsqueeze(0).repeat(2, 1)
    return torch.cat([edge_index, loops], dim=1)


def degree(index: torch.Tensor, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """How many times each node 0..n-1 appears in ``index`` (edge_index[1]: in-degrees;
    edge_index[0]: out-degrees), as a (n,) tensor of ``dtype``."""
    counts = torch.bincount(index.reshape(-1).long(), minlength=n)[:n]
    return counts.to(dtype)


def gcn_norm(edge_index: torch.Tensor, n: int, dtype: torch.dtype = torch.float32
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-loops added, then each edge j -> i weighted 1 / sqrt(deg(i) deg(j)) with deg the
    in-degree counted after the loops. Returns (edge_index with loops, weights (E + n,))."""
    ei = add_self_loops(edge_index, n)
    deg = degree(ei[1], n, dtype)
    safe = torch.where(deg > 0, deg, torch.ones_like(deg))
    inv_sqrt = torch.where(deg > 0, safe.rsqrt(), torch.zeros_like(deg))
    src, dst = ei[0], ei[1]
    return ei, inv_sqrt[src] * inv_sqrt[dst]


def scatter(src: torch.Tensor, index: torch.Tensor, n: int, reduce: str = "sum") -> torch.Tensor:
    """Reduce the rows of src (E, ...) into n groups by index (E,): "sum", "mean" or "max".
    A group no row falls into is 0. Returns (n, ...)."""
    shape = (n,) + tuple(src.shape[1:])
    idx = _expand_index(index, src)
    if reduce == "sum":
        return src.new_zeros(shape).scatter_add_(0, idx, src)
    if reduce == "mean":
        total = src.new_zeros(shape).scatter_add_(0, idx, src)
        count = src.new_zeros(shape).scatter_add_(0, idx, torch.ones_like(src))
        return total / count.clamp(min=1)
    if reduce == "max":
        return _segment_max(src, index, n)
    raise ValueError(f"unknown reduce {reduce!r}")


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
        j, i = edge_index[0], edge_index[1]
        msgs = self.message(x[i], x[j], edge_attr)
        agg = scatter(msgs, i, x.shape[0], self.aggr)
        return self.update(x, agg)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        """propagate over edge_index (subclasses such as GCNConv override this)."""
        return self.propagate(edge_index, x, edge_attr)


class GCNConv(MessagePassing):
    """Kipf and Welling's layer. Attributes: ``lin`` (nn.Linear(in, out, bias=False), W) and
    ``bias`` (a (out,) parameter, zeros at the start, or None when bias=False)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(aggr="sum")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        """D^-1/2 (A + I) D^-1/2 (x W^T) + b, as sums over edges."""
        h = self.lin(x)
        ei, w = gcn_norm(edge_index, x.shape[0], h.dtype)
        out = self.propagate(ei, h, w)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_i, x_j, edge_attr):
        """Each edge's normalisation weight (edge_attr, from gcn_norm) times x_j."""
        return edge_attr.reshape(-1, 1) * x_j


class EdgeConv(MessagePassing):
    """x_i' = AGG_j mlp(x_i || x_j - x_i). Attribute: ``mlp`` (the module h, given)."""

    def __init__(self, mlp: nn.Module, aggr: str = "max"):
        super().__init__(aggr=aggr)
        self.mlp = mlp

    def message(self, x_i, x_j, edge_attr):
        """mlp of the target's features next to the difference source - target."""
        return self.mlp(torch.cat([x_i, x_j - x_i], dim=-1))


class GATConv(nn.Module):
    """A graph attention layer over N(i) u {i} (self-loops added). Attributes: ``lin``
    (nn.Linear(in, heads * out, bias=False)); ``att_src`` and ``att_dst`` ((heads, out)
    parameters); ``bias`` ((heads * out,) parameter). Head h uses features h*out..(h+1)*out of
    lin(x); the heads' outputs are concatenated, then the bias added. LeakyReLU slope 0.2."""

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(heads, out_channels))
        self.bias = nn.Parameter(torch.zeros(heads * out_channels))
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """(N, heads * out) features."""
        n = x.shape[0]
        H, C = self.heads, self.out_channels
        h = self.lin(x).reshape(n, H, C)
        ei = add_self_loops(edge_index, n)
        src, dst = ei[0], ei[1]
        a_src = (h * self.att_src.unsqueeze(0)).sum(-1)  # (N, H)
        a_dst = (h * self.att_dst.unsqueeze(0)).sum(-1)  # (N, H)
        e = F.leaky_relu(a_src[src] + a_dst[dst], negative_slope=0.2)  # (E, H)
        alpha = _segment_softmax(e, dst, n)  # (E, H)
        msgs = alpha.unsqueeze(-1) * h[src]  # (E, H, C)
        out = h.new_zeros(n, H, C).scatter_add_(0, _expand_index(dst, msgs), msgs)
        return out.reshape(n, H * C) + self.bias


# ---------------------------------------------------------------- part 3: batches and models


def batch_graphs(graphs: list[tuple[torch.Tensor, torch.Tensor]]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Several graphs (x, edge_index) as one disjoint graph: features stacked, each graph's
    edge_index shifted by the number of nodes before it, and ``batch`` (N,) saying which graph
    each node is from (0, 1, ...). Returns (x, edge_index, batch)."""
    xs = [g[0] for g in graphs]
    device = xs[0].device
    sizes = torch.tensor([x.shape[0] for x in xs], dtype=torch.long, device=device)
    offsets = torch.cumsum(sizes, 0) - sizes
    n_edges = torch.tensor([g[1].shape[1] for g in graphs], dtype=torch.long, device=device)
    edge_shift = torch.repeat_interleave(offsets, n_edges)
    edge_index = torch.cat([g[1].to(torch.long) for g in graphs], dim=1) + edge_shift
    batch = torch.repeat_interleave(torch.arange(len(graphs), device=device), sizes)
    return torch.cat(xs, dim=0), edge_index, batch


def global_pool(x: torch.Tensor, batch: torch.Tensor, n_graphs: int,
                reduce: str = "mean") -> torch.Tensor:
    """One row per graph: the "sum", "mean" or "max" of its nodes' features. (n_graphs, F)."""
    return scatter(x, batch, n_graphs, reduce)


class GCN(nn.Module):
    """Node classifier: GCNConv(in, hidden), ReLU, dropout, GCNConv(hidden, n_classes).
    Attributes ``conv1``, ``conv2``. ``embed`` returns the hidden features (after the ReLU)."""

    def __init__(self, in_channels: int, hidden: int, n_classes: int, dropout: float = 0.5):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, n_classes)
        self.dropout = dropout

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """relu(conv1(x)): the hidden features (N, hidden) the feedback page plots."""
        return torch.relu(self.conv1(x, edge_index))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes)."""
        h = self.embed(x, edge_index)
        h = F.dropout(h, p=self.dropout, training=self.training)
        return self.conv2(h, edge_index)


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
        h = torch.relu(self.conv1(x, edge_index))
        h = torch.relu(self.conv2(h, edge_index))
        return self.head(global_pool(h, batch, n_graphs, self.pool))


def train_node_classifier(model: GCN, x: torch.Tensor, edge_index: torch.Tensor,
                          y: torch.Tensor, train_mask: torch.Tensor, epochs: int = 200,
                          lr: float = 0.01, weight_decay: float = 5e-4) -> list[float]:
    """Full-batch training: Adam(lr, weight_decay), cross-entropy on the nodes where train_mask
    is True, ``epochs`` steps. Leaves the model in eval mode. Returns the losses."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    mask = train_mask.bool()
    losses: list[float] = []
    model.train()
    for epoch in range(epochs):
        opt.zero_grad()
        out = model(x, edge_index)
        loss = F.cross_entropy(out[mask], y[mask].long())
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        if epoch % 50 == 0 or epoch == epochs - 1:
            print(f"node classifier epoch {epoch:4d}  loss {losses[-1]:.4f}")
    model.eval()
    return losses


def train_graph_classifier(model: GraphClassifier, graphs: list[tuple[torch.Tensor, torch.Tensor]],
                           y: torch.Tensor, epochs: int = 60, lr: float = 0.01,
                           batch_size: int = 32) -> list[float]:
    """Mini-batches of ``batch_size`` graphs in a random order each epoch (batch_graphs),
    Adam(lr), cross-entropy. Leaves the model in eval mode. Returns each epoch's mean loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    y = torch.as_tensor(y).long()
    n = len(graphs)
    losses: list[float] = []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n)
        total, seen = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            xb, eib, bb = batch_graphs([graphs[k] for k in idx.tolist()])
            opt.zero_grad()
            out = model(xb, eib, bb, len(idx))
            loss = F.cross_entropy(out, y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        losses.append(total / max(seen, 1))
        if epoch % 10 == 0 or epoch == epochs - 1:
            print(f"graph classifier epoch {epoch:4d}  loss {losses[-1]:.4f}")
    model.eval()
    return losses
