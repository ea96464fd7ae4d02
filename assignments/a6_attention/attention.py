"""Attention from scratch: a kernel smoother that learns, then a tiny GPT.

The notes build attention as a kernel smoother. A query token x_q becomes a weighted average of
transformed tokens, the weights a normalised kernel over the keys a mask admits:

    x_q' = sum_k  k(x_q, x_k) / sum_k' k(x_q, x_k')  v(x_k)

A Gaussian kernel exp(-theta^2 ||x_q - x_k||^2) with v(x) = x is attention without weights to
learn (but a bandwidth theta); exp(<x_q W_q, x_k W_k> / sqrt(d)) with v(x) = x W_v is the
Transformer's softmax(q K^T / sqrt(d)) V. Multi-head attention runs n_heads of these side by
side on slices of the features; a pre-LayerNorm block adds attention and an MLP to a residual
stream; a decoder-only model ("GPT") stacks blocks under a causal mask and predicts the next
token. Decoding one token at a time reuses the keys and values of earlier tokens: a key-value
cache gives the same outputs as the full pass.

Conventions the graders rely on:
- Tokens are batch-first: (B, T, d). Attention weights are (..., T_q, T_k); each row is a query.
- A mask is broadcastable to the scores' shape (..., T_q, T_k). A boolean mask is True where a
  query MAY attend to a key (the notes' M(x_q, S)); a float mask is added to the scores (0 to
  admit, -inf to refuse, anything else to bias).
- A query whose keys are all refused (a fully masked row) gets attention weights of 0 and an
  output of 0, never NaN.
- Softmax is computed stably: subtract each row's largest admitted score first, so scores of
  1e4 give the right answer, not inf or NaN.
- Multi-head attention splits d_model into n_heads slices of d_head = d_model // n_heads
  consecutive features: head h uses features h*d_head to (h+1)*d_head of q, k and v (as
  torch's nn.MultiheadAttention does), and scales its scores by 1/sqrt(d_head).
- Modules keep the attribute names their docstrings give: the graders load weights by name.
- Everything works in float32 and float64 (the graders use float64) on any device.

nn.MultiheadAttention, F.scaled_dot_product_attention and nn.Transformer* are not allowed here
(the graders refuse them while your code runs); use them in your own checks.

What is graded, besides the public self-checks (all float64, to a relative error of 1e-9
unless said otherwise; modules hold weights the grader loads by attribute name):
- masked_softmax and scaled_dot_product_attention on boolean and additive masks, a fully masked
  row, scores in the thousands, batch and head axes, T_q != T_k and d_v != d; each row of
  weights sums to 1 over its admitted keys and puts 0 on refused ones.
- causal_mask and padding_mask exactly; TinyGPT is causal (changing token p never moves the
  logits before p, and does move those at p).
- gaussian_kernel_attention, and KernelAttention's parameter ``theta`` (its only parameter:
  its start value to 1e-6, then its gradient with theta set to a float64 value).
- MultiHeadAttention, separate and fused, with and without bias: self-attention with a causal
  mask and cross-attention with a padding mask; permuting the tokens permutes the outputs of
  MultiHeadAttention and TransformerBlock (no mask).
- sinusoidal_encoding in float32 (tolerance 1e-6) and float64, and LearnedPositionalEncoding,
  both with a start; TransformerBlock and TinyGPT's logits (both kinds of position).
- KVCache.append; TinyGPT fed in chunks through caches equals the full pass (1e-9); generate
  equals greedy decoding by full passes of the same model.
- graph_attention on the complete graph and on a sparse one with a duplicate edge (it counts
  twice) and a node without incoming edges.
- TinyGPT(vocab, d_model=32, n_heads=2, n_layers=2, d_ff=64) trained by train_next_token on
  the notes' XOR ([a, b, a xor b], answer_start 2), on copying and on reversing 5 tokens of 8
  (prompt, a separator token 8, answer; answer_start 6): on 500 held-out sequences, the argmax of the logits at each
  answer position (the true earlier tokens given) must be right 99% of the time, per task
  (partial credit from 50%). The grader seeds torch; nothing needs seeding. The feedback page
  shows your model's attention weights on a reversal.
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
    raise NotImplementedError("not implemented yet: masked_softmax")


def gaussian_kernel_attention(x_q: torch.Tensor, x_k: torch.Tensor, theta: torch.Tensor | float,
                              mask: torch.Tensor | None = None
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The notes' non-learnable attention: weights softmax(-theta^2 ||x_q - x_k||^2) over the
    admitted keys, values v(x) = x_k. x_q (..., T_q, d), x_k (..., T_k, d).
    Returns (outputs (..., T_q, d), weights (..., T_q, T_k))."""
    raise NotImplementedError("not implemented yet: gaussian_kernel_attention")


