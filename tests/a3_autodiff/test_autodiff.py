"""Hidden judges for a3_autodiff."""

import numpy as np
import probes
import pytest

from grader.checks import assert_allclose, check, rel_error


@pytest.mark.points(15)
def test_random_expression_graphs(student, reference, score):
    """random expression DAGs with shared subexpressions: gradients against the reference and
    finite differences"""
    wrong = []
    seeds = range(20, 32)
    for seed in seeds:
        got, want = student(probes.random_dag, seed=seed), reference(probes.random_dag, seed=seed)
        err_ref = rel_error(got["grads"], want["grads"])
        err_num = rel_error(got["grads"], got["numeric"])
        if abs(got["value"] - want["value"]) > 1e-9 * max(1, abs(want["value"])):
            wrong.append(f"graph {seed}: wrong value")
        elif err_ref > 1e-8 or err_num > 1e-5:
            wrong.append(f"graph {seed}: gradients off (relative error {max(err_ref, err_num):.1e})")
    score.fraction(1 - len(wrong) / len(seeds))
    check(not wrong, "\n".join(wrong))


@pytest.mark.points(10)
def test_gradients_accumulate_and_zero_grad_resets(student):
    """a node used twice receives the sum over both paths; zero_grad resets every node"""
    got = student(probes.accumulation)
    check(got["first"] == 7.0, f"d(a*a + a)/da at a=3 should be 7, got {got['first']}: "
          "gradients must be added (+=) over every path, not overwritten")
    check(got["after_zero"] == 0.0, f"after zero_grad() the leaf's grad is {got['after_zero']}, "
          "not 0: zero_grad must reset the leaves too")
    check(got["again"] == 7.0, f"backward after zero_grad gave {got['again']}, expected 7")


@pytest.mark.points(10)
def test_deep_chain_of_100000_operations(student, reference, score):
    """backward through a chain of 100,000 operations (no recursion limit)"""
    got = student(probes.deep_chain)
    want = reference(probes.deep_chain)
    check(abs(got["grad"] - 1.0) < 1e-9, f"gradient through the chain is {got['grad']}, expected 1")
    score.note(f"backward through the chain of 100,000 operations took {got['seconds']:.2f} s "
               f"(the reference: {want['seconds']:.2f} s, ratio {got['seconds'] / max(want['seconds'], 1e-9):.1f})")


@pytest.mark.points(15)
def test_tensor_operations_match_reference(student, reference, score):
    """every Tensor operation, broadcasting included, reductions along each axis with and
    without keepdims, ReLU at exactly 0: values and gradients against the reference"""
    wrong = []
    for op in probes.TENSOR_OPS:
        got, want = student(probes.tensor_op, op=op, seed=3), reference(probes.tensor_op, op=op, seed=3)
        try:
            assert_allclose(got["out"], want["out"], f"{op}: forward value", rtol=1e-9)
            check(len(got["grads"]) == len(want["grads"]), f"{op}: wrong number of gradients")
            for k, (g, w) in enumerate(zip(got["grads"], want["grads"])):
                assert_allclose(g, w, f"{op}: gradient of input {k}", rtol=1e-8)
        except AssertionError as exc:
            wrong.append(str(exc).splitlines()[0])
    score.fraction(1 - len(wrong) / len(probes.TENSOR_OPS))
    check(not wrong, "\n".join(wrong))


@pytest.mark.points(10)
def test_tensor_gradients_match_finite_differences(student, score):
    """every Tensor operation's gradient agrees with central differences of its forward pass"""
    wrong = []
    ops = [op for op in probes.TENSOR_OPS if op not in probes.KINKS]
    for op in ops:
        got = student(probes.tensor_op, op=op, seed=4)
        for k, (g, n) in enumerate(zip(got["grads"], got["numeric"])):
            if np.shape(g) != np.shape(n):
                wrong.append(f"{op}: gradient of input {k} has shape {np.shape(g)}, the input "
                             f"has {np.shape(n)} (reduce broadcast dimensions in backward)")
            elif rel_error(g, n) > 1e-5:
                wrong.append(f"{op}: gradient of input {k} off by {rel_error(g, n):.1e}")
    score.fraction(1 - len({w.split(':')[0] for w in wrong}) / len(ops))
    check(not wrong, "\n".join(wrong))


@pytest.mark.points(5)
def test_cross_entropy_is_stable(student, reference):
    """log_softmax and cross-entropy stay finite for logits in the thousands"""
    loss, grad = student(probes.cross_entropy_large_logits, seed=5)
    want_loss, want_grad = reference(probes.cross_entropy_large_logits, seed=5)
    check(np.isfinite(loss), f"the loss is {loss}: subtract the max before exponentiating")
    assert_allclose(loss, want_loss, "cross-entropy", rtol=1e-9)
    assert_allclose(grad, want_grad, "gradient of the logits", rtol=1e-8)


@pytest.mark.points(10)
def test_moons_accuracy(student, score):
    """an MLP trained with your engine classifies held-out make_moons points (95%)"""
    _, _, _, y_test = probes.moons_split()
    pred = student(probes.moons_predictions, seed=0)
    check(np.shape(pred) == y_test.shape, f"predictions have shape {np.shape(pred)}")
    acc = float(np.mean(pred == y_test))
    score.fraction(min(1.0, max(0.0, (acc - 0.80) / 0.15)))
    check(acc >= 0.95, f"held-out accuracy {acc:.1%}, needs 95%")


@pytest.mark.points(5)
def test_forward_mode_matches_reverse_mode(student, reference, score):
    """the dual-number JVP equals the gradient dotted with the direction (forward mode judged on
    its own: a reverse-mode bug costs only the reverse-mode judges)"""
    wrong = []
    for seed in (40, 41, 42):
        got = student(probes.forward_vs_reverse, seed=seed)
        want = reference(probes.forward_vs_reverse, seed=seed)
        if abs(got["jvp"] - want["jvp"]) > 1e-8 * max(1, abs(want["jvp"])):
            wrong.append(f"direction {seed}: jvp is off (tolerance 1e-8, relative to max(1, "
                         "|expected|))")
    score.fraction(1 - len(wrong) / 3)
    check(not wrong, "\n".join(wrong))
