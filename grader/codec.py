"""The one codec between the sandboxed worker and the judge.

Decoding can never execute code: the wire format is JSON with a few tagged objects, and the
decoder builds nothing but these plain types:

    None, bool, int, float (NaN and infinities included), str, bytes,
    list, tuple, dict with str keys, numpy.ndarray of a numeric or bool dtype.

numpy scalars become Python scalars and torch tensors become numpy arrays when *encoding* (that
runs inside the worker). Everything else is refused with a message a student can act on. The
decoder is the security boundary: it treats its input as hostile (size bounds, a budget of values
and array bytes checked before anything is built, dtype whitelist, shape/byte-count agreement,
nesting depth).

This module is copied into the sandbox next to the worker, so it imports only the standard
library and numpy.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import sys
from typing import Any

import numpy as np

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 64
MAX_ITEMS = 2_000_000  # values one decode may build, unless the caller passes its own budget
ITEM_BYTES = 100  # what one decoded value costs the decoding process (object, slot, GC header)
_SCAN_CHUNK = 4 * 1024 * 1024
_STRUCTURAL = tuple(b",[{:")  # the bytes that can precede a JSON value
ALLOWED_DTYPES = frozenset(
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 "
    "float16 float32 float64 complex64 complex128".split()
)
HEADER = struct.Struct(">Q")


class CodecError(ValueError):
    """A value cannot cross the sandbox boundary, or a message is malformed."""


def _describe(value: Any) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__


def _to_plain(value: Any, depth: int = 0) -> Any:
    """Turn a value into JSON-ready data, refusing anything outside the documented types."""
    if depth > MAX_DEPTH:
        raise CodecError("the returned value is nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value
    if t is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if t is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if t is list:
        return [_to_plain(v, depth + 1) for v in value]
    if t is tuple:
        return {"$tuple": [_to_plain(v, depth + 1) for v in value]}
    if t is dict:
        pairs = []
        for k, v in value.items():
            if type(k) is not str:
                raise CodecError(f"dictionary keys must be str, got {_describe(k)}")
            pairs.append([k, _to_plain(v, depth + 1)])
        return {"$dict": pairs}
    if isinstance(value, np.generic) and type(value).__module__ == "numpy":
        return _to_plain(value.item(), depth)
    if t is np.ndarray:
        return _array(value)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return _array(value.detach().cpu().resolve_conj().resolve_neg().numpy())
    raise CodecError(
        f"cannot grade a value of type {_describe(value)}: return plain numbers, strings, "
        "lists, tuples, dicts or numpy arrays"
    )


def _array(arr: np.ndarray) -> dict:
    if arr.dtype.name not in ALLOWED_DTYPES:
        raise CodecError(f"cannot grade an array of dtype {arr.dtype}: use a numeric or bool dtype")
    data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"$nd": [arr.dtype.name, list(arr.shape), base64.b64encode(data).decode("ascii")]}


def encode(value: Any) -> bytes:
    """Serialise a value of the documented types; raise CodecError for anything else."""
    payload = json.dumps(_to_plain(value), allow_nan=False, separators=(",", ":"))
    data = payload.encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        raise CodecError(f"the returned value is too large ({len(data)} bytes encoded)")
    return data


def items_budget(memory_mb: int) -> int:
    """The max_items for a worker limited to memory_mb: decoding its reply in the trusted process
    then builds no more than that limit could hold (ITEM_BYTES per value, as many array bytes)."""
    return max(1, int(memory_mb)) * 1024 * 1024 // ITEM_BYTES


def count_items(data: bytes) -> int:
    """An upper bound on the values json.loads would build from data, found without building any.

    Past the first value, every element of an array follows a '[' or a ',', and every key and value
    of an object a '{', a ',' or a ':'. Counting them inside strings too only overestimates (base64
    has none). numpy compares 4 MB at a time: about 0.15 s for 256 MB, with 4 MB of scratch.
    """
    view, n = np.frombuffer(data, dtype=np.uint8), 1
    for start in range(0, len(view), _SCAN_CHUNK):
        chunk = view[start:start + _SCAN_CHUNK]
        n += sum(int(np.count_nonzero(chunk == c)) for c in _STRUCTURAL)
    return n


class _Tags:
    """object_hook for one decode: the tagged objects, and the bytes left for arrays and bytes."""

    def __init__(self, binary_budget: int) -> None:
        self.budget = self.limit = binary_budget

    def _spend(self, nbytes: int) -> None:
        self.budget -= nbytes
        if self.budget < 0:
            raise CodecError(f"the arrays in the result hold more than {self.limit:,} bytes "
                             "(the limit); return smaller arrays")

    def __call__(self, obj: dict) -> Any:
        if len(obj) != 1:
            raise CodecError("malformed message: untagged object")
        (tag, body), = obj.items()
        if tag == "$tuple" and type(body) is list:
            return tuple(body)
        if tag == "$dict" and type(body) is list:
            if not all(type(p) is list and len(p) == 2 and type(p[0]) is str for p in body):
                raise CodecError("malformed message: bad dict")
            return dict(body)
        if tag == "$bytes" and type(body) is str:
            self._spend(len(body) // 4 * 3)
            return base64.b64decode(body, validate=True)
        if tag == "$float" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "$nd" and type(body) is list and len(body) == 3:
            return self._array(*body)
        raise CodecError(f"malformed message: bad tag {tag[:20]!r}")

    def _array(self, dtype: Any, shape: Any, data: Any) -> np.ndarray:
        if dtype not in ALLOWED_DTYPES or type(shape) is not list or type(data) is not str:
            raise CodecError("malformed array")
        if not all(type(n) is int and n >= 0 for n in shape) or len(shape) > 32:
            raise CodecError("malformed array shape")
        dt = np.dtype(dtype).newbyteorder("<")
        nbytes = math.prod(shape) * dt.itemsize
        if len(data) != (nbytes + 2) // 3 * 4:  # checked before anything is decoded
            raise CodecError("array data does not match its shape")
        self._spend(nbytes)
        raw = base64.b64decode(data, validate=True)
        if len(raw) != nbytes:
            raise CodecError("array data does not match its shape")
        return np.frombuffer(raw, dtype=dt).astype(np.dtype(dtype), copy=True).reshape(shape)


def decode(data: bytes, max_bytes: int = MAX_MESSAGE_BYTES, *, max_items: int = MAX_ITEMS) -> Any:
    """Rebuild a value from encode()'s output. Never runs code; raises CodecError on bad input.

    The budget is checked before anything is built: at most ``max_items`` values (count_items),
    and at most ``max_items * ITEM_BYTES`` bytes of arrays and bytes in all.
    """
    if len(data) > max_bytes:
        raise CodecError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    items = count_items(data)
    if items > max_items:
        raise CodecError(f"the result has too many elements: about {items:,}, the limit is "
                         f"{max_items:,}; return a numpy array rather than long lists")
    try:
        text = data.decode("utf-8")
        return json.loads(text, object_hook=_Tags(max_items * ITEM_BYTES),
                          parse_constant=_refuse_constant)
    except CodecError:
        raise
    except (ValueError, RecursionError, TypeError) as exc:
        raise CodecError(f"malformed message: {type(exc).__name__}") from None


def _refuse_constant(name: str) -> Any:
    raise CodecError(f"malformed message: bare {name}")


def write_frame(fd: int, payload: bytes) -> None:
    """Write one length-prefixed message to a file descriptor."""
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]
