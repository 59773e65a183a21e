"""Reads TensorFlow checkpoints (the V2 "tensor bundle": `<prefix>.index` + `<prefix>.data-*`)
without TensorFlow.

The `.index` file is a LevelDB-format table (SSTable) mapping each variable name to a
`BundleEntryProto` (dtype, shape, shard, offset, size); the empty key holds the
`BundleHeaderProto`. Tensors are raw little-endian bytes in the data shards. Supported: the
uncompressed tables TensorFlow writes, numeric dtypes, unpartitioned variables.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

_MAGIC = 0xDB4775248B80FB57
_FOOTER = 48
_BLOCK_TRAILER = 5  # compression type (1 byte) + masked crc32c (4 bytes)
# tensorflow/core/framework/types.proto DataType → numpy.
_DTYPES = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    17: np.uint16,
    19: np.float16,
    22: np.uint32,
    23: np.uint64,
}


class CheckpointFormatError(ValueError):
    """The files are not a TensorFlow V2 checkpoint this reader understands."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: ints for varint/fixed, bytes for messages."""
    fields, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise CheckpointFormatError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def _block_entries(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of one table block (keys are prefix-compressed against the previous)."""
    if data[offset + size] != 0:
        raise CheckpointFormatError("compressed checkpoint index blocks are not supported")
    block = data[offset : offset + size]
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 - 4 * num_restarts
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_length]))
        pos += value_length
    return entries


def _table(path: Path) -> list[tuple[bytes, bytes]]:
    data = path.read_bytes()
    if len(data) < _FOOTER or struct.unpack_from("<Q", data, len(data) - 8)[0] != _MAGIC:
        raise CheckpointFormatError(f"{path} is not a TensorFlow checkpoint index")
    footer = data[len(data) - _FOOTER :]
    _, pos = _varint(footer, 0)  # metaindex handle: offset, size (unused)
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    entries = []
    for _, handle in _block_entries(data, index_offset, index_size):
        offset, pos = _varint(handle, 0)
        size, _ = _varint(handle, pos)
        entries.extend(_block_entries(data, offset, size))
    return entries


def _prefix(path: str | os.PathLike) -> str:
    """Accepts the prefix itself, `<prefix>.index`, or a folder holding one `*.index`."""
    path = os.fspath(path)
    if path.endswith(".index"):
        return path[: -len(".index")]
    if os.path.isdir(path):
        indexes = sorted(Path(path).glob("*.index"))
        if len(indexes) != 1:
            raise CheckpointFormatError(f"expected one .index file in {path}, found {indexes}")
        return str(indexes[0])[: -len(".index")]
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """`{variable name: array}` of every tensor of a TensorFlow V2 checkpoint."""
    prefix = _prefix(path)
    num_shards = 1
    tensors: dict[str, tuple[int, tuple[int, ...], int, int, int]] = {}
    for key, value in _table(Path(prefix + ".index")):
        fields = _proto_fields(value)
        if key == b"":
            num_shards = next((v for n, v in fields if n == 1), 1)
            continue
        entry = {n: v for n, v in fields}
        if 7 in entry:
            raise CheckpointFormatError(f"{key.decode()}: partitioned variables not supported")
        shape = tuple(
            next((v for n, v in _proto_fields(dim) if n == 1), 0)
            for n, dim in _proto_fields(entry.get(2, b""))
            if n == 2
        )
        tensors[key.decode()] = (
            entry.get(1, 0),
            shape,
            entry.get(3, 0),
            entry.get(4, 0),
            entry.get(5, 0),
        )
    shards: dict[int, bytes] = {}
    out = {}
    for name, (dtype, shape, shard, offset, size) in tensors.items():
        if dtype not in _DTYPES:
            continue  # strings and other non-numeric tensors (e.g. saver metadata)
        if shard not in shards:
            shards[shard] = Path(f"{prefix}.data-{shard:05d}-of-{num_shards:05d}").read_bytes()
        array = np.frombuffer(
            shards[shard],
            _DTYPES[dtype],
            count=size // np.dtype(_DTYPES[dtype]).itemsize,
            offset=offset,
        )
        out[name] = array.reshape(shape).copy()
    return out
