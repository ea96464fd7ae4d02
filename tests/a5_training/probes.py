"""Probes for a5_training: architectures, initialisation, train/eval modes, early stopping,
schedules, one epoch of training from fixed weights, and accuracy on held-out data.

Where two correct solutions could draw different random numbers (initialisation, shuffling),
the probes set the weights themselves or compare behaviour, never raw random draws.
"""

import math
import os
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _torch():
    """torch, imported where a probe runs: the judges import this file and stay torch-free."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    return torch, F, nn


def n_params(model):
    return int(sum(p.numel() for p in model.parameters()))


def architectures(impl):
    """Output shapes and parameter counts of the three architectures."""
    torch, F, nn = _torch()
    out = {}
    mlp = impl.MLP(40, (64, 32), 10, dropout=0.2)
    out["mlp"] = {"params": n_params(mlp), "shape": list(mlp(torch.zeros(3, 40)).shape)}
    out["mlp_flattens"] = list(impl.MLP(12, (8,), 5)(torch.zeros(2, 3, 4)).shape)
    for name, (cin, cout, stride, size) in {"same": (8, 8, 1, 6), "wider": (8, 16, 1, 6),
                                            "stride2": (8, 16, 2, 7),
                                            "stride2_same_width": (8, 8, 2, 7)}.items():
        block = impl.ResidualBlock(cin, cout, stride)
        shape = list(block(torch.rand(2, cin, size, size)).shape)
        out[f"block_{name}"] = {"params": n_params(block), "shape": shape,
                                "downsample": block.downsample is not None}
    net = impl.ResNet(1, 10, (8, 16, 32))
    out["resnet"] = {"params": n_params(net), "shape": list(net(torch.zeros(2, 1, 9, 9)).shape)}
    return out


def _max_abs(a, b):
    return float((a - b).abs().max())


def identity_at_init(impl):
    """After init_weights, a block fed a non-negative input returns it (train and eval mode);
    without zero_init_residual it does not."""
    torch, F, nn = _torch()
    out = {}
    x = torch.rand(4, 8, 6, 6)
    for mode in ("train", "eval"):
        block = impl.init_weights(impl.ResidualBlock(8, 8, 1))
        getattr(block, mode)()
        with torch.no_grad():
            out[mode] = _max_abs(block(x), x)
    block = impl.init_weights(impl.ResidualBlock(8, 8, 1), zero_init_residual=False)
    with torch.no_grad():
        out["without_zero_init"] = _max_abs(block(x), x)
    net = impl.init_weights(impl.ResNet(1, 10, (8, 16)))
    out["bn2_weights"] = [float(m.bn2.weight.detach().abs().max()) for m in net.modules()
                          if isinstance(m, impl.ResidualBlock)]
    return out


def init_statistics(impl):
    """The spread of Kaiming weights against sqrt(2 / fan) on wide layers, and the biases."""
    torch, F, nn = _torch()
    conv, lin, bn = nn.Conv2d(64, 128, 3), nn.Linear(512, 256), nn.BatchNorm2d(16)
    for p in (*conv.parameters(), *lin.parameters(), *bn.parameters()):
        nn.init.constant_(p, 0.37)
    model = nn.Sequential(conv, lin, bn)
    impl.init_weights(model)
    return {"conv_ratio": float(conv.weight.std()) / math.sqrt(2 / (128 * 9)),
            "linear_ratio": float(lin.weight.std()) / math.sqrt(2 / 512),
            "conv_mean": float(conv.weight.mean()), "linear_mean": float(lin.weight.mean()),
            "biases": float(max(conv.bias.abs().max(), lin.bias.abs().max())),
            "bn": [float(bn.weight.min()), float(bn.weight.max()), float(bn.bias.abs().max())]}


def modes(impl):
    """evaluate and predict: eval mode, no gradients, nothing in the model changed; dropout
    off; the same answers twice."""
    torch, F, nn = _torch()
    torch.manual_seed(0)
    net = impl.ResNet(1, 4, (4, 8))
    x, y = torch.rand(20, 1, 6, 6) * 3 + 1, torch.arange(20) % 4
    net.train()
    for _ in range(2):  # running statistics away from their start
        net(torch.rand(8, 1, 6, 6))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loss1, acc1 = impl.evaluate(net, x, y)
    net.train()  # predict must put the model in eval mode itself
    pred1 = np.asarray(impl.predict(net, x))
    net.train()
    loss2, _ = impl.evaluate(net, x, y)
    net.train()
    pred2 = np.asarray(impl.predict(net, x))
    changed = sorted(k for k, v in net.state_dict().items() if not torch.equal(v, before[k]))
    net.eval()
    with torch.no_grad():
        scores = net(x)
    want_loss = float(F.cross_entropy(scores, y))
    want_pred = scores.argmax(1).numpy()
    flat = impl.MLP(36, (64,), 5)  # position-sensitive: a shifted or flipped image scores differently
    flat.eval()
    with torch.no_grad():
        flat_want = flat(x).argmax(1).numpy()
    flat.train()
    flat_pred = np.asarray(impl.predict(flat, x))
    mlp = impl.MLP(6, (32,), 3, dropout=0.9)
    xm, ym = torch.rand(50, 6), torch.arange(50) % 3
    mlp.train()
    a = impl.evaluate(mlp, xm, ym)[0]
    mlp.train()
    b = impl.evaluate(mlp, xm, ym)[0]
    return {"changed": changed, "loss": float(loss1), "loss_again": float(loss2),
            "want_loss": want_loss, "accuracy": float(acc1),
            "want_accuracy": float((want_pred == y.numpy()).mean()),
            "pred_equal": bool(np.array_equal(pred1, pred2) and np.array_equal(pred1, want_pred)
                               and np.array_equal(flat_pred, flat_want)),
            "dropout_off": abs(a - b) < 1e-6}


SCRIPTED = [1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.71, 0.74, 0.5, 0.4]


def early_stopping(impl, patience=3):
    """A scripted validation loss; the model's one weight holds the epoch number, so the weights
    given back tell which epoch they came from."""
    torch, F, nn = _torch()
    model = nn.Linear(1, 1, bias=False)
    stopper = impl.EarlyStopping(patience=patience)
    stopped = None
    for epoch, loss in enumerate(SCRIPTED):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        if stopper.step(loss, model):
            stopped = epoch
            break
    with torch.no_grad():
        model.weight.fill_(-1.0)
    stopper.restore(model)
    return {"stopped": stopped, "restored": float(model.weight.item()),
            "best_epoch": int(stopper.best_epoch)}


def schedule(impl, name, epochs=6, steps=4):
    """Learning rates batch by batch, the schedule stepped at the README's rhythm."""
    torch, F, nn = _torch()
    model = nn.Linear(2, 1)
    opt = impl.make_optimizer(model, "sgd", lr=0.1)
    sched = impl.make_scheduler(opt, name, epochs, steps)
    per_batch = name == "onecycle"
    lrs = []
    for _ in range(epochs):
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched is not None and per_batch:
                sched.step()
        if sched is not None and not per_batch:
            sched.step()
    return lrs


