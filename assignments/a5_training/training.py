"""Training networks well: an MLP and a ResNet, their initialisation, and a training loop done right.

The notes' ResidualBlock is 3x3 conv, BatchNorm, ReLU, 3x3 conv, BatchNorm, plus a shortcut: the
input itself, or a 1x1 convolution with stride and a BatchNorm (the "downsample" path) when the
block changes the number of channels or the size; the sum goes through the last ReLU. Kaiming
initialisation keeps the variance of activations steady through ReLU layers, and zeroing the
last BatchNorm's weight in each block makes every block start as the identity.

The loop (``train_epoch``, ``evaluate``, ``fit``) is where most training bugs hide: the model
must be in train mode while it learns and in eval mode (BatchNorm's running statistics frozen,
dropout off) under ``torch.no_grad()`` while it is measured; gradients are zeroed before each
backward pass; the schedule is stepped at the right rhythm; augmentation touches training
batches only; early stopping watches the validation loss and gives back the best weights.

Conventions the graders rely on:
- Images are (N, C, H, W) float tensors or arrays; signals for the MLP are (N, D) (the MLP
  flattens whatever it gets). Labels are int64 class indices.
- The loss is ``F.cross_entropy`` with its default mean over the batch.
- Schedules: "step" and "cosine" are stepped once per epoch, after the epoch's batches;
  "onecycle" once per batch, after each optimiser step; "none" is no schedule.
- ``fit`` records, for each epoch, the learning rate its first batch used.
- Name MLP's and ResNet's layers as you like: the graders find them by type, and a
  ResidualBlock's by the attributes its docstring names.

Use torch (torchvision is optional). The graders set the seeds; nothing needs seeding.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PER_BATCH_SCHEDULES = {"onecycle"}


class MLP(nn.Module):
    """Linear -> ReLU -> Dropout(dropout) for each hidden width, then a Linear to n_classes."""

    def __init__(self, in_features: int, hidden: tuple[int, ...] = (128, 128),
                 n_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        raise NotImplementedError("not implemented yet: MLP.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes); x is flattened to (N, in_features) first."""
        raise NotImplementedError("not implemented yet: MLP.forward")


class ResidualBlock(nn.Module):
    """The notes' block. Attributes (the graders look for them): conv1, bn1, conv2, bn2 and
    downsample (None, or nn.Sequential(1x1 conv with the stride, BatchNorm) when stride != 1 or
    in_channels != out_channels). Convolutions have no bias (BatchNorm follows each)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        raise NotImplementedError("not implemented yet: ResidualBlock.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        raise NotImplementedError("not implemented yet: ResidualBlock.forward")


class ResNet(nn.Module):
    """A stem (3x3 conv without bias, BatchNorm, ReLU) to widths[0] channels; then one
    ResidualBlock per width, the first with stride 1, each later one with stride 2; global
    average pooling; a Linear to n_classes."""

    def __init__(self, in_channels: int = 1, n_classes: int = 10,
                 widths: tuple[int, ...] = (16, 32)):
        super().__init__()
        raise NotImplementedError("not implemented yet: ResNet.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes) for images (N, in_channels, H, W)."""
        raise NotImplementedError("not implemented yet: ResNet.forward")


def init_weights(model: nn.Module, zero_init_residual: bool = True) -> nn.Module:
    """Kaiming-normal weights for every Conv2d (mode "fan_out") and Linear (mode "fan_in"), both
    for ReLU; zero biases; BatchNorm2d weight 1 and bias 0; then, with zero_init_residual, the
    weight of each ResidualBlock's bn2 set to 0. Returns the model."""
    raise NotImplementedError("not implemented yet: init_weights")


def make_optimizer(model: nn.Module, name: str = "sgd", lr: float = 0.05,
                   momentum: float = 0.9, weight_decay: float = 5e-4) -> torch.optim.Optimizer:
    """"sgd": SGD with momentum and weight decay; "adam": Adam with weight decay (the L2 form
    torch.optim.Adam implements)."""
    raise NotImplementedError("not implemented yet: make_optimizer")


