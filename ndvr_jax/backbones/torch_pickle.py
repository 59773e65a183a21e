"""Reads PyTorch `.pth`/`.pt` checkpoints into numpy arrays without importing torch.

Both serialisation formats are understood: the zip archive written by `torch.save` since 1.6
(`<prefix>/data.pkl` plus one raw file per storage under `<prefix>/data/`) and the older "legacy"
stream (magic number, protocol version, system info, the object pickle, the storage keys, then the
raw storages). The pickle is read by a restricted unpickler that resolves only the globals needed
to rebuild tensors and plain containers; any other global (`os.system`, `builtins.eval`, a model
class, ...) raises `UnsafePickleError` before anything is called.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, Any

import ml_dtypes
import numpy as np

__all__ = ["UnsafePickleError", "load", "load_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype(np.float64),
    "FloatStorage": np.dtype(np.float32),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
    "ComplexFloatStorage": np.dtype(np.complex64),
    "ComplexDoubleStorage": np.dtype(np.complex128),
}

# Checkpoints commonly wrap the state dict in one of these keys.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global that is not needed to rebuild tensors."""


class _Sealed:
    """Helper objects whose state a pickle must not set (pickle's BUILD opcode calls this)."""

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError(f"the pickle tries to modify an internal {type(self).__name__}")


class _StorageType(_Sealed):
    """Stands in for a `torch.<Dtype>Storage` class inside a persistent id."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage(_Sealed):
    """A storage whose bytes are filled in once the file has been read to its end."""

    def __init__(self, dtype: np.dtype, numel: int) -> None:
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _StorageView(_Sealed):
    """A slice of a root storage (only in very old legacy files)."""

    def __init__(self, root: _Storage, offset: int, numel: int) -> None:
        if offset < 0 or numel < 0:
            raise UnsafePickleError(f"bad storage view offset={offset} numel={numel}")
        self.root = root
        self.offset = offset
        self.numel = numel


class _PendingTensor(_Sealed):
    """A tensor waiting for its storage bytes."""

    def __init__(self, storage: _Storage | _StorageView, offset: int, size: Any, stride: Any):
        if not isinstance(storage, _Storage | _StorageView):
            raise UnsafePickleError("tensor rebuild without a storage")
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)
        if len(self.size) != len(self.stride) or min((self.offset, *self.size, *self.stride)) < 0:
            raise UnsafePickleError(f"bad tensor geometry size={self.size} stride={self.stride}")

    def materialize(self) -> np.ndarray:
        storage, offset = self.storage, self.offset
        if isinstance(storage, _StorageView):
            storage, offset = storage.root, offset + storage.offset
        flat = storage.data
        if flat is None:
            raise pickle.UnpicklingError("tensor refers to a storage that the file does not hold")
        if 0 in self.size:
            return np.zeros(self.size, flat.dtype)
        # Bounds check before as_strided, which would otherwise read arbitrary memory.
        last = offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if offset >= flat.size or last >= flat.size:
            raise pickle.UnpicklingError(
                f"tensor of size {self.size} (stride {self.stride}, offset {offset}) reaches past "
                f"its storage of {flat.size} elements"
            )
        view = np.lib.stride_tricks.as_strided(
            flat[offset:],
            shape=self.size,
            strides=tuple(s * flat.itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view, order="C")


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, meta=None):
    del requires_grad, hooks, meta
    return _PendingTensor(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, meta=None):
    del requires_grad, hooks, dtype, meta  # the storage already carries the dtype
    return _PendingTensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    del requires_grad, hooks, state
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    """`torch._tensor._rebuild_from_type_v2`: only plain tensors and Parameters are accepted."""
    del new_type, state
    if func not in (_rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter):
        raise UnsafePickleError("_rebuild_from_type_v2 with a function other than a tensor rebuild")
    return func(*args)


class _TensorClass(_Sealed):
    """Stands in for `torch.Tensor` / `torch.nn.Parameter` as `new_type` arguments."""


def _numpy_scalar(dtype: np.dtype, data: bytes | None = None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("numpy scalar with an object dtype")
    return np.frombuffer(data or b"", dtype=dtype, count=1)[0]


def _numpy_dtype(spec: str, align: bool = False, copy: bool = False) -> np.dtype:
    dtype = np.dtype(spec, align=align, copy=copy)
    if dtype.hasobject:
        raise UnsafePickleError("object dtypes are refused")
    return dtype


def _codecs_encode(text: str, encoding: str = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode is only allowed for latin1 strings")
    return text.encode("latin1")


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): _TensorClass,
    ("torch.nn.parameter", "Parameter"): _TensorClass,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    ("_codecs", "encode"): _codecs_encode,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only `_ALLOWED_GLOBALS` and turns storages into `_Storage`s."""

    def __init__(self, file: IO[bytes], storage_for: Callable[[tuple], Any] | None) -> None:
        super().__init__(file, encoding="utf-8")
        self._storage_for = storage_for

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load global '{module}.{name}': only tensors, numbers, strings and "
                "plain containers can be read from a checkpoint (save a state_dict, not a model)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if self._storage_for is None or not (isinstance(pid, tuple) and pid[:1] == ("storage",)):
            raise UnsafePickleError(f"unexpected persistent id {pid!r}")
        return self._storage_for(pid)


def _restricted_load(file: IO[bytes], storage_for: Callable[[tuple], Any] | None = None) -> Any:
    return _RestrictedUnpickler(file, storage_for).load()


