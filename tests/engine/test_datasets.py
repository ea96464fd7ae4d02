"""The real dataset loaders, on tiny files written in the real on-disk formats."""

import pickle
import struct

import numpy as np
import pytest

from grader import datasets


def _idx(path, magic, arr):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def test_mnist_loader_reads_idx_files(tmp_path):
    pytest.importorskip("torchvision")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for split, n in (("train", 5), ("t10k", 3)):  # torchvision wants all four files present
        written[split] = rng.integers(0, 256, size=(n, 28, 28)), rng.integers(0, 10, size=n)
        _idx(raw / f"{split}-images-idx3-ubyte", 0x803, written[split][0])
        _idx(raw / f"{split}-labels-idx1-ubyte", 0x801, written[split][1])
    for split, (images, labels) in written.items():
        n = len(labels)
        X, y = datasets.load("mnist", tmp_path, train=split == "train")
        assert X.shape == (n, 28, 28) and X.dtype == np.uint8
        assert np.array_equal(X, images) and np.array_equal(y, labels)


def test_cifar10_loader_reads_python_batches(tmp_path):
    folder = tmp_path / datasets.CIFAR_DIR
    folder.mkdir()
    rng = np.random.default_rng(1)
    want = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(2, 3072)).astype(np.uint8)
        labels = rng.integers(0, 10, size=2).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
        want.append((data, labels))
    X, y = datasets.load("cifar10", tmp_path)
    assert X.shape == (10, 32, 32, 3) and y.tolist() == sum((w[1] for w in want[:5]), [])
    assert np.array_equal(X[0], want[0][0][0].reshape(3, 32, 32).transpose(1, 2, 0))
    X_test, _ = datasets.load("cifar10", tmp_path, train=False)
    assert X_test.shape == (2, 32, 32, 3)


def test_missing_data_and_unknown_names_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="DATASETS=cifar10"):
        datasets.load("cifar10", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("imagenet", tmp_path)
