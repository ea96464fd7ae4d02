"""Probes for a7_gnn: edge_index tools, scatter, the layers (weights set by parameter name),
batching, and two trained models on data the judge makes and holds.

The graphs are small, seeded, and chosen for the README's promises: an isolated node (no
incoming edges), a duplicate edge, a directed edge without its reverse.
"""

import io
import time

import numpy as np

# 7 nodes: node 6 isolated, edge 0 -> 1 twice, 4 -> 5 without 5 -> 4
GRAPH = [[0, 1, 0, 1, 2, 2, 3, 3, 4, 0, 4], [1, 0, 1, 2, 1, 3, 2, 4, 3, 2, 5]]
N = 7


def _torch():
    """torch, imported where a probe runs: the judges import this file and stay torch-free."""
    import torch

    return torch


def _graph():
    torch = _torch()
    return torch.tensor(GRAPH), torch.randn(N, 4, generator=torch.Generator().manual_seed(1),
                                            dtype=torch.float64)


def _np(t):
    return t.detach().cpu().numpy()


def set_weights(module, seed):
    """Every parameter, in the order of its name, from one seeded generator: two modules with
    the README's attribute names get the same weights."""
    torch = _torch()
    module.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    return module


def edge_tools(impl):
    """add_self_loops, in- and out-degrees and gcn_norm on GRAPH."""
    torch = _torch()
    ei, _ = _graph()
    loops = impl.add_self_loops(ei, N)
    with_loops, weights = impl.gcn_norm(ei, N, torch.float64)
    return {"self_loops": _np(loops), "in_degree": _np(impl.degree(ei[1], N)),
            "out_degree": _np(impl.degree(ei[0], N)), "norm_edges": _np(with_loops),
            "norm_weights": _np(weights)}


