"""Hidden judges for a6_attention: each capability against the reference on its own (float64,
seeded inputs, weights loaded by name), then properties no reference is needed for."""

import numpy as np
import probes
import pytest

from grader.checks import check, mismatch


def _judge(wrong, total, score, intro):
    score.fraction(1 - min(1.0, len(wrong) / total))
    check(not wrong, "\n".join([intro, *wrong] if intro else wrong))


@pytest.mark.points(10)
def test_masked_softmax_and_attention(student, reference, score):
    """masked_softmax (boolean and additive masks, fully masked rows, scores of 1e4) and
    scaled_dot_product_attention's outputs and weights"""
    got, want = student(probes.softmax_cases), reference(probes.softmax_cases)
    wrong = [why for name in probes.SOFTMAX_CASES
             if (why := mismatch(got[name], want[name], f"masked_softmax with {name}"))]
    for case in range(probes.SDPA_CASES):
        g, w = student(probes.sdpa_case, case=case), reference(probes.sdpa_case, case=case)
        wrong += [f"case {case}: {why}" for key in ("out", "weights")
                  if (why := mismatch(g[key], w[key], f"attention {key}"))]
    _judge(wrong, 8, score, "scaled_dot_product_attention cases: " + probes.describe_sdpa_cases())


@pytest.mark.points(8)
def test_masks_and_causality(student, reference, score):
    """causal_mask (square, and the last t_q of t_k positions) and padding_mask; in TinyGPT,
    changing a token never changes the logits of earlier positions"""
    got, want = student(probes.masks), reference(probes.masks)
    wrong = [why for key, what in (("causal_5", "causal_mask(5)"),
                                   ("causal_3_7", "causal_mask(3, 7)"),
                                   ("padding", "padding_mask([3, 5, 1], 5)"))
             if (why := mismatch(got[key], want[key], what, 0))]
    if got["causal_dtype"] != "torch.bool":
        wrong.append(f"causal_mask returns {got['causal_dtype']}, expected torch.bool")
    c = student(probes.causality)
    if not c["past"] < 1e-9:
        wrong.append("TinyGPT is not causal: changing the token at position p changed the logits "
                     "at positions before p (tolerance 1e-9)")
    elif not c["future"] > 1e-6:
        wrong.append("changing the token at position p did not change the logits at p: does a "
                     "query see its own token?")
    _judge(wrong, 4, score, "")


@pytest.mark.points(6)
def test_gaussian_kernel_attention(student, reference, score):
    """gaussian_kernel_attention's outputs and weights; KernelAttention's learnable theta and its
    gradient"""
    got, want = student(probes.kernel_attention), reference(probes.kernel_attention)
    wrong = [why for key in ("out", "weights")
             if (why := mismatch(got[key], want[key], f"gaussian_kernel_attention's {key}"))]
    if got["parameters"] != ["theta"]:
        wrong.append(f"KernelAttention's parameters are {got['parameters']}, expected ['theta']")
    elif abs(got["theta_start"] - 1.3) > 1e-6:
        wrong.append("KernelAttention(1.3).theta does not start at 1.3 (tolerance 1e-6)")
    elif got["theta_grad"] is None:
        wrong.append("no gradient reached theta")
    elif (why := mismatch(got["theta_grad"], want["theta_grad"], "the gradient in theta")):
        wrong.append(why)
    _judge(wrong, 3, score, "x_q (2, 4, 3), x_k (2, 6, 3), theta 0.7, a boolean mask; then "
           "KernelAttention(1.3), theta then set to 1.3 in float64, without a mask:")


def _weights_sum_to_one(out):
    """The largest departure of a row's admitted weights from 1 (0 for fully masked rows), and
    the largest weight on a refused key."""
    w, admitted = np.asarray(out["weights"]), out["admitted"]
    if admitted is None:
        return float(np.abs(w.sum(-1) - 1).max()), 0.0
    admitted = np.asarray(admitted)
    rows = admitted.any(-1)
    return (float(np.abs((w * admitted).sum(-1) - rows).max()),
            float(np.abs(w * (1 - admitted)).max()))


