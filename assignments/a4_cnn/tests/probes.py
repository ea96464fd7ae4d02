"""Probes for a4_cnn: seeded convolution and pooling cases, filters to recover, digits to classify.

Each probe runs identically on the student's module (in the sandboxed worker) and on the
reference. The numpy part runs with torch refused (``numpy_only``): any torch call in it fails.
"""


import contextlib
import io
import sys
import time
import numpy as np


# (N, C, H, W, F, KH, KW, stride, padding, dilation): batch 1 and > 1, odd sizes, C != F
CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 0, 1),
    (2, 3, 7, 8, 4, 3, 3, 1, 1, 1),
    (3, 2, 9, 7, 5, 3, 2, 2, 0, 1),
    (2, 2, 10, 11, 3, 3, 3, 2, 1, 2),
    (1, 3, 9, 9, 2, 2, 3, 1, 2, 3),
    (4, 1, 6, 5, 2, 1, 1, 3, 1, 1),
    (2, 4, 8, 6, 3, 5, 3, 3, 2, 1),
]


def describe_conv_cases():
    """The cases as a student reads them in a failure message."""
    return "cases are (N, C, H, W, F, KH, KW, stride, padding, dilation) = " + "; ".join(
        f"{k}: {c}" for k, c in enumerate(CONV_CASES))


IDENTITY_GRID = [[22, 15, 1, 3, 60], [42, 5, 38, 39, 7], [28, 9, 4, 66, 79], [0, 2, 25, 12, 17],
                 [9, 14, 2, 51, 3]]


STEP_IMAGE = [[1, 1, 1, 1, 1]] + [[1, 1, 10, 10, 10]] * 4


LAPLACIAN = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]


POOL_GRID = [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]


class TorchInNumpyPart(RuntimeError):
    pass


@contextlib.contextmanager
def numpy_only(task):
    """Refuse every torch call made while the numpy part runs (torch is imported in the worker
    for part 2, so a forbidden import cannot do this)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return

    class Refuse(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", str(func))
            raise TorchInNumpyPart(f"{task} called torch ({name}): the numpy part must use "
                                   "numpy only")

    with Refuse():
        yield


def as_array(value):
    """A float64 numpy array from whatever array-like the student returned (a tensor too)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def numeric_conv_gradients(impl, case, seed=0, h=1e-6):
    """The backward pass next to central differences of the student's own forward pass, for
    L = sum(out * dout)."""
    n, c, hh, ww, f, kh, kw, s, p, d = CONV_CASES[case]
    rng = np.random.default_rng(200 + case + 1000 * seed)
    x, w, b = rng.normal(size=(n, c, hh, ww)), rng.normal(size=(f, c, kh, kw)), rng.normal(size=f)
    with numpy_only("conv2d_forward / conv2d_backward"):
        out, cache = impl.conv2d_forward(x, w, b, stride=s, padding=p, dilation=d)
        dout = rng.normal(size=np.shape(out))
        dx, dw, db = impl.conv2d_backward(dout, cache)

        def loss():
            o, _ = impl.conv2d_forward(x, w, b, stride=s, padding=p, dilation=d)
            return float(np.sum(as_array(o) * dout))

        numeric = []
        for arr in (x, w, b):
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + h
                up = loss()
                arr[idx] = old - h
                down = loss()
                arr[idx] = old
                g[idx] = (up - down) / (2 * h)
            numeric.append(g)
    return {"analytic": [as_array(dx), as_array(dw), as_array(db)], "numeric": numeric}


def notes_examples(impl):
    """The notes' worked examples: the identity kernel, the Laplacian on a step, a 3x3 max-pool."""
    def conv(image, kernel):
        x = np.asarray(image, dtype=np.float64)[None, None]
        w = np.asarray(kernel, dtype=np.float64)[None, None]
        with numpy_only("conv2d_forward"):
            out, _ = impl.conv2d_forward(x, w, np.zeros(1))
        with numpy_only("conv2d_loops"):
            loops = impl.conv2d_loops(x, w, np.zeros(1))
        return as_array(out)[0, 0], as_array(loops)[0, 0]

    identity = [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    got = {}
    got["identity"], got["identity_loops"] = conv(IDENTITY_GRID, identity)
    got["laplacian"], got["laplacian_loops"] = conv(STEP_IMAGE, LAPLACIAN)
    with numpy_only("max_pool_forward"):
        pooled, _ = impl.max_pool_forward(np.asarray(POOL_GRID, dtype=np.float64)[None, None],
                                          size=3, stride=1)
    got["max_pool"] = as_array(pooled)[0, 0]
    return got


def speeds(impl, repeats=3):
    """Seconds for the loop and the vectorised forward pass on one batch (the fastest of a few)."""
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(4, 3, 24, 24)), rng.normal(size=(8, 3, 3, 3)), rng.normal(size=8)
    out = {}
    for name, fn in (("loops", impl.conv2d_loops),
                     ("vectorised", lambda *a, **k: impl.conv2d_forward(*a, **k)[0])):
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            with numpy_only(f"conv2d ({name})"):
                fn(x, w, b, stride=1, padding=1)
            best = min(best, time.perf_counter() - start)
        out[name] = best
    return out
