"""Hidden judges for a7_gnn: each capability against the reference on its own (float64, one
seeded graph with an isolated node, a duplicate edge and a one-way edge), the dense GCN formula
with the student's own weights, and two trained models scored on data the judge holds."""

import numpy as np
import probes
import pytest

from grader.checks import check, mismatch

GRAPH = ("the graph: 7 nodes, edges 0->1 (twice), 1->0, 1->2, 2->1, 2->3, 3->2, 3->4, 4->3, "
         "0->2, 4->5 (no 5->4); node 6 has no edges")


def _verdict(wrong, total, score, intro=GRAPH):
    score.fraction(1 - min(1.0, len(wrong) / total))
    check(not wrong, "\n".join([intro, *wrong] if intro else wrong))


@pytest.mark.points(8)
def test_edge_index_tools(student, reference, score):
    """add_self_loops (appended after the edges), in- and out-degrees, gcn_norm's edges and
    weights (degrees counted on the targets after the loops)"""
    got, want = student(probes.edge_tools), reference(probes.edge_tools)
    names = {"self_loops": "add_self_loops", "in_degree": "degree(edge_index[1])",
             "out_degree": "degree(edge_index[0])", "norm_edges": "gcn_norm's edge_index",
             "norm_weights": "gcn_norm's weights"}
    wrong = [why for key, what in names.items()
             if (why := mismatch(got[key], want[key], what, 0 if key != "norm_weights" else 1e-9))]
    _verdict(wrong, 4, score)


@pytest.mark.points(8)
def test_scatter(student, reference, score):
    """scatter with sum, mean and max on rows (E, 3) into 5 groups, one empty; max's gradient
    reaches only each group's largest entry"""
    got, want = student(probes.scatter_cases), reference(probes.scatter_cases)
    wrong = [why for key in ("sum", "mean", "max", "max_grad")
             if (why := mismatch(got[key], want[key],
                                 "max's gradient" if key == "max_grad" else f"scatter {key}"))]
    _verdict(wrong, 4, score, "src (8, 3), index [0, 1, 0, 2, 4, 4, 1, 0], 5 groups (group 3 "
             "empty: 0):")


@pytest.mark.points(12)
def test_gcn_conv(student, reference, score):
    """GCNConv with and without bias: equal to D^-1/2 (A + I) D^-1/2 X W^T + b computed with its
    own weights, and to the reference with the same weights"""
    got, want = student(probes.gcn_cases), reference(probes.gcn_cases)
    wrong = []
    for key in ("bias", "no_bias"):
        if why := mismatch(got[key]["out"], got[key]["dense"],
                           f"{key.replace('_', ' ')}: against the dense formula"):
            wrong.append(why)
        elif why := mismatch(got[key]["out"], want[key]["out"],
                             f"{key.replace('_', ' ')}: against the reference"):
            wrong.append(why + " (are the weights in `lin` and `bias`?)")
    _verdict(wrong, 2, score)


@pytest.mark.points(5)
def test_permutation_equivariance(student, score):
    """relabelling the nodes permutes GCNConv's outputs"""
    off = student(probes.permutation)
    check(off < 1e-9, f"after relabelling the nodes, GCNConv's outputs are not the permuted "
          f"outputs (off by up to {off:.1e}, tolerance 1e-9)")


@pytest.mark.points(8)
def test_message_passing(student, reference, score):
    """MessagePassing.propagate with sum, mean and max (an isolated node gets 0), and a subclass
    whose message uses both ends of the edge (x_j - x_i) and whose update adds x"""
    got, want = student(probes.message_passing), reference(probes.message_passing)
    wrong = [why for key in ("sum", "mean", "max", "difference")
             if (why := mismatch(got[key], want[key], f"aggregation {key}" if key != "difference"
                                 else "message x_j - x_i with update x + aggregate"))]
    _verdict(wrong, 4, score)


