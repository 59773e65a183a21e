"""Building and changing an index of a video collection: `add` (and `build`), `remove`, `info`.

An index folder holds `catalogue.sqlite` (`ndvr_jax.collection.catalogue`), `shards/` (global
embeddings and binary codes, `ndvr_jax.collection.shards`), `visual/` (frame features, the
ndvr-dml layout) and `audio/` (AuSiL segment features) written by the toolkit's resumable
extraction, `pca.npz` (the audio whitening, fitted on the indexed audio) and `failures.tsv`.

`add` hashes every file first: a file whose bytes are already indexed is reported as a duplicate
of that video at once and not indexed again; an id already indexed with the same bytes is
skipped; one with other bytes is re-indexed. Extraction resumes where a killed run stopped; the
new rows and their shard are committed in one transaction at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from ndvr_jax import search
from ndvr_jax.ausil.model import fit_pca_whitening
from ndvr_jax.ausil.training import PCA_FILE
from ndvr_jax.collection.catalogue import Catalogue, CatalogueError, VideoRecord
from ndvr_jax.collection.codes import SIGN, video_codes
from ndvr_jax.collection.shards import file_sha256, load_vectors, remove_orphans, write_shard
from ndvr_jax.features import extract_audio, extract_landmarks, extract_visual
from ndvr_jax.io.store import FeatureStore, read_id_path_list, write_id_path_list

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".3gp",
                  ".flv", ".ts", ".wmv", ".ogv")  # fmt: skip


@dataclasses.dataclass
class AddSummary:
    """What `add` did."""

    added: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)  # already indexed, same bytes
    duplicates: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> indexed id
    failed: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> reason

    def __str__(self) -> str:
        return (
            f"added {len(self.added)}, already indexed {len(self.skipped)}, identical bytes of "
            f"an indexed video {len(self.duplicates)}, failed {len(self.failed)}"
        )


def video_entries(source: str | os.PathLike) -> list[tuple[str, str]]:
    """`(id, path)` of a list file (`<id> <path>` lines) or of every video file under a folder
    (id: the path below the folder without suffix, `/` replaced by `__`)."""
    source = Path(source)
    if source.is_file():
        return read_id_path_list(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is neither a video list nor a folder")
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    return [("__".join(p.relative_to(source).with_suffix("").parts), str(p)) for p in files]


def open_index(
    folder: str | os.PathLike, config: ml_collections.ConfigDict | None = None
) -> tuple[Catalogue, ml_collections.ConfigDict]:
    """The catalogue of `folder` and its settings. With `config` (`configs/index.py`) a missing
    index is created with those settings and an existing one must have been built with them (or
    with them less options added since, taken as built at their defaults and recorded). Orphan
    shards of a killed run are removed."""
    catalogue = Catalogue(folder, create=config is not None)
    stored = catalogue.get_meta("settings")
    given = json.loads(json.dumps(config.to_dict())) if config is not None else None
    if stored is None:
        if given is None:
            raise CatalogueError(f"{folder} has no settings: build it again")
        catalogue.set_meta("settings", given)
        stored = given
    elif given is not None and stored != given:
        if not _agrees(stored, given):
            raise CatalogueError(
                f"{folder} was built with other settings than the given --config; add to it "
                "without --config, or build a new index"
            )
        catalogue.set_meta("settings", given)  # options added since, at their defaults
        stored = given
    removed = remove_orphans(catalogue)
    if removed:
        logging.warning("removed %d shard(s) of an interrupted run: %s", len(removed), removed)
    return catalogue, ml_collections.ConfigDict(stored)


def _agrees(stored: Any, given: Any) -> bool:
    """Whether settings `given` are `stored` plus options added since (keys `stored` lacks): an
    index built before an option existed was built the way its default works."""
    if isinstance(stored, dict) and isinstance(given, dict):
        return all(k in given and _agrees(v, given[k]) for k, v in stored.items())
    return stored == given


def _plan(catalogue: Catalogue, entries: Sequence[tuple[str, str]], summary: AddSummary):
    """Entries to index, after hashing: new ids, and ids whose bytes changed."""
    indexed = {r.id: r for r in catalogue.records()}
    owner = catalogue.by_sha256()
    todo = []
    for video_id, path in entries:
        FeatureStore.check_id(video_id)
        if not os.path.isfile(path):
            summary.failed[video_id] = "missing"
            continue
        digest = file_sha256(path)
        known = indexed.get(video_id)
        if known is not None and known.sha256 == digest:
            summary.skipped.append(video_id)
        elif digest in owner and owner[digest] != video_id:
            summary.duplicates[video_id] = owner[digest]
        else:
            owner[digest] = video_id
            todo.append((video_id, path, digest))
    return todo


def _record(
    video_id: str,
    path: str,
    digest: str,
    store: FeatureStore,
    audio: FeatureStore | None,
    status: str,
    shard: str | None = None,
    row: int | None = None,
) -> VideoRecord:
    """The catalogue row of one video: file facts, stream facts from the extraction sidecars."""
    stat = os.stat(path)
    meta = store.load_meta(video_id) if store.meta_path(video_id).is_file() else {}
    streams = {k: meta[k] for k in ("codec", "container", "source_fps") if k in meta}
    if audio is not None and audio.meta_path(video_id).is_file():
        streams["audio"] = audio.load_meta(video_id).get("status", "")
    return VideoRecord(
        video_id, os.path.abspath(path), stat.st_size, stat.st_mtime, digest,
        meta.get("duration"), streams, status, "" if status == "ok" else status, shard, row,
    )  # fmt: skip


def add_videos(
    folder: str | os.PathLike,
    source: str | os.PathLike,
    config: ml_collections.ConfigDict | None = None,
) -> AddSummary:
    """Extracts and indexes the videos of `source` (a list or a folder) into `folder` (built
    with `config` if it is new; an existing index keeps its own settings)."""
    catalogue, config = open_index(folder, config)
    try:
        summary = AddSummary()
        todo = _plan(catalogue, video_entries(source), summary)
        for video_id, indexed in summary.duplicates.items():
            print(f"{video_id}: identical bytes to indexed video {indexed}; not indexed again")
        if todo:
            _index(catalogue, todo, config, summary)
        return summary
    finally:
        catalogue.close()


def _index(catalogue: Catalogue, todo, config: ml_collections.ConfigDict, summary: AddSummary):
    root = catalogue.folder
    pending = root / "pending.txt"
    write_id_path_list(pending, [(v, p) for v, p, _ in todo])
    visual = extract_visual(config.extract, str(pending), str(root / "visual"))
    failed = dict(visual.failed)
    audio_store = None
    if config.audio:
        audio_config = ml_collections.ConfigDict(config.extract.to_dict())
        audio_config.mode = "audio"
        extract_audio(audio_config, str(pending), str(root / "audio"))
        audio_store = FeatureStore(root / "audio", audio_config.audio.layout)
        if config.get("landmarks"):
            extract_landmarks(audio_config, str(pending), str(root / "landmarks"))
    store = FeatureStore(root / "visual", config.extract.layout)
    ok = [(v, p, d) for v, p, d in todo if v not in failed]
    records = [_record(v, p, d, store, audio_store, failed[v]) for v, p, d in todo if v in failed]
    with catalogue.transaction():
        if ok:
            frames = [store.load(v) for v, _, _ in ok]
            vectors = search.global_vectors(frames)
            codes = video_codes(config.get("codes", SIGN), frames, vectors)
            shard = write_shard(catalogue, {"global": vectors, "codes": codes})
            records += [
                _record(v, p, d, store, audio_store, "ok", shard, row)
                for row, (v, p, d) in enumerate(ok)
            ]
        catalogue.put(records)
        if audio_store is not None:
            _refit_pca(catalogue, audio_store, config.pca_dims)
    pending.unlink()
    summary.added += [v for v, _, _ in ok]
    summary.failed.update(failed)


def _refit_pca(catalogue: Catalogue, audio: FeatureStore, dims: int) -> None:
    """Fits the audio PCA whitening on the indexed videos' segments (`pca.npz`)."""
    segments = [audio.load(r.id) for r in catalogue.records("ok") if audio.is_complete(r.id)]
    segments = np.concatenate([s for s in segments if len(s)] or [np.zeros((0, 1))])
    if len(segments) < 3:
        logging.warning("fewer than 3 audio segments indexed: no audio whitening fitted")
        return
    pca = fit_pca_whitening(segments, min(dims, segments.shape[1], len(segments) - 1))
    pca.save(catalogue.folder / PCA_FILE)


