"""a6_attention, alternate solution: dtype-following, table-driven.

Every function computes in the dtype of its inputs (modules are built in torch's default float32
and follow .double()); masked_softmax goes through a log-sum-exp; the sinusoidal encodings use
the exp/log form of the frequencies; TinyGPT keeps a precomputed sinusoidal table and a causal
mask as (non-persistent) buffers and slices them; fused projections are split with chunk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- part 1: attention as a kernel


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last axis of ``scores``, over the admitted entries only.

    ``mask``: None (all admitted), boolean (True = admitted) or float (added to the scores).
    Stable for large scores; a row with no admitted entry is all zeros.
    """
    neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    if mask is None:
        z = scores
    elif mask.dtype == torch.bool:
        z = torch.where(mask.to(scores.device), scores, neg_inf)
    else:
        z = scores + mask.to(device=scores.device, dtype=scores.dtype)
    admitted = z > neg_inf
    # a row with no admitted entry: hand logsumexp zeros instead (no -inf - -inf = NaN, neither
    # in the values nor in the gradients); its entries are all refused below anyway
    empty = ~admitted.any(dim=-1, keepdim=True)
    z_safe = torch.where(empty, torch.zeros_like(z), z)
    # log of the row's normaliser (logsumexp subtracts the row maximum internally, so 1e4 is fine)
    lse = torch.logsumexp(z_safe, dim=-1, keepdim=True)
    log_p = torch.where(admitted, z_safe - lse, neg_inf)
    return torch.exp(log_p)


