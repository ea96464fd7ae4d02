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
        # BEGIN SOLUTION
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes); x is flattened to (N, in_features) first."""
        # BEGIN SOLUTION
        return self.net(x.flatten(1))
        # END SOLUTION


class ResidualBlock(nn.Module):
    """The notes' block. Attributes (the graders look for them): conv1, bn1, conv2, bn2 and
    downsample (None, or nn.Sequential(1x1 conv with the stride, BatchNorm) when stride != 1 or
    in_channels != out_channels). Convolutions have no bias (BatchNorm follows each)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        # BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        # BEGIN SOLUTION
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)
        # END SOLUTION


class ResNet(nn.Module):
    """A stem (3x3 conv without bias, BatchNorm, ReLU) to widths[0] channels; then one
    ResidualBlock per width, the first with stride 1, each later one with stride 2; global
    average pooling; a Linear to n_classes."""

    def __init__(self, in_channels: int = 1, n_classes: int = 10,
                 widths: tuple[int, ...] = (16, 32)):
        super().__init__()
        # BEGIN SOLUTION
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, width = [], widths[0]
        for k, w in enumerate(widths):
            blocks.append(ResidualBlock(width, w, stride=1 if k == 0 else 2))
            width = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(width, n_classes)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes) for images (N, in_channels, H, W)."""
        # BEGIN SOLUTION
        h = self.blocks(self.stem(x))
        return self.fc(h.mean(dim=(2, 3)))
        # END SOLUTION


def init_weights(model: nn.Module, zero_init_residual: bool = True) -> nn.Module:
    """Kaiming-normal weights for every Conv2d (mode "fan_out") and Linear (mode "fan_in"), both
    for ReLU; zero biases; BatchNorm2d weight 1 and bias 0; then, with zero_init_residual, the
    weight of each ResidualBlock's bn2 set to 0. Returns the model."""
    # BEGIN SOLUTION
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)) and m.bias is not None:
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, ResidualBlock):
                nn.init.zeros_(m.bn2.weight)
    return model
    # END SOLUTION


def make_optimizer(model: nn.Module, name: str = "sgd", lr: float = 0.05,
                   momentum: float = 0.9, weight_decay: float = 5e-4) -> torch.optim.Optimizer:
    """"sgd": SGD with momentum and weight decay; "adam": Adam with weight decay (the L2 form
    torch.optim.Adam implements)."""
    # BEGIN SOLUTION
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                               weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")
    # END SOLUTION


def make_scheduler(optimizer: torch.optim.Optimizer, name: str, epochs: int,
                   steps_per_epoch: int):
    """torch's scheduler for ``name``: "step" is StepLR(step_size=max(1, epochs // 3),
    gamma=0.1); "cosine" is CosineAnnealingLR(T_max=epochs); "onecycle" is OneCycleLR with
    max_lr the optimiser's lr and total_steps = epochs * steps_per_epoch (its other arguments
    at their defaults); "none" is None."""
    # BEGIN SOLUTION
    if name == "none":
        return None
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3),
                                               gamma=0.1)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "onecycle":
        max_lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr,
                                                   total_steps=epochs * steps_per_epoch)
    raise ValueError(f"unknown schedule {name!r}")
    # END SOLUTION


def augment(x: torch.Tensor, pad: int = 1) -> torch.Tensor:
    """A training batch of images (N, C, H, W), each shifted by a random crop of the image
    zero-padded by ``pad`` on every side (back to H x W; each of the (2 pad + 1)^2 offsets
    equally likely), then flipped left-right with probability 1/2, independently per image. A
    new tensor; x is not changed."""
    # BEGIN SOLUTION
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    tops = torch.randint(0, 2 * pad + 1, (n,))
    lefts = torch.randint(0, 2 * pad + 1, (n,))
    out = torch.stack([padded[i, :, t:t + h, s:s + w] for i, (t, s) in
                       enumerate(zip(tops.tolist(), lefts.tolist()))])
    flip = torch.rand(n) < 0.5
    out[flip] = out[flip].flip(-1)
    return out
    # END SOLUTION


