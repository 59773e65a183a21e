"""The restricted unpickler: plain data and numpy arrays load, anything else is refused."""

import collections
import os
import pickle

import numpy as np
import pytest

from ndvr_jax.data.safe_pickle import UnsafePickleError, safe_load, safe_loads

PLAIN = {
    "none": None,
    "flags": (True, False),
    "numbers": [1, -(2**70), 2.5, float("inf"), 3 + 4j],
    "text": "näive",
    "raw": b"\x00\xff",
    "mutable": bytearray(b"ab"),
    "sets": ({1, 2}, frozenset({"a"})),
    "nested": {1: [("x", {"y": []})]},
    "ordered": collections.OrderedDict(b=1, a=2),
}
ARRAYS = [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
    np.array(["ab", "c"]),
    np.array([True, False]),
    np.zeros((0, 5)),
    np.array([{"a": 1}, None, [2]], dtype=object),
]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_round_trips(protocol):
    assert safe_loads(pickle.dumps(PLAIN, protocol=protocol)) == PLAIN
    for value in (np.float64(1.25), np.int32(-7), np.bool_(True)):
        back = safe_loads(pickle.dumps(value, protocol=protocol))
        assert back == value and back.dtype == value.dtype
    for array in ARRAYS:
        back = safe_loads(pickle.dumps(array, protocol=protocol))
        assert back.dtype == array.dtype and back.shape == array.shape
        assert back.tolist() == array.tolist()


def test_python2_protocol0_pickle_loads_as_str(tmp_path):
    # What the original (Python 2) wrote: byte strings with the STRING opcode, ints, lists.
    data = b"(dp0\nS'index'\np1\n(lp2\nS''\np3\naS'1_1_Y'\np4\nasS'queries'\np5\n(lp6\nI1\nas."
    path = tmp_path / "py2.pickle"
    path.write_bytes(data)
    assert safe_load(path) == {"index": ["", "1_1_Y"], "queries": [1]}
    with open(path, "rb") as f:
        assert safe_load(f)["queries"] == [1]


class _RunsCommand:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _Harmless:
    pass


def test_malicious_pickle_is_refused_before_running(tmp_path):
    target = tmp_path / "pwned"
    blob = pickle.dumps({"index": [_RunsCommand(target)]}, protocol=2)
    path = tmp_path / "evil.pickle"
    path.write_bytes(blob)
    with pytest.raises(UnsafePickleError, match=r"evil\.pickle.*(posix|os|nt)\.system"):
        safe_load(path)
    assert not target.exists()
    # the same bytes through plain pickle would have run the command: the test is meaningful
    pickle.loads(blob)
    assert target.exists()


@pytest.mark.parametrize(
    "blob",
    [
        b"cbuiltins\neval\n(S'1+1'\ntR.",
        b"c__builtin__\ngetattr\n(c__builtin__\nobject\nS'__subclasses__'\ntR.",
        b"csubprocess\nPopen\n((S'true'\nltR.",
        b"cnumpy\nload\n(S'x.npy'\ntR.",
        b"c_codecs\nencode\n(S'x'\nS'zlib_codec'\ntR.",
        pickle.dumps(_Harmless()),
        pickle.dumps(np.ma.masked_array([1, 2], mask=[0, 1])),
        pickle.dumps(np.array([_Harmless()], dtype=object)),
    ],
)
def test_non_plain_globals_are_refused(blob):
    with pytest.raises(UnsafePickleError):
        safe_loads(blob)


def test_persistent_ids_are_refused():
    with pytest.raises(UnsafePickleError, match="persistent"):
        safe_loads(b"P1\n.")


def test_is_an_unpickling_error():
    assert issubclass(UnsafePickleError, pickle.UnpicklingError)
