"""a5_training -- a terse take."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PER_BATCH_SCHEDULES = {"onecycle"}


def _t(a, dtype):
    return a.to(dtype) if torch.is_tensor(a) else torch.as_tensor(np.asarray(a), dtype=dtype)


def _conv3(i, o, s=1):
    return nn.Conv2d(i, o, 3, s, 1, bias=False)


class MLP(nn.Module):
    def __init__(self, in_features, hidden=(128, 128), n_classes=10, dropout=0.0):
        super().__init__()
        dims, layers = [in_features, *hidden], []
        for a, b in zip(dims, dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers, nn.Linear(dims[-1], n_classes))

    def forward(self, x):
        return self.net(x.flatten(1))


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1, self.bn1 = _conv3(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels)
        self.conv2, self.bn2 = _conv3(out_channels, out_channels), nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(h + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    def __init__(self, in_channels=1, n_classes=10, widths=(16, 32)):
        super().__init__()
        self.stem = nn.Sequential(_conv3(in_channels, widths[0]), nn.BatchNorm2d(widths[0]), nn.ReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(widths[max(i - 1, 0)], w, 1 if i == 0 else 2)
                                      for i, w in enumerate(widths)])
        self.head = nn.Linear(widths[-1], n_classes)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def init_weights(model, zero_init_residual=True):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            mode = "fan_out" if isinstance(m, nn.Conv2d) else "fan_in"
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, ResidualBlock):
                nn.init.zeros_(m.bn2.weight)
    return model


def make_optimizer(model, name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def make_scheduler(optimizer, name, epochs, steps_per_epoch):
    S = torch.optim.lr_scheduler
    if name == "step":
        return S.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    elif name == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=epochs)
    elif name == "onecycle":
        return S.OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"],
                            total_steps=epochs * steps_per_epoch)
    elif name == "none":
        return None
    raise ValueError(f"unknown schedule {name!r}")


def augment(x, pad=1):
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    di, dj = torch.randint(0, 2 * pad + 1, (2, n)).tolist()
    out = torch.stack([xp[k, :, di[k]:di[k] + h, dj[k]:dj[k] + w] for k in range(n)])
    flip = torch.rand(n) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


class EarlyStopping:
    def __init__(self, patience=3, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.best_epoch, self.bad, self.epoch, self.state = float("inf"), -1, 0, 0, None

    def step(self, val_loss, model):
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad = val_loss, self.epoch, 0
            self.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.bad += 1
        self.epoch += 1
        return self.bad >= self.patience

    def restore(self, model):
        if self.state is not None:
            model.load_state_dict(self.state)


def train_epoch(model, batches, optimizer, scheduler=None, per_batch=False,
                augment_images=False, device="cpu"):
    model.train()
    total, n = torch.zeros(()), 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        if augment_images:
            x = augment(x)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if per_batch and scheduler is not None:
            scheduler.step()
        total += loss.detach().cpu() * len(y)
        n += len(y)
    return (total / max(n, 1)).item()


def evaluate(model, x, y, device="cpu", batch_size=256):
    x, y = _t(x, torch.float32), _t(y, torch.long)
    was = model.training
    model.eval()
    loss = correct = 0.0
    with torch.inference_mode():
        for i in range(0, len(y), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            out = model(xb)
            loss += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
    model.train(was)
    return loss / len(y), correct / len(y)


def predict(model, x, device="cpu", batch_size=256):
    x = _t(x, torch.float32)
    model.eval()
    with torch.inference_mode():
        preds = [model(x[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(preds).numpy().astype("int64")


def fit(model, x_train, y_train, x_val, y_val, epochs=10, optimizer="sgd", lr=0.05,
        weight_decay=5e-4, schedule="cosine", batch_size=64, patience=None,
        augment_images=False, device="cpu"):
    model.to(device)
    xt, yt = _t(x_train, torch.float32), _t(y_train, torch.long)
    steps = -(-len(yt) // batch_size)
    opt = make_optimizer(model, optimizer, lr, weight_decay=weight_decay)
    sch = make_scheduler(opt, schedule, epochs, steps)
    per_batch = schedule in PER_BATCH_SCHEDULES
    stopper = EarlyStopping(patience) if patience is not None else None
    hist = {"train_loss": [], "val_loss": [], "val_acc": [], "lr": []}
    for ep in range(epochs):
        hist["lr"].append(opt.param_groups[0]["lr"])
        perm = torch.randperm(len(yt))
        batches = ((xt[idx], yt[idx]) for idx in perm.split(batch_size))
        hist["train_loss"].append(train_epoch(model, batches, opt, sch, per_batch, augment_images, device))
        vl, va = evaluate(model, x_val, y_val, device)
        hist["val_loss"].append(vl)
        hist["val_acc"].append(va)
        print(f"epoch {ep}: train {hist['train_loss'][-1]:.4f} val {vl:.4f} acc {va:.3f}")
        if sch is not None and not per_batch:
            sch.step()
        if stopper is not None and stopper.step(vl, model):
            print(f"early stop at epoch {ep} (best {stopper.best_epoch})")
            break
    if stopper is not None:
        stopper.restore(model)
    return hist
