"""Hidden judges for a5_training."""

import numpy as np
import probes
import pytest

from grader.checks import check, rel_error


@pytest.mark.points(10)
def test_architectures(student, reference, score):
    """MLP, ResidualBlock (same width, wider, stride 2) and ResNet: output shapes, parameter
    counts and when the downsample path exists"""
    got, want = student(probes.architectures), reference(probes.architectures)
    wrong = []
    for name, w in want.items():
        g = got[name]
        if isinstance(w, list):
            if g != w:
                wrong.append(f"{name}: output shape {g}, expected {w}")
            continue
        for key in w:
            if g[key] != w[key]:
                what = {"params": "parameter count", "shape": "output shape",
                        "downsample": "has a downsample path"}[key]
                wrong.append(f"{name}: {what} is {g[key]}, expected {w[key]}")
    score.fraction(1 - min(1.0, len(wrong) / 4))
    check(not wrong, "MLP(40, (64, 32), 10), ResidualBlock(8, 8, 1), (8, 16, 1), (8, 16, 2), "
          "ResNet(1, 10, (8, 16, 32)):\n" + "\n".join(wrong))


@pytest.mark.points(5)
def test_init_weights(student):
    """Kaiming-normal spread (fan_out for convolutions, fan_in for linear layers), zero biases,
    BatchNorm at weight 1 and bias 0"""
    got = student(probes.init_statistics)
    for layer, key in (("Conv2d(64, 128, 3)", "conv"), ("Linear(512, 256)", "linear")):
        ratio = got[f"{key}_ratio"]
        check(0.9 < ratio < 1.1 and abs(got[f"{key}_mean"]) < 0.01,
              f"{layer}: the weights' standard deviation is {ratio:.2f} times sqrt(2 / fan) "
              f"(fan_{'out' if key == 'conv' else 'in'}); expected about 1 (tolerance 10%)")
    check(got["biases"] == 0.0, "the biases are not all zero after init_weights")
    lo, hi, bias = got["bn"]
    check(lo == hi == 1.0 and bias == 0.0, "BatchNorm2d should start at weight 1 and bias 0")


@pytest.mark.points(10)
def test_evaluate_and_predict_use_eval_mode(student):
    """evaluate and predict: eval mode and no gradients, BatchNorm's running statistics left
    alone, dropout off, the loss and accuracy of the model as it is"""
    got = student(probes.modes)
    check(not got["changed"], "evaluate or predict changed the model's state ("
          + ", ".join(got["changed"][:4]) + "): call model.eval() before measuring")
    check(got["dropout_off"], "evaluate gives different losses on the same data: dropout is still "
          "on (model.eval())")
    check(abs(got["loss"] - got["want_loss"]) < 1e-5 * max(1, got["want_loss"]),
          "evaluate's loss is not the mean cross-entropy of the model in eval mode (tolerance 1e-5)")
    check(abs(got["accuracy"] - got["want_accuracy"]) < 1e-9, "evaluate's accuracy is wrong")
    check(got["pred_equal"], "predict does not return the eval-mode argmax (or differs between "
          "two calls)")


@pytest.mark.points(10)
def test_optimizers_and_schedules(student, reference, score):
    """make_optimizer's settings, and make_scheduler's learning rates batch by batch for step,
    cosine and onecycle against torch's schedulers"""
    wrong = []
    got, want = student(probes.optimizers), reference(probes.optimizers)
    for name in want:
        if got[name] != want[name]:
            wrong.append(f"make_optimizer(..., '{name}', lr=0.01, momentum=0.8, "
                         f"weight_decay=1e-3) gives {got[name]}")
    for name in ("step", "cosine", "onecycle", "none"):
        g, w = student(probes.schedule, name=name), reference(probes.schedule, name=name)
        if len(g) != len(w) or rel_error(g, w) > 1e-9:
            wrong.append(f"schedule '{name}' (6 epochs of 4 batches, lr 0.1): the learning rates "
                         "differ from torch's scheduler stepped as the README says")
    score.fraction(1 - len(wrong) / 6)
    check(not wrong, "\n".join(wrong))