def scatter_cases(impl):
    """scatter's three reductions into 5 groups (group 3 empty), and max's gradient."""
    torch = _torch()
    src = torch.randn(8, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    index = torch.tensor([0, 1, 0, 2, 4, 4, 1, 0])
    out = {r: _np(impl.scatter(src, index, 5, r)) for r in ("sum", "mean", "max")}
    leaf = src.clone().requires_grad_(True)
    (impl.scatter(leaf, index, 5, "max") * torch.arange(1.0, 16.0, dtype=torch.float64)
     .view(5, 3)).sum().backward()
    out["max_grad"] = None if leaf.grad is None else _np(leaf.grad)
    return out


def dense_gcn(x, edge_index, weight, bias):
    """D^-1/2 (A + I) D^-1/2 x W^T + b with A[i, j] counting the edges j -> i (numpy)."""
    n = x.shape[0]
    a = np.eye(n)
    for j, i in np.asarray(edge_index).T:
        a[i, j] += 1
    d = a.sum(1) ** -0.5
    out = (d[:, None] * a * d[None, :]) @ x @ weight.T
    return out if bias is None else out + bias


def gcn_cases(impl):
    """GCNConv (with and without bias) on GRAPH, and the dense formula with the same weights."""
    ei, x = _graph()
    out = {}
    for bias in (True, False):
        conv = set_weights(impl.GCNConv(4, 3, bias=bias), 3)
        got = conv(x, ei)
        b = None if conv.bias is None else _np(conv.bias)
        out["bias" if bias else "no_bias"] = {
            "out": _np(got), "dense": dense_gcn(_np(x), _np(ei), _np(conv.lin.weight), b)}
    return out


def permutation(impl):
    """Relabel GRAPH's nodes: how far GCNConv's output is from the permuted output."""
    torch = _torch()
    ei, x = _graph()
    perm = torch.tensor([3, 6, 0, 5, 1, 4, 2])  # new node k is old node perm[k]
    new_label = torch.empty_like(perm)
    new_label[perm] = torch.arange(N)
    conv = set_weights(impl.GCNConv(4, 3), 4)
    with torch.no_grad():
        return float((conv(x, ei)[perm] - conv(x[perm], new_label[ei])).abs().max())


def message_passing(impl):
    """The base class with each aggregation, and a subclass whose message and update use both
    ends of the edge (x_j - x_i, then x + aggregate)."""
    ei, x = _graph()

    class Difference(impl.MessagePassing):
        def message(self, x_i, x_j, edge_attr):
            return x_j - x_i

        def update(self, x, aggregated):
            return x + aggregated

    out = {aggr: _np(impl.MessagePassing(aggr=aggr)(x, ei)) for aggr in ("sum", "mean", "max")}
    out["difference"] = _np(Difference(aggr="sum")(x, ei))
    return out


def layers(impl):
    """EdgeConv (max and mean) and GATConv (1 and 2 heads) with seeded weights on GRAPH."""
    torch = _torch()
    ei, x = _graph()
    out = {}
    for aggr in ("max", "mean"):
        mlp = torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
        out[f"edgeconv_{aggr}"] = _np(set_weights(impl.EdgeConv(mlp, aggr=aggr), 5)(x, ei))
    for heads in (1, 2):
        out[f"gat_{heads}"] = _np(set_weights(impl.GATConv(4, 3, heads=heads), 6)(x, ei))
    return out


def batching(impl):
    """Two graphs batched against each alone: GCNConv's outputs and global_pool's rows."""
    torch = _torch()
    ei, x = _graph()
    ei2 = torch.tensor([[0, 1, 2, 1], [1, 2, 0, 0]])
    x2 = torch.randn(3, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    xb, eb, batch = impl.batch_graphs([(x, ei), (x2, ei2)])
    conv = set_weights(impl.GCNConv(4, 3), 8)
    with torch.no_grad():
        together = conv(xb, eb)
        apart = torch.cat([conv(x, ei), conv(x2, ei2)])
    out = {"batch": _np(batch).tolist(), "edge_index": _np(eb).tolist(),
           "conv": float((together - apart).abs().max()) if together.shape == apart.shape
           else None}
    for r in ("sum", "mean", "max"):
        pooled = impl.global_pool(together, batch, 2, r)
        out[f"pool_{r}"] = _np(pooled)
    return out


def karate(impl, x, edge_index, y, train_mask, settings, figure=False):
    """A GCN trained on the karate club's labelled nodes: predictions for every node (the judge
    scores the unlabelled ones), and the hidden embedding coloured by prediction."""
    torch = _torch()
    torch.manual_seed(settings.get("seed", 0))
    x, edge_index = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(edge_index).long()
    model = impl.GCN(x.shape[1], settings["hidden"], 2, dropout=settings["dropout"])
    start = time.perf_counter()
    impl.train_node_classifier(model, x, edge_index, torch.as_tensor(y).long(),
                               torch.as_tensor(train_mask).bool(), epochs=settings["epochs"],
                               lr=settings["lr"])
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        pred = model(x, edge_index).argmax(1)
        emb = model.embed(x, edge_index)
    out = {"pred": _np(pred).astype(np.int64), "seconds": seconds}
    if figure:
        out["png"] = _embedding(_np(emb).astype(np.float64), _np(pred), np.asarray(train_mask))
    return out


def _embedding(emb, pred, labelled):
    """The hidden features projected on their two main axes, coloured by predicted faction."""
    from matplotlib.figure import Figure

    centred = emb - emb.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred[:, 0], np.zeros(len(emb))]
    fig = Figure(figsize=(4, 3.4), dpi=80)
    ax = fig.subplots()
    for c, colour in ((0, "tab:blue"), (1, "tab:orange")):
        sel = pred == c
        ax.scatter(xy[sel, 0], xy[sel, 1], c=colour, s=30, label=f"predicted {c}")
    ax.scatter(xy[labelled, 0], xy[labelled, 1], facecolors="none", edgecolors="k", s=90,
               label="labelled")
    ax.set(title="karate club: GCN embedding", xlabel="axis 1", ylabel="axis 2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def graph_classes(impl, train, y, test, settings):
    """A GraphClassifier trained on the judge's graphs: predictions for the held-out ones."""
    torch = _torch()
    torch.manual_seed(settings.get("seed", 0))

    def as_graphs(gs):
        return [(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(e).long())
                for x, e in gs]

    model = impl.GraphClassifier(3, settings["hidden"], 2, pool=settings["pool"])
    start = time.perf_counter()
    impl.train_graph_classifier(model, as_graphs(train), torch.as_tensor(y).long(),
                                epochs=settings["epochs"], lr=settings["lr"],
                                batch_size=settings["batch_size"])
    seconds = time.perf_counter() - start
    model.eval()
    x, ei, batch = impl.batch_graphs(as_graphs(test))
    with torch.no_grad():
        pred = model(x, ei, batch, len(test)).argmax(1)
    return {"pred": _np(pred).astype(np.int64), "seconds": seconds}


# ------------------------------------------------------------------ the judge's data (numpy)


def karate_data(per_class, seed):
    """Zachary's karate club from networkx: one-hot features, both directions of each edge, the
    faction of each member (0: Mr. Hi, 1: Officer) and a mask of per_class labelled members."""
    import networkx as nx

    g = nx.karate_club_graph()
    e = np.array(sorted(g.edges())).T
    y = np.array([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in range(g.number_of_nodes())])
    mask = np.zeros(len(y), dtype=bool)
    rng = np.random.default_rng(seed)
    for c in (0, 1):
        mask[rng.choice(np.flatnonzero(y == c), per_class, replace=False)] = True
    return np.eye(len(y)), np.concatenate([e, e[::-1]], axis=1), y, mask


def cycles_and_paths(n, seed, sizes=(6, 12)):
    """n graphs, each a cycle (label 1) or a path (label 0) of sizes[0]..sizes[1] nodes, both
    directions of each edge; node features one-hot of the degree (1, 2, 3 or more)."""
    rng = np.random.default_rng(seed)
    graphs, labels = [], rng.integers(0, 2, n)
    for label in labels:
        m = int(rng.integers(sizes[0], sizes[1] + 1))
        s = np.arange(m - 1)
        e = np.stack([s, s + 1])
        if label:
            e = np.concatenate([e, [[m - 1], [0]]], axis=1)
        e = np.concatenate([e, e[::-1]], axis=1)
        deg = np.bincount(e[1], minlength=m)
        graphs.append((np.eye(3)[np.minimum(deg, 3) - 1], e))
    return graphs, labels


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
