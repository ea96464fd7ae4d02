"""Public self-checks for a6_attention: the README's masked-softmax example, and multi-head
attention equal to torch's nn.MultiheadAttention holding the same weights."""

import numpy as np
import probes
import pytest

from grader.checks import check

pytestmark = pytest.mark.public


@pytest.mark.points(10)
def test_masked_softmax_worked_example(student):
    """masked_softmax([[1, 2, 3], [1, 1, 1], [5, 0, 0]]) with row 0's last key refused and every
    key of row 2 refused: [[e/(e+e^2), e^2/(e+e^2), 0], [1/3, 1/3, 1/3], [0, 0, 0]]"""
    got = np.asarray(student(probes.worked_example))
    e = np.e
    want = np.array([[e / (e + e**2), e**2 / (e + e**2), 0], [1 / 3] * 3, [0, 0, 0]])
    check(got.shape == (3, 3), f"masked_softmax returned shape {got.shape}, expected (3, 3)")
    check(not np.isnan(got).any(), f"masked_softmax returned NaN:\n{got}\na row with every key "
          "refused must be all zeros")
    check(np.allclose(got, want, rtol=0, atol=1e-12), f"masked_softmax returned\n{got}\n"
          f"expected\n{want}\n(tolerance 1e-12)")


@pytest.mark.points(10)
def test_multi_head_attention_equals_torch(student):
    """MultiHeadAttention(8, 2), separate and fused, holding the weights of torch's
    nn.MultiheadAttention(8, 2, batch_first=True), gives its outputs and per-head weights under a
    causal mask (tolerance 1e-10)"""
    got = student(probes.torch_equivalence)
    for kind, diff in got.items():
        check(diff["weights"] is not None, f"{kind} projections: the attention weights should "
              "have shape (B, n_heads, T_q, T_k) = (3, 2, 6, 6)")
        check(diff["out"] < 1e-10, f"{kind} projections: the outputs differ from torch's by up "
              f"to {diff['out']:.1e} (tolerance 1e-10)")
        check(diff["weights"] < 1e-10, f"{kind} projections: the weights differ from torch's by "
              f"up to {diff['weights']:.1e} (tolerance 1e-10)")
