"""A graph neural network layer from scratch: message passing, GCNConv, EdgeConv and a GAT layer.

Alternate solution ("loops_and_lists"): plain Python loops where they read naturally (graphs
batched one by one, GAT heads one by one), explicit gathers with ``index_select``, sums with
``index_add_`` and maxima with ``index_reduce_``; GCNConv computes its normalisation inline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- part 1: edge_index tools


def add_self_loops(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """edge_index with the n edges i -> i appended after the existing ones (existing self-loops
    are kept: a node may then have two)."""
    nodes = torch.arange(n, dtype=edge_index.dtype, device=edge_index.device)
    loops = torch.stack([nodes, nodes], dim=0)
    return torch.cat([edge_index, loops], dim=1)


def degree(index: torch.Tensor, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """How many times each node 0..n-1 appears in ``index`` (edge_index[1]: in-degrees;
    edge_index[0]: out-degrees), as a (n,) tensor of ``dtype``."""
    out = torch.zeros(n, dtype=dtype, device=index.device)
    ones = torch.ones(index.numel(), dtype=dtype, device=index.device)
    out.index_add_(0, index.reshape(-1), ones)
    return out


def gcn_norm(edge_index: torch.Tensor, n: int, dtype: torch.dtype = torch.float32
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-loops added, then each edge j -> i weighted 1 / sqrt(deg(i) deg(j)) with deg the
    in-degree counted after the loops. Returns (edge_index with loops, weights (E + n,))."""
    looped = add_self_loops(edge_index, n)
    deg = degree(looped[1], n, dtype)
    d_src = deg.index_select(0, looped[0])
    d_dst = deg.index_select(0, looped[1])
    return looped, 1.0 / torch.sqrt(d_src * d_dst)


def scatter(src: torch.Tensor, index: torch.Tensor, n: int, reduce: str = "sum") -> torch.Tensor:
    """Reduce the rows of src (E, ...) into n groups by index (E,): "sum", "mean" or "max".
    A group no row falls into is 0. Returns (n, ...)."""
    out_shape = (n,) + tuple(src.shape[1:])
    if reduce == "sum":
        return torch.zeros(out_shape, dtype=src.dtype, device=src.device).index_add(0, index, src)
    if reduce == "mean":
        sums = torch.zeros(out_shape, dtype=src.dtype, device=src.device).index_add(0, index, src)
        counts = torch.zeros(n, dtype=src.dtype, device=src.device)
        counts = counts.index_add(0, index, torch.ones(index.numel(), dtype=src.dtype,
                                                        device=src.device))
        counts = counts.clamp(min=1).reshape((n,) + (1,) * (src.dim() - 1))
        return sums / counts
    if reduce == "max":
        # one group at a time: the max of its rows, or zeros when it has none
        rows = []
        for g in range(n):
            members = (index == g).nonzero(as_tuple=True)[0]
            if members.numel() == 0:
                rows.append(torch.zeros(out_shape[1:], dtype=src.dtype, device=src.device))
            else:
                rows.append(src.index_select(0, members).amax(dim=0))
        if not rows:
            return torch.zeros(out_shape, dtype=src.dtype, device=src.device)
        return torch.stack(rows, dim=0)
    raise ValueError(f"reduce must be 'sum', 'mean' or 'max', not {reduce!r}")


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
        # step 1: who sends, who receives
        sources = edge_index[0]
        targets = edge_index[1]
        # step 2: gather the endpoint features of every edge
        x_j = x.index_select(0, sources)
        x_i = x.index_select(0, targets)
        # step 3: phi
        messages = self.message(x_i, x_j, edge_attr)
        # step 4: aggregate at the targets
        aggregated = scatter(messages, targets, x.size(0), self.aggr)
        # step 5: gamma
        return self.update(x, aggregated)

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
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        """D^-1/2 (A + I) D^-1/2 (x W^T) + b, as sums over edges."""
        n = x.size(0)
        # the normalisation, written out here rather than via gcn_norm
        self_loop = torch.arange(n, device=edge_index.device, dtype=edge_index.dtype)
        src = torch.cat([edge_index[0], self_loop])
        dst = torch.cat([edge_index[1], self_loop])
        in_deg = torch.zeros(n, dtype=x.dtype, device=x.device)
        in_deg.index_add_(0, dst, torch.ones(dst.numel(), dtype=x.dtype, device=x.device))
        d_inv_sqrt = in_deg.pow(-0.5)
        weights = d_inv_sqrt.index_select(0, src) * d_inv_sqrt.index_select(0, dst)
        xw = self.lin(x)
        out = self.propagate(torch.stack([src, dst]), xw, weights)
        if self.bias is not None:
            out = out + self.bias
        return out

    def message(self, x_i, x_j, edge_attr):
        """Each edge's normalisation weight (edge_attr, from gcn_norm) times x_j."""
        return x_j * edge_attr.unsqueeze(-1)


class EdgeConv(MessagePassing):
    """x_i' = AGG_j mlp(x_i || x_j - x_i). Attribute: ``mlp`` (the module h, given)."""

    def __init__(self, mlp: nn.Module, aggr: str = "max"):
        super().__init__(aggr=aggr)
        self.mlp = mlp

    def message(self, x_i, x_j, edge_attr):
        """mlp of the target's features next to the difference source - target."""
        pieces = [x_i, x_j - x_i]
        return self.mlp(torch.cat(pieces, dim=1))