def gaussian_kernel_attention(x_q: torch.Tensor, x_k: torch.Tensor, theta: torch.Tensor | float,
                              mask: torch.Tensor | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The notes' non-learnable attention: weights softmax(-theta^2 ||x_q - x_k||^2) over the
    admitted keys, values v(x) = x_k. x_q (..., T_q, d), x_k (..., T_k, d).
    Returns (outputs (..., T_q, d), weights (..., T_q, T_k))."""
    if isinstance(theta, torch.Tensor):
        theta = theta.to(device=x_q.device, dtype=torch.promote_types(theta.dtype, x_q.dtype))
    # ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b (clamped: rounding may dip below 0)
    sq_q = (x_q * x_q).sum(-1, keepdim=True)  # (..., T_q, 1)
    sq_k = (x_k * x_k).sum(-1).unsqueeze(-2)  # (..., 1, T_k)
    sq_dist = (sq_q + sq_k - 2.0 * (x_q @ x_k.transpose(-1, -2))).clamp_min(0.0)
    weights = masked_softmax(-(theta ** 2) * sq_dist, mask)
    return weights @ x_k, weights


class KernelAttention(nn.Module):
    """Gaussian-kernel attention with a learnable bandwidth: the parameter ``theta`` (a scalar
    tensor, starting at ``theta``). forward(x_q, x_k, mask=None) -> (outputs, weights)."""

    def __init__(self, theta: float = 1.0):
        super().__init__()
        self.theta = nn.Parameter(torch.as_tensor(theta, dtype=torch.get_default_dtype()).clone())

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
    scale = q.shape[-1] ** -0.5
    weights = masked_softmax((q * scale) @ k.transpose(-1, -2), mask)
    return weights @ v, weights


def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None
                ) -> torch.Tensor:
    """Boolean (t_q, t_k) mask for the last t_q of t_k positions (t_k defaults to t_q): query i
    sits at position i + t_k - t_q and may attend to keys at that position and before."""
    if t_k is None:
        t_k = t_q
    i = torch.arange(t_q, device=device).unsqueeze(1)
    j = torch.arange(t_k, device=device).unsqueeze(0)
    return (j - i) <= (t_k - t_q)


def padding_mask(lengths: torch.Tensor | list[int], t: int) -> torch.Tensor:
    """Boolean (B, 1, t) mask admitting the first lengths[b] keys of sequence b (the rest is
    padding), broadcastable against scores (B, T_q, t)."""
    if not isinstance(lengths, torch.Tensor):
        lengths = torch.tensor(list(lengths), dtype=torch.long)
    positions = torch.arange(t, device=lengths.device).expand(lengths.numel(), t)
    return (positions < lengths.reshape(-1, 1)).unsqueeze(1)


def graph_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    edge_index: torch.Tensor) -> torch.Tensor:
    """Attention as message passing (the notes: "an attention layer is a special case of a GNN
    layer"). Nodes have queries q (N, d), keys k (N, d), values v (N, d_v); edge_index (2, E)
    holds edges source -> target (row 0 sources j, row 1 targets i, as in PyTorch Geometric).
    Node i's output is sum over its incoming edges j -> i of a_ij v_j, with a_ij the softmax over
    those edges of q_i . k_j / sqrt(d). A node without incoming edges outputs 0. Written with
    scatter operations (index_add_, scatter_reduce), never an (N, N) matrix: on the complete
    graph with self-loops it equals scaled_dot_product_attention."""
    n = q.size(0)
    src, dst = edge_index.to(device=q.device, dtype=torch.long).unbind(0)
    logit = (q.index_select(0, dst) * k.index_select(0, src)).sum(-1) * q.size(-1) ** -0.5
    # the largest logit per target node (scatter_reduce), -inf for nodes without an edge
    peak = torch.full((n,), float("-inf"), dtype=logit.dtype, device=logit.device)
    peak = peak.scatter_reduce(0, dst, logit, reduce="amax", include_self=True)
    w = torch.exp(logit - peak.index_select(0, dst))
    total = torch.zeros(n, dtype=w.dtype, device=w.device).index_add(0, dst, w)
    alpha = w / total.index_select(0, dst)
    out = torch.zeros(n, v.size(-1), dtype=v.dtype, device=v.device)
    return out.index_add(0, dst, alpha.unsqueeze(-1) * v.index_select(0, src))


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
        if self.k is not None:
            k = torch.cat([self.k, k], dim=2)
            v = torch.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v


class MultiHeadAttention(nn.Module):
    """Multi-head attention. With fused=False the projections are the nn.Linear attributes
    ``w_q``, ``w_k``, ``w_v`` (d_model -> d_model each); with fused=True one nn.Linear ``w_qkv``
    (d_model -> 3 d_model, its output split into q, k, v in that order). Either way an output
    projection ``w_o`` (d_model -> d_model). ``bias`` is every projection's bias flag."""

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, fused: bool = False):
        super().__init__()
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.fused = fused
        if fused:
            self.w_qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        else:
            self.w_q = nn.Linear(d_model, d_model, bias=bias)
            self.w_k = nn.Linear(d_model, d_model, bias=bias)
            self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.n_heads, self.d_head).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, cache: KVCache | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries from x (B, T_q, d_model); keys and values from ``context`` (B, T_k, d_model),
        or from x itself when context is None (self-attention). ``mask`` is broadcastable to
        (B, T_q, T_k) and applies to every head. With a ``cache``, the new keys and values are
        appended to it first and the queries attend to all of the cache's (T_k is then the
        cache's length). Returns (outputs (B, T_q, d_model), weights (B, n_heads, T_q, T_k))."""
        if self.fused:
            q, k, v = self.w_qkv(x).chunk(3, dim=-1)
            if context is not None:
                _, k, v = self.w_qkv(context).chunk(3, dim=-1)
        else:
            src = x if context is None else context
            q, k, v = self.w_q(x), self.w_k(src), self.w_v(src)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        if cache is not None:
            k, v = cache.append(k, v)
        if mask is not None:
            while mask.dim() < 3:
                mask = mask.unsqueeze(0)
            mask = mask.unsqueeze(1)  # (B or 1, 1, T_q or 1, T_k): shared by the heads
        out, weights = scaled_dot_product_attention(q, k, v, mask)
        b, _, t_q, _ = out.shape
        out = out.transpose(1, 2).reshape(b, t_q, self.n_heads * self.d_head)
        return self.w_o(out), weights


# ---------------------------------------------------------------- part 3: a tiny GPT


