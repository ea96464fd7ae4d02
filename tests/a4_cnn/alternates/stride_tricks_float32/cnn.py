"""Convolution from scratch in numpy, then filters learned by gradient descent in torch.

A filter slid over an image is a sum of products: out[r, c] = sum_{i,j} image[r + i, c + j] K[i, j].
Strictly that is a cross-correlation (a true convolution flips K first); like torch, and like the
notes, this assignment calls it convolution and never flips the kernel.

Layout, everywhere: images are NCHW, a batch x of shape (N, C, H, W); weights w have shape
(F, C, KH, KW) (F filters, each spanning all C input channels); a bias b has shape (F,).
Padding p adds p zeros on every side; stride s moves the window s pixels at a time; dilation d
spreads the kernel's taps d pixels apart (d = 1 is the ordinary kernel), so
out[n, f, r, c] = b[f] + sum_{ch,i,j} xpad[n, ch, r s + i d, c s + j d] w[f, ch, i, j] and
H_out = (H + 2p - d (KH - 1) - 1) // s + 1 (the same for W).

Part 1 uses numpy only: torch may not be used in it (the graders run it with torch refused).
Part 2 uses torch (``torch.nn.functional.conv2d`` is the same cross-correlation).

What is graded, besides the public self-checks: the forward pass (both versions) and the
backward pass against the reference on float64 cases that mix padding, stride, dilation, channel
counts, odd sizes and batches of 1 and more; pooling with overlapping windows and ties; three
hidden 3x3 filters (one behind tanh) recovered by ``fit_filter`` to within 0.02 per tap and of
the bias; a '+' detector learned by ``fit_filter`` from one image of small shapes (target 1 at
each '+' centre, 0 elsewhere, no activation), whose strongest responses on new images must be
at their '+' centres (90% of them); and SmallCNN's held-out accuracy on scikit-learn's 8x8
digits after ``train_cnn`` with its defaults (94% on the CPU; on a GPU, MNIST, 98%). The
feedback page shows your learned filters next to the true ones and your CNN's feature maps.

Speed: ``pytest`` prints how long your two forward passes take on your machine (the last
self-check). Copy the figures here:

| version | seconds (4 images 3x24x24, 8 filters 3x3, padding 1) |
|---|---|
| conv2d_loops | |
| conv2d_forward | |
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import as_strided, sliding_window_view
from torch import nn


def conv_output_size(size: int, k: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """How many positions a kernel of k taps fits along an axis of ``size`` pixels (given)."""
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


# ------------------------------------------------------------------ part 1: numpy


def conv2d_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                 padding: int = 0, dilation: int = 1) -> np.ndarray:
    """The forward pass with explicit Python loops over images, filters and output positions.

    Returns out of shape (N, F, H_out, W_out), exactly the formula in the module docstring. The
    slow, obviously-correct version: the vectorised one must agree with it.
    """
    x, w, b = np.asarray(x, float), np.asarray(w, float), np.asarray(b, float)
    N, C, H, W = x.shape
    Fn, _, KH, KW = w.shape
    Ho = conv_output_size(H, KH, stride, padding, dilation)
    Wo = conv_output_size(W, KW, stride, padding, dilation)
    xp = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    xp[:, :, padding:padding + H, padding:padding + W] = x
    span_h = dilation * (KH - 1) + 1
    span_w = dilation * (KW - 1) + 1
    out = np.empty((N, Fn, Ho, Wo))
    for n in range(N):
        for f in range(Fn):
            for r in range(Ho):
                for c in range(Wo):
                    top, left = r * stride, c * stride
                    patch = xp[n, :, top:top + span_h:dilation, left:left + span_w:dilation]
                    out[n, f, r, c] = np.sum(patch * w[f]) + b[f]
    return out


def _windows(xp: np.ndarray, kh: int, kw: int, ho: int, wo: int, stride: int,
             dilation: int) -> np.ndarray:
    """A read-only view (N, C, KH, KW, H_out, W_out) of the padded input: every tap of every
    window, without copying."""
    sn, sc, sh, sw = xp.strides
    n, c = xp.shape[:2]
    return as_strided(xp, shape=(n, c, kh, kw, ho, wo),
                      strides=(sn, sc, dilation * sh, dilation * sw, stride * sh, stride * sw),
                      writeable=False)


def _taps(xp: np.ndarray, kh: int, kw: int, stride: int, dilation: int) -> np.ndarray:
    """(N, C, H_out, W_out, KH, KW) view: sliding windows of the dilated kernel's span, every
    ``stride``-th window kept, every ``dilation``-th pixel of each window kept."""
    span = (dilation * (kh - 1) + 1, dilation * (kw - 1) + 1)
    view = sliding_window_view(xp, span, axis=(2, 3))
    return view[:, :, ::stride, ::stride, ::dilation, ::dilation]


def _correlate(xp: np.ndarray, w: np.ndarray, stride: int, dilation: int) -> np.ndarray:
    """Valid multi-channel cross-correlation (no bias) of an already padded input."""
    taps = _taps(xp, w.shape[2], w.shape[3], stride, dilation)
    return np.tensordot(taps, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                   padding: int = 0, dilation: int = 1) -> tuple[np.ndarray, tuple]:
    """The same forward pass, vectorised (im2col or stride tricks: no Python loop over pixels).

    Returns (out, cache): out as conv2d_loops computes it, and whatever conv2d_backward needs.
    """
    x, w, b = np.asarray(x, float), np.asarray(w, float), np.asarray(b, float)
    p = padding
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)], mode="constant")
    out = _correlate(xp, w, stride, dilation) + b.reshape(1, -1, 1, 1)
    return out, (xp, w, b, stride, padding, dilation, x.shape)


def conv2d_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Given dL/dout (N, F, H_out, W_out), return (dx, dw, db) with the shapes of x, w and b.

    Every output position used each tap once, so each gradient is a sum over the positions
    (and over the batch for dw and db).
    """
    xp, w, b, s, p, d, x_shape = cache
    dout = np.asarray(dout, float)
    N, Fn, Ho, Wo = dout.shape
    _, C, KH, KW = w.shape
    Hp, Wp = xp.shape[2], xp.shape[3]

    db = dout.sum(axis=(0, 2, 3))
    # dw[f, c, i, j] = sum_{n, r, col} dout[n, f, r, col] * tap (i, j) of window (r, col)
    taps = _taps(xp, KH, KW, s, d)                         # (N, C, Ho, Wo, KH, KW)
    dw = np.tensordot(dout, taps, axes=([0, 2, 3], [0, 2, 3]))   # (F, C, KH, KW)

    # dx: put the upstream gradient back on the stride grid (zeros in between), pad it by the
    # dilated kernel's span - 1 and correlate with the flipped kernel (channels swapped): a
    # "full" correlation, i.e. the true convolution of the gradient with the dilated kernel.
    span_h, span_w = d * (KH - 1) + 1, d * (KW - 1) + 1
    g = np.zeros((N, Fn, (Ho - 1) * s + 1, (Wo - 1) * s + 1))
    g[:, :, ::s, ::s] = dout
    g = np.pad(g, [(0, 0), (0, 0), (span_h - 1, span_h - 1), (span_w - 1, span_w - 1)])
    w_flip = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)     # (C, F, KH, KW)
    full = _correlate(g, w_flip, 1, d)                     # (N, C, (Ho-1)s+span_h, ...)
    dxp = np.zeros((N, C, Hp, Wp))
    dxp[:, :, :full.shape[2], :full.shape[3]] = full       # rows no window reached stay 0
    H, W = x_shape[2], x_shape[3]
    dx = dxp[:, :, p:p + H, p:p + W]
    return np.ascontiguousarray(dx), dw, db


