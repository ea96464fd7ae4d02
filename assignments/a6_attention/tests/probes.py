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


def worked_example(impl):
    """A worked example: scores [[1, 2, 3], [1, 1, 1], [5, 0, 0]] with the last key refused for
    row 0, every key for row 2."""
    torch = _torch()
    scores = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [5.0, 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False], [True, True, True], [False, False, False]])
    with no_builtin_attention():
        return _np(impl.masked_softmax(scores, mask))


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
