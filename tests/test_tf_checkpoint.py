"""TensorFlow V2 checkpoints read without TensorFlow, on bundles the test writes byte by byte."""

import struct

import numpy as np
import pytest

from ndvr_jax.backbones.tf_checkpoint import CheckpointFormatError, read_checkpoint

DTYPES = {np.dtype(np.float32): 1, np.dtype(np.int64): 9, np.dtype(np.float16): 19}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


def block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A table block with prefix-compressed keys, one restart point, and a 5-byte trailer."""
    out, previous = bytearray(), b""
    for key, value in entries:
        shared = 0
        while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
            shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        previous = key
    return bytes(out) + struct.pack("<II", 0, 1) + b"\0" * 5


def write_bundle(prefix, tensors: dict[str, np.ndarray], entries_per_block: int = 2) -> None:
    data, entries = bytearray(), [(b"", field(1, 1) + field(3, field(1, 1)))]
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        shape = b"".join(field(2, field(1, d)) for d in array.shape)
        entry = field(1, DTYPES[array.dtype]) + field(2, shape)
        entry += field(4, len(data)) + field(5, array.nbytes)
        entries.append((name.encode(), entry))
        data += array.tobytes()
    (prefix.parent / f"{prefix.name}.data-00000-of-00001").write_bytes(bytes(data))
    table, index = bytearray(), []
    for start in range(0, len(entries), entries_per_block):
        chunk = entries[start : start + entries_per_block]
        raw = block(chunk)
        index.append((chunk[-1][0], varint(len(table)) + varint(len(raw) - 5)))
        table += raw
    meta_handle = varint(len(table)) + varint(8)
    table += block([])
    raw = block(index)
    index_handle = varint(len(table)) + varint(len(raw) - 5)
    table += raw
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    (prefix.parent / f"{prefix.name}.index").write_bytes(bytes(table) + footer)


def test_reads_what_was_written(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "1CNN/kernel": rng.standard_normal((3, 3, 1, 4)).astype(np.float32),
        "1CNN/bias": rng.standard_normal(4).astype(np.float32),
        "batch_normalization/gamma": rng.standard_normal(1).astype(np.float32),
        "batch_normalization_1/moving_variance": rng.random(4).astype(np.float32),
        "global_step": np.array(1234, np.int64),
        "half": rng.standard_normal((2, 5)).astype(np.float16),
    }
    write_bundle(tmp_path / "model.ckpt", tensors)
    for path in (tmp_path / "model.ckpt", tmp_path / "model.ckpt.index", tmp_path):
        read = read_checkpoint(path)
        assert sorted(read) == sorted(tensors)
        for name, array in tensors.items():
            assert read[name].dtype == array.dtype
            np.testing.assert_array_equal(read[name], array)


def test_rejects_other_files(tmp_path):
    (tmp_path / "x.index").write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointFormatError):
        read_checkpoint(tmp_path / "x")
