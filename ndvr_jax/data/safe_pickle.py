"""Restricted unpickling for the dataset pickles that the original systems ship.

A pickle is a program: `pickle.load` may import any module and call any function named in the
file. The original repositories ship their dataset descriptions (`cc_web_video.pickle`,
`vcdb.pickle`, ...) as pickles, so this toolkit reads them only through `safe_load`, which
accepts plain data and nothing else:

- `None`, `bool`, `int`, `float`, `complex`, `str`, `bytes`, `bytearray`;
- `list`, `tuple`, `dict`, `set`, `frozenset`, `collections.OrderedDict`;
- numpy arrays, dtypes and scalars, rebuilt by small wrappers here that accept only plain
  `numpy.ndarray` (no subclasses) and raw buffers.

Any other global (a class, `os.system`, `builtins.eval`, `numpy.load`, ...) is refused with
`UnsafePickleError` before anything is called. Python 2 pickles (the originals are Python 2,
protocol 0) load with `encoding="latin1"`, so their byte strings arrive as `str`.
"""

from __future__ import annotations

import builtins
import collections
import io
import os
import pickle
from collections.abc import Callable
from typing import IO, Any

import numpy as np

__all__ = ["UnsafePickleError", "safe_load", "safe_loads"]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the plain-data allow-list."""


def _as_bytes(data: Any) -> bytes:
    """Python 2 byte strings come back as latin-1 `str`; turn them into bytes again."""
    if isinstance(data, str):
        return data.encode("latin1")
    if isinstance(data, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        return bytes(data)
    raise UnsafePickleError(f"expected a raw buffer, got {type(data).__name__}")


def _ndarray_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """Stands in for `numpy.core.multiarray._reconstruct`; plain ndarrays only."""
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"refusing to rebuild array subtype {subtype!r}")
    return np.ndarray(shape, dtype=_as_dtype(dtype))


def _as_dtype(dtype: Any) -> np.dtype:
    if isinstance(dtype, np.dtype):
        return dtype
    if isinstance(dtype, bytes):
        dtype = dtype.decode("latin1")
    if not isinstance(dtype, str):
        raise UnsafePickleError(f"refusing dtype description of type {type(dtype).__name__}")
    return np.dtype(dtype)


def _dtype(obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """Stands in for `numpy.dtype`: built from a type string only."""
    del align, copy
    return _as_dtype(obj)


def _scalar(dtype: Any, data: Any = None) -> Any:
    """Stands in for `numpy.core.multiarray.scalar`."""
    dtype = _as_dtype(dtype)
    if dtype.hasobject:
        return data
    return np.frombuffer(_as_bytes(data), dtype=dtype, count=1)[0]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """Stands in for `numpy.core.numeric._frombuffer` (protocol 5 arrays)."""
    dtype = _as_dtype(dtype)
    if dtype.hasobject:
        raise UnsafePickleError("refusing an object array stored as a raw buffer")
    order = order.decode("latin1") if isinstance(order, bytes) else order
    if order not in ("C", "F"):
        raise UnsafePickleError(f"invalid array order {order!r}")
    flat = np.frombuffer(_as_bytes(buffer), dtype=dtype)
    return flat.reshape(shape, order=order).copy()


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """Stands in for `_codecs.encode`, which Python 3 uses to pickle bytes at protocols < 3."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_BUILTINS: dict[str, Callable[..., Any]] = {
    name: getattr(builtins, name)
    for name in (
        "set",
        "frozenset",
        "list",
        "tuple",
        "dict",
        "bytearray",
        "bytes",
        "complex",
        "int",
        "float",
        "bool",
        "str",
    )
}

_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
}
for _module in ("builtins", "__builtin__"):
    for _name, _fn in _BUILTINS.items():
        _ALLOWED[(_module, _name)] = _fn
_ALLOWED[("__builtin__", "unicode")] = str
_ALLOWED[("__builtin__", "long")] = int
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _ndarray_reconstruct
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _scalar
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _frombuffer


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], source: str, encoding: str) -> None:
        super().__init__(file, encoding=encoding)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refusing to load global '{module}.{name}'. Only plain data "
                "(dict, list, tuple, set, str, bytes, numbers, None) and numpy arrays are "
                "accepted, because unpickling anything else can run arbitrary code."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: refusing persistent id {pid!r}")


def safe_load(file: str | os.PathLike | IO[bytes], encoding: str = "latin1") -> Any:
    """Loads a pickle file (path or binary file object) that may hold only plain data.

    Raises:
      UnsafePickleError: the pickle names any global outside the allow-list above.
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return _RestrictedUnpickler(f, os.fspath(file), encoding).load()
    return _RestrictedUnpickler(file, getattr(file, "name", "<pickle>"), encoding).load()


def safe_loads(data: bytes, encoding: str = "latin1") -> Any:
    """`safe_load` for a pickle held in memory."""
    return _RestrictedUnpickler(io.BytesIO(data), "<pickle bytes>", encoding).load()
