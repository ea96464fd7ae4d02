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

What is graded, besides the public self-checks:
- the forward pass (both versions, to a relative error of 1e-9) and the backward pass against
  the reference on float64 cases that mix padding, stride, dilation, channel counts (C != F),
  odd sizes and batches of 1 and more; pooling with overlapping windows and ties. The graders
  run all of part 1 with torch refused.
- three hidden 3x3 filters (one behind tanh) recovered by ``fit_filter`` from a generated,
  zero-mean image: every tap and the bias within 0.02 of the truth.
- a '+' detector: ``fit_filter`` (no activation) on one image of small shapes, with target 1 at
  each '+' centre and 0 elsewhere. The grader then computes image ⋆ K + b itself (valid
  cross-correlation, your bias included) on three new images and takes the k strongest
  responses, k being the number of '+' in the image: 90% of them must be '+' centres.
- SmallCNN after ``train_cnn`` with its defaults: the grader passes images already scaled to
  [0, 1] (scikit-learn's 8x8 digits / 16, a fixed split; it keeps the test labels) and computes
  the accuracy of ``predict``: 92% on the CPU; on a GPU, MNIST (/ 255), 96%.
The torch seed is set by the grader; nothing needs seeding. The feedback page shows your
learned filters next to the true ones and your CNN's feature maps.

Speed: ``pytest`` prints how long your two forward passes take on your machine (the last
self-check). For your own record (not graded), copy the figures into your notebook or a comment:

| version | seconds (4 images 3x24x24, 8 filters 3x3, padding 1) |
|---|---|
| conv2d_loops | |
| conv2d_forward | |
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import as_strided
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
    # BEGIN SOLUTION
    n_img, _, h, wd = x.shape
    n_f, _, kh, kw = w.shape
    ho = conv_output_size(h, kh, stride, padding, dilation)
    wo = conv_output_size(wd, kw, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = np.zeros((n_img, n_f, ho, wo), dtype=np.result_type(x, w, b))
    for n in range(n_img):
        for f in range(n_f):
            for r in range(ho):
                for c in range(wo):
                    top, left = r * stride, c * stride
                    window = xp[n, :, top:top + dilation * (kh - 1) + 1:dilation,
                                left:left + dilation * (kw - 1) + 1:dilation]
                    out[n, f, r, c] = np.sum(window * w[f]) + b[f]
    return out
    # END SOLUTION


def _windows(xp: np.ndarray, kh: int, kw: int, ho: int, wo: int, stride: int,
             dilation: int) -> np.ndarray:
    """A read-only view (N, C, KH, KW, H_out, W_out) of the padded input: every tap of every
    window, without copying."""
    sn, sc, sh, sw = xp.strides
    n, c = xp.shape[:2]
    return as_strided(xp, shape=(n, c, kh, kw, ho, wo),
                      strides=(sn, sc, dilation * sh, dilation * sw, stride * sh, stride * sw),
                      writeable=False)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1,
                   padding: int = 0, dilation: int = 1) -> tuple[np.ndarray, tuple]:
    """The same forward pass, vectorised (im2col or stride tricks: no Python loop over pixels).

    Returns (out, cache): out as conv2d_loops computes it, and whatever conv2d_backward needs.
    """
    # BEGIN SOLUTION
    kh, kw = w.shape[2:]
    ho = conv_output_size(x.shape[2], kh, stride, padding, dilation)
    wo = conv_output_size(x.shape[3], kw, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = _windows(xp, kh, kw, ho, wo, stride, dilation)
    out = np.tensordot(cols, w, axes=([1, 2, 3], [1, 2, 3]))  # (N, H_out, W_out, F)
    out = out.transpose(0, 3, 1, 2) + b[None, :, None, None]
    return out, (x.shape, xp.shape, cols, w, stride, padding, dilation)
    # END SOLUTION


def conv2d_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Given dL/dout (N, F, H_out, W_out), return (dx, dw, db) with the shapes of x, w and b.

    Every output position used each tap once, so each gradient is a sum over the positions
    (and over the batch for dw and db).
    """
    # BEGIN SOLUTION
    x_shape, xp_shape, cols, w, stride, padding, dilation = cache
    kh, kw = w.shape[2:]
    ho, wo = dout.shape[2:]
    db = dout.sum(axis=(0, 2, 3))
    dw = np.tensordot(dout, cols, axes=([0, 2, 3], [0, 4, 5]))  # (F, C, KH, KW)
    dcols = np.tensordot(dout, w, axes=([1], [0]))  # (N, H_out, W_out, C, KH, KW)
    dxp = np.zeros(xp_shape, dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dilation, j * dilation
            dxp[:, :, top:top + stride * (ho - 1) + 1:stride,
                left:left + stride * (wo - 1) + 1:stride] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    dx = dxp[:, :, padding:padding + x_shape[2], padding:padding + x_shape[3]]
    return dx, dw, db
    # END SOLUTION


def _pool_windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(N, C, H_out, W_out, size, size) view of every pooling window (no padding)."""
    n, c, h, w = x.shape
    ho, wo = (h - size) // stride + 1, (w - size) // stride + 1
    sn, sc, sh, sw = x.strides
    return as_strided(x, shape=(n, c, ho, wo, size, size),
                      strides=(sn, sc, stride * sh, stride * sw, sh, sw), writeable=False)


def max_pool_forward(x: np.ndarray, size: int = 2,
                     stride: int | None = None) -> tuple[np.ndarray, tuple]:
    """Max over each size x size window, moved ``stride`` pixels at a time (default: size), no
    padding: out has shape (N, C, (H - size) // stride + 1, (W - size) // stride + 1)."""
    # BEGIN SOLUTION
    stride = size if stride is None else stride
    win = _pool_windows(x, size, stride)
    flat = win.reshape(*win.shape[:4], size * size)
    arg = flat.argmax(axis=-1)  # the first maximum in row-major order
    out = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return out, (x.shape, size, stride, arg)
    # END SOLUTION


def max_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx: each window's gradient goes to the one element that was its maximum (the first
    in row-major order when several tie); windows that overlap add up."""
    # BEGIN SOLUTION
    x_shape, size, stride, arg = cache
    n, c, ho, wo = dout.shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    nn_, cc, rr, qq = np.indices((n, c, ho, wo))
    rows = rr * stride + arg // size
    cols = qq * stride + arg % size
    np.add.at(dx, (nn_, cc, rows, cols), dout)
    return dx
    # END SOLUTION


def avg_pool_forward(x: np.ndarray, size: int = 2,
                     stride: int | None = None) -> tuple[np.ndarray, tuple]:
    """Mean over each window, with the same windows as max_pool_forward."""
    # BEGIN SOLUTION
    stride = size if stride is None else stride
    out = _pool_windows(x, size, stride).mean(axis=(-2, -1))
    return out, (x.shape, size, stride)
    # END SOLUTION


def avg_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx: each window shares its gradient equally among its size * size elements."""
    # BEGIN SOLUTION
    x_shape, size, stride = cache
    ho, wo = dout.shape[2:]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    share = dout / (size * size)
    for i in range(size):
        for j in range(size):
            dx[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride] += share
    return dx
    # END SOLUTION


# ------------------------------------------------------------------ part 2: torch


def fit_filter(image: np.ndarray, target: np.ndarray, ksize: int = 3,
               activation: str | None = None, steps: int = 1000,
               lr: float = 1e-2) -> tuple[np.ndarray, float]:
    """Learn a ksize x ksize filter K and a bias b from an image and the output we want.

    The model is act(image ⋆ K + b): a valid cross-correlation (no padding, stride 1, so target
    has shape (H - ksize + 1, W - ksize + 1)), then ``activation`` (None or "tanh"). Fit K and b
    with torch.optim.Adam (learning rate ``lr``, ``steps`` steps, the notes' recipe) on the sum of
    squared errors against target, starting from torch's default initialisation of
    nn.Conv2d(1, 1, ksize) (float32 or float64: either is precise enough). Return (K as a float
    numpy array of shape (ksize, ksize), with K[i, j] the weight of image[r + i, c + j] in
    out[r, c]; b as a float).
    """
    # BEGIN SOLUTION
    if activation not in (None, "tanh"):
        raise ValueError(f"unknown activation {activation!r}: use None or 'tanh'")
    conv = nn.Conv2d(1, 1, ksize)
    x = torch.as_tensor(np.asarray(image, dtype=np.float32))[None, None]
    t = torch.as_tensor(np.asarray(target, dtype=np.float32))
    opt = torch.optim.Adam(conv.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        z = conv(x)[0, 0]
        if activation == "tanh":
            z = torch.tanh(z)
        loss = torch.sum((z - t) ** 2)
        loss.backward()
        opt.step()
    return conv.weight.detach()[0, 0].numpy().astype(np.float64), float(conv.bias.detach()[0])
    # END SOLUTION


class SmallCNN(nn.Module):
    """conv 3x3 (1 -> channels, padding 1) -> ReLU -> 2x2 max-pool -> flatten -> linear."""

    def __init__(self, image_size: int = 8, channels: int = 8, n_classes: int = 10):
        """Make the layers: a 3x3 convolution from 1 channel to ``channels`` with padding 1
        (torch's default initialisation), and a linear layer from the pooled maps, flattened
        in (channel, row, column) order (channels * (image_size // 2) ** 2 values), to
        ``n_classes`` scores."""
        super().__init__()
        # BEGIN SOLUTION
        self.conv = nn.Conv2d(1, channels, 3, padding=1)
        self.fc = nn.Linear(channels * (image_size // 2) ** 2, n_classes)
        # END SOLUTION

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature maps: ReLU(conv(x)), shape (N, channels, image_size, image_size)."""
        # BEGIN SOLUTION
        return F.relu(self.conv(x))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes) for images x of shape (N, 1, image_size, image_size)."""
        # BEGIN SOLUTION
        h = F.max_pool2d(self.features(x), 2)
        return self.fc(h.flatten(1))
        # END SOLUTION


def train_cnn(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 15,
              lr: float = 1e-2, batch_size: int = 64, device: str = "cpu") -> list[float]:
    """Train the model in place on images x (N, H, W) and integer labels y (N,) with Adam and
    the cross-entropy, in shuffled mini-batches, on ``device``. x is already scaled to [0, 1].
    Return the mean loss of each epoch (for your plots: not graded)."""
    # BEGIN SOLUTION
    model.to(device)
    xs = torch.as_tensor(np.asarray(x, dtype=np.float32))[:, None].to(device)
    ys = torch.as_tensor(np.asarray(y, dtype=np.int64)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs), device=device)
        total = 0.0
        for start in range(0, len(xs), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            loss = F.cross_entropy(model(xs[idx]), ys[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(xs))
    return losses
    # END SOLUTION


def predict(model: nn.Module, x: np.ndarray, device: str = "cpu") -> np.ndarray:
    """The predicted class of each image in x (N, H, W), as a numpy int64 array of shape (N,)
    (the model in eval mode, on ``device``)."""
    # BEGIN SOLUTION
    model.to(device).eval()
    with torch.no_grad():
        xs = torch.as_tensor(np.asarray(x, dtype=np.float32))[:, None].to(device)
        return model(xs).argmax(dim=1).cpu().numpy().astype(np.int64)
    # END SOLUTION
