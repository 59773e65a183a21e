"""The collection search evaluated on an annotated benchmark: index every video, query all pairs,
score the query stages, write the duplicates report.

On the demo (the main job's part) the calibration is fitted on half of the queries and the other
half is scored; on the independent test set the shipped calibration (fitted on the dev set)
scores every query, so its quality is measured on media it never saw. Reported, with the
queries ranked against the database videos: visual mAP (frame Chamfer of the re-ranked
candidates) on DSVR, audio mAP (AuSiL) on DAVR, the fused probability's mAP on DSVR
(`corroborate`) and DAVR (`any`), and the fused DSVR mAP against the share of the index that is
re-ranked.
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
from ndvr_jax.collection.fusion import (
    DEFAULT_CALIBRATION,
    load_calibrations,
    modality_calibrations,
    save_calibrations,
)
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


def collection_benchmark_run(
    config: ml_collections.ConfigDict,
    data_dir: str | os.PathLike,
    workdir: str | os.PathLike,
    visual_features: str | os.PathLike | None = None,
    audio_features: str | os.PathLike | None = None,
    fit_calibration: bool = True,
) -> dict[str, Any]:
    """Indexes the benchmark in `data_dir` under `workdir` (copying already extracted features),
    ranks all pairs and scores the query stages: with `fit_calibration`, the calibration is
    fitted on the even-numbered queries and the odd-numbered ones are scored (the demo); without,
    the shipped calibration scores every query (a test set). Writes the report and
    `<workdir>/collection.json`."""
    data, work = Path(data_dir), Path(workdir)
    for source, modality in ((visual_features, "visual"), (audio_features, "audio")):
        _seed_features(source and Path(source), work / "index" / modality)
    summary = add_videos(work / "index", data / "videos.txt", config)
    print(f"index: {summary}", flush=True)
    annotation = load_annotation(data / "annotation.json")
    database = [v for v, _ in read_id_path_list(data / "database.txt")]
    queries = sorted(q for q in annotation)
    scored = queries[1::2] if fit_calibration else queries

    index = Index.open(work / "index")
    try:
        everything = indexed_queries(index)
        settings = default_query_config()
        settings.update(all_pairs=True, k=len(index.records), rerank=len(index.records))
        results = rank(index, everything, settings)
        if fit_calibration:
            calibrations = fit_calibrations(results, annotation, queries[::2], database)
            settings.calibration = str(work / "calibration.json")
        else:
            shipped = load_calibrations(DEFAULT_CALIBRATION)
            calibrations = modality_calibrations(shipped, index.landmarks is not None)
        pairs = labelled_pairs(results, annotation, scored, database)
        quality = {k: calibration_quality(c, *pairs[k]) for k, c in calibrations.items()}
        if fit_calibration:
            save_calibrations(settings.calibration, calibrations, fitted_on=queries[::2],
                              held_out=quality)  # fmt: skip
        report: dict[str, Any] = {"calibration_held_out": quality, "scored_queries": len(scored)}
        scored_annotation = {q: annotation[q] for q in scored}
        score = lambda results, key, protocol: stage_mean_ap(
            {q: results[q] for q in scored}, scored_annotation, database, key, protocol
        )
        fused = {rule: rank(index, everything, _with(settings, fusion=rule))
                 for rule in ("corroborate", "any")}  # fmt: skip
        audio_name = "AuSiL + landmarks" if index.landmarks is not None else "AuSiL"
        report["mAP"] = {
            "visual (Chamfer), DSVR": score(fused["corroborate"], "visual", "DSVR"),
            f"audio ({audio_name}), DAVR": score(fused["corroborate"], "audio", "DAVR"),
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


def collection_markdown(report: dict[str, Any]) -> str:
    """The stages' mAPs, the re-ranked shares and the calibration quality as markdown tables."""
    lines = ["| query stage | mAP |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in report["mAP"].items()]
    lines += [
        f"| fused DSVR, {float(share):.1%} of the index re-ranked | {value:.4f} |"
        for share, value in report["fused DSVR mAP by re-ranked share"].items()
    ]
    lines += ["", "| calibration | pairs | accuracy at 0.5 | log-loss | mean p | copy rate |"]
    lines.append("|---|---|---|---|---|---|")
    lines += [
        f"| {name} | {q['pairs']} | {q['accuracy']:.3f} | {q['log_loss']:.3f} | "
        f"{q['mean_probability']:.3f} | {q['copy_rate']:.3f} |"
        for name, q in report["calibration_held_out"].items()
    ]
    return "\n".join(lines) + "\n"