@pytest.mark.points(10)
def test_multi_head_attention(student, reference, score):
    """MultiHeadAttention against the reference: separate and fused projections, with and
    without bias, a causal mask, cross-attention with a padding mask; each row of weights sums to
    1 over the admitted keys"""
    got, want = student(probes.mha_cases), reference(probes.mha_cases)
    wrong = []
    for key in want:
        for part in ("out", "weights"):
            if why := mismatch(got[key][part], want[key][part], f"{key}: {part}"):
                wrong.append(why)
                break
    for case in range(probes.SDPA_CASES):
        off, leak = _weights_sum_to_one(student(probes.sdpa_case, case=case))
        if off > 1e-9 or leak > 0:
            wrong.append(f"scaled_dot_product_attention case {case}: a row's weights over its "
                         "admitted keys do not sum to 1, or a refused key has weight")
            break
    _judge(wrong, 4, score, "MultiHeadAttention(8, 2) on x (2, 5, 8), context (2, 7, 8):")


@pytest.mark.points(4)
def test_permutation_equivariance(student, score):
    """without a mask or positions, permuting the tokens permutes MultiHeadAttention's and
    TransformerBlock's outputs"""
    got = student(probes.equivariance)
    wrong = [f"{name}: permuting the input tokens does not permute the output (off by up to "
             f"{v:.1e}, tolerance 1e-9)" for name, v in got.items() if not v < 1e-9]
    _judge(wrong, 2, score, "")


@pytest.mark.points(6)
def test_positional_encodings(student, reference, score):
    """sinusoidal_encoding (with a start) and LearnedPositionalEncoding (with a start)"""
    got, want = student(probes.positional), reference(probes.positional)
    wrong = [why for key, what in (("sin_7_8", "sinusoidal_encoding(7, 8)"),
                                   ("sin_4_6_from_3", "sinusoidal_encoding(4, 6, start=3)"),
                                   ("sin_float64", "sinusoidal_encoding(12, 8, 20, torch.float64)"),
                                   ("learned", "LearnedPositionalEncoding(10, 4)(x)"),
                                   ("learned_from_5", "LearnedPositionalEncoding(10, 4)(x, start=5)"))
             if (why := mismatch(got[key], want[key], what, 1e-9 if key == "sin_float64"
                                 else 1e-6))]
    if got["learned_shape"] != want["learned_shape"]:
        wrong.append(f"LearnedPositionalEncoding(10, 4).weight has shape {got['learned_shape']}, "
                     f"expected {want['learned_shape']}")
    if got["sin_dtype"] != "torch.float32":
        wrong.append(f"sinusoidal_encoding returns {got['sin_dtype']}, expected torch.float32")
    _judge(wrong, 5, score, "tolerance 1e-6 for float32 results, 1e-9 for float64 ones:")


@pytest.mark.points(8)
def test_transformer_block(student, reference, score):
    """TransformerBlock (pre-LayerNorm, residuals, GELU MLP) against the reference with the same
    weights, with and without a causal mask"""
    got, want = student(probes.block_cases), reference(probes.block_cases)
    wrong = [why for key in want for part in ("out", "weights")
             if (why := mismatch(got[key][part], want[key][part], f"{key}: {part}"))]
    _judge(wrong, 2, score, "TransformerBlock(8, 2, 16) on x (2, 6, 8), weights set by name:")


@pytest.mark.points(6)
def test_tiny_gpt_logits(student, reference, score):
    """TinyGPT's logits with the same weights as the reference (learned and sinusoidal
    positions)"""
    got, want = student(probes.gpt_logits), reference(probes.gpt_logits)
    wrong = [why for key in want
             if (why := mismatch(got[key], want[key], f"logits with {key} positions"))]
    _judge(wrong, 2, score, f"TinyGPT({probes.GPT}) on tokens (2, 9), weights set by name:")


