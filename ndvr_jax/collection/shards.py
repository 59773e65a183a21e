"""Vector shards of an indexed collection: each `add` writes one `shards/<name>.npz` beside the
catalogue, holding per added video its global embedding (`global`, float32 [n, D]) and packed
binary code (`codes`, uint32 [n, W]), with its checksum recorded in the catalogue.

Shards are immutable: `remove` only deletes catalogue rows. A shard that no committed row names
(a kill before the commit, or all its videos removed) is an orphan and is deleted by
`remove_orphans` (one writer at a time, as SQLite's lock enforces).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence

import numpy as np

from ndvr_jax.collection.catalogue import Catalogue, CatalogueError, VideoRecord
from ndvr_jax.io.atomic import save_npz_atomic

SHARD_DIR = "shards"


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_shard(catalogue: Catalogue, vectors: dict[str, np.ndarray]) -> str:
    """Writes a new shard of `vectors` (`global`, `codes` -> [n, ...]) and records its checksum
    in the catalogue's meta (inside the transaction that commits its rows); returns its name."""
    folder = catalogue.folder / SHARD_DIR
    folder.mkdir(exist_ok=True)
    name = f"{uuid.uuid4().hex[:16]}.npz"
    save_npz_atomic(folder / name, **vectors)
    catalogue.set_meta(f"shard:{name}", file_sha256(folder / name))
    return name


def load_vectors(catalogue: Catalogue, records: Sequence[VideoRecord]) -> dict[str, np.ndarray]:
    """`{kind: [len(records), ...]}` of the records' vectors, read (and verified) shard by shard.

    Raises CatalogueError naming the shard when one is missing, fails its checksum or lacks a row.
    """
    by_shard: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        if record.shard is None:
            raise CatalogueError(f"video {record.id!r} has no vectors (status {record.status})")
        by_shard.setdefault(record.shard, []).append(i)
    out: dict[str, np.ndarray] = {}
    for shard, positions in by_shard.items():
        path = catalogue.folder / SHARD_DIR / shard
        advice = "rebuild the index (`python -m ndvr_jax.index build --rebuild`)"
        if not path.is_file():
            raise CatalogueError(f"shard {path} is missing: {advice}")
        if file_sha256(path) != catalogue.get_meta(f"shard:{shard}"):
            raise CatalogueError(f"shard {path} is corrupt (checksum mismatch): {advice}")
        with np.load(path, allow_pickle=False) as data:
            rows = [records[i].row for i in positions]
            for kind in data.files:
                part = data[kind]
                if max(rows) >= len(part):
                    raise CatalogueError(f"shard {path} has no row {max(rows)}: {advice}")
                if kind not in out:
                    out[kind] = np.zeros((len(records), *part.shape[1:]), part.dtype)
                out[kind][positions] = part[rows]
    return out


def remove_orphans(catalogue: Catalogue) -> list[str]:
    """Deletes shard files that no committed row names; returns their names."""
    folder = catalogue.folder / SHARD_DIR
    if not folder.is_dir():
        return []
    live = catalogue.shards()
    orphans = [p for p in folder.glob("*.npz") if p.name not in live]
    for path in orphans:
        path.unlink()
    return [p.name for p in orphans]