@pytest.mark.points(10)
def test_train_epoch_from_fixed_weights(student, reference, score):
    """train_epoch over three fixed batches from fixed weights (SGD, momentum, weight decay;
    without a schedule and with onecycle): the loss and every weight afterwards"""
    wrong = []
    for name in ("none", "onecycle"):
        got = student(probes.one_epoch, schedule_name=name)
        want = reference(probes.one_epoch, schedule_name=name)
        if not got["training"]:
            wrong.append(f"schedule '{name}': the model is left in eval mode after train_epoch "
                         "(call model.train() first)")
        if abs(got["loss"] - want["loss"]) > 1e-4 * max(1, abs(want["loss"])):
            wrong.append(f"schedule '{name}': the returned loss is off (tolerance 1e-4)")
        bad = [k for k in want["state"] if k not in got["state"]
               or rel_error(got["state"][k], want["state"][k]) > 1e-4]
        if bad:
            wrong.append(f"schedule '{name}': after the epoch these differ (tolerance 1e-4): "
                         + ", ".join(bad[:4]) + (" ..." if len(bad) > 4 else ""))
        if abs(got["lr"] - want["lr"]) > 1e-9:
            wrong.append(f"schedule '{name}': the learning rate after the epoch is wrong (a "
                         "onecycle schedule is stepped once per batch)")
    score.fraction(1 - min(1.0, len(wrong) / 2))
    check(not wrong, "\n".join(wrong))


@pytest.mark.points(5)
def test_fit_steps_the_schedule_per_epoch(student, reference):
    """fit records the learning rate of each epoch's first batch: cosine stepped once per epoch,
    onecycle once per batch"""
    for name in ("cosine", "onecycle"):
        got, want = student(probes.fit_rhythm, schedule_name=name), reference(
            probes.fit_rhythm, schedule_name=name)
        check(got["epochs"] == 5, f"fit ran {got['epochs']} epochs of 5 (no patience given)")
        check(len(got["lr"]) == 5 and rel_error(got["lr"], want["lr"]) < 1e-9,
              f"schedule '{name}': fit's per-epoch learning rates are wrong ('step' and "
              "'cosine' step once per epoch, 'onecycle' once per batch)")


@pytest.mark.points(5)
def test_augmentation(student):
    """augment: a random crop of the zero-padded image and a random left-right flip, a new
    tensor"""
    got = student(probes.augmentation)
    check(got["shape"] == [400, 1, 5, 5], f"augment returned shape {got['shape']}")
    check(got["unchanged_input"], "augment changed its input in place")
    check(got["legal"], "some augmented image is not a crop of the padded image (flipped or not)")
    check(0.35 < got["flipped"] < 0.65, f"{got['flipped']:.0%} of the images were flipped, "
          "expected about half")
    check(0.75 < got["shifted"] < 0.97, f"{got['shifted']:.0%} of the images were shifted, "
          "expected about 8 in 9 (each of the 9 crops equally likely)")


def _accuracy(student, score, device, kind, data, t):
    x_train, y_train, x_test, y_test = data
    n_val = len(y_train) // 8
    out = student(probes.accuracy_run, kind=kind, x_train=x_train[n_val:],
                  y_train=y_train[n_val:], x_val=x_train[:n_val], y_val=y_train[:n_val],
                  x_test=x_test, settings=t, device=device, figure=True)
    score.figure(f"{kind}: learning curves", out.get("png"))
    pred = np.asarray(out["pred"])
    check(pred.shape == y_test.shape, f"predict returned shape {pred.shape}, expected {y_test.shape}")
    acc = float(np.mean(pred == y_test))
    score.trained(out["seconds"])
    score.metric("test accuracy", acc)
    score.metric("train seconds", out["seconds"], "s")
    score.leaderboard(f"{kind} test accuracy", acc, order="desc")
    score.fraction(min(1.0, max(0.0, (acc - t["floor"]) / (t["min_accuracy"] - t["floor"]))))
    return acc


@pytest.mark.points(10)
def test_mlp_accuracy_on_mnist1d(student, score, device, thresholds):
    """an MLP fitted on MNIST-1D (MNIST on a GPU when the image has it) classifies the held-out
    test set above this device's threshold"""
    name, data = probes.first_dataset(thresholds["mlp_datasets"])
    t = thresholds[f"mlp_{name}"]
    acc = _accuracy(student, score, device, "mlp", data, t)
    check(acc >= t["min_accuracy"], f"held-out {name} accuracy {acc:.1%}; needs "
          f"{t['min_accuracy']:.0%} (MLP{tuple(t['hidden'])}, {t['epochs']} epochs of "
          f"{t['optimizer']} with a {t['schedule']} schedule)")


@pytest.mark.points(15)
def test_resnet_accuracy(student, score, device, thresholds):
    """the ResNet fitted on 8x8 digits (CIFAR-10 on a GPU when the image has it) classifies the
    held-out test set above this device's threshold"""
    name, data = probes.first_dataset(thresholds["resnet_datasets"])
    t = thresholds[f"resnet_{name}"]
    acc = _accuracy(student, score, device, "resnet", data, t)
    check(acc >= t["min_accuracy"], f"held-out {name} accuracy {acc:.1%}; needs "
          f"{t['min_accuracy']:.0%} (ResNet{tuple(t['widths'])}, {t['epochs']} epochs)")
