"""Atomic file writes: write to a temporary name in the same folder, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

_FILE_MODE = 0o644  # mkstemp makes 0600 files; results are meant to be shared


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Opens a temporary file beside `path`; renames it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> None:
    """Saves one array as `.npy` atomically."""
    with atomic_write(path, "wb") as f:
        np.save(f, array)


def save_npz_atomic(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Saves named arrays as `.npz` atomically."""
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def save_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
    """Saves an object as JSON atomically."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=indent)