@pytest.mark.points(8)
def test_kv_cache(student, score):
    """KVCache.append keeps old then new; TinyGPT fed in chunks through caches gives the full
    pass's logits; generate is greedy decoding"""
    got = student(probes.kv_cache)
    wrong = []
    a = got["append"]
    if a["shape"] != [1, 2, 5, 4] or a["length"] != 5:
        wrong.append(f"after appending 3 then 2 tokens, the keys have shape {a['shape']} and the "
                     f"cache length {a['length']}; expected (1, 2, 5, 4) and 5")
    elif not (a["k"] < 1e-12 and a["v"] < 1e-12):
        wrong.append("KVCache.append does not return the old keys and values followed by the new")
    for kind in ("learned", "sinusoidal"):
        if isinstance(got[kind], str):
            wrong.append(f"{kind} positions: feeding tokens 0-2, 3, 4, 5-8 through caches raised "
                         + got[kind])
        elif got[kind] is None or not got[kind] < 1e-9:
            wrong.append(f"{kind} positions: feeding tokens 0-2, 3, 4, 5-8 through caches does "
                         "not give the full pass's logits (tolerance 1e-9)")
    if isinstance(got["generate"], str):
        wrong.append("generate(model, prompt, 5) raised " + got["generate"])
    elif got["generate"]["got"] != got["generate"]["want"]:
        wrong.append("generate(model, prompt, 5) differs from greedy decoding by full passes of "
                     "the same model")
    _judge(wrong, 4, score, "")


@pytest.mark.points(6)
def test_graph_attention(student, reference, score):
    """graph_attention on the complete graph (equal to scaled_dot_product_attention) and on a
    sparse graph with a duplicate edge and a node without incoming edges"""
    got, want = student(probes.graph_cases), reference(probes.graph_cases)
    wrong = [why for key in want if (why := mismatch(got[key], want[key], f"the {key} graph"))]
    _judge(wrong, 2, score, "6 nodes, q and k (6, 4), v (6, 3):")


TASKS = ("xor", "copy", "reverse")


@pytest.mark.points(8)
def test_trained_on_toy_tasks(student, device, thresholds, score):
    """TinyGPT trained with train_next_token predicts every answer token of held-out sequences:
    the notes' XOR, copying and reversing"""
    t = thresholds
    accs, seconds, pngs = {}, 0.0, []
    for task in TASKS:
        train, answer_start, vocab = probes.task_data(task, t["n_train"], t["length"],
                                                      t["vocab"], seed=1)
        test = train if task == "xor" else probes.task_data(task, t["n_test"], t["length"],
                                                            t["vocab"], seed=2)[0]
        out = student(probes.trained, task=task, train=train, answer_start=answer_start,
                      vocab=vocab, test=test, settings=t[task], device=device,
                      figure=task == "reverse")
        pred = np.asarray(out["pred"])
        answers = test[:, answer_start:]
        check(pred.shape == answers.shape, f"{task}: the predictions have shape {pred.shape}, "
              f"expected {answers.shape}")
        accs[task] = float(np.mean(pred == answers))
        seconds += out["seconds"]
        pngs.append(out.get("png"))
        score.metric(f"{task} token accuracy", accs[task])
    score.figure("attention weights on a reversal (rows: queries, columns: keys)", pngs[-1])
    score.trained(seconds)
    need, floor = t["min_accuracy"], t["floor"]
    score.fraction(float(np.mean([min(1.0, max(0.0, (a - floor) / (need - floor)))
                                  for a in accs.values()])))
    low = [f"{task} {acc:.1%}" for task, acc in accs.items() if acc < need]
    check(not low, "held-out token accuracy: " + ", ".join(low) + f"; each needs {need:.0%} "
          "on this device")
