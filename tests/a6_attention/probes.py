"""Probes for a6_attention: every capability on seeded float64 inputs, with weights loaded by
name (the attribute names the README gives), so two correct solutions give the same numbers.

Student code runs with torch's built-in attention refused (``no_builtin_attention``): the
README forbids nn.MultiheadAttention, F.scaled_dot_product_attention and nn.Transformer*.
"""

import contextlib
import io
import sys
import time
import zlib

import numpy as np

# torch functions whose use would skip the work the assignment asks for
BUILTIN_ATTENTION = {"scaled_dot_product_attention", "multi_head_attention_forward",
                     "_native_multi_head_attention", "_transformer_encoder_layer_fwd"}


class BuiltinAttentionUsed(RuntimeError):
    pass


def _torch():
    """torch, imported where a probe runs: the judges import this file and stay torch-free."""
    import torch

    return torch


@contextlib.contextmanager
def no_builtin_attention():
    """Refuse torch's own attention while student code runs."""
    torch = sys.modules.get("torch") or _torch()

    class Refuse(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if name in BUILTIN_ATTENTION:
                raise BuiltinAttentionUsed(f"torch's {name} was called: write attention yourself "
                                           "(the README forbids torch's built-in attention)")
            return func(*args, **(kwargs or {}))

    with Refuse():
        yield


def _np(t):
    return t.detach().cpu().numpy().astype(np.float64)


def _gen(seed):
    return _torch().Generator().manual_seed(seed)


def _randn(*shape, seed, scale=1.0):
    torch = _torch()
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64) * scale


def load_by_name(module, seed, scale=0.4):
    """Give every parameter a seeded value chosen by its name alone (LayerNorm weights near 1),
    so any two modules with the README's attribute names hold the same weights."""
    torch = _torch()
    module.double()
    with torch.no_grad():
        for name, p in module.named_parameters():
            g = _gen(seed * 7919 + zlib.crc32(name.encode()))
            value = torch.randn(p.shape, generator=g, dtype=torch.float64) * scale
            parts = name.split(".")
            if len(parts) >= 2 and parts[-2].startswith("ln") and parts[-1] == "weight":
                value = 1 + value
            p.copy_(value)
    return module


# ------------------------------------------------------------------ masked softmax and attention

SOFTMAX_CASES = ["no mask", "boolean mask", "additive mask (0, -inf and a bias of -2)",
                 "a fully masked row", "scores of +-1e4", "a fully -inf additive row"]


def softmax_cases(impl):
    """masked_softmax on the cases above, float64 (B, T_q, T_k) = (2, 3, 5)."""
    torch = _torch()
    s = _randn(2, 3, 5, seed=1, scale=2.0)
    keep = torch.rand(2, 3, 5, generator=_gen(2)) > 0.4
    keep[..., 0] = True
    add = torch.zeros(2, 3, 5, dtype=torch.float64)
    add[~keep] = float("-inf")
    add[:, 1, 2] = -2.0
    full = keep.clone()
    full[1, 2] = False
    big = s * 5e3
    neg_row = add.clone()
    neg_row[0, 1] = float("-inf")
    out = {}
    with no_builtin_attention():
        for name, (scores, mask) in zip(SOFTMAX_CASES, [(s, None), (s, keep), (s, add),
                                                         (s, full), (big, keep), (s, neg_row)]):
            out[name] = _np(impl.masked_softmax(scores, mask))
    return out


def worked_example(impl):
    """A worked example: scores [[1, 2, 3], [1, 1, 1], [5, 0, 0]] with the last key refused for
    row 0, every key for row 2."""
    torch = _torch()
    scores = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [5.0, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False], [True, True, True], [False, False, False]])
    with no_builtin_attention():
        return _np(impl.masked_softmax(scores, mask))


