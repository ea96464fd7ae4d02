"""Public self-checks for a5_training: early stopping on a scripted loss, and a residual block
that starts as the identity."""

import probes
import pytest

from grader.checks import check

pytestmark = pytest.mark.public


@pytest.mark.points(10)
def test_early_stopping_on_a_scripted_loss(student):
    """EarlyStopping(patience=3) on the validation losses 1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.71,
    ...: stops at epoch 6 (from 0) and restores the weights of epoch 3"""
    got = student(probes.early_stopping)
    check(got["stopped"] == 6, f"step() first returned True at epoch {got['stopped']}, expected 6 "
          "(three epochs in a row without beating 0.7)")
    check(got["best_epoch"] == 3, f"best_epoch is {got['best_epoch']}, expected 3")
    check(got["restored"] == 3.0, "restore() gave back the weights of "
          + ("no epoch (they were not restored)" if got["restored"] == -1.0
             else f"epoch {got['restored']:g}") + ", expected those of epoch 3: keep a copy "
          "(copy.deepcopy of the state_dict), not a reference to the live tensors")


@pytest.mark.points(10)
def test_block_is_identity_at_init(student):
    """after init_weights, a ResidualBlock(8, 8) returns its non-negative input unchanged, in
    train and eval mode; every block's bn2 weight is 0"""
    got = student(probes.identity_at_init)
    for mode in ("train", "eval"):
        check(got[mode] < 1e-6, f"in {mode} mode the block changes its input (by up to "
              f"{got[mode]:.2g}): zero bn2's weight, add the input before the last ReLU")
    check(got["without_zero_init"] > 1e-3, "with zero_init_residual=False the block should not "
          "be the identity")
    check(max(got["bn2_weights"]) == 0.0, "some ResidualBlock's bn2 weight is not 0 after "
          "init_weights(ResNet(...))")
