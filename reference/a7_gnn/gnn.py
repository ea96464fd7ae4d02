"""A graph neural network layer from scratch: message passing, GCNConv, EdgeConv and a GAT layer.

The notes' general GNN layer updates each node from its neighbours' messages:

    x_i' = gamma(x_i, AGG_{j in N(i)} phi(x_i, x_j, e_ji))

A graph is stored as PyTorch Geometric stores it: node features x (N, F) and ``edge_index``
(2, E) of int64, one column per directed edge j -> i, row 0 the sources j, row 1 the targets i.
Messages flow along the edges, from source to target: node i aggregates over its *incoming*
edges. An undirected graph lists each edge in both directions.

- GCNConv (Kipf and Welling):  x_i' = sum_{j in N(i) u {i}} 1 / sqrt(deg(i) deg(j)) W x_j  + b,
  deg counted on the targets after the self-loops are added (so deg(i) = in-degree + 1 for a
  graph without self-loops), the bias added once after the sum. (The notes write the bias
  inside the sum; PyTorch Geometric, whose layer the graders compare with, adds it after.)
  In matrix form: D^-1/2 (A + I) D^-1/2 X W^T + b.
- EdgeConv:  x_i' = AGG_{j in N(i)} h(x_i || x_j - x_i), h an MLP, AGG max by default.
- A GAT layer: a_ij = softmax over j in N(i) u {i} of LeakyReLU(att_dst . W x_i + att_src . W x_j)
  and x_i' = sum_j a_ij W x_j + b (one head; several heads concatenated).

Conventions the graders rely on:
- A node with no incoming edges aggregates to 0 (sum, mean and max alike), never garbage or
  -inf. Duplicate edges count as many times as they appear.
- Scatter operations are written with ``index_add_`` / ``scatter_reduce`` (or ``scatter_add``):
  no (N, N) matrices in the layers. torch_geometric is not allowed here (the graders refuse
  it); use it in your own checks when you have it.
- Modules keep the attribute names their docstrings give: the graders load weights by name.
- Everything works in float32 and float64 (the graders use float64).

What is graded, besides the public self-checks (float64, relative error 1e-9 unless said):
- add_self_loops, degree and gcn_norm exactly; scatter with sum, mean and max, empty groups 0,
  max's gradient reaching only each group's largest entry (inputs without ties).
- GCNConv against the dense formula on graphs with isolated nodes and duplicate edges, and
  against torch_geometric's GCNConv holding the same weights when the grader has it; relabelling
  the nodes permutes the outputs.
- MessagePassing with each aggregation; EdgeConv and GATConv (1 and 2 heads) against the
  reference with the same weights.
- batch_graphs and global_pool: two graphs batched give what each gives alone.
- Node classification on Zachary's karate club (faction 0: Mr. Hi, 1: Officer): the grader
  builds GCN(34, 16, 2) and calls train_node_classifier with one-hot node features, both
  directions of each edge, and 4 labelled members per faction (train_mask; the other members'
  labels are -1, the grader keeps them: select the masked nodes before the loss); accuracy on
  the other members at least 80% on the CPU (partial credit from 50%).
- Graph classification of cycles (1) against paths (0): the grader generates 200 graphs of 6
  to 12 nodes (node features one-hot of the degree: 1, 2, 3 or more), trains
  GraphClassifier(3, 16, 2) with train_graph_classifier for 30 epochs, and needs 95% on 100
  held-out graphs (partial credit from 60%).
The grader seeds torch; nothing needs seeding. The feedback page shows your karate-club
embedding coloured by predicted faction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- part 1: edge_index tools


def add_self_loops(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """edge_index with the n edges i -> i appended after the existing ones (existing self-loops
    are kept: a node may then have two; PyTorch Geometric's add_remaining_self_loops would not.
    The graders' graphs have no self-loops of their own)."""
    # BEGIN SOLUTION
    loops = torch.arange(n, device=edge_index.device).repeat(2, 1)
    return torch.cat([edge_index, loops], dim=1)
    # END SOLUTION


def degree(index: torch.Tensor, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """How many times each node 0..n-1 appears in ``index`` (edge_index[1]: in-degrees;
    edge_index[0]: out-degrees), as a (n,) tensor of ``dtype``."""
    # BEGIN SOLUTION
    return torch.zeros(n, dtype=dtype, device=index.device).index_add_(
        0, index, torch.ones(index.numel(), dtype=dtype, device=index.device))
    # END SOLUTION


def gcn_norm(edge_index: torch.Tensor, n: int, dtype: torch.dtype = torch.float32
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-loops added, then each edge j -> i weighted 1 / sqrt(deg(i) deg(j)) with deg the
    in-degree counted after the loops. Returns (edge_index with loops, weights (E + n,))."""
    # BEGIN SOLUTION
    edge_index = add_self_loops(edge_index, n)
    deg = degree(edge_index[1], n, dtype)
    inv = deg.pow(-0.5)
    inv[torch.isinf(inv)] = 0.0
    return edge_index, inv[edge_index[0]] * inv[edge_index[1]]
    # END SOLUTION


def scatter(src: torch.Tensor, index: torch.Tensor, n: int, reduce: str = "sum") -> torch.Tensor:
    """Reduce the rows of src (E, ...) into n groups by index (E,): "sum", "mean" or "max".
    A group no row falls into is 0. Returns (n, ...)."""
    # BEGIN SOLUTION
    out = torch.zeros((n, *src.shape[1:]), dtype=src.dtype, device=src.device)
    if reduce == "sum":
        return out.index_add_(0, index, src)
    idx = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    if reduce == "mean":
        return out.scatter_reduce(0, idx, src, reduce="mean", include_self=False)
    if reduce == "max":
        return out.scatter_reduce(0, idx, src, reduce="amax", include_self=False)
    raise ValueError(f"unknown reduce {reduce!r}")
    # END SOLUTION


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
        # BEGIN SOLUTION
        src, dst = edge_index[0], edge_index[1]
        messages = self.message(x[dst], x[src], edge_attr)
        return self.update(x, scatter(messages, dst, x.shape[0], self.aggr))
        # END SOLUTION

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        """propagate over edge_index (subclasses such as GCNConv override this)."""
        return self.propagate(edge_index, x, edge_attr)


class GCNConv(MessagePassing):
    """Kipf and Welling's layer. Attributes: ``lin`` (nn.Linear(in, out, bias=False), W) and
    ``bias`` (a (out,) parameter, zeros at the start, or None when bias=False)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__(aggr="sum")
        # BEGIN SOLUTION
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # END SOLUTION

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                edge_attr: torch.Tensor | None = None) -> torch.Tensor:
        """D^-1/2 (A + I) D^-1/2 (x W^T) + b, as sums over edges. edge_attr is ignored: GCNConv
        computes its own edge weights with gcn_norm."""
        # BEGIN SOLUTION
        edge_index, weight = gcn_norm(edge_index, x.shape[0], x.dtype)
        out = self.propagate(edge_index, self.lin(x), weight)
        return out if self.bias is None else out + self.bias
        # END SOLUTION

    def message(self, x_i, x_j, edge_attr):
        """Each edge's normalisation weight (edge_attr, from gcn_norm) times x_j."""
        # BEGIN SOLUTION
        return edge_attr.unsqueeze(-1) * x_j
        # END SOLUTION


class EdgeConv(MessagePassing):
    """x_i' = AGG_j mlp(x_i || x_j - x_i). Attribute: ``mlp`` (the module h, given)."""

    def __init__(self, mlp: nn.Module, aggr: str = "max"):
        super().__init__(aggr=aggr)
        # BEGIN SOLUTION
        self.mlp = mlp
        # END SOLUTION

    def message(self, x_i, x_j, edge_attr):
        """mlp of the target's features next to the difference source - target."""
        # BEGIN SOLUTION
        return self.mlp(torch.cat([x_i, x_j - x_i], dim=-1))
        # END SOLUTION


class GATConv(nn.Module):
    """A graph attention layer over N(i) u {i} (self-loops added). Attributes: ``lin``
    (nn.Linear(in, heads * out, bias=False)); ``att_src`` and ``att_dst`` ((heads, out)
    parameters); ``bias`` ((heads * out,) parameter). Head h uses features h*out..(h+1)*out of
    lin(x); the heads' outputs are concatenated, then the bias added. LeakyReLU slope 0.2."""

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1):
        super().__init__()
        # BEGIN SOLUTION
        self.heads, self.out = heads, out_channels
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.randn(heads, out_channels) * 0.1)
        self.att_dst = nn.Parameter(torch.randn(heads, out_channels) * 0.1)
        self.bias = nn.Parameter(torch.zeros(heads * out_channels))
        # END SOLUTION

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """(N, heads * out) features."""
        # BEGIN SOLUTION
        n = x.shape[0]
        edge_index = add_self_loops(edge_index, n)
        src, dst = edge_index[0], edge_index[1]
        h = self.lin(x).view(n, self.heads, self.out)
        e = F.leaky_relu((h * self.att_dst).sum(-1)[dst] + (h * self.att_src).sum(-1)[src], 0.2)
        top = scatter(e, dst, n, "max")
        w = torch.exp(e - top[dst])
        a = w / scatter(w, dst, n, "sum")[dst]
        out = scatter(a.unsqueeze(-1) * h[src], dst, n, "sum")
        return out.reshape(n, -1) + self.bias
        # END SOLUTION