def make_scheduler(optimizer: torch.optim.Optimizer, name: str, epochs: int,
                   steps_per_epoch: int):
    """torch's scheduler for ``name``: "step" is StepLR(step_size=max(1, epochs // 3),
    gamma=0.1); "cosine" is CosineAnnealingLR(T_max=epochs); "onecycle" is OneCycleLR with
    max_lr the optimiser's lr and total_steps = epochs * steps_per_epoch (its other arguments
    at their defaults); "none" is None."""
    raise NotImplementedError("not implemented yet: make_scheduler")


def augment(x: torch.Tensor, pad: int = 1) -> torch.Tensor:
    """A training batch of images (N, C, H, W), each shifted by a random crop of the image
    zero-padded by ``pad`` on every side (back to H x W; each of the (2 pad + 1)^2 offsets
    equally likely), then flipped left-right with probability 1/2, independently per image. A
    new tensor; x is not changed."""
    raise NotImplementedError("not implemented yet: augment")


class EarlyStopping:
    """Watches the validation loss. ``step(val_loss, model)`` returns True when training should
    stop: after ``patience`` epochs in a row without a loss below the best one so far (by more
    than min_delta). It keeps a copy of the weights (``state_dict``) of the best epoch, and
    ``restore(model)`` loads them back. ``best_epoch`` counts from 0 (the first call)."""

    def __init__(self, patience: int = 3, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        raise NotImplementedError("not implemented yet: EarlyStopping.__init__")

    def step(self, val_loss: float, model: nn.Module) -> bool:
        """Record one epoch's validation loss; True when training should stop."""
        raise NotImplementedError("not implemented yet: EarlyStopping.step")

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights back into model (nothing if step was never called)."""
        raise NotImplementedError("not implemented yet: EarlyStopping.restore")


def train_epoch(model: nn.Module, batches, optimizer: torch.optim.Optimizer, scheduler=None,
                per_batch: bool = False, augment_images: bool = False,
                device: str = "cpu") -> float:
    """One pass over ``batches`` (an iterable of (x, y) tensors) in train mode: for each batch,
    zero the gradients, compute the cross-entropy (after ``augment`` when augment_images),
    backpropagate, step the optimiser, and step the scheduler when per_batch. Returns the mean
    of the batch losses, weighted by batch size. (A per-epoch scheduler is fit's to step.)"""
    raise NotImplementedError("not implemented yet: train_epoch")


def evaluate(model: nn.Module, x, y, device: str = "cpu",
             batch_size: int = 256) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the model on x, y, in batches, in eval mode and without
    gradients. No parameter or buffer of the model changes (BatchNorm's running statistics
    included); leaving the model in eval mode afterwards, or putting its mode back, are both
    fine."""
    raise NotImplementedError("not implemented yet: evaluate")


def predict(model: nn.Module, x, device: str = "cpu", batch_size: int = 256) -> np.ndarray:
    """Predicted classes (numpy int64, shape (N,)), in eval mode, without gradients, and
    without augmentation."""
    raise NotImplementedError("not implemented yet: predict")


def fit(model: nn.Module, x_train, y_train, x_val, y_val, epochs: int = 10,
        optimizer: str = "sgd", lr: float = 0.05, weight_decay: float = 5e-4,
        schedule: str = "cosine", batch_size: int = 64, patience: int | None = None,
        augment_images: bool = False, device: str = "cpu") -> dict[str, list[float]]:
    """Train on (x_train, y_train) for at most ``epochs`` epochs, in shuffled mini-batches,
    with make_optimizer(model, optimizer, lr, weight_decay=weight_decay) and
    make_scheduler(..., schedule, epochs, batches per epoch) (a short last batch counts:
    ceil(N / batch_size)). After each epoch: evaluate on the validation split, step a per-epoch
    scheduler, and, with ``patience``, let EarlyStopping decide, and at the end restore its best
    weights (without ``patience``, the last weights stay). Returns {"train_loss", "val_loss",
    "val_acc", "lr"}: one value per epoch run ("lr": the rate of the epoch's first batch)."""
    raise NotImplementedError("not implemented yet: fit")
