"""a6_attention, alternate solution in an "einsum everywhere" style.

Masks become additive biases (0 admit, -inf refuse), the softmax is torch.softmax with a fix for
rows whose every key is refused, contractions are torch.einsum, and graph attention is built
from scatter_reduce (row maxima) and index_add_ (sums).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_NEG_INF = float("-inf")


# ---------------------------------------------------------------- helpers


def _as_bias(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """Turn a mask into an additive bias of ``like``'s dtype: boolean True -> 0, False -> -inf;
    a float mask is already a bias."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        zero = torch.zeros((), dtype=like.dtype, device=like.device)
        minus_inf = torch.full((), _NEG_INF, dtype=like.dtype, device=like.device)
        return torch.where(mask.to(like.device), zero, minus_inf)
    return mask.to(device=like.device, dtype=like.dtype)


def _split_heads(t: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, H * e) -> (B, H, T, e): head h holds features h*e .. (h+1)*e - 1."""
    b, n_tok, width = t.shape
    return torch.einsum("bthe->bhte", t.reshape(b, n_tok, n_heads, width // n_heads))


def _linear(x: torch.Tensor, layer: nn.Linear, rows: slice | None = None) -> torch.Tensor:
    """y = x W^T + b by einsum, optionally with only some output rows of the layer."""
    w = layer.weight if rows is None else layer.weight[rows]
    y = torch.einsum("...i,oi->...o", x, w)
    if layer.bias is not None:
        y = y + (layer.bias if rows is None else layer.bias[rows])
    return y


# ---------------------------------------------------------------- part 1: attention as a kernel


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last axis of ``scores``, over the admitted entries only.

    ``mask``: None (all admitted), boolean (True = admitted) or float (added to the scores).
    Stable for large scores; a row with no admitted entry is all zeros.
    """
    bias = _as_bias(mask, scores)
    biased = scores if bias is None else scores + bias
    # a row with nothing admitted would give NaN (-inf - -inf): give softmax a harmless row of
    # zeros there instead (so neither the values nor the gradients see a NaN), and zero it after
    dead = torch.isneginf(biased).all(dim=-1, keepdim=True)
    safe = torch.where(dead, torch.zeros_like(biased), biased)
    probs = torch.softmax(safe, dim=-1)  # torch.softmax subtracts the row maximum itself
    return torch.where(dead, torch.zeros_like(probs), probs)


def _sq_distances(x_q: torch.Tensor, x_k: torch.Tensor) -> torch.Tensor:
    diff = x_q.unsqueeze(-2) - x_k.unsqueeze(-3)  # (..., T_q, T_k, d)
    return torch.einsum("...qkd,...qkd->...qk", diff, diff)