def _pool_windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(N, C, H_out, W_out, size, size) view of every pooling window (no padding)."""
    n, c, h, w = x.shape
    ho, wo = (h - size) // stride + 1, (w - size) // stride + 1
    sn, sc, sh, sw = x.strides
    return as_strided(x, shape=(n, c, ho, wo, size, size),
                      strides=(sn, sc, stride * sh, stride * sw, sh, sw), writeable=False)


def _pool_view(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    return sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]


def max_pool_forward(x: np.ndarray, size: int = 2,
                     stride: int | None = None) -> tuple[np.ndarray, tuple]:
    """Max over each size x size window, moved ``stride`` pixels at a time (default: size), no
    padding: out has shape (N, C, (H - size) // stride + 1, (W - size) // stride + 1)."""
    x = np.asarray(x, float)
    s = size if stride is None else stride
    view = _pool_view(x, size, s)                          # (N, C, Ho, Wo, size, size)
    flat = view.reshape(view.shape[:4] + (size * size,))
    winner = flat.argmax(axis=-1)                          # first maximum in row-major order
    out = flat.max(axis=-1)
    return out, (x.shape, size, s, winner)


def max_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx: each window's gradient goes to the one element that was its maximum (the first
    in row-major order when several tie); windows that overlap add up."""
    x_shape, size, s, winner = cache
    dout = np.asarray(dout, float)
    Ho, Wo = dout.shape[2], dout.shape[3]
    dx = np.zeros(x_shape)
    # one pass per tap of the window: within a tap the windows touch distinct pixels
    for i in range(size):
        for j in range(size):
            sel = np.where(winner == i * size + j, dout, 0.0)
            dx[:, :, i:i + (Ho - 1) * s + 1:s, j:j + (Wo - 1) * s + 1:s] += sel
    return dx


def avg_pool_forward(x: np.ndarray, size: int = 2,
                     stride: int | None = None) -> tuple[np.ndarray, tuple]:
    """Mean over each window, with the same windows as max_pool_forward."""
    x = np.asarray(x, float)
    s = size if stride is None else stride
    out = _pool_view(x, size, s).mean(axis=(-2, -1))
    return out, (x.shape, size, s)


def avg_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx: each window shares its gradient equally among its size * size elements."""
    x_shape, size, s = cache
    dout = np.asarray(dout, float)
    Ho, Wo = dout.shape[2], dout.shape[3]
    share = dout / (size * size)
    dx = np.zeros(x_shape)
    for i in range(size):
        for j in range(size):
            dx[:, :, i:i + (Ho - 1) * s + 1:s, j:j + (Wo - 1) * s + 1:s] += share
    return dx