def _sdpa_inputs(case):
    """(q, k, v, mask, label) of each seeded attention case."""
    torch = _torch()
    if case == 0:
        return (_randn(4, 6, seed=10), _randn(6, 6, seed=11), _randn(6, 3, seed=12), None,
                "q (4, 6), k (6, 6), v (6, 3), no mask")
    if case == 1:
        q, k, v = _randn(2, 3, 5, 8, seed=20), _randn(2, 3, 7, 8, seed=21), _randn(2, 3, 7, 4, seed=22)
        mask = torch.rand(2, 1, 5, 7, generator=_gen(23)) > 0.5
        mask[..., 3] = True
        return q, k, v, mask, "(B, heads) = (2, 3), T_q 5, T_k 7, d 8, d_v 4, a random boolean mask"
    if case == 2:
        q, k, v = _randn(3, 6, 4, seed=30), _randn(3, 6, 4, seed=31), _randn(3, 6, 4, seed=32)
        mask = _randn(1, 6, 6, seed=33)
        mask[0, :, -1] = float("-inf")
        return q, k, v, mask, "an additive float mask (biases, the last key -inf)"
    if case == 3:
        q, k, v = _randn(2, 5, 4, seed=40), _randn(2, 5, 4, seed=41), _randn(2, 5, 4, seed=42)
        mask = torch.ones(2, 5, 5, dtype=torch.bool)
        mask[1, 2] = False
        return q, k, v, mask, "a fully masked row (query 2 of sequence 1)"
    q, k, v = _randn(2, 4, 3, seed=50, scale=300), _randn(2, 4, 3, seed=51, scale=300), _randn(
        2, 4, 3, seed=52)
    return q, k, v, None, "scores in the thousands (stability)"


SDPA_CASES = 5


def describe_sdpa_cases():
    return "; ".join(f"case {c}: {_sdpa_inputs(c)[4]}" for c in range(SDPA_CASES))


def sdpa_case(impl, case):
    q, k, v, mask, _ = _sdpa_inputs(case)
    with no_builtin_attention():
        out, w = impl.scaled_dot_product_attention(q, k, v, mask)
    admitted = None
    if mask is not None:
        m = mask if mask.dtype == _torch().bool else mask > float("-inf")
        admitted = _np(m.expand(w.shape).double())
    return {"out": _np(out), "weights": _np(w), "admitted": admitted}


def kernel_attention(impl):
    """The Gaussian kernel's outputs and weights, and KernelAttention's gradient in theta."""
    torch = _torch()
    xq, xk = _randn(2, 4, 3, seed=60), _randn(2, 6, 3, seed=61)
    mask = torch.rand(2, 4, 6, generator=_gen(62)) > 0.3
    mask[..., 0] = True
    out = {}
    with no_builtin_attention():
        o, w = impl.gaussian_kernel_attention(xq, xk, 0.7, mask)
        out["out"], out["weights"] = _np(o), _np(w)
        layer = impl.KernelAttention(1.3).double()
        names = [n for n, _ in layer.named_parameters()]
        out["theta_start"] = float(layer.theta.detach()) if names == ["theta"] else None
        if names == ["theta"]:  # exactly 1.3 in float64, however it was stored at the start
            with torch.no_grad():
                layer.theta.fill_(1.3)
        o, _ = layer(xq, xk)
        (o * _randn(*o.shape, seed=63)).sum().backward()
    out["parameters"] = names
    out["theta_grad"] = None if layer.theta.grad is None else float(layer.theta.grad)
    return out


def masks(impl):
    """causal_mask and padding_mask as 0/1 arrays."""
    torch = _torch()
    with no_builtin_attention():
        return {"causal_5": _np(impl.causal_mask(5).double()),
                "causal_3_7": _np(impl.causal_mask(3, 7).double()),
                "causal_dtype": str(impl.causal_mask(4).dtype),
                "padding": _np(impl.padding_mask(torch.tensor([3, 5, 1]), 5).double())}


