"""The codec carries plain data out of the sandbox and nothing else."""

import json
import math
import tracemalloc

import numpy as np
import pytest

from grader import codec


@pytest.mark.parametrize("value", [
    None, True, False, 0, -7, 2**80, 1.5, -0.0, "héllo\x00", b"\x00\xff", [], (), {},
    [1, (2, 3), {"a": [None, b"x"]}], {"$nd": 1, "$tuple": 2},
])
def test_round_trip_plain_values(value):
    back = codec.decode(codec.encode(value))
    assert back == value and type(back) is type(value)


def test_non_finite_floats_survive():
    back = codec.decode(codec.encode([math.nan, math.inf, -math.inf]))
    assert math.isnan(back[0]) and back[1] == math.inf and back[2] == -math.inf


@pytest.mark.parametrize("dtype", sorted(codec.ALLOWED_DTYPES))
def test_arrays_round_trip_every_allowed_dtype(dtype):
    arr = (np.arange(24) % 3).astype(dtype).reshape(2, 3, 4)
    back = codec.decode(codec.encode(arr))
    assert type(back) is np.ndarray and back.dtype == arr.dtype and back.shape == (2, 3, 4)
    assert np.array_equal(back, arr)


def test_views_scalars_and_empty_arrays():
    arr = np.arange(12.0).reshape(3, 4).T[::2]
    assert np.array_equal(codec.decode(codec.encode(arr)), arr)
    assert codec.decode(codec.encode(np.float32(2.5))) == 2.5
    assert type(codec.decode(codec.encode(np.int64(3)))) is int
    assert codec.decode(codec.encode(np.zeros((0, 3)))).shape == (0, 3)


def test_ndarray_subclass_becomes_plain_ndarray():
    class Sneaky(np.ndarray):
        def __eq__(self, other):
            return True

    value = np.arange(3).view(Sneaky)
    with pytest.raises(codec.CodecError):
        codec.encode(value)  # only exact ndarrays are encoded: the student is told what to return


class AlwaysEqual:
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value", [
    AlwaysEqual(), {1: 2}, np.array([object()]), np.array(["a"]), {"k": AlwaysEqual()},
    type("IntLike", (int,), {"__eq__": lambda s, o: True})(3), lambda: 1,
])
def test_encode_refuses_other_types(value):
    with pytest.raises(codec.CodecError, match="cannot grade|keys must be str"):
        codec.encode(value)


@pytest.mark.parametrize("payload", [
    b'{"__class__": "os.system"}', b'{"$nd": ["object", [1], "AA=="]}',
    b'{"$nd": ["float64", [2], "AAAAAAAAAAA="]}', b'{"$nd": ["float64", [-1], ""]}',
    b'{"$dict": [[1, 2]]}', b'{"$tuple": [1], "x": 2}', b'{"$float": "1e400"}', b"NaN",
    b'{"$bytes": "!!"}', b"\xff\xfe", b"[" * 100000, b"",
])
def test_decode_refuses_malformed_messages(payload):
    with pytest.raises(codec.CodecError):
        codec.decode(payload)


def test_decode_enforces_a_size_bound():
    data = codec.encode(np.zeros(1000))
    with pytest.raises(codec.CodecError, match="exceeds"):
        codec.decode(data, max_bytes=100)


def test_decoded_arrays_are_writable_copies():
    back = codec.decode(codec.encode(np.arange(3.0)))
    back[0] = 5.0
    assert back.flags.owndata or back.base is not None


def _values(v):
    """How many values json.loads builds for v (dict keys included)."""
    if isinstance(v, list):
        return 1 + sum(_values(x) for x in v)
    if isinstance(v, dict):
        return 1 + sum(1 + _values(x) for x in v.values())
    return 1


@pytest.mark.parametrize("value", [
    0, [], {}, [[]], [1, 2, 3], {"a": [1, {"b": []}], "c": "x,y:[{"}, [[[], {}], [[1]]],
    [{"$tuple": [1, 2]}, {"$nd": ["int8", [1], "AA=="]}],
])
def test_count_items_bounds_the_values_json_builds(value):
    assert codec.count_items(json.dumps(value).encode()) >= _values(value)


@pytest.mark.parametrize("frame", [b"[" + b"[]," * 1_200_000 + b"[]]", b"[" + b"1," * 2_100_000 + b"1]",
                                   b'[' + b'{"$tuple":[]},' * 600_000 + b'0]'])
def test_a_hostile_frame_is_refused_before_anything_is_built(frame):
    tracemalloc.start()
    try:
        with pytest.raises(codec.CodecError, match=r"too many elements: about [\d,]+, the limit is 2,000,000"):
            codec.decode(frame)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # the scan's 4 MB of scratch; the list alone would take 17 MB


def test_the_item_budget_is_the_callers():
    data = codec.encode(list(range(1000)))
    assert codec.decode(data, max_items=1001) == list(range(1000))
    with pytest.raises(codec.CodecError, match="the limit is 100\\b"):
        codec.decode(data, max_items=100)


def test_array_bytes_count_against_the_budget():
    data = codec.encode([np.zeros(200), b"x" * 300])  # 11 values, 1600 + 300 bytes
    assert codec.decode(data, max_items=20)[1] == b"x" * 300
    with pytest.raises(codec.CodecError, match="arrays in the result hold more than 1,800 bytes"):
        codec.decode(data, max_items=18)


def test_items_budget_follows_the_memory_limit():
    assert codec.items_budget(1024) == 1024 * 2**20 // codec.ITEM_BYTES
    assert codec.items_budget(4096) == 4 * codec.items_budget(1024)
    assert codec.items_budget(0) > 0