# ------------------------------------------------------------------ part 2: torch


def fit_filter(image: np.ndarray, target: np.ndarray, ksize: int = 3,
               activation: str | None = None, steps: int = 1000,
               lr: float = 1e-2) -> tuple[np.ndarray, float]:
    """Learn a ksize x ksize filter K and a bias b from an image and the output we want.

    The model is act(image ⋆ K + b): a valid cross-correlation (no padding, stride 1, so target
    has shape (H - ksize + 1, W - ksize + 1)), then ``activation`` (None or "tanh"). Fit K and b
    with torch.optim.Adam (learning rate ``lr``, ``steps`` steps, the notes' recipe) on the sum of
    squared errors against target, starting from torch's default initialisation of
    nn.Conv2d(1, 1, ksize). Return (K as a float numpy array of shape (ksize, ksize), with
    K[i, j] the weight of image[r + i, c + j] in out[r, c]; b as a float).
    """
    acts = {None: lambda z: z, "tanh": torch.tanh}
    if activation not in acts:
        raise ValueError(f"activation must be None or 'tanh', not {activation!r}")
    act = acts[activation]
    init = nn.Conv2d(1, 1, ksize)                          # torch's default initial values
    K = init.weight.detach().to(torch.float64).clone().requires_grad_(True)
    bias = init.bias.detach().to(torch.float64).clone().requires_grad_(True)
    X = torch.from_numpy(np.array(image, dtype=np.float64)).reshape(1, 1, *np.shape(image))
    T = torch.from_numpy(np.array(target, dtype=np.float64))
    optimizer = torch.optim.Adam([K, bias], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        Z = act(F.conv2d(X, K, bias)).squeeze(0).squeeze(0)
        loss = torch.sum((T - Z) ** 2)
        loss.backward()
        optimizer.step()
    return K.detach().squeeze().reshape(ksize, ksize).numpy().astype(float), bias.item()


class SmallCNN(nn.Module):
    """conv 3x3 (1 -> channels, padding 1) -> ReLU -> 2x2 max-pool -> flatten -> linear."""

    def __init__(self, image_size: int = 8, channels: int = 8, n_classes: int = 10):
        """Make the layers: a 3x3 convolution from 1 channel to ``channels`` with padding 1
        (torch's default initialisation), and a linear layer from the pooled maps
        (channels * (image_size // 2) ** 2 values) to ``n_classes`` scores."""
        super().__init__()
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.fc = nn.Linear(channels * (image_size // 2) ** 2, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature maps: ReLU(conv(x)), shape (N, channels, image_size, image_size)."""
        return F.relu(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes) for images x of shape (N, 1, image_size, image_size)."""
        pooled = F.max_pool2d(self.features(x), kernel_size=2)
        return self.fc(torch.flatten(pooled, start_dim=1))


def _to_images(x: np.ndarray, device: str) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=torch.float32, device=device)[:, None, :, :]


def train_cnn(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 15,
              lr: float = 1e-2, batch_size: int = 64, device: str = "cpu") -> list[float]:
    """Train the model in place on images x (N, H, W) and integer labels y (N,) with Adam and
    the cross-entropy, in shuffled mini-batches, on ``device``. Return the mean loss of each
    epoch."""
    model.to(device).train()
    X = _to_images(x, device)
    Y = torch.tensor(np.asarray(y), dtype=torch.long, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(Y)
    losses = []
    for epoch in range(epochs):
        order = torch.randperm(n, device=device)
        batch_losses = []
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(X[idx]), Y[idx])
            loss.backward()
            optimizer.step()
            batch_losses.append(loss.item())
        losses.append(float(np.mean(batch_losses)))
        print(f"epoch {epoch + 1}/{epochs}: mean loss {losses[-1]:.4f}")
    return losses


def predict(model: nn.Module, x: np.ndarray, device: str = "cpu") -> np.ndarray:
    """The predicted class (int64) of each image in x (N, H, W)."""
    model.to(device).eval()
    preds = []
    with torch.no_grad():
        X = _to_images(x, device)
        for start in range(0, len(X), 1024):
            preds.append(model(X[start:start + 1024]).argmax(dim=1).cpu().numpy())
    if not preds:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(preds).astype(np.int64)
