"""Real datasets for GPU grading and the Docker image: MNIST (through torchvision) and CIFAR-10.

Nothing is downloaded at grading time. ``python -m grader.datasets --download mnist,cifar10
--root DIR`` fetches them when an image is built with ``--build-arg DATASETS=...`` (that build
step needs the network); graders then call ``load(name, root)``. CPU grading and the tests use
data that ships in packages or that the tests write, so these loaders are tested on tiny files
in the real on-disk formats.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import os
import pickle
import sys
from pathlib import Path

import numpy as np

NAMES = ("mnist", "cifar10")
CIFAR_DIR = "cifar-10-batches-py"


def load(name: str, root: str | Path, train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) as numpy arrays: MNIST (n, 28, 28) uint8, CIFAR-10 (n, 32, 32, 3) uint8."""
    root = Path(root)
    if name == "mnist":
        from torchvision.datasets import MNIST  # imported only where a dataset is used

        ds = MNIST(str(root), train=train, download=False)
        return ds.data.numpy(), ds.targets.numpy().astype(np.int64)
    if name == "cifar10":
        return _load_cifar(root / CIFAR_DIR, train)
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(NAMES)}")


def _load_cifar(folder: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10's python batches (pickled dicts of bytes and labels; instructor-provided data,
    never student input). torchvision's loader insists on the full files' checksums."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    xs, ys = [], []
    for n in names:
        path = folder / n
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: build the image with DATASETS=cifar10")
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")  # noqa: S301 - trusted dataset file
        xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.concatenate(xs).transpose(0, 2, 3, 1), np.concatenate(ys)


def data_root() -> Path:
    """Where an image keeps its datasets: ``DLGRADER_DATA``, else /autograder/data."""
    return Path(os.environ.get("DLGRADER_DATA", "/autograder/data"))


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, (x_train, y_train, x_test, y_test), images scaled to [0, 1],
    a fixed split (450 test images). Read from the file the package ships, without importing
    scikit-learn (and scipy with it): a judge's process stays small."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("scikit-learn is not installed: its digits are not here")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    x, y = data[:, :-1].reshape(-1, 8, 8) / 16.0, data[:, -1].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    test, train = order[:450], order[450:]
    return x[train], y[train], x[test], y[test]


def split(name: str, root: Path | None = None, n_train: int | None = None):
    """(x_train, y_train, x_test, y_test) of a dataset for a judge, or None when it is not
    here: "digits" (always), "mnist" and "cifar10" (when the image was built with them)."""
    if name == "digits":
        return digits()
    root = root or data_root()
    present = {"mnist": root / "MNIST", "cifar10": root / CIFAR_DIR}
    if name not in present:
        raise ValueError(f"unknown dataset {name!r}; known: digits, {', '.join(NAMES)}")
    if not present[name].is_dir():
        return None
    x_train, y_train = load(name, root, train=True)
    x_test, y_test = load(name, root, train=False)
    return x_train[:n_train], y_train[:n_train], x_test, y_test


def first_present(names: list[str], root: Path | None = None, n_train: int | None = None,
                  own: dict | None = None):
    """(name, split) of the first dataset in ``names`` that is here: a judge's per-device list
    (``datasets = ["cifar10", "digits"]`` on a GPU, ``["digits"]`` on the CPU). ``own`` maps
    the names of an assignment's own datasets (a5's MNIST-1D file) to functions returning the
    split."""
    own = own or {}
    for name in names:
        data = own[name]() if name in own else split(name, root, n_train)
        if data is not None:
            return name, data
    raise FileNotFoundError(f"none of the datasets {', '.join(names)} is here")


def download(names: list[str], root: Path) -> None:  # pragma: no cover - needs the network
    from torchvision.datasets import CIFAR10, MNIST

    for name in names:
        for train in (True, False):
            {"mnist": MNIST, "cifar10": CIFAR10}[name](str(root), train=train, download=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grader.datasets")
    p.add_argument("--download", required=True, help="comma-separated: mnist,cifar10")
    p.add_argument("--root", required=True)
    args = p.parse_args(argv)
    names = [n.strip() for n in args.download.split(",") if n.strip()]
    unknown = set(names) - set(NAMES)
    if unknown:
        p.error(f"unknown datasets: {', '.join(sorted(unknown))}")
    download(names, Path(args.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
