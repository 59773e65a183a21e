"""Fitting the calibration of the query scores on an annotated benchmark, and scoring the query
stages with its protocols (visual, audio and fused mAP, and mAP against the re-ranked share).

Visual pairs are labelled by near-duplicate relevance (ND, DS: a copy of the picture), audio
pairs by DA (a copy of the sound). Only pairs that reached the re-ranking stage are used, as
those are the pairs whose scores are calibrated at query time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ndvr_jax.collection.fusion import Calibration, fit_calibration
from ndvr_jax.evaluation import retrieval

VISUAL_LABELS = ("ND", "DS")
AUDIO_LABELS = ("DA",)
Results = Mapping[str, Sequence[Mapping[str, Any]]]


def labelled_pairs(
    results: Results,
    annotation: Mapping[str, Mapping[str, Sequence[str]]],
    queries: Sequence[str],
    database: Sequence[str],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`{"visual": (scores, labels), "audio": (scores, labels)}` of the queries' ranked pairs
    with a database video (the annotation labels no other pairs; pairs without an audio score
    are left out of the audio set)."""
    out: dict[str, tuple[list[float], list[bool]]] = {"visual": ([], []), "audio": ([], [])}
    known = set(database)
    for query in queries:
        labels = annotation.get(query, {})
        visual = {v for label in VISUAL_LABELS for v in labels.get(label, ())}
        audio = {v for label in AUDIO_LABELS for v in labels.get(label, ())}
        for match in results.get(query, ()):
            if match["id"] not in known:
                continue
            out["visual"][0].append(match["visual"])
            out["visual"][1].append(match["id"] in visual)
            if match["audio"] is not None:
                out["audio"][0].append(match["audio"])
                out["audio"][1].append(match["id"] in audio)
    return {k: (np.asarray(s, np.float32), np.asarray(y, bool)) for k, (s, y) in out.items()}


def fit_calibrations(
    results: Results,
    annotation: Mapping[str, Mapping[str, Sequence[str]]],
    queries: Sequence[str],
    database: Sequence[str],
) -> dict[str, Calibration]:
    """A calibration per modality, fitted on the ranked pairs of `queries` with `database`."""
    pairs = labelled_pairs(results, annotation, queries, database)
    return {name: fit_calibration(*pairs[name]) for name in ("visual", "audio")}


def calibration_quality(
    calibration: Calibration, scores: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """Log-loss, accuracy at 0.5 and mean predicted vs observed rate of held-out pairs."""
    p = np.clip(calibration(scores).astype(np.float64), 1e-7, 1 - 1e-7)
    return {
        "pairs": int(len(labels)),
        "log_loss": float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))),
        "accuracy": float(np.mean((p >= 0.5) == labels)),
        "mean_probability": float(p.mean()),
        "copy_rate": float(labels.mean()),
    }


def stage_mean_ap(
    results: Results,
    annotation: Mapping[str, Mapping[str, Sequence[str]]],
    database: Sequence[str],
    key: str,
    protocol: str,
) -> float:
    """mAP of the ranking by one score of the results (`probability`, `visual`, `audio`, ...);
    database videos that were not ranked count as never retrieved."""
    known = set(database)
    similarities = {
        q: {m["id"]: m[key] for m in ms if m[key] is not None and m["id"] in known}
        for q, ms in results.items()
        if q in annotation
    }
    return float(retrieval.evaluate(similarities, annotation, protocol, db_ids=database)["mAP"])
