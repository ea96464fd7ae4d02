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


# (N, C, H, W, size, stride): stride None means stride = size; overlapping windows; odd sizes
POOL_CASES = [(2, 3, 8, 8, 2, None), (1, 2, 7, 9, 3, 1), (3, 1, 9, 8, 3, 2), (2, 2, 6, 7, 2, 1)]

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


def conv_case(impl, case, seed=0):
    """Forward (vectorised and loops), backward for a random upstream gradient."""
    n, c, h, w_, f, kh, kw, s, p, d = CONV_CASES[case]
    rng = np.random.default_rng(100 + case + 1000 * seed)
    x, w, b = rng.normal(size=(n, c, h, w_)), rng.normal(size=(f, c, kh, kw)), rng.normal(size=f)
    with numpy_only("conv2d_forward"):
        out, cache = impl.conv2d_forward(x.copy(), w.copy(), b.copy(), stride=s, padding=p,
                                         dilation=d)
    out = as_array(out)
    dout = rng.normal(size=out.shape)
    with numpy_only("conv2d_backward"):
        dx, dw, db = impl.conv2d_backward(dout.copy(), cache)
    with numpy_only("conv2d_loops"):
        loops = impl.conv2d_loops(x.copy(), w.copy(), b.copy(), stride=s, padding=p, dilation=d)
    return {"out": out, "loops": as_array(loops), "dx": as_array(dx), "dw": as_array(dw),
            "db": as_array(db)}


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


def pool_case(impl, kind, case, seed=0):
    """Max or average pooling, forward and backward. Integer-valued inputs make ties common."""
    n, c, h, w, size, stride = POOL_CASES[case]
    rng = np.random.default_rng(300 + case + 1000 * seed)
    x = rng.integers(0, 4, size=(n, c, h, w)).astype(np.float64)
    kwargs = {"size": size} if stride is None else {"size": size, "stride": stride}
    with numpy_only(f"{kind}_pool_forward / {kind}_pool_backward"):
        out, cache = getattr(impl, f"{kind}_pool_forward")(x.copy(), **kwargs)
        out = as_array(out)
        dout = rng.normal(size=out.shape)
        dx = getattr(impl, f"{kind}_pool_backward")(dout.copy(), cache)
    return {"out": out, "dx": as_array(dx)}


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


# ---------------------------------------------------------------- part 2: filters and a CNN