@pytest.mark.points(7)
def test_edge_conv(student, reference, score):
    """EdgeConv with max and mean aggregation against the reference with the same MLP"""
    got, want = student(probes.layers), reference(probes.layers)
    wrong = [why for key in ("edgeconv_max", "edgeconv_mean")
             if (why := mismatch(got[key], want[key], key.replace("_", " with ")))]
    _verdict(wrong, 2, score)


@pytest.mark.points(8)
def test_gat_conv(student, reference, score):
    """GATConv with 1 and 2 heads against the reference with the same weights"""
    got, want = student(probes.layers), reference(probes.layers)
    wrong = [why for key in ("gat_1", "gat_2")
             if (why := mismatch(got[key], want[key], f"GATConv with {key[-1]} head(s)"))]
    _verdict(wrong, 2, score)


@pytest.mark.points(8)
def test_batching_and_pooling(student, reference, score):
    """batch_graphs (features stacked, edges shifted, the batch vector) and global_pool: two
    graphs batched give what each gives alone"""
    got, want = student(probes.batching), reference(probes.batching)
    wrong = []
    if got["batch"] != want["batch"]:
        wrong.append("the batch vector is wrong (it should be 0 for the first graph's 7 nodes, "
                     "then 1 for the second's 3)")
    if got["edge_index"] != want["edge_index"]:
        wrong.append("the batched edge_index is wrong (the second graph's node numbers shift by "
                     "the first graph's 7 nodes)")
    if got["conv"] is None or not got["conv"] < 1e-9:
        wrong.append("GCNConv on the batch differs from GCNConv on each graph alone")
    wrong += [why for r in ("sum", "mean", "max")
              if (why := mismatch(got[f"pool_{r}"], want[f"pool_{r}"], f"global_pool {r}"))]
    _verdict(wrong, 4, score, GRAPH + "; a second graph of 3 nodes (edges 0->1, 1->2, 2->0, "
             "1->0)")


def _accuracy(pred, truth, what):
    pred = np.asarray(pred)
    check(pred.shape == truth.shape, f"{what}: the predictions have shape {pred.shape}, "
          f"expected {truth.shape}")
    return float(np.mean(pred == truth))


def _credit(score, acc, t, what):
    score.metric(f"{what} accuracy", acc)
    score.fraction(min(1.0, max(0.0, (acc - t["floor"]) / (t["min_accuracy"] - t["floor"]))))
    check(acc >= t["min_accuracy"], f"{what}: accuracy {acc:.1%}; needs "
          f"{t['min_accuracy']:.0%} on this device")


@pytest.mark.points(8)
def test_karate_club(student, thresholds, score):
    """a GCN trained on 4 labelled members per faction of Zachary's karate club classifies the
    other members"""
    t = thresholds["karate"]
    x, edge_index, y, mask = probes.karate_data(t["per_class"], seed=t["split_seed"])
    out = student(probes.karate, x=x, edge_index=edge_index, y=np.where(mask, y, -1),
                  train_mask=mask, settings=t, figure=True)
    score.figure("karate club: the GCN's hidden features, coloured by predicted faction",
                 out.get("png"))
    score.trained(out["seconds"])
    _accuracy(out["pred"], y, "karate club")  # the shape
    _credit(score, float(np.mean(np.asarray(out["pred"])[~mask] == y[~mask])), t,
            "karate club (unlabelled members)")


@pytest.mark.points(8)
def test_cycles_against_paths(student, thresholds, score):
    """a GraphClassifier trained on generated cycles and paths classifies held-out ones"""
    t = thresholds["graphs"]
    train, y_train = probes.cycles_and_paths(t["n_train"], seed=1)
    test, y_test = probes.cycles_and_paths(t["n_test"], seed=2)
    out = student(probes.graph_classes, train=train, y=y_train, test=test, settings=t)
    score.trained(out["seconds"])
    _credit(score, _accuracy(out["pred"], y_test, "cycles against paths"), t,
            "cycles against paths")
