"""a6_attention, alternate solution written with explicit loops and explicit arithmetic.

masked_softmax is exp / sum by hand, multi-head attention loops over the heads, the KV cache keeps
lists of chunks, graph attention walks the target nodes one by one, generate is a while loop and
training gathers the answer positions explicitly.
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
    if mask is None:
        logits = scores
        admitted = torch.ones_like(scores, dtype=torch.bool)
    elif mask.dtype == torch.bool:
        admitted = mask.to(scores.device)
        logits = scores.masked_fill(~admitted, float("-inf"))
        admitted = admitted.expand_as(logits)
    else:
        logits = scores + mask.to(device=scores.device, dtype=scores.dtype)
        admitted = logits != float("-inf")
    # the largest admitted score of each row; a row with none admitted gets 0 (not -inf)
    row_max = logits.max(dim=-1, keepdim=True).values
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)).detach()
    shifted = torch.where(admitted, logits - row_max, torch.full_like(logits, float("-inf")))
    numer = torch.exp(shifted)  # exactly 0 where refused
    denom = numer.sum(dim=-1, keepdim=True)
    denom = torch.where(denom > 0, denom, torch.ones_like(denom))  # empty row: 0 / 1 = 0
    return numer / denom


def gaussian_kernel_attention(x_q: torch.Tensor, x_k: torch.Tensor, theta: torch.Tensor | float,
                              mask: torch.Tensor | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The notes' non-learnable attention: weights softmax(-theta^2 ||x_q - x_k||^2) over the
    admitted keys, values v(x) = x_k. x_q (..., T_q, d), x_k (..., T_k, d).
    Returns (outputs (..., T_q, d), weights (..., T_q, T_k))."""
    diff = x_q[..., :, None, :] - x_k[..., None, :, :]
    sq_dist = (diff * diff).sum(dim=-1)
    weights = masked_softmax(-theta * theta * sq_dist, mask)
    return weights @ x_k, weights