def remove_videos(folder: str | os.PathLike, ids: Sequence[str]) -> int:
    """Deletes `ids` from the catalogue (one transaction), then their feature files."""
    catalogue, config = open_index(folder)
    try:
        with catalogue.transaction():
            removed = catalogue.remove(ids)
        stores = (("visual", config.extract.layout), ("audio", "ausil"), ("landmarks", "ndvr-dml"))
        for name, layout in stores:
            store_root = catalogue.folder / name
            if not store_root.is_dir():
                continue
            store = FeatureStore(store_root, layout)
            for video_id in ids:
                store.feature_path(video_id).unlink(missing_ok=True)
                store.meta_path(video_id).unlink(missing_ok=True)
                if layout == "ausil":
                    shutil.rmtree(store_root / video_id, ignore_errors=True)
        remove_orphans(catalogue)
        return removed
    finally:
        catalogue.close()


def index_info(folder: str | os.PathLike) -> dict[str, Any]:
    """Counts, statuses, sizes and settings of an index (and a check that its shards load)."""
    catalogue, _ = open_index(folder)
    try:
        records = catalogue.records()
        ok = [r for r in records if r.status == "ok"]
        vectors = load_vectors(catalogue, ok) if ok else {}
        statuses: dict[str, int] = {}
        for r in records:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        on_disk = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
        return {
            "videos": len(records),
            "statuses": statuses,
            "hours": round(sum(r.duration or 0.0 for r in ok) / 3600, 4),
            "global_dim": int(vectors["global"].shape[1]) if ok else None,
            "code_bits": int(vectors["codes"].shape[1] * 32) if ok else None,
            "bytes_on_disk": on_disk,
            "bytes_per_video": {k: int(v[0].nbytes) for k, v in vectors.items()},
            "settings": catalogue.get_meta("settings"),
        }
    finally:
        catalogue.close()
