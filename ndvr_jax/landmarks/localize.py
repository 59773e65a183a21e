"""Audio copy localisation across a database: `python -m ndvr_jax.localize
--config=configs/localize_audio.py --queries=... --database=...` with landmark lists.

Every database video's landmarks go into one index; each query's hits give its copied spans
(`ndvr_jax.landmarks.spans`), in seconds, with the source video and span. Written like the
visual localisation's outputs, as method `landmarks`: `segments_landmarks.json`,
`matches_landmarks.csv` (VSC), `boxes_landmarks.json` (VCSL), `timelines/<query>.png` (the
segments over the hits per second of each source found) and `summary.json`; given ground truth
(its `audio` segments), the VCSL / VSC scores.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from ndvr_jax.features.landmarks import load_landmark_file
from ndvr_jax.io.atomic import save_json_atomic
from ndvr_jax.io.store import FeatureStore, read_id_path_list, write_id_path_list
from ndvr_jax.landmarks.fingerprint import LandmarkConfig
from ndvr_jax.landmarks.matching import LandmarkIndex
from ndvr_jax.landmarks.spans import SpanRule, copied_spans
from ndvr_jax.pdvr import formats
from ndvr_jax.pdvr.evaluate import evaluate_methods, format_table, markdown_table
from ndvr_jax.pdvr.segments import Segment
from ndvr_jax.pdvr.timeline import plot_timeline
from ndvr_jax.progress import Progress

METHOD = "landmarks"


def default_audio_localize_config() -> ml_collections.ConfigDict:
    """Every setting of the audio localisation (`configs/localize_audio.py` is this)."""
    return ml_collections.ConfigDict(
        dict(
            modality="audio",
            output_dir="localize_audio",
            ground_truth="",  # segments JSON; its `audio` segments are scored ("": no scores)
            timelines=True,
            spans=dataclasses.asdict(SpanRule()),
        )
    )


def _load(list_path: str) -> dict[str, np.ndarray]:
    return {v: load_landmark_file(p, v) for v, p in read_id_path_list(list_path)}


def hits_per_second(
    query: np.ndarray, index: LandmarkIndex, rows: list[int], seconds: float, step: float
) -> dict[int, np.ndarray]:
    """Per database row: the query's hits on it in each second (all offsets), over its max."""
    videos, _, frames = index.hits(query)
    bins = max(1, int(np.ceil(seconds)))
    out = {}
    for row in rows:
        counts = np.bincount((frames[videos == row] * step).astype(int), minlength=bins)[:bins]
        out[row] = counts / max(counts.max(), 1)
    return out


def localize_audio(
    config: ml_collections.ConfigDict, queries_list: str, database_list: str
) -> dict[str, Any]:
    """Localises every query of `queries_list` in `database_list` (landmark files); writes the
    outputs to `config.output_dir` and returns the summary (scores when given ground truth)."""
    out = Path(config.output_dir)
    queries, database = _load(queries_list), _load(database_list)
    db_ids = list(database)
    index = LandmarkIndex(list(database.values()))
    rule = SpanRule(**config.get("spans", {}))
    step = LandmarkConfig().frame_seconds
    found: dict[str, list[Segment]] = {}
    progress = Progress(len(queries), "localize", "queries")
    for query, marks in queries.items():
        spans = copied_spans(marks, index, rule)
        found[query] = [s._replace(source=db_ids[int(s.source)]) for s in spans]
        progress.update(1)
    formats.save_segments_json(out / f"segments_{METHOD}.json", found)
    formats.save_vsc_csv(out / f"matches_{METHOD}.csv", found)
    formats.save_vcsl_boxes(out / f"boxes_{METHOD}.json", found)
    summary: dict[str, Any] = {"queries": len(queries), "database": len(database)}
    truth = None
    if config.ground_truth:
        truth = formats.load_segments_json(config.ground_truth, modality="audio")
        scores = evaluate_methods({METHOD: found}, truth, list(queries), len(database))
        summary["scores"] = scores
        print(format_table(scores), flush=True)
    if config.timelines:
        for query, marks in queries.items():
            rows = {METHOD: found[query], **({"truth": truth.get(query, [])} if truth else {})}
            seconds = float(marks[:, 1].max(initial=0)) * step + 1.0
            sources = sorted({db_ids.index(str(s.source)) for s in found[query]})
            curves = hits_per_second(marks, index, sources, seconds, step)
            plot_timeline(out / "timelines" / f"{query}.png", query, rows,
                          np.arange(int(np.ceil(seconds))) + 0.5,
                          {db_ids[r]: c for r, c in curves.items()})  # fmt: skip
    save_json_atomic(out / "summary.json", summary)
    return summary


def audio_localize_run(
    landmarks_dir: str | os.PathLike, data_dir: str | os.PathLike, workdir: str | os.PathLike
) -> dict[str, Any]:
    """The main job's audio localisation: the demo benchmark's queries against its database
    from a landmark store, scored against its `segments.json`; adds `table` (markdown)."""
    data, store = Path(data_dir), FeatureStore(landmarks_dir)
    lists = {}
    for name in ("queries", "database"):
        ids = [v for v, _ in read_id_path_list(data / f"{name}.txt") if store.is_complete(v)]
        lists[name] = Path(workdir) / f"{name}.txt"
        lists[name].parent.mkdir(parents=True, exist_ok=True)
        write_id_path_list(lists[name], [(v, str(store.feature_path(v))) for v in ids])
    config = default_audio_localize_config()
    config.update(output_dir=str(workdir), ground_truth=str(data / "segments.json"))
    summary = localize_audio(config, str(lists["queries"]), str(lists["database"]))
    summary["table"] = markdown_table(summary["scores"])
    return summary