class KernelAttention(nn.Module):
    """Gaussian-kernel attention with a learnable bandwidth: the parameter ``theta`` (a scalar
    tensor, starting at ``theta``). forward(x_q, x_k, mask=None) -> (outputs, weights)."""

    def __init__(self, theta: float = 1.0):
        super().__init__()
        self.theta = nn.Parameter(torch.full((), float(theta)))

    def forward(self, x_q: torch.Tensor, x_k: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """gaussian_kernel_attention with this module's theta (gradients reach theta)."""
        return gaussian_kernel_attention(x_q, x_k, self.theta, mask=mask)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v over the admitted keys, d = q.shape[-1].
    q (..., T_q, d), k (..., T_k, d), v (..., T_k, d_v).
    Returns (outputs (..., T_q, d_v), weights (..., T_q, T_k))."""
    d = q.shape[-1]
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
    weights = masked_softmax(scores, mask)
    return torch.matmul(weights, v), weights


def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None
                ) -> torch.Tensor:
    """Boolean (t_q, t_k) mask for the last t_q of t_k positions (t_k defaults to t_q): query i
    sits at position i + t_k - t_q and may attend to keys at that position and before."""
    if t_k is None:
        t_k = t_q
    query_pos = torch.arange(t_q, device=device) + (t_k - t_q)
    key_pos = torch.arange(t_k, device=device)
    return key_pos[None, :] <= query_pos[:, None]


def padding_mask(lengths: torch.Tensor | list[int], t: int) -> torch.Tensor:
    """Boolean (B, 1, t) mask admitting the first lengths[b] keys of sequence b (the rest is
    padding), broadcastable against scores (B, T_q, t)."""
    if isinstance(lengths, torch.Tensor):
        device = lengths.device
        lengths = [int(n) for n in lengths.reshape(-1).tolist()]
    else:
        device = None
        lengths = [int(n) for n in lengths]
    mask = torch.zeros(len(lengths), 1, t, dtype=torch.bool, device=device)
    for b, n in enumerate(lengths):
        mask[b, 0, :max(0, min(n, t))] = True
    return mask


def graph_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    edge_index: torch.Tensor) -> torch.Tensor:
    """Attention as message passing (the notes: "an attention layer is a special case of a GNN
    layer"). Nodes have queries q (N, d), keys k (N, d), values v (N, d_v); edge_index (2, E)
    holds edges source -> target (row 0 sources j, row 1 targets i, as in PyTorch Geometric).
    Node i's output is sum over its incoming edges j -> i of a_ij v_j, with a_ij the softmax over
    those edges of q_i . k_j / sqrt(d). A node without incoming edges outputs 0. Written with
    scatter operations (index_add_, scatter_reduce), never an (N, N) matrix: on the complete
    graph with self-loops it equals scaled_dot_product_attention."""
    n_nodes, d = q.shape
    edge_index = edge_index.to(q.device)
    sources, targets = edge_index[0].long(), edge_index[1].long()
    rows = []
    for i in range(n_nodes):
        incoming = sources[targets == i]  # every edge j -> i (a duplicate edge appears twice)
        if incoming.numel() == 0:
            rows.append(v.new_zeros(v.shape[-1]))
            continue
        scores = (k[incoming] * q[i]).sum(dim=-1) / math.sqrt(d)
        alpha = masked_softmax(scores)
        rows.append((alpha[:, None] * v[incoming]).sum(dim=0))
    if not rows:
        return v.new_zeros(0, v.shape[-1])
    return torch.stack(rows, dim=0)


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
        k_chunks = getattr(self, "_k_chunks", None)
        v_chunks = getattr(self, "_v_chunks", None)
        # start the chunk lists afresh if someone set k / v from outside since our last append
        if k_chunks is None or self.k is not getattr(self, "_k_joined", None) \
                or self.v is not getattr(self, "_v_joined", None):
            k_chunks = [] if self.k is None else [self.k]
            v_chunks = [] if self.v is None else [self.v]
        k_chunks.append(k)
        v_chunks.append(v)
        self._k_chunks, self._v_chunks = k_chunks, v_chunks
        self.k = torch.cat(k_chunks, dim=-2)
        self.v = torch.cat(v_chunks, dim=-2)
        self._k_joined, self._v_joined = self.k, self.v
        return self.k, self.v


class MultiHeadAttention(nn.Module):
    """Multi-head attention. With fused=False the projections are the nn.Linear attributes
    ``w_q``, ``w_k``, ``w_v`` (d_model -> d_model each); with fused=True one nn.Linear ``w_qkv``
    (d_model -> 3 d_model, its output split into q, k, v in that order). Either way an output
    projection ``w_o`` (d_model -> d_model). ``bias`` is every projection's bias flag."""

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, fused: bool = False):
        super().__init__()
        self.d_model = d_model
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

    def _projections(self, x, source):
        d = self.d_model
        if not self.fused:
            return self.w_q(x), self.w_k(source), self.w_v(source)
        if source is x:
            out = self.w_qkv(x)
            return out[..., :d], out[..., d:2 * d], out[..., 2 * d:]
        w, b = self.w_qkv.weight, self.w_qkv.bias
        q = F.linear(x, w[:d], None if b is None else b[:d])
        k = F.linear(source, w[d:2 * d], None if b is None else b[d:2 * d])
        v = F.linear(source, w[2 * d:], None if b is None else b[2 * d:])
        return q, k, v

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, cache: KVCache | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries from x (B, T_q, d_model); keys and values from ``context`` (B, T_k, d_model),
        or from x itself when context is None (self-attention). ``mask`` is broadcastable to
        (B, T_q, T_k) and applies to every head. With a ``cache``, the new keys and values are
        appended to it first and the queries attend to all of the cache's (T_k is then the
        cache's length). Returns (outputs (B, T_q, d_model), weights (B, n_heads, T_q, T_k))."""
        source = x if context is None else context
        q, k, v = self._projections(x, source)
        dh = self.d_head
        if cache is not None:
            # the cache holds (B, n_heads, T, d_head): gather the heads' slices for it
            k_heads = torch.stack([k[..., h * dh:(h + 1) * dh] for h in range(self.n_heads)], 1)
            v_heads = torch.stack([v[..., h * dh:(h + 1) * dh] for h in range(self.n_heads)], 1)
            k_heads, v_heads = cache.append(k_heads, v_heads)
        head_outputs, head_weights = [], []
        for h in range(self.n_heads):
            q_h = q[..., h * dh:(h + 1) * dh]  # (B, T_q, d_head)
            if cache is not None:
                k_h, v_h = k_heads[:, h], v_heads[:, h]
            else:
                k_h, v_h = k[..., h * dh:(h + 1) * dh], v[..., h * dh:(h + 1) * dh]
            out_h, w_h = scaled_dot_product_attention(q_h, k_h, v_h, mask)
            head_outputs.append(out_h)
            head_weights.append(w_h)
        concat = torch.cat(head_outputs, dim=-1)  # head h back at features h*dh .. (h+1)*dh
        weights = torch.stack(head_weights, dim=1)  # (B, n_heads, T_q, T_k)
        return self.w_o(concat), weights


# ---------------------------------------------------------------- part 3: a tiny GPT


def sinusoidal_encoding(t: int, d: int, start: int = 0, dtype: torch.dtype = torch.float32
                        ) -> torch.Tensor:
    """(t, d) encodings of positions start .. start + t - 1 (d even):
    PE[p, 2i] = sin(p / 10000^(2i / d)), PE[p, 2i + 1] = cos(p / 10000^(2i / d)),
    computed in float64 and returned as ``dtype`` (so float64 models get float64 accuracy)."""
    pe = torch.zeros(t, d, dtype=torch.float64)
    positions = torch.arange(start, start + t, dtype=torch.float64)
    for i in range(d // 2):
        angle = positions / (10000.0 ** (2 * i / d))
        pe[:, 2 * i] = torch.sin(angle)
        pe[:, 2 * i + 1] = torch.cos(angle)
    return pe.to(dtype)


class LearnedPositionalEncoding(nn.Module):
    """A learned vector per position: the parameter ``weight`` (max_len, d), normal(0, 0.02) at
    the start. forward(x, start=0) returns x (B, T, d) plus the vectors of positions start ..
    start + T - 1."""

    def __init__(self, max_len: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(0.02 * torch.randn(max_len, d))

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """x plus the vectors of positions start .. start + T - 1."""
        n = x.shape[1]
        if start + n > self.weight.shape[0]:
            raise ValueError(f"positions up to {start + n - 1} but max_len is "
                             f"{self.weight.shape[0]}")
        return x + self.weight[start:start + n].unsqueeze(0)


class TransformerBlock(nn.Module):
    """A pre-LayerNorm block: x + attn(ln1(x)), then that plus mlp(ln2(that)). Attributes:
    ``ln1``, ``ln2`` (nn.LayerNorm(d_model)), ``attn`` (MultiHeadAttention(d_model, n_heads)),
    ``mlp`` (nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model)))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads)
        layers = [nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (outputs (B, T, d_model), the attention weights)."""
        normed = self.ln1(x)
        attn_out, weights = self.attn(normed, None, mask, cache)
        x = x + attn_out
        x = x + self.mlp(self.ln2(x))
        return x, weights


class TinyGPT(nn.Module):
    """A decoder-only model: token embedding ``embed`` (nn.Embedding(vocab, d_model)), then the
    positional encoding (``positional`` "learned": a LearnedPositionalEncoding(max_len, d_model)
    in the attribute ``pos``; "sinusoidal": sinusoidal_encoding added, ``pos`` None), then
    ``blocks`` (nn.ModuleList of n_layers TransformerBlock), a final nn.LayerNorm ``ln_f`` and a
    linear ``head`` (d_model -> vocab). Every block uses the causal mask."""

    def __init__(self, vocab: int, d_model: int = 32, n_heads: int = 2, n_layers: int = 2,
                 d_ff: int = 64, max_len: int = 32, positional: str = "learned"):
        super().__init__()
        self.d_model = d_model
        self.positional = positional
        self.embed = nn.Embedding(vocab, d_model)
        if positional == "learned":
            self.pos = LearnedPositionalEncoding(max_len, d_model)
        elif positional == "sinusoidal":
            self.pos = None
        else:
            raise ValueError(f"unknown positional encoding {positional!r}")
        self.blocks = nn.ModuleList()
        for _ in range(n_layers):
            self.blocks.append(TransformerBlock(d_model, n_heads, d_ff))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor, caches: list[KVCache] | None = None,
                return_weights: bool = False):
        """Next-token logits (B, T, vocab) for tokens (B, T) (int64). With ``caches`` (one
        KVCache per block), the tokens continue the cached ones: their positions start at the
        caches' length, and they attend to the cached tokens and to each other causally. With
        return_weights, returns (logits, a list of each block's attention weights)."""
        t = tokens.shape[1]
        past = len(caches[0]) if caches is not None else 0
        h = self.embed(tokens)
        if self.positional == "learned":
            h = self.pos(h, start=past)
        else:
            pe = sinusoidal_encoding(t, self.d_model, start=past, dtype=h.dtype)
            h = h + pe.to(device=h.device, dtype=h.dtype)
        mask = causal_mask(t, past + t, device=tokens.device)
        weights = []
        for layer, block in enumerate(self.blocks):
            cache = caches[layer] if caches is not None else None
            h, w = block(h, mask=mask, cache=cache)
            weights.append(w)
        logits = self.head(self.ln_f(h))
        if return_weights:
            return logits, weights
        return logits


@torch.no_grad()
def generate(model: TinyGPT, prompt: torch.Tensor, n_new: int) -> torch.Tensor:
    """Greedy decoding with a key-value cache: feed the prompt (B, T) once, then one token at a
    time, each the argmax of the last logits. Returns the n_new generated tokens (B, n_new)."""
    caches = [KVCache() for _ in range(len(model.blocks))]
    generated = prompt.new_empty(prompt.shape[0], 0)
    logits = model(prompt, caches=caches)
    while generated.shape[1] < n_new:
        next_token = torch.argmax(logits[:, -1, :], dim=-1).unsqueeze(1)
        generated = torch.cat([generated, next_token], dim=1)
        if generated.shape[1] < n_new:
            logits = model(next_token, caches=caches)
    return generated


def train_next_token(model: TinyGPT, sequences: torch.Tensor, answer_start: int,
                     steps: int = 600, lr: float = 3e-3, batch_size: int = 64) -> list[float]:
    """Train ``model`` on next-token prediction: for a batch of sequences (B, T), the logits at
    position p predict token p + 1, and the loss (cross-entropy, mean) counts only the targets at
    positions answer_start .. T - 1 (the answer; the prompt is given). AdamW(lr, weight_decay
    0.01), ``steps`` steps on batches drawn at random from ``sequences``. Returns the losses."""
    device = next(model.parameters()).device
    data = sequences.to(device=device, dtype=torch.long)
    n, t = data.shape
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    # target positions answer_start .. T-1 are predicted by the logits one position earlier
    target_pos = torch.arange(answer_start, t, device=device)
    logit_pos = target_pos - 1
    model.train()
    losses = []
    step = 0
    while step < steps:
        rows = torch.randperm(n, device=device)[:batch_size]
        batch = data[rows]
        logits = model(batch)  # (B, T, vocab)
        b, _, vocab = logits.shape
        picked = torch.gather(logits, 1, logit_pos.view(1, -1, 1).expand(b, -1, vocab))
        targets = torch.gather(batch, 1, target_pos.view(1, -1).expand(b, -1))
        loss = F.cross_entropy(picked.reshape(-1, vocab), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        step += 1
    return losses