def gaussian_kernel_attention(x_q: torch.Tensor, x_k: torch.Tensor, theta: torch.Tensor | float,
                              mask: torch.Tensor | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The notes' non-learnable attention: weights softmax(-theta^2 ||x_q - x_k||^2) over the
    admitted keys, values v(x) = x_k. x_q (..., T_q, d), x_k (..., T_k, d).
    Returns (outputs (..., T_q, d), weights (..., T_q, T_k))."""
    weights = masked_softmax(-(theta ** 2) * _sq_distances(x_q, x_k), mask)
    return torch.einsum("...qk,...kd->...qd", weights, x_k), weights


class KernelAttention(nn.Module):
    """Gaussian-kernel attention with a learnable bandwidth: the parameter ``theta`` (a scalar
    tensor, starting at ``theta``). forward(x_q, x_k, mask=None) -> (outputs, weights)."""

    def __init__(self, theta: float = 1.0):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(float(theta)))

    def forward(self, x_q: torch.Tensor, x_k: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """gaussian_kernel_attention with this module's theta (gradients reach theta)."""
        return gaussian_kernel_attention(x_q, x_k, self.theta, mask)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v over the admitted keys, d = q.shape[-1].
    q (..., T_q, d), k (..., T_k, d), v (..., T_k, d_v).
    Returns (outputs (..., T_q, d_v), weights (..., T_q, T_k))."""
    scores = torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])
    weights = masked_softmax(scores, mask)
    return torch.einsum("...qk,...kv->...qv", weights, v), weights


def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None
                ) -> torch.Tensor:
    """Boolean (t_q, t_k) mask for the last t_q of t_k positions (t_k defaults to t_q): query i
    sits at position i + t_k - t_q and may attend to keys at that position and before."""
    t_k = t_q if t_k is None else t_k
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)


def padding_mask(lengths: torch.Tensor | list[int], t: int) -> torch.Tensor:
    """Boolean (B, 1, t) mask admitting the first lengths[b] keys of sequence b (the rest is
    padding), broadcastable against scores (B, T_q, t)."""
    lengths = torch.as_tensor(lengths)
    keys = torch.arange(t, device=lengths.device)
    return torch.lt(keys.view(1, 1, t), lengths.reshape(-1, 1, 1))


def graph_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    edge_index: torch.Tensor) -> torch.Tensor:
    """Attention as message passing (the notes: "an attention layer is a special case of a GNN
    layer"). Nodes have queries q (N, d), keys k (N, d), values v (N, d_v); edge_index (2, E)
    holds edges source -> target (row 0 sources j, row 1 targets i, as in PyTorch Geometric).
    Node i's output is sum over its incoming edges j -> i of a_ij v_j, with a_ij the softmax over
    those edges of q_i . k_j / sqrt(d). A node without incoming edges outputs 0. Written with
    scatter operations (index_add_, scatter_reduce), never an (N, N) matrix: on the complete
    graph with self-loops it equals scaled_dot_product_attention."""
    n_nodes = q.shape[0]
    edge_index = edge_index.to(q.device).long()
    src, dst = edge_index[0], edge_index[1]
    score = torch.einsum("ed,ed->e", q[dst], k[src]) / math.sqrt(q.shape[-1])  # (E,)
    # per-target maximum (nodes without edges keep 0, never used)
    top = torch.zeros(n_nodes, dtype=score.dtype, device=score.device)
    top = top.scatter_reduce(0, dst, score.detach(), reduce="amax", include_self=False)
    expd = torch.exp(score - top[dst])
    denom = torch.zeros(n_nodes, dtype=score.dtype, device=score.device).index_add_(0, dst, expd)
    alpha = expd / denom[dst]
    messages = torch.einsum("e,ev->ev", alpha, v[src])
    out = torch.zeros(n_nodes, v.shape[-1], dtype=messages.dtype, device=messages.device)
    return out.index_add_(0, dst, messages)


# ---------------------------------------------------------------- part 2: multi-head attention


class KVCache:
    """Keys and values of the tokens seen so far, for one attention layer: ``k`` and ``v`` are
    None or (B, n_heads, T_seen, d_head)."""

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new tokens' keys and values (B, n_heads, T_new, d_head) after the cached ones;
        return all keys and values, old then new."""
        self.k = k if self.k is None else torch.cat((self.k, k), dim=-2)
        self.v = v if self.v is None else torch.cat((self.v, v), dim=-2)
        return self.k, self.v


class MultiHeadAttention(nn.Module):
    """Multi-head attention. With fused=False the projections are the nn.Linear attributes
    ``w_q``, ``w_k``, ``w_v`` (d_model -> d_model each); with fused=True one nn.Linear ``w_qkv``
    (d_model -> 3 d_model, its output split into q, k, v in that order). Either way an output
    projection ``w_o`` (d_model -> d_model). ``bias`` is every projection's bias flag."""

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, fused: bool = False):
        super().__init__()
        self.d_model, self.n_heads, self.fused = d_model, n_heads, fused
        self.d_head = d_model // n_heads
        if fused:
            self.w_qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        else:
            self.w_q = nn.Linear(d_model, d_model, bias=bias)
            self.w_k = nn.Linear(d_model, d_model, bias=bias)
            self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def _project(self, x: torch.Tensor, which: int) -> torch.Tensor:
        """which = 0, 1, 2 for q, k, v."""
        if self.fused:
            d = self.d_model
            return _linear(x, self.w_qkv, slice(which * d, (which + 1) * d))
        return _linear(x, (self.w_q, self.w_k, self.w_v)[which])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, cache: KVCache | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries from x (B, T_q, d_model); keys and values from ``context`` (B, T_k, d_model),
        or from x itself when context is None (self-attention). ``mask`` is broadcastable to
        (B, T_q, T_k) and applies to every head. With a ``cache``, the new keys and values are
        appended to it first and the queries attend to all of the cache's (T_k is then the
        cache's length). Returns (outputs (B, T_q, d_model), weights (B, n_heads, T_q, T_k))."""
        src = x if context is None else context
        q = _split_heads(self._project(x, 0), self.n_heads)
        k = _split_heads(self._project(src, 1), self.n_heads)
        v = _split_heads(self._project(src, 2), self.n_heads)
        if cache is not None:
            k, v = cache.append(k, v)
        if mask is not None and mask.dim() >= 3:
            mask = mask.unsqueeze(-3)  # (B, 1, T_q, T_k): the same for every head
        heads, weights = scaled_dot_product_attention(q, k, v, mask)  # (B, H, T_q, e)
        w_o = self.w_o.weight.view(self.d_model, self.n_heads, self.d_head)
        out = torch.einsum("bhqe,mhe->bqm", heads, w_o)
        if self.w_o.bias is not None:
            out = out + self.w_o.bias
        return out, weights


# ---------------------------------------------------------------- part 3: a tiny GPT


def sinusoidal_encoding(t: int, d: int, start: int = 0, dtype: torch.dtype = torch.float32
                        ) -> torch.Tensor:
    """(t, d) encodings of positions start .. start + t - 1 (d even):
    PE[p, 2i] = sin(p / 10000^(2i / d)), PE[p, 2i + 1] = cos(p / 10000^(2i / d)),
    computed in float64 and returned as ``dtype`` (so float64 models get float64 accuracy)."""
    pos = torch.arange(start, start + t, dtype=torch.float64)
    inv_freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = torch.einsum("p,i->pi", pos, inv_freq)  # (t, d/2)
    pe = torch.stack((angle.sin(), angle.cos()), dim=-1).reshape(t, d)  # interleave sin, cos
    return pe.to(dtype)


class LearnedPositionalEncoding(nn.Module):
    """A learned vector per position: the parameter ``weight`` (max_len, d), normal(0, 0.02) at
    the start. forward(x, start=0) returns x (B, T, d) plus the vectors of positions start ..
    start + T - 1."""

    def __init__(self, max_len: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_len, d))
        nn.init.normal_(self.weight, mean=0.0, std=0.02)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """x plus the vectors of positions start .. start + T - 1."""
        return x + self.weight[start:start + x.shape[-2]]