def sinusoidal_encoding(t: int, d: int, start: int = 0, dtype: torch.dtype = torch.float32
                        ) -> torch.Tensor:
    """(t, d) encodings of positions start .. start + t - 1 (d even):
    PE[p, 2i] = sin(p / 10000^(2i / d)), PE[p, 2i + 1] = cos(p / 10000^(2i / d)),
    computed in float64 and returned as ``dtype`` (so float64 models get float64 accuracy)."""
    # the tutorial's exp/log form of the frequencies, in float64 as the spec asks
    position = torch.arange(start, start + t, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(t, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.to(dtype)


class LearnedPositionalEncoding(nn.Module):
    """A learned vector per position: the parameter ``weight`` (max_len, d), normal(0, 0.02) at
    the start. forward(x, start=0) returns x (B, T, d) plus the vectors of positions start ..
    start + T - 1."""

    def __init__(self, max_len: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(max_len, d).normal_(0.0, 0.02))

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """x plus the vectors of positions start .. start + T - 1."""
        return x + self.weight.narrow(0, start, x.size(1)).to(x.dtype)


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
        a, weights = self.attn(self.ln1(x), mask=mask, cache=cache)
        x = x + a
        return x + self.mlp(self.ln2(x)), weights


class TinyGPT(nn.Module):
    """A decoder-only model: token embedding ``embed`` (nn.Embedding(vocab, d_model)), then the
    positional encoding (``positional`` "learned": a LearnedPositionalEncoding(max_len, d_model)
    in the attribute ``pos``; "sinusoidal": sinusoidal_encoding added, ``pos`` None), then
    ``blocks`` (nn.ModuleList of n_layers TransformerBlock), a final nn.LayerNorm ``ln_f`` and a
    linear ``head`` (d_model -> vocab). Every block uses the causal mask."""

    def __init__(self, vocab: int, d_model: int = 32, n_heads: int = 2, n_layers: int = 2,
                 d_ff: int = 64, max_len: int = 32, positional: str = "learned"):
        super().__init__()
        assert positional in ("learned", "sinusoidal"), positional
        self.d_model, self.max_len = d_model, max_len
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = LearnedPositionalEncoding(max_len, d_model) if positional == "learned" else None
        # precomputed tables (buffers, not parameters, and not saved in the state dict)
        self.register_buffer("causal_table", causal_mask(max_len), persistent=False)
        self.register_buffer("sin_table", sinusoidal_encoding(max_len, d_model, dtype=torch.float64) if self.pos is None
                             else None, persistent=False)
        self.blocks = nn.ModuleList([TransformerBlock(d_model, n_heads, d_ff)
                                     for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def _sinusoid(self, start: int, t: int) -> torch.Tensor:
        if start + t <= self.sin_table.shape[0]:
            return self.sin_table[start:start + t]
        return sinusoidal_encoding(t, self.d_model, start, torch.float64)  # past the table: compute directly

    def _mask(self, start: int, t: int, device) -> torch.Tensor:
        if start + t <= self.causal_table.shape[0]:
            return self.causal_table[start:start + t, :start + t]
        return causal_mask(t, start + t, device=device)

    def forward(self, tokens: torch.Tensor, caches: list[KVCache] | None = None,
                return_weights: bool = False):
        """Next-token logits (B, T, vocab) for tokens (B, T) (int64). With ``caches`` (one
        KVCache per block), the tokens continue the cached ones: their positions start at the
        caches' length, and they attend to the cached tokens and to each other causally. With
        return_weights, returns (logits, a list of each block's attention weights)."""
        t = tokens.size(1)
        start = len(caches[0]) if caches else 0
        x = self.embed(tokens)
        if self.pos is not None:
            x = self.pos(x, start)
        else:
            x = x + self._sinusoid(start, t).to(device=x.device, dtype=x.dtype)
        mask = self._mask(start, t, x.device).to(x.device)
        weights = []
        for block, cache in zip(self.blocks, caches if caches else [None] * len(self.blocks)):
            x, w = block(x, mask, cache)
            weights.append(w)
        logits = self.head(self.ln_f(x))
        return (logits, weights) if return_weights else logits


@torch.no_grad()
def generate(model: TinyGPT, prompt: torch.Tensor, n_new: int) -> torch.Tensor:
    """Greedy decoding with a key-value cache: feed the prompt (B, T) once, then one token at a
    time, each the argmax of the last logits. Returns the n_new generated tokens (B, n_new)."""
    caches = [KVCache() for _ in model.blocks]
    tokens = torch.empty(prompt.size(0), n_new, dtype=prompt.dtype, device=prompt.device)
    feed = prompt
    for i in range(n_new):
        logits = model(feed, caches)
        feed = logits[:, -1:].argmax(-1)  # (B, 1)
        tokens[:, i:i + 1] = feed
    return tokens


def train_next_token(model: TinyGPT, sequences: torch.Tensor, answer_start: int,
                     steps: int = 600, lr: float = 3e-3, batch_size: int = 64) -> list[float]:
    """Train ``model`` on next-token prediction: for a batch of sequences (B, T), the logits at
    position p predict token p + 1, and the loss (cross-entropy, mean) counts only the targets at
    positions answer_start .. T - 1 (the answer; the prompt is given). AdamW(lr, weight_decay
    0.01), ``steps`` steps on batches drawn at random from ``sequences``. Returns the losses."""
    param = next(model.parameters())
    seqs = sequences.to(param.device).long()
    t = seqs.size(1)
    # weight of each (logit position p -> target p + 1): 1 on the answer's targets, else 0
    keep = (torch.arange(1, t, device=param.device) >= answer_start).to(param.dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    losses = []
    for _ in range(steps):
        batch = seqs[torch.randint(len(seqs), (batch_size,), device=param.device)]
        logits = model(batch)[:, :-1]  # position p predicts token p + 1
        per_token = F.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none")
        loss = (per_token * keep).sum() / (keep.sum() * batch.size(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
