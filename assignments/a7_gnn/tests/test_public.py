"""Public self-checks for a7_gnn: GCNConv on the notes' three-node graph, and scatter on a
small example with an empty group."""

import numpy as np
import probes
import pytest

from grader.checks import check

pytestmark = pytest.mark.public


@pytest.mark.points(10)
def test_gcn_on_the_notes_graph(student):
    """the notes' graph (edges 0-1 and 1-2 both ways, x = [[-1], [0], [1]]): degrees with
    self-loops [2, 3, 2]; GCNConv(1, 1) with W = [[2]] and b = [0.5] gives [-0.5, 0.5, 1.5]"""
    got = student(probes.notes_example)
    check(np.allclose(got["degree"], [2, 3, 2]), "degree(edge_index[1]) after add_self_loops "
          f"gave {got['degree']}, expected [2, 3, 2]")
    out = np.asarray(got["out"])
    check(out.shape == (3, 1), f"GCNConv returned shape {out.shape}, expected (3, 1)")
    check(np.allclose(out.ravel(), [-0.5, 0.5, 1.5], atol=1e-12),
          f"GCNConv returned {out.ravel()}, expected [-0.5, 0.5, 1.5]: node 0 gets "
          "2 * (-1 / sqrt(2 * 2) + 0 / sqrt(2 * 3)) + 0.5 (tolerance 1e-12)")


@pytest.mark.points(10)
def test_scatter_example(student):
    """scatter of [1, 2, 3, 4] by index [0, 2, 0, 2] into 4 groups: sum [4, 0, 6, 0], mean
    [2, 0, 3, 0], max [3, 0, 4, 0] (groups 1 and 3 are empty: 0)"""
    got = student(probes.scatter_example)
    for reduce, want in (("sum", [4, 0, 6, 0]), ("mean", [2, 0, 3, 0]), ("max", [3, 0, 4, 0])):
        g = np.asarray(got[reduce]).ravel()
        check(g.shape == (4,) and np.allclose(g, want), f"scatter(..., reduce={reduce!r}) gave "
              f"{g}, expected {want}")