# ---------------------------------------------------------------- part 3: batches and models


def batch_graphs(graphs: list[tuple[torch.Tensor, torch.Tensor]]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Several graphs (x, edge_index) as one disjoint graph: features stacked, each graph's
    edge_index shifted by the number of nodes before it, and ``batch`` (N,) saying which graph
    each node is from (0, 1, ...). Returns (x, edge_index, batch)."""
    # BEGIN SOLUTION
    xs, edges, batch, offset = [], [], [], 0
    for g, (x, edge_index) in enumerate(graphs):
        xs.append(x)
        edges.append(edge_index + offset)
        batch.append(torch.full((x.shape[0],), g, dtype=torch.long))
        offset += x.shape[0]
    return torch.cat(xs), torch.cat(edges, dim=1), torch.cat(batch)
    # END SOLUTION


def global_pool(x: torch.Tensor, batch: torch.Tensor, n_graphs: int,
                reduce: str = "mean") -> torch.Tensor:
    """One row per graph: the "sum", "mean" or "max" of its nodes' features. (n_graphs, F)."""
    # BEGIN SOLUTION
    return scatter(x, batch, n_graphs, reduce)
    # END SOLUTION


class GCN(nn.Module):
    """Node classifier: GCNConv(in, hidden), ReLU, dropout (on these hidden features only, in
    training mode), GCNConv(hidden, n_classes).
    Attributes ``conv1``, ``conv2``. ``embed`` returns the hidden features (after the ReLU)."""

    def __init__(self, in_channels: int, hidden: int, n_classes: int, dropout: float = 0.5):
        super().__init__()
        # BEGIN SOLUTION
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, n_classes)
        self.dropout = dropout
        # END SOLUTION

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """relu(conv1(x)): the hidden features (N, hidden) the feedback page plots."""
        # BEGIN SOLUTION
        return F.relu(self.conv1(x, edge_index))
        # END SOLUTION

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes)."""
        # BEGIN SOLUTION
        h = F.dropout(self.embed(x, edge_index), self.dropout, self.training)
        return self.conv2(h, edge_index)
        # END SOLUTION


class GraphClassifier(nn.Module):
    """Graph classifier: GCNConv(in, hidden), ReLU, GCNConv(hidden, hidden), ReLU, global_pool
    with ``pool``, nn.Linear(hidden, n_classes). Attributes ``conv1``, ``conv2``, ``head``.
    forward(x, edge_index, batch, n_graphs) -> scores (n_graphs, n_classes)."""

    def __init__(self, in_channels: int, hidden: int, n_classes: int, pool: str = "mean"):
        super().__init__()
        # BEGIN SOLUTION
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, hidden)
        self.head = nn.Linear(hidden, n_classes)
        self.pool = pool
        # END SOLUTION

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor,
                n_graphs: int) -> torch.Tensor:
        """Class scores (n_graphs, n_classes) for a batch from batch_graphs."""
        # BEGIN SOLUTION
        h = F.relu(self.conv1(x, edge_index))
        h = F.relu(self.conv2(h, edge_index))
        return self.head(global_pool(h, batch, n_graphs, self.pool))
        # END SOLUTION


def train_node_classifier(model: GCN, x: torch.Tensor, edge_index: torch.Tensor,
                          y: torch.Tensor, train_mask: torch.Tensor, epochs: int = 200,
                          lr: float = 0.01, weight_decay: float = 5e-4) -> list[float]:
    """Full-batch training: Adam(lr, weight_decay), cross-entropy on the nodes where train_mask
    is True, ``epochs`` steps. Leaves the model in eval mode. Returns the losses (for your
    plots: not graded)."""
    # BEGIN SOLUTION
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    model.train()
    for _ in range(epochs):
        loss = F.cross_entropy(model(x, edge_index)[train_mask], y[train_mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses
    # END SOLUTION


def train_graph_classifier(model: GraphClassifier, graphs: list[tuple[torch.Tensor, torch.Tensor]],
                           y: torch.Tensor, epochs: int = 60, lr: float = 0.01,
                           batch_size: int = 32) -> list[float]:
    """Mini-batches of ``batch_size`` graphs in a random order each epoch (batch_graphs),
    Adam(lr), cross-entropy. Leaves the model in eval mode. Returns each epoch's mean loss (for
    your plots: not graded)."""
    # BEGIN SOLUTION
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(epochs):
        order, total = torch.randperm(len(graphs)), 0.0
        for start in range(0, len(graphs), batch_size):
            idx = order[start:start + batch_size].tolist()
            x, edge_index, batch = batch_graphs([graphs[i] for i in idx])
            loss = F.cross_entropy(model(x, edge_index, batch, len(idx)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(graphs))
    model.eval()
    return losses
    # END SOLUTION