class EarlyStopping:
    """Watches the validation loss. ``step(val_loss, model)`` returns True when training should
    stop: after ``patience`` epochs in a row without a loss below the best one so far (by more
    than min_delta). It keeps a copy of the weights (``state_dict``) of the best epoch, and
    ``restore(model)`` loads them back. ``best_epoch`` counts from 0 (the first call)."""

    def __init__(self, patience: int = 3, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        # BEGIN SOLUTION
        self.best = math.inf
        self.best_epoch = -1
        self.best_state: dict | None = None
        self.bad = 0
        self.epoch = -1
        # END SOLUTION

    def step(self, val_loss: float, model: nn.Module) -> bool:
        """Record one epoch's validation loss; True when training should stop."""
        # BEGIN SOLUTION
        self.epoch += 1
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad = val_loss, self.epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad += 1
        return self.bad >= self.patience
        # END SOLUTION

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights back into model (nothing if step was never called)."""
        # BEGIN SOLUTION
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        # END SOLUTION


def train_epoch(model: nn.Module, batches, optimizer: torch.optim.Optimizer, scheduler=None,
                per_batch: bool = False, augment_images: bool = False,
                device: str = "cpu") -> float:
    """One pass over ``batches`` (an iterable of (x, y) tensors) in train mode: for each batch,
    zero the gradients, compute the cross-entropy (after ``augment`` when augment_images),
    backpropagate, step the optimiser, and step the scheduler when per_batch. Returns the mean
    of the batch losses, weighted by batch size. (A per-epoch scheduler is fit's to step.)"""
    # BEGIN SOLUTION
    model.train()
    total, count = 0.0, 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        if augment_images:
            x = augment(x)
        optimizer.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None and per_batch:
            scheduler.step()
        total += loss.item() * len(y)
        count += len(y)
    return total / max(count, 1)
    # END SOLUTION


def evaluate(model: nn.Module, x, y, device: str = "cpu",
             batch_size: int = 256) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the model on x, y, in batches, in eval mode and without
    gradients. No parameter or buffer of the model changes (BatchNorm's running statistics
    included); leaving the model in eval mode afterwards, or putting its mode back, are both
    fine."""
    # BEGIN SOLUTION
    model.eval()
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    total, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            xb = x[start:start + batch_size].to(device).float()
            yb = y[start:start + batch_size].to(device)
            scores = model(xb).float()
            total += F.cross_entropy(scores, yb, reduction="sum").item()
            correct += int((scores.argmax(1) == yb).sum())
    return total / len(y), correct / len(y)
    # END SOLUTION


def predict(model: nn.Module, x, device: str = "cpu", batch_size: int = 256) -> np.ndarray:
    """Predicted classes (numpy int64, shape (N,)), in eval mode, without gradients, and
    without augmentation."""
    # BEGIN SOLUTION
    model.eval()
    x = torch.as_tensor(x)
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(model(x[start:start + batch_size].to(device).float()).argmax(1).cpu())
    return torch.cat(out).numpy().astype(np.int64)
    # END SOLUTION


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
    # BEGIN SOLUTION
    model.to(device)
    xs, ys = torch.as_tensor(x_train).float(), torch.as_tensor(y_train).long()
    steps = math.ceil(len(ys) / batch_size)
    opt = make_optimizer(model, optimizer, lr, weight_decay=weight_decay)
    sched = make_scheduler(opt, schedule, epochs, steps)
    per_batch = schedule in PER_BATCH_SCHEDULES
    stopper = EarlyStopping(patience) if patience else None
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_acc": [], "lr": []}
    for _ in range(epochs):
        history["lr"].append(opt.param_groups[0]["lr"])
        order = torch.randperm(len(ys))
        batches = [(xs[order[i:i + batch_size]], ys[order[i:i + batch_size]])
                   for i in range(0, len(ys), batch_size)]
        history["train_loss"].append(train_epoch(model, batches, opt, sched, per_batch,
                                                 augment_images, device))
        val_loss, val_acc = evaluate(model, x_val, y_val, device)
        history["val_loss"].append(val_loss)
        history["val_acc"].append(val_acc)
        if sched is not None and not per_batch:
            sched.step()
        if stopper is not None and stopper.step(val_loss, model):
            break
    if stopper is not None:
        stopper.restore(model)
    return history
    # END SOLUTION