GPT = {"vocab": 11, "d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 24, "max_len": 16}


def _gpt(impl, positional, seed=70):
    model = impl.TinyGPT(**GPT, positional=positional)
    return load_by_name(model, seed).eval()


def _tokens(b, t, seed):
    return _torch().randint(0, GPT["vocab"], (b, t), generator=_gen(seed))


def causality(impl):
    """Change the token at position p of a TinyGPT's input: how far the logits of earlier
    positions move (0 for a causal model), and how far those of p and later move."""
    torch = _torch()
    out = {"past": 0.0, "future": 0.0}
    with no_builtin_attention(), torch.no_grad():
        for positional in ("learned", "sinusoidal"):
            model = _gpt(impl, positional)
            tokens = _tokens(2, 9, seed=71)
            base = model(tokens)
            for p in (1, 4, 8):
                changed = tokens.clone()
                changed[:, p] = (changed[:, p] + 1) % GPT["vocab"]
                diff = (model(changed) - base).abs().amax(dim=(0, 2))
                out["past"] = max(out["past"], float(diff[:p].max()))
                out["future"] = max(out["future"], float(diff[p:].min()))
    return out


# ------------------------------------------------------------------ multi-head attention


def mha_cases(impl):
    """MultiHeadAttention (separate and fused projections, with and without bias) on
    self-attention with a causal mask, a padding mask, and cross-attention."""
    torch = _torch()
    x, ctx = _randn(2, 5, 8, seed=80), _randn(2, 7, 8, seed=81)
    pad = torch.tensor([[True] * 7, [True] * 4 + [False] * 3]).unsqueeze(1)
    causal = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    out = {}
    with no_builtin_attention():
        for fused in (False, True):
            for bias in (True, False):
                mha = load_by_name(impl.MultiHeadAttention(8, 2, bias=bias, fused=fused), 82)
                for name, kwargs in (("causal", {"mask": causal}),
                                     ("cross_padded", {"context": ctx, "mask": pad})):
                    o, w = mha(x, **kwargs)
                    key = f"{'fused' if fused else 'separate'}{'' if bias else '_nobias'}_{name}"
                    out[key] = {"out": _np(o), "weights": _np(w)}
    return out


def torch_equivalence(impl):
    """The student's MultiHeadAttention against torch's nn.MultiheadAttention holding the same
    weights (separate and fused), on self-attention with a causal mask."""
    torch = _torch()
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    load_by_name(ref, 90)
    x = _randn(3, 6, 8, seed=91)
    causal = torch.tril(torch.ones(6, 6, dtype=torch.bool))
    with torch.no_grad():
        want, want_w = ref(x, x, x, attn_mask=~causal, average_attn_weights=False)
    out = {}
    for fused in (False, True):
        mha = impl.MultiHeadAttention(8, 2, fused=fused).double()
        with torch.no_grad():
            if fused:
                mha.w_qkv.weight.copy_(ref.in_proj_weight)
                mha.w_qkv.bias.copy_(ref.in_proj_bias)
            else:
                for i, name in enumerate(("w_q", "w_k", "w_v")):
                    getattr(mha, name).weight.copy_(ref.in_proj_weight[8 * i:8 * (i + 1)])
                    getattr(mha, name).bias.copy_(ref.in_proj_bias[8 * i:8 * (i + 1)])
            mha.w_o.weight.copy_(ref.out_proj.weight)
            mha.w_o.bias.copy_(ref.out_proj.bias)
            with no_builtin_attention():
                got, got_w = mha(x, mask=causal)
        out["fused" if fused else "separate"] = {
            "out": float((got - want).abs().max()),
            "weights": float((got_w - want_w).abs().max()) if got_w.shape == want_w.shape else None}
    return out


def equivariance(impl):
    """Permute the tokens of MultiHeadAttention's and TransformerBlock's input (no mask, no
    positional encoding): how far the output is from the permuted output."""
    torch = _torch()
    x = _randn(2, 6, 8, seed=100)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    out = {}
    with no_builtin_attention(), torch.no_grad():
        for name, module in (("attention", impl.MultiHeadAttention(8, 2)),
                             ("block", impl.TransformerBlock(8, 2, 16))):
            module = load_by_name(module, 101).eval()
            a, _ = module(x)
            b, _ = module(x[:, perm])
            out[name] = float((a[:, perm] - b).abs().max())
    return out


# ------------------------------------------------------------------ the tiny GPT


def positional(impl):
    """sinusoidal_encoding, and LearnedPositionalEncoding with a start offset."""
    torch = _torch()
    with no_builtin_attention(), torch.no_grad():
        out = {"sin_7_8": _np(impl.sinusoidal_encoding(7, 8)),
               "sin_4_6_from_3": _np(impl.sinusoidal_encoding(4, 6, start=3)),
               "sin_float64": _np(impl.sinusoidal_encoding(12, 8, start=20, dtype=torch.float64)),
               "sin_dtype": str(impl.sinusoidal_encoding(3, 4).dtype)}
        pos = load_by_name(impl.LearnedPositionalEncoding(10, 4), 110)
        x = _randn(2, 3, 4, seed=111)
        out["learned"] = _np(pos(x))
        out["learned_from_5"] = _np(pos(x, start=5))
        out["learned_shape"] = list(pos.weight.shape)
    return out


def block_cases(impl):
    """TransformerBlock with seeded weights (LayerNorm's too), with and without a causal mask."""
    torch = _torch()
    x = _randn(2, 6, 8, seed=120)
    out = {}
    with no_builtin_attention(), torch.no_grad():
        block = load_by_name(impl.TransformerBlock(8, 2, 16), 121).eval()
        for name, mask in (("no_mask", None), ("causal", torch.tril(torch.ones(6, 6).bool()))):
            y, w = block(x, mask=mask)
            out[name] = {"out": _np(y), "weights": _np(w)}
    return out


def gpt_logits(impl):
    """TinyGPT's logits with seeded weights, learned and sinusoidal positions."""
    torch = _torch()
    out = {}
    with no_builtin_attention(), torch.no_grad():
        for kind in ("learned", "sinusoidal"):
            out[kind] = _np(_gpt(impl, kind)(_tokens(2, 9, seed=130)))
    return out


def kv_cache(impl):
    """KVCache.append on its own; TinyGPT fed in chunks through caches against the full pass;
    generate against greedy decoding by full passes of the same model."""
    torch = _torch()
    out = {}
    with no_builtin_attention(), torch.no_grad():
        cache = impl.KVCache()
        a, b = _randn(1, 2, 3, 4, seed=140), _randn(1, 2, 2, 4, seed=141)
        cache.append(a, a + 1)
        k, v = cache.append(b, b + 1)
        want = torch.cat([a, b], dim=-2)
        out["append"] = {"k": float((k - want).abs().max()) if k.shape == want.shape else None,
                         "v": float((v - want - 1).abs().max()) if v.shape == want.shape else None,
                         "shape": list(k.shape), "length": len(cache)}
        for kind in ("learned", "sinusoidal"):
            model = _gpt(impl, kind, seed=142)
            tokens = _tokens(2, 9, seed=143)
            full = model(tokens)
            caches = [impl.KVCache() for _ in model.blocks]
            try:
                got = torch.cat([model(tokens[:, s:e], caches)
                                 for s, e in ((0, 3), (3, 4), (4, 5), (5, 9))], dim=1)
                out[kind] = float((got - full).abs().max()) if got.shape == full.shape else None
            except Exception as e:  # one part's crash must not hide the others' verdicts
                out[kind] = _said(e)
        model = _gpt(impl, "learned", seed=144)
        prompt = _tokens(3, 4, seed=145)
        want = prompt
        for _ in range(5):
            want = torch.cat([want, model(want)[:, -1:].argmax(-1)], dim=1)
        try:
            got = impl.generate(model, prompt, 5)
            out["generate"] = {"got": np.asarray(got.cpu()).tolist(), "want": want[:, 4:].tolist()}
        except Exception as e:
            out["generate"] = _said(e)
    return out


def _said(error):
    """An exception as a student reads it: its type and the first line of its message."""
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]