def _storage_type(value: Any) -> _StorageType:
    if not isinstance(value, _StorageType):
        raise UnsafePickleError(f"persistent id names {value!r}, not a storage class")
    return value


def _materialize(obj: Any) -> Any:
    """Replaces every `_PendingTensor` in nested containers by its numpy array."""
    if isinstance(obj, _PendingTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        out = collections.OrderedDict() if isinstance(obj, collections.OrderedDict) else {}
        for key, value in obj.items():
            out[key] = _materialize(value)
        return out
    if isinstance(obj, list):
        return [_materialize(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialize(v) for v in obj)
    if isinstance(obj, _Sealed):
        raise pickle.UnpicklingError(
            f"checkpoint holds a bare {type(obj).__name__}; only tensors are supported"
        )
    return obj


def _load_zip(archive: zipfile.ZipFile) -> Any:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise pickle.UnpicklingError(
            "not a torch.save zip archive (no '<name>/data.pkl'); TorchScript files are not "
            "state dicts"
        )
    prefix = pickles[0][: -len("data.pkl")]
    names = set(archive.namelist())
    byteorder = "little"
    if f"{prefix}byteorder" in names:
        byteorder = archive.read(f"{prefix}byteorder").decode().strip()
    storages: dict[str, _Storage] = {}

    def storage_for(pid: tuple) -> _Storage:
        if len(pid) != 5:
            raise UnsafePickleError(f"unexpected storage id {pid!r}")
        _, kind, key, _location, numel = pid
        key = str(key)
        if key not in storages:
            dtype = _storage_type(kind).dtype.newbyteorder("<" if byteorder == "little" else ">")
            storage = _Storage(dtype, int(numel))
            name = f"{prefix}data/{key}"
            if name not in names:
                raise pickle.UnpicklingError(f"archive lacks storage file {name!r}")
            raw = archive.read(name)
            if len(raw) < storage.numel * dtype.itemsize:
                raise pickle.UnpicklingError(f"storage {key!r} is truncated")
            flat = np.frombuffer(raw, dtype=dtype, count=storage.numel)
            storage.data = flat.astype(dtype.newbyteorder("="), copy=False)
            storages[key] = storage
        return storages[key]

    with archive.open(pickles[0]) as f:
        obj = _restricted_load(f, storage_for)
    return _materialize(obj)


def _load_legacy(f: IO[bytes]) -> Any:
    try:
        magic = _restricted_load(f)
    except UnsafePickleError:
        raise
    except Exception as e:  # garbage bytes fail in many ways inside pickle
        raise pickle.UnpicklingError(f"not a PyTorch checkpoint ({e})") from e
    if magic != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a PyTorch checkpoint (bad magic number)")
    protocol = _restricted_load(f)
    if protocol != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError(f"unsupported legacy protocol version {protocol!r}")
    sys_info = _restricted_load(f)
    if not isinstance(sys_info, dict):
        raise pickle.UnpicklingError("not a PyTorch checkpoint (bad system info)")
    order = "<" if sys_info.get("little_endian", True) else ">"
    storages: dict[str, _Storage] = {}

    def storage_for(pid: tuple) -> _Storage | _StorageView:
        if len(pid) != 6:
            raise UnsafePickleError(f"unexpected storage id {pid!r}")
        _, kind, key, _location, numel, view = pid
        key = str(key)
        if key not in storages:
            storages[key] = _Storage(_storage_type(kind).dtype, int(numel))
        if view is None:
            return storages[key]
        _view_key, offset, view_numel = view
        return _StorageView(storages[key], int(offset), int(view_numel))

    obj = _restricted_load(f, storage_for)
    keys = _restricted_load(f)
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise pickle.UnpicklingError(f"file holds storage {key!r} that no tensor uses")
        header = f.read(8)
        numel = struct.unpack(f"{order}q", header)[0] if len(header) == 8 else -1
        dtype = storage.dtype.newbyteorder(order)
        raw = f.read(numel * dtype.itemsize) if numel >= 0 else b""
        if numel < 0 or len(raw) != numel * dtype.itemsize:
            raise pickle.UnpicklingError(f"storage {key!r} is truncated")
        storage.data = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
    return _materialize(obj)


def load(path: str | os.PathLike | IO[bytes]) -> Any:
    """Loads a `torch.save` file; tensors become numpy arrays (bfloat16 via `ml_dtypes`).

    Raises `UnsafePickleError` if the pickle references anything beyond tensors and plain data.
    """
    if isinstance(path, str | os.PathLike):
        with open(path, "rb") as f:
            return load(f)
    if zipfile.is_zipfile(path):
        path.seek(0)
        with zipfile.ZipFile(path) as archive:
            return _load_zip(archive)
    path.seek(0)
    return _load_legacy(path)


def load_state_dict(path: str | os.PathLike | IO[bytes]) -> dict[str, np.ndarray]:
    """Loads a checkpoint and returns its flat `{name: array}` state dict.

    A checkpoint dict that wraps the weights (`{"state_dict": ...}`, `{"model": ...}`, ...) is
    unwrapped, and a leading `module.` (from `DataParallel`) is removed from every key.
    """
    obj = load(path)
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        inner = [obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)]
        if not inner:
            break
        obj = inner[0]
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def _is_state_dict(obj: Mapping) -> bool:
    return bool(obj) and all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in obj.items()
    )