class TransformerBlock(nn.Module):
    """A pre-LayerNorm block: x + attn(ln1(x)), then that plus mlp(ln2(that)). Attributes:
    ``ln1``, ``ln2`` (nn.LayerNorm(d_model)), ``attn`` (MultiHeadAttention(d_model, n_heads)),
    ``mlp`` (nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model)))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (outputs (B, T, d_model), the attention weights)."""
        attended, weights = self.attn(self.ln1(x), mask=mask, cache=cache)
        h = x + attended
        return h + self.mlp(self.ln2(h)), weights


class TinyGPT(nn.Module):
    """A decoder-only model: token embedding ``embed`` (nn.Embedding(vocab, d_model)), then the
    positional encoding (``positional`` "learned": a LearnedPositionalEncoding(max_len, d_model)
    in the attribute ``pos``; "sinusoidal": sinusoidal_encoding added, ``pos`` None), then
    ``blocks`` (nn.ModuleList of n_layers TransformerBlock), a final nn.LayerNorm ``ln_f`` and a
    linear ``head`` (d_model -> vocab). Every block uses the causal mask."""

    def __init__(self, vocab: int, d_model: int = 32, n_heads: int = 2, n_layers: int = 2,
                 d_ff: int = 64, max_len: int = 32, positional: str = "learned"):
        super().__init__()
        if positional not in ("learned", "sinusoidal"):
            raise ValueError(f"positional must be 'learned' or 'sinusoidal', not {positional!r}")
        self.vocab, self.d_model, self.max_len = vocab, d_model, max_len
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = LearnedPositionalEncoding(max_len, d_model) if positional == "learned" else None
        self.blocks = nn.ModuleList(TransformerBlock(d_model, n_heads, d_ff)
                                    for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor, caches: list[KVCache] | None = None,
                return_weights: bool = False):
        """Next-token logits (B, T, vocab) for tokens (B, T) (int64). With ``caches`` (one
        KVCache per block), the tokens continue the cached ones: their positions start at the
        caches' length, and they attend to the cached tokens and to each other causally. With
        return_weights, returns (logits, a list of each block's attention weights)."""
        n_new = tokens.shape[1]
        seen = 0 if caches is None else len(caches[0])
        x = self.embed(tokens)
        if self.pos is not None:
            x = self.pos(x, start=seen)
        else:
            x = x + sinusoidal_encoding(n_new, self.d_model, seen, x.dtype).to(x.device)
        mask = causal_mask(n_new, seen + n_new, device=x.device)
        all_weights = []
        for i, block in enumerate(self.blocks):
            x, w = block(x, mask=mask, cache=None if caches is None else caches[i])
            all_weights.append(w)
        logits = self.head(self.ln_f(x))
        return (logits, all_weights) if return_weights else logits


