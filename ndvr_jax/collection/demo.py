"""The collection search's part of the main job: index every demo video, query all pairs, fit the
calibration on half of the queries, score the other half, write the duplicates report.

Reported (on the held-out half of the queries, ranked against the database videos): visual mAP
(frame Chamfer of the re-ranked candidates) on DSVR, audio mAP (AuSiL) on DAVR, the fused
probability's mAP on DSVR (`corroborate`) and DAVR (`any`), and the fused DSVR mAP against the
share of the index that is re-ranked.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import ml_collections

from ndvr_jax.collection.build import add_videos
from ndvr_jax.collection.calibrate import (
    calibration_quality,
    fit_calibrations,
    labelled_pairs,
    stage_mean_ap,
)
from ndvr_jax.collection.fusion import save_calibrations
from ndvr_jax.collection.report import write_report
from ndvr_jax.collection.resident import Index
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.io.atomic import save_json_atomic
from ndvr_jax.io.store import read_id_path_list
from ndvr_jax.jobs.query import default_query_config, duplicate_groups, indexed_queries, rank

SHARES = (0.125, 0.25, 0.5, 1.0)


def _seed_features(source: Path | None, target: Path) -> None:
    """Copies already extracted features (same settings), so indexing extracts only the rest."""
    if source is not None and source.is_dir() and not target.exists():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("failures*", "feature_*"))


def collection_demo_run(
    config: ml_collections.ConfigDict,
    data_dir: str | os.PathLike,
    workdir: str | os.PathLike,
    visual_features: str | os.PathLike | None = None,
    audio_features: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Indexes the demo benchmark in `data_dir` under `workdir` and evaluates the query stages."""
    data, work = Path(data_dir), Path(workdir)
    _seed_features(visual_features and Path(visual_features), work / "index" / "visual")
    _seed_features(audio_features and Path(audio_features), work / "index" / "audio")
    summary = add_videos(work / "index", data / "videos.txt", config)
    print(f"index: {summary}", flush=True)
    annotation = load_annotation(data / "annotation.json")
    database = [v for v, _ in read_id_path_list(data / "database.txt")]
    queries = sorted(q for q in annotation)
    fit_on, held_out = queries[::2], queries[1::2]

    index = Index.open(work / "index")
    try:
        everything = indexed_queries(index)
        settings = default_query_config()
        settings.update(all_pairs=True, k=len(index.records), rerank=len(index.records))
        results = rank(index, everything, settings)
        calibrations = fit_calibrations(results, annotation, fit_on, database)
        pairs = labelled_pairs(results, annotation, held_out, database)
        quality = {k: calibration_quality(c, *pairs[k]) for k, c in calibrations.items()}
        save_calibrations(work / "calibration.json", calibrations, fitted_on=fit_on,
                          held_out=quality)  # fmt: skip
        settings.calibration = str(work / "calibration.json")
        report: dict[str, Any] = {"calibration_held_out": quality}
        held_annotation = {q: annotation[q] for q in held_out}
        score = lambda results, key, protocol: stage_mean_ap(
            {q: results[q] for q in held_out}, held_annotation, database, key, protocol
        )
        fused = {rule: rank(index, everything, _with(settings, fusion=rule))
                 for rule in ("corroborate", "any")}  # fmt: skip
        report["mAP"] = {
            "visual (Chamfer), DSVR": score(fused["corroborate"], "visual", "DSVR"),
            "audio (AuSiL), DAVR": score(fused["corroborate"], "audio", "DAVR"),
            "fused corroborate, DSVR": score(fused["corroborate"], "probability", "DSVR"),
            "fused any, DAVR": score(fused["any"], "probability", "DAVR"),
        }
        report["fused DSVR mAP by re-ranked share"] = {
            str(share): score(
                rank(index, everything, _with(settings, rerank=_count(share, index))),
                "probability",
                "DSVR",
            )
            for share in SHARES
        }
        groups = duplicate_groups(fused["corroborate"])
        write_report(index, fused["corroborate"], groups, work / "report.html")
        report["groups"] = len(groups)
    finally:
        index.catalogue.close()
    save_json_atomic(work / "collection.json", report)
    return report


def _with(config: ml_collections.ConfigDict, **changes: Any) -> ml_collections.ConfigDict:
    out = ml_collections.ConfigDict(config.to_dict())
    out.update(changes)
    return out


def _count(share: float, index: Index) -> int:
    return max(1, round(share * len(index.records)))