class KernelAttention(nn.Module):
    """Gaussian-kernel attention with a learnable bandwidth: the parameter ``theta`` (a scalar
    tensor, starting at ``theta``). forward(x_q, x_k, mask=None) -> (outputs, weights)."""

    def __init__(self, theta: float = 1.0):
        super().__init__()
        raise NotImplementedError("not implemented yet: KernelAttention.__init__")

    def forward(self, x_q: torch.Tensor, x_k: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """gaussian_kernel_attention with this module's theta (gradients reach theta)."""
        raise NotImplementedError("not implemented yet: KernelAttention.forward")


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v over the admitted keys, d = q.shape[-1].
    q (..., T_q, d), k (..., T_k, d), v (..., T_k, d_v).
    Returns (outputs (..., T_q, d_v), weights (..., T_q, T_k))."""
    raise NotImplementedError("not implemented yet: scaled_dot_product_attention")


def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None
                ) -> torch.Tensor:
    """Boolean (t_q, t_k) mask for the last t_q of t_k positions (t_k defaults to t_q): query i
    sits at position i + t_k - t_q and may attend to keys at that position and before."""
    raise NotImplementedError("not implemented yet: causal_mask")


def padding_mask(lengths: torch.Tensor | list[int], t: int) -> torch.Tensor:
    """Boolean (B, 1, t) mask admitting the first lengths[b] keys of sequence b (the rest is
    padding), broadcastable against scores (B, T_q, t)."""
    raise NotImplementedError("not implemented yet: padding_mask")


def graph_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    edge_index: torch.Tensor) -> torch.Tensor:
    """Attention as message passing (the notes: "an attention layer is a special case of a GNN
    layer"). Nodes have queries q (N, d), keys k (N, d), values v (N, d_v); edge_index (2, E)
    holds edges source -> target (row 0 sources j, row 1 targets i, as in PyTorch Geometric).
    Node i's output is sum over its incoming edges j -> i of a_ij v_j, with a_ij the softmax over
    those edges of q_i . k_j / sqrt(d). A node without incoming edges outputs 0. Written with
    scatter operations (index_add_, scatter_reduce), never an (N, N) matrix: on the complete
    graph with self-loops it equals scaled_dot_product_attention."""
    raise NotImplementedError("not implemented yet: graph_attention")


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
        raise NotImplementedError("not implemented yet: KVCache.append")


class MultiHeadAttention(nn.Module):
    """Multi-head attention. With fused=False the projections are the nn.Linear attributes
    ``w_q``, ``w_k``, ``w_v`` (d_model -> d_model each); with fused=True one nn.Linear ``w_qkv``
    (d_model -> 3 d_model, its output split into q, k, v in that order). Either way an output
    projection ``w_o`` (d_model -> d_model). ``bias`` is every projection's bias flag."""

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, fused: bool = False):
        super().__init__()
        raise NotImplementedError("not implemented yet: MultiHeadAttention.__init__")

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, cache: KVCache | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries from x (B, T_q, d_model); keys and values from ``context`` (B, T_k, d_model),
        or from x itself when context is None (self-attention). ``mask`` is broadcastable to
        (B, T_q, T_k) and applies to every head. With a ``cache``, the new keys and values are
        appended to it first and the queries attend to all of the cache's (T_k is then the
        cache's length). Returns (outputs (B, T_q, d_model), weights (B, n_heads, T_q, T_k))."""
        raise NotImplementedError("not implemented yet: MultiHeadAttention.forward")


# ---------------------------------------------------------------- part 3: a tiny GPT


def sinusoidal_encoding(t: int, d: int, start: int = 0, dtype: torch.dtype = torch.float32
                        ) -> torch.Tensor:
    """(t, d) encodings of positions start .. start + t - 1 (d even):
    PE[p, 2i] = sin(p / 10000^(2i / d)), PE[p, 2i + 1] = cos(p / 10000^(2i / d)),
    computed in float64 and returned as ``dtype`` (so float64 models get float64 accuracy)."""
    raise NotImplementedError("not implemented yet: sinusoidal_encoding")


class LearnedPositionalEncoding(nn.Module):
    """A learned vector per position: the parameter ``weight`` (max_len, d), normal(0, 0.02) at
    the start. forward(x, start=0) returns x (B, T, d) plus the vectors of positions start ..
    start + T - 1."""

    def __init__(self, max_len: int, d: int):
        super().__init__()
        raise NotImplementedError("not implemented yet: LearnedPositionalEncoding.__init__")

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """x plus the vectors of positions start .. start + T - 1."""
        raise NotImplementedError("not implemented yet: LearnedPositionalEncoding.forward")


class TransformerBlock(nn.Module):
    """A pre-LayerNorm block: x + attn(ln1(x)), then that plus mlp(ln2(that)). Attributes:
    ``ln1``, ``ln2`` (nn.LayerNorm(d_model)), ``attn`` (MultiHeadAttention(d_model, n_heads)),
    ``mlp`` (nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model)))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        raise NotImplementedError("not implemented yet: TransformerBlock.__init__")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (outputs (B, T, d_model), the attention weights)."""
        raise NotImplementedError("not implemented yet: TransformerBlock.forward")


class TinyGPT(nn.Module):
    """A decoder-only model: token embedding ``embed`` (nn.Embedding(vocab, d_model)), then the
    positional encoding (``positional`` "learned": a LearnedPositionalEncoding(max_len, d_model)
    in the attribute ``pos``; "sinusoidal": sinusoidal_encoding added, ``pos`` None), then
    ``blocks`` (nn.ModuleList of n_layers TransformerBlock), a final nn.LayerNorm ``ln_f`` and a
    linear ``head`` (d_model -> vocab). Every block uses the causal mask."""

    def __init__(self, vocab: int, d_model: int = 32, n_heads: int = 2, n_layers: int = 2,
                 d_ff: int = 64, max_len: int = 32, positional: str = "learned"):
        super().__init__()
        raise NotImplementedError("not implemented yet: TinyGPT.__init__")

    def forward(self, tokens: torch.Tensor, caches: list[KVCache] | None = None,
                return_weights: bool = False):
        """Next-token logits (B, T, vocab) for tokens (B, T) (int64). With ``caches`` (one
        KVCache per block), the tokens continue the cached ones: their positions start at the
        caches' length, and they attend to the cached tokens and to each other causally. With
        return_weights, returns (logits, a list of each block's attention weights)."""
        raise NotImplementedError("not implemented yet: TinyGPT.forward")


@torch.no_grad()
def generate(model: TinyGPT, prompt: torch.Tensor, n_new: int) -> torch.Tensor:
    """Greedy decoding with a key-value cache: feed the prompt (B, T) once, then one token at a
    time, each the argmax of the last logits. Returns the n_new generated tokens (B, n_new)."""
    raise NotImplementedError("not implemented yet: generate")


def train_next_token(model: TinyGPT, sequences: torch.Tensor, answer_start: int,
                     steps: int = 600, lr: float = 3e-3, batch_size: int = 64) -> list[float]:
    """Train ``model`` on next-token prediction: for a batch of sequences (B, T), the logits at
    position p predict token p + 1, and the loss (cross-entropy, mean) counts only the targets at
    positions answer_start .. T - 1 (the answer; the prompt is given). AdamW(lr, weight_decay
    0.01), ``steps`` steps on batches drawn at random from ``sequences``. Returns the losses."""
    raise NotImplementedError("not implemented yet: train_next_token")
