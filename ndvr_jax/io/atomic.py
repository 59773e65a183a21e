"""Atomic file writes: write to a temporary name in the same folder, then rename.

The temporary is `.<name>.<pid>@<host>.<random>.tmp`; a process killed mid-write leaves it
behind, and `remove_stale_temporaries` (run by the next run over its folder) removes those whose
process is gone from this host, and any older than `STALE_AFTER_S` (another host's, or an older
version's without the owner in the name).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

_FILE_MODE = 0o644  # mkstemp makes 0600 files; results are meant to be shared
_OWNER = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>.+)\.[^.]+\.tmp$")
STALE_AFTER_S = 3600.0


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Opens a temporary file beside `path`; renames it onto `path` only if the block succeeds.

    Text is UTF-8, with file names that are not (`surrogateescape`) written back as their bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = f"{os.getpid()}@{socket.gethostname()}"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{owner}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, _FILE_MODE)
        text = {} if "b" in mode else {"encoding": "utf-8", "errors": "surrogateescape"}
        with os.fdopen(fd, mode, **text) as f:
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


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Removes the temporaries of killed writers under `folder` (module docstring); returns them."""
    removed = []
    for path in Path(folder).rglob(".*.tmp"):
        if path.is_file() and _is_stale(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def _is_stale(path: Path) -> bool:
    owner = _OWNER.match(path.name)
    if owner and owner["host"] == socket.gethostname():
        return not _process_alive(int(owner["pid"]))
    try:
        return time.time() - path.stat().st_mtime > STALE_AFTER_S
    except FileNotFoundError:
        return False


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True
