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
    raise NotImplementedError("not implemented yet: conv2d_loops")


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
    raise NotImplementedError("not implemented yet: conv2d_forward")


def conv2d_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Given dL/dout (N, F, H_out, W_out), return (dx, dw, db) with the shapes of x, w and b.

    Every output position used each tap once, so each gradient is a sum over the positions
    (and over the batch for dw and db).
    """
    raise NotImplementedError("not implemented yet: conv2d_backward")


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
    raise NotImplementedError("not implemented yet: max_pool_forward")


def max_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx: each window's gradient goes to the one element that was its maximum (the first
    in row-major order when several tie); windows that overlap add up."""
    raise NotImplementedError("not implemented yet: max_pool_backward")


def avg_pool_forward(x: np.ndarray, size: int = 2,
                     stride: int | None = None) -> tuple[np.ndarray, tuple]:
    """Mean over each window, with the same windows as max_pool_forward."""
    raise NotImplementedError("not implemented yet: avg_pool_forward")


def avg_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx: each window shares its gradient equally among its size * size elements."""
    raise NotImplementedError("not implemented yet: avg_pool_backward")


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
    raise NotImplementedError("not implemented yet: fit_filter")


class SmallCNN(nn.Module):
    """conv 3x3 (1 -> channels, padding 1) -> ReLU -> 2x2 max-pool -> flatten -> linear."""

    def __init__(self, image_size: int = 8, channels: int = 8, n_classes: int = 10):
        """Make the layers: a 3x3 convolution from 1 channel to ``channels`` with padding 1
        (torch's default initialisation), and a linear layer from the pooled maps, flattened
        in (channel, row, column) order (channels * (image_size // 2) ** 2 values), to
        ``n_classes`` scores."""
        super().__init__()
        raise NotImplementedError("not implemented yet: SmallCNN.__init__")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature maps: ReLU(conv(x)), shape (N, channels, image_size, image_size)."""
        raise NotImplementedError("not implemented yet: SmallCNN.features")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes) for images x of shape (N, 1, image_size, image_size)."""
        raise NotImplementedError("not implemented yet: SmallCNN.forward")


def train_cnn(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int = 15,
              lr: float = 1e-2, batch_size: int = 64, device: str = "cpu") -> list[float]:
    """Train the model in place on images x (N, H, W) and integer labels y (N,) with Adam and
    the cross-entropy, in shuffled mini-batches, on ``device``. x is already scaled to [0, 1].
    Return the mean loss of each epoch (for your plots: not graded)."""
    raise NotImplementedError("not implemented yet: train_cnn")


def predict(model: nn.Module, x: np.ndarray, device: str = "cpu") -> np.ndarray:
    """The predicted class of each image in x (N, H, W), as a numpy int64 array of shape (N,)
    (the model in eval mode, on ``device``)."""
    raise NotImplementedError("not implemented yet: predict")
