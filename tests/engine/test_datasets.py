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


def test_a4_cnn_judge_takes_mnist_where_the_image_has_it(tmp_path, monkeypatch):
    """a4's CNN judge grades on the first of its device's datasets that is present: MNIST from
    the image's data folder (DLGRADER_DATA) on a GPU, else the 8x8 digits."""
    pytest.importorskip("torchvision")
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("a4_probes", ROOT / "tests/a4_cnn/probes.py")
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)
    monkeypatch.setenv("DLGRADER_DATA", str(tmp_path))
    name, (x_train, y_train, x_test, y_test) = probes.first_dataset(["mnist", "digits"])
    assert name == "digits" and x_train.shape[1:] == (8, 8) and len(x_test) == len(y_test) == 450
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("t10k", 4)):
        _idx(raw / f"{split}-images-idx3-ubyte", 0x803, rng.integers(0, 256, size=(n, 28, 28)))
        _idx(raw / f"{split}-labels-idx1-ubyte", 0x801, rng.integers(0, 10, size=n))
    name, (x_train, y_train, x_test, y_test) = probes.first_dataset(["mnist", "digits"])
    assert name == "mnist" and x_train.shape == (6, 28, 28) and x_test.shape == (4, 28, 28)
    with pytest.raises(FileNotFoundError, match="none of the datasets"):
        probes.first_dataset(["cifar10"])


def test_a5_mnist1d_file_is_what_the_package_generates():
    """tests/a5_training/mnist1d.npz holds MNIST-1D exactly as `mnist1d` makes it offline with
    its default arguments (seed 42); the graders read the file instead of generating it."""
    data = pytest.importorskip("mnist1d.data")
    from conftest import ROOT

    made = data.make_dataset(data.get_dataset_args())
    saved = np.load(ROOT / "tests/a5_training/mnist1d.npz")
    for key in ("x", "y", "x_test", "y_test"):
        assert np.allclose(saved[key], made[key], atol=1e-6), key
        assert saved[key].shape == np.shape(made[key])