def optimizers(impl):
    """The optimiser's class and settings."""
    torch, F, nn = _torch()
    model = nn.Linear(2, 1)
    out = {}
    for name in ("sgd", "adam"):
        opt = impl.make_optimizer(model, name, lr=0.01, momentum=0.8, weight_decay=1e-3)
        g = opt.param_groups[0]
        out[name] = {"class": type(opt).__name__, "lr": g["lr"],
                     "weight_decay": g["weight_decay"], "momentum": g.get("momentum")}
    return out


def _roles(impl, net):
    """The layers of a ResNet by role, whatever the submodules are called: the stem's conv and
    BatchNorm (the only ones outside a block), each block's conv1, bn1, conv2, bn2 and
    downsample layers in order, and the final Linear."""
    torch, F, nn = _torch()
    blocks = [m for m in net.modules() if isinstance(m, impl.ResidualBlock)]
    inside = {id(x) for blk in blocks for x in blk.modules()}
    outer = [m for m in net.modules() if id(m) not in inside
             and isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]
    roles = [(f"stem.{type(m).__name__}", m) for m in outer if not isinstance(m, nn.Linear)]
    for k, blk in enumerate(blocks):
        roles += [(f"block{k}.{n}", getattr(blk, n)) for n in ("conv1", "bn1", "conv2", "bn2")]
        if blk.downsample is not None:
            roles += [(f"block{k}.downsample.{type(m).__name__}", m) for m in blk.downsample.modules()
                      if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    roles += [("fc", m) for m in outer if isinstance(m, nn.Linear)]
    return roles


def _tensors(module):
    """A layer's parameters and BatchNorm's running statistics, by name."""
    out = {n: p for n, p in module.named_parameters(recurse=False)}
    for n in ("running_mean", "running_var"):
        if getattr(module, n, None) is not None:
            out[n] = getattr(module, n)
    return out


def _fixed_net(impl):
    """A small ResNet with weights set by role from a fixed generator (no dependence on the
    implementation's random draws or on what it names its layers)."""
    torch, F, nn = _torch()
    net = impl.ResNet(1, 3, (4, 8))
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for _, m in _roles(impl, net):
            for name, t in sorted(_tensors(m).items()):
                if name == "running_var":
                    t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
                else:
                    offset = 1.0 if isinstance(m, nn.BatchNorm2d) and name == "weight" else 0.0
                    t.copy_(torch.randn(t.shape, generator=gen) * 0.3 + offset)
    return net


def one_epoch(impl, schedule_name="none"):
    """train_epoch over three fixed batches from fixed weights: the loss and the weights after."""
    torch, F, nn = _torch()
    net = _fixed_net(impl)
    gen = torch.Generator().manual_seed(6)
    batches = [(torch.rand(6, 1, 6, 6, generator=gen), torch.randint(0, 3, (6,), generator=gen))
               for _ in range(3)]
    opt = impl.make_optimizer(net, "sgd", lr=0.1, momentum=0.9, weight_decay=1e-3)
    sched = impl.make_scheduler(opt, schedule_name, 2, len(batches))
    net.eval()  # as fit leaves it after evaluating: train_epoch must switch to train mode
    loss = impl.train_epoch(net, batches, opt, sched, per_batch=schedule_name == "onecycle")
    state = {f"{role}.{name}": t.detach().numpy().astype(np.float64)
             for role, m in _roles(impl, net) for name, t in _tensors(m).items()}
    return {"loss": float(loss), "state": state, "lr": opt.param_groups[0]["lr"],
            "training": bool(net.training)}


def fit_rhythm(impl, schedule_name):
    """fit's per-epoch learning rates and its early stop, on tiny random data."""
    torch, F, nn = _torch()
    gen = torch.Generator().manual_seed(8)
    x, y = torch.rand(40, 1, 4, 4, generator=gen), torch.randint(0, 2, (40,), generator=gen)
    net = impl.ResNet(1, 2, (4,))
    hist = impl.fit(net, x, y, x[:10], y[:10], epochs=5, optimizer="sgd", lr=0.1,
                    schedule=schedule_name, batch_size=10)
    return {"lr": [float(v) for v in hist["lr"]], "epochs": len(hist["val_loss"])}


def augmentation(impl):
    """augment on a batch of distinct images: shapes, shifts within the padding, flips."""
    torch, F, nn = _torch()
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5) + 1
    x = x.repeat(200, 1, 1, 1)
    before = x.clone()
    out = impl.augment(x, pad=1)
    flipped = shifted = 0
    legal = True
    for i in range(len(x)):
        src = F.pad(x[i], (1, 1, 1, 1))
        options = [(t, s, f) for t in range(3) for s in range(3) for f in (False, True)]
        match = None
        for t, s, f in options:
            crop = src[:, t:t + 5, s:s + 5]
            if f:
                crop = crop.flip(-1)
            if torch.equal(crop, out[i]):
                match = (t, s, f)
                break
        if match is None:
            legal = False
            break
        flipped += match[2]
        shifted += (match[0], match[1]) != (1, 1)
    return {"shape": list(out.shape), "unchanged_input": bool(torch.equal(x, before)),
            "legal": legal, "flipped": flipped / len(x), "shifted": shifted / len(x)}