def graph_cases(impl):
    """graph_attention on the complete graph with self-loops, and on a sparse graph with a
    duplicate edge and a node without incoming edges."""
    torch = _torch()
    n = 6
    q, k, v = _randn(n, 4, seed=150), _randn(n, 4, seed=151), _randn(n, 3, seed=152)
    src, dst = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="xy")
    complete = torch.stack([src.flatten(), dst.flatten()])
    sparse = torch.tensor([[0, 1, 2, 3, 4, 1, 5, 2, 2], [1, 2, 3, 4, 0, 0, 0, 3, 5]])
    with no_builtin_attention():
        return {"complete": _np(impl.graph_attention(q, k, v, complete)),
                "sparse": _np(impl.graph_attention(q, k, v, sparse))}


# ------------------------------------------------------------------ training on toy tasks


def task_data(task, n, length, vocab, seed):
    """Sequences prompt + separator + answer (the judge's side; numpy). "xor": the notes' table
    [a, b, a xor b]; "copy": x, SEP, x; "reverse": x, SEP, x reversed. Returns (sequences,
    answer_start, vocabulary size)."""
    if task == "xor":
        a = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
        return np.concatenate([a, a[:, :1] ^ a[:, 1:]], axis=1), 2, 2
    x = np.random.default_rng(seed).integers(0, vocab, (n, length))
    y = x if task == "copy" else x[:, ::-1]
    return np.concatenate([x, np.full((n, 1), vocab), y], axis=1), length + 1, vocab + 1


