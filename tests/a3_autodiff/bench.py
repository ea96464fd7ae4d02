"""Figures for `make bench` (not tests): backward on a deep graph, with the reference engine."""

import time


def bench(impl) -> dict[str, float]:
    x = impl.Value(1.5)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    start = time.perf_counter()
    y.backward()
    return {"backward through a chain of 100,000 operations (200,000 nodes), s": time.perf_counter() - start}