@torch.no_grad()
def generate(model: TinyGPT, prompt: torch.Tensor, n_new: int) -> torch.Tensor:
    """Greedy decoding with a key-value cache: feed the prompt (B, T) once, then one token at a
    time, each the argmax of the last logits. Returns the n_new generated tokens (B, n_new)."""
    caches = [KVCache() for _ in model.blocks]
    out = []
    logits = model(prompt, caches=caches)
    for step in range(n_new):
        nxt = logits[:, -1].argmax(dim=-1, keepdim=True)
        out.append(nxt)
        if step + 1 < n_new:
            logits = model(nxt, caches=caches)
    if not out:
        return prompt.new_zeros(prompt.shape[0], 0)
    return torch.cat(out, dim=1)


def train_next_token(model: TinyGPT, sequences: torch.Tensor, answer_start: int,
                     steps: int = 600, lr: float = 3e-3, batch_size: int = 64) -> list[float]:
    """Train ``model`` on next-token prediction: for a batch of sequences (B, T), the logits at
    position p predict token p + 1, and the loss (cross-entropy, mean) counts only the targets at
    positions answer_start .. T - 1 (the answer; the prompt is given). AdamW(lr, weight_decay
    0.01), ``steps`` steps on batches drawn at random from ``sequences``. Returns the losses."""
    device = next(model.parameters()).device
    sequences = sequences.to(device).long()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    losses = []
    for step in range(steps):
        idx = torch.randint(0, sequences.shape[0], (batch_size,), device=device)
        batch = sequences[idx]
        logits = model(batch[:, :-1])  # position p predicts token p + 1
        pred = logits[:, answer_start - 1:]  # predicts tokens answer_start .. T - 1
        target = batch[:, answer_start:]
        loss = F.cross_entropy(torch.einsum("btv->bvt", pred), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 200 == 0:
            print(f"train_next_token: step {step + 1}/{steps} loss {loss.item():.4f}")
    return losses
