"""The catalogue of an indexed collection: one SQLite database (`catalogue.sqlite`) of its videos.

One row per video: id, path, size, mtime, sha256 of the file, duration, streams, extraction
settings, status (`ok`, or why it has no vectors) and error, and where its vectors are (the
shard file and row, `ndvr_jax.collection.shards`). Every change is one transaction (`with
catalogue.transaction():`), so a kill at any point leaves the last committed state: a shard
written but never committed is an orphan, removed on the next open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

CATALOGUE_FILE = "catalogue.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    sha256 TEXT NOT NULL,
    duration REAL,
    streams TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    shard TEXT,
    row INTEGER,
    added REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS videos_sha256 ON videos (sha256);
"""


class CatalogueError(ValueError):
    """The catalogue is missing, of another version, or was built with other settings."""


@dataclasses.dataclass(frozen=True)
class VideoRecord:
    """One catalogue row."""

    id: str
    path: str
    size: int
    mtime: float
    sha256: str
    duration: float | None = None
    streams: dict[str, Any] = dataclasses.field(default_factory=dict)
    status: str = "ok"
    error: str = ""
    shard: str | None = None
    row: int | None = None


class Catalogue:
    """The SQLite catalogue of one index folder."""

    def __init__(self, folder: str | os.PathLike, *, create: bool = False):
        self.folder = Path(folder)
        path = self.folder / CATALOGUE_FILE
        if not path.is_file() and not create:
            raise CatalogueError(
                f"{self.folder} is not an index (no {CATALOGUE_FILE}): build one with "
                "`python -m ndvr_jax.index build`"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)  # transactions are explicit
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise CatalogueError(
                f"{path}: schema version {version}, this toolkit reads {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All changes inside commit together or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value))
        )

    def put(self, records: Iterable[VideoRecord]) -> None:
        """Inserts or replaces rows (call inside `transaction`)."""
        now = time.time()
        self._db.executemany(
            "INSERT OR REPLACE INTO videos (id, path, size, mtime, sha256, duration, streams, "
            "status, error, shard, row, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (r.id, r.path, r.size, r.mtime, r.sha256, r.duration, json.dumps(r.streams),
                 r.status, r.error, r.shard, r.row, now)
                for r in records
            ],
        )  # fmt: skip

    def remove(self, ids: Sequence[str]) -> int:
        """Deletes the rows of `ids` (call inside `transaction`); returns how many there were."""
        before = self.count()
        self._db.executemany("DELETE FROM videos WHERE id = ?", [(v,) for v in ids])
        return before - self.count()

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self._db.execute("SELECT COUNT(*) FROM videos").fetchone()[0]
        query = "SELECT COUNT(*) FROM videos WHERE status = ?"
        return self._db.execute(query, (status,)).fetchone()[0]

    def records(self, status: str | None = None) -> list[VideoRecord]:
        """Rows in id order (only those of `status` if given)."""
        query = "SELECT id, path, size, mtime, sha256, duration, streams, status, error, shard, row"
        query += " FROM videos" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        rows = self._db.execute(query, (status,) if status else ()).fetchall()
        return [
            VideoRecord(*row[:6], json.loads(row[6]), *row[7:])  # type: ignore[arg-type]
            for row in rows
        ]

    def by_sha256(self) -> dict[str, str]:
        """`{sha256: id}` of every catalogued file."""
        return dict(self._db.execute("SELECT sha256, id FROM videos").fetchall())

    def shards(self) -> set[str]:
        """Shard files that committed rows point at."""
        rows = self._db.execute("SELECT DISTINCT shard FROM videos WHERE shard IS NOT NULL")
        return {shard for (shard,) in rows}