def trained(impl, task, train, answer_start, vocab, test, settings, device="cpu", figure=False):
    """Train a TinyGPT with train_next_token on ``train``; return its teacher-forced next-token
    predictions on the answers of ``test`` (the judge scores them), and the time it took."""
    torch = _torch()
    torch.manual_seed(settings.get("seed", 0))
    train, test = torch.as_tensor(train).long(), torch.as_tensor(test).long()
    with no_builtin_attention():
        model = impl.TinyGPT(vocab, d_model=settings["d_model"], n_heads=settings["n_heads"],
                             n_layers=settings["n_layers"], d_ff=settings["d_ff"],
                             max_len=test.shape[1]).to(device)
        start = time.perf_counter()
        losses = impl.train_next_token(model, train.to(device), answer_start,
                                       steps=settings["steps"], lr=settings["lr"],
                                       batch_size=settings["batch_size"])
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            logits, weights = model(test[:, :-1].to(device), return_weights=True)
    out = {"pred": logits[:, answer_start - 1:].argmax(-1).cpu().numpy(), "seconds": seconds,
           "final_loss": float(np.mean([float(v) for v in list(losses)[-20:]]))}
    if figure:
        out["png"] = _heatmaps([_np(w[0]) for w in weights], test[0, :-1].tolist(), task)
    return out


def _heatmaps(weights, tokens, task):
    """One heatmap per block and head of the first test sequence's attention weights."""
    from matplotlib.figure import Figure

    heads = [(b, h, w[h]) for b, w in enumerate(weights) for h in range(w.shape[0])]
    fig = Figure(figsize=(2.2 * len(heads), 2.6), dpi=80)
    axes = fig.subplots(1, len(heads), squeeze=False)[0]
    labels = [str(t) for t in tokens]
    for ax, (b, h, w) in zip(axes, heads):
        ax.imshow(w, cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"{task}: block {b}, head {h}", fontsize=8)
        ax.set_xticks(range(len(labels)), labels, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_xlabel("key", fontsize=7)
    axes[0].set_ylabel("query", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