def mnist1d():
    """MNIST-1D as its package generates it with the default arguments (seed 42), saved once in
    tests/a5_training/mnist1d.npz: 4000 training signals of length 40, 1000 test signals."""
    d = np.load(os.path.join(HERE, "mnist1d.npz"))
    return d["x"], d["y"], d["x_test"], d["y_test"]


def accuracy_run(impl, kind, x_train, y_train, x_val, y_val, x_test, settings, device="cpu",
                 figure=False):
    """Build, initialise and fit the model the judge names; predict the test inputs."""
    as_bytes = np.asarray(x_train).dtype == np.uint8  # MNIST and CIFAR-10: scale to [0, 1]
    x_train, x_val, x_test = (np.asarray(v, dtype=np.float32) / (255 if as_bytes else 1)
                              for v in (x_train, x_val, x_test))
    if kind == "mlp":
        model = impl.MLP(int(np.prod(x_train.shape[1:])), tuple(settings["hidden"]), 10,
                         dropout=settings["dropout"])
    else:
        if x_train.ndim == 3:
            x_train, x_val, x_test = x_train[:, None], x_val[:, None], x_test[:, None]
        elif x_train.ndim == 4 and x_train.shape[-1] == 3:  # CIFAR-10 comes as NHWC bytes
            x_train, x_val, x_test = (v.transpose(0, 3, 1, 2) for v in (x_train, x_val, x_test))
        model = impl.ResNet(x_train.shape[1], 10, tuple(settings["widths"]))
    impl.init_weights(model)
    start = time.perf_counter()
    hist = impl.fit(model, x_train, np.asarray(y_train), x_val, np.asarray(y_val),
                    epochs=settings["epochs"], optimizer=settings["optimizer"],
                    lr=settings["lr"], weight_decay=settings["weight_decay"],
                    schedule=settings["schedule"], batch_size=settings["batch_size"],
                    patience=settings.get("patience"),
                    augment_images=settings.get("augment", False), device=device)
    seconds = time.perf_counter() - start
    pred = np.asarray(impl.predict(model, x_test, device=device)).astype(np.int64)
    out = {"pred": pred, "seconds": seconds,
           "history": {k: [float(v) for v in hist[k]] for k in ("train_loss", "val_loss",
                                                                 "val_acc", "lr")}}
    if figure:
        out["png"] = _curves(out["history"], kind)
    return out


def _curves(h, kind):
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 2.4), dpi=80)
    a, b, c = fig.subplots(1, 3)
    epochs = range(1, len(h["train_loss"]) + 1)
    a.plot(epochs, h["train_loss"], label="train")
    a.plot(epochs, h["val_loss"], label="validation")
    a.set(title=f"{kind}: loss", xlabel="epoch")
    a.legend(fontsize=7)
    b.plot(epochs, h["val_acc"])
    b.set(title="validation accuracy", xlabel="epoch")
    c.plot(epochs, h["lr"])
    c.set(title="learning rate", xlabel="epoch")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def first_dataset(names):
    """The judge's side: (name, (x_train, y_train, x_test, y_test)) of the first dataset in
    names that is here: "mnist1d" (this folder's file), else grader.datasets."""
    from grader import datasets

    return datasets.first_present(names, own={"mnist1d": mnist1d})