def filter_image(size=40, seed=0):
    """A generated grey image: smooth waves, a bright square and noise, scaled to [0, 1] and
    centred on 0 (an offset shared by every pixel would make the filter's taps and its bias
    nearly interchangeable, and 1000 Adam steps would not always tell them apart)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.5 + 0.25 * np.sin(7 * xx + 3 * yy) + 0.2 * np.cos(11 * yy * xx)
    img[size // 4:size // 2, size // 3:2 * size // 3] += 0.4
    img = img + 0.3 * rng.normal(size=img.shape)
    img = (img - img.min()) / (img.max() - img.min())
    return img - img.mean()


def correlate_valid(image, kernel):
    """image ⋆ kernel, no padding, stride 1 (the probes' own, to make targets)."""
    k = kernel.shape[0]
    h, w = image.shape
    return sum(image[i:h - k + 1 + i, j:w - k + 1 + j] * kernel[i, j]
               for i in range(k) for j in range(k))


def hidden_filters():
    """The filters to recover: name, kernel, bias, activation. None is symmetric under
    transposition, so a kernel read back transposed is wrong."""
    rng = np.random.default_rng(7)
    sobel = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 4
    return [("sobel (vertical edges)", sobel, 0.0, None),
            ("random kernel with a bias", rng.normal(size=(3, 3)) / 3, 0.1, None),
            ("random kernel through tanh", rng.normal(size=(3, 3)) / 2, -0.2, "tanh")]


def recover_filters(impl, figure=False):
    """fit_filter on the image and each hidden filter's output."""
    image = filter_image()
    found = []
    for _, kernel, bias, activation in hidden_filters():
        target = correlate_valid(image, kernel) + bias
        if activation == "tanh":
            target = np.tanh(target)
        k, b = impl.fit_filter(image.copy(), target, ksize=3, activation=activation)
        found.append({"kernel": as_array(k), "bias": float(as_array(b))})
    out = {"found": found}
    if figure:
        out["png"] = _filters_figure(found)
    return out


SHAPES = {
    "plus": [(0, 1), (1, 0), (1, 1), (1, 2), (2, 1)],
    "square": [(i, j) for i in range(3) for j in range(3)],
    "hline": [(1, 0), (1, 1), (1, 2)],
    "vline": [(0, 1), (1, 1), (2, 1)],
    "dot": [(1, 1)],
    "x": [(0, 0), (0, 2), (1, 1), (2, 0), (2, 2)],
    "corner": [(0, 0), (0, 1), (1, 0)],
    "tee": [(0, 0), (0, 1), (0, 2), (1, 1), (2, 1)],
}


def shapes_scene(seed, cells=8, p_plus=0.5):
    """An image of small shapes, one per 5x5 cell, and the centres of its '+' shapes."""
    rng = np.random.default_rng(seed)
    img = np.zeros((cells * 5, cells * 5))
    others = [s for s in SHAPES if s != "plus"]
    centres = []
    for r in range(cells):
        for c in range(cells):
            name = "plus" if rng.random() < p_plus else others[rng.integers(len(others))]
            top, left = r * 5 + int(rng.integers(0, 3)), c * 5 + int(rng.integers(0, 3))
            for i, j in SHAPES[name]:
                img[top + i, left + j] = 1.0
            if name == "plus":
                centres.append((top + 1, left + 1))
    return img + 0.05 * rng.normal(size=img.shape), centres


def plus_target(image, centres):
    """1 where a 3x3 window is centred on a '+', 0 elsewhere (the valid output's shape)."""
    t = np.zeros((image.shape[0] - 2, image.shape[1] - 2))
    for r, c in centres:
        t[r - 1, c - 1] = 1.0
    return t


def plus_detector(impl):
    """Learn a '+' detector from one scene (judged on new scenes by the judge)."""
    image, centres = shapes_scene(0)
    k, b = impl.fit_filter(image.copy(), plus_target(image, centres), ksize=3)
    return {"kernel": as_array(k), "bias": float(as_array(b))}


def first_dataset(names):
    """The judge's side: (name, (x_train, y_train, x_test, y_test)) of the first dataset in
    names that is here (grader.datasets; MNIST's training set cut to 20,000 images)."""
    from grader import datasets

    return datasets.first_present(names, n_train=20000)


def cnn_predictions(impl, x_train, y_train, x_test, epochs, device="cpu", figure=False):
    """Train SmallCNN on the data the judge passes (it keeps the test labels) and predict."""
    x_train = np.asarray(x_train, dtype=np.float32)
    x_test = np.asarray(x_test, dtype=np.float32)
    if x_train.max() > 1.5:  # MNIST comes as bytes
        x_train, x_test = x_train / 255.0, x_test / 255.0
    start = time.perf_counter()
    model = impl.SmallCNN(image_size=x_train.shape[-1])
    losses = impl.train_cnn(model, x_train, np.asarray(y_train), epochs=epochs, device=device)
    seconds = time.perf_counter() - start
    pred = np.asarray(impl.predict(model, x_test, device=device)).astype(np.int64)
    out = {"pred": pred, "losses": [float(v) for v in losses], "seconds": seconds}
    if figure:
        import torch

        with torch.no_grad():
            maps = model.features(torch.as_tensor(x_test[:1, None]).to(device))
        out["png"] = _maps_figure(x_test[0], as_array(maps)[0])
    return out


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _filters_figure(found):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=80)
    axes = fig.subplots(2, len(found))
    for col, ((name, kernel, _, _), got) in enumerate(zip(hidden_filters(), found)):
        lim = float(np.abs(kernel).max())
        for row, (k, label) in enumerate(((kernel, "true"), (got["kernel"], "learned"))):
            ax = axes[row, col]
            ax.imshow(np.asarray(k).reshape(3, 3), cmap="RdBu", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label}: {name.split(' (')[0]}" if row == 0 else label, fontsize=7)
    return _png(fig)


def _maps_figure(image, maps):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.2 * (len(maps) + 1), 1.6), dpi=80)
    axes = fig.subplots(1, len(maps) + 1)
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("digit", fontsize=7)
    for k, (ax, m) in enumerate(zip(axes[1:], maps)):
        ax.imshow(m, cmap="viridis")
        ax.set_title(f"map {k}", fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return _png(fig)