class GATConv(nn.Module):
    """A graph attention layer over N(i) u {i} (self-loops added). Attributes: ``lin``
    (nn.Linear(in, heads * out, bias=False)); ``att_src`` and ``att_dst`` ((heads, out)
    parameters); ``bias`` ((heads * out,) parameter). Head h uses features h*out..(h+1)*out of
    lin(x); the heads' outputs are concatenated, then the bias added. LeakyReLU slope 0.2."""

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1):
        super().__init__()
        self.heads = heads
        self.out_channels = out_channels
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.randn(heads, out_channels) * 0.1)
        self.att_dst = nn.Parameter(torch.randn(heads, out_channels) * 0.1)
        self.bias = nn.Parameter(torch.zeros(heads * out_channels))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """(N, heads * out) features."""
        n = x.size(0)
        looped = add_self_loops(edge_index, n)
        src, dst = looped[0], looped[1]
        wx = self.lin(x)
        outputs = []
        for h in range(self.heads):
            lo, hi = h * self.out_channels, (h + 1) * self.out_channels
            wx_h = wx[:, lo:hi]                                   # (N, C)
            s_src = wx_h @ self.att_src[h]                        # (N,)
            s_dst = wx_h @ self.att_dst[h]                        # (N,)
            logits = F.leaky_relu(s_src.index_select(0, src) + s_dst.index_select(0, dst), 0.2)
            # softmax within each target's incoming edges (every node has its self-loop)
            top = torch.full((n,), float("-inf"), dtype=logits.dtype, device=logits.device)
            top = top.index_reduce(0, dst, logits.detach(), "amax", include_self=True)
            ex = torch.exp(logits - top.index_select(0, dst))
            denom = torch.zeros(n, dtype=ex.dtype, device=ex.device).index_add(0, dst, ex)
            alpha = ex / denom.index_select(0, dst)
            msg = alpha.unsqueeze(1) * wx_h.index_select(0, src)
            outputs.append(torch.zeros(n, self.out_channels, dtype=msg.dtype,
                                       device=msg.device).index_add(0, dst, msg))
        return torch.cat(outputs, dim=1) + self.bias


# ---------------------------------------------------------------- part 3: batches and models


def batch_graphs(graphs: list[tuple[torch.Tensor, torch.Tensor]]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Several graphs (x, edge_index) as one disjoint graph: features stacked, each graph's
    edge_index shifted by the number of nodes before it, and ``batch`` (N,) saying which graph
    each node is from (0, 1, ...). Returns (x, edge_index, batch)."""
    xs, edges, batch = [], [], []
    offset = 0
    for g, (x, edge_index) in enumerate(graphs):
        xs.append(x)
        edges.append(edge_index + offset)
        batch.append(torch.full((x.size(0),), g, dtype=torch.long, device=x.device))
        offset += x.size(0)
    return torch.cat(xs, dim=0), torch.cat(edges, dim=1), torch.cat(batch)


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
        self.p = dropout

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """relu(conv1(x)): the hidden features (N, hidden) the feedback page plots."""
        return F.relu(self.conv1(x, edge_index))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes)."""
        hidden = F.dropout(self.embed(x, edge_index), self.p, self.training)
        return self.conv2(hidden, edge_index)


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
        for conv in (self.conv1, self.conv2):
            x = F.relu(conv(x, edge_index))
        pooled = global_pool(x, batch, n_graphs, self.pool)
        return self.head(pooled)


def train_node_classifier(model: GCN, x: torch.Tensor, edge_index: torch.Tensor,
                          y: torch.Tensor, train_mask: torch.Tensor, epochs: int = 200,
                          lr: float = 0.01, weight_decay: float = 5e-4) -> list[float]:
    """Full-batch training: Adam(lr, weight_decay), cross-entropy on the nodes where train_mask
    is True, ``epochs`` steps. Leaves the model in eval mode. Returns the losses."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    labelled = [i for i, m in enumerate(train_mask.tolist()) if m]
    labelled = torch.tensor(labelled, dtype=torch.long, device=x.device)
    targets = y.index_select(0, labelled).long()
    history = []
    for _ in range(epochs):
        model.train()
        optimiser.zero_grad()
        scores = model(x, edge_index).index_select(0, labelled)
        loss = F.cross_entropy(scores, targets)
        loss.backward()
        optimiser.step()
        history.append(loss.item())
    model.eval()
    return history


def train_graph_classifier(model: GraphClassifier, graphs: list[tuple[torch.Tensor, torch.Tensor]],
                           y: torch.Tensor, epochs: int = 60, lr: float = 0.01,
                           batch_size: int = 32) -> list[float]:
    """Mini-batches of ``batch_size`` graphs in a random order each epoch (batch_graphs),
    Adam(lr), cross-entropy. Leaves the model in eval mode. Returns each epoch's mean loss."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    labels = [int(v) for v in torch.as_tensor(y).tolist()]
    history = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(graphs)).tolist()
        batch_losses = []
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            x, edge_index, batch = batch_graphs([graphs[k] for k in chosen])
            target = torch.tensor([labels[k] for k in chosen], dtype=torch.long,
                                  device=x.device)
            optimiser.zero_grad()
            loss = F.cross_entropy(model(x, edge_index, batch, len(chosen)), target)
            loss.backward()
            optimiser.step()
            batch_losses.append(loss.item())
        history.append(sum(batch_losses) / len(batch_losses))
    model.eval()
    return history
