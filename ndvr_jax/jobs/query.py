"""The query job: which indexed videos copy each query, by picture and by sound.

Stages, each on fewer pairs than the one before:
  1. first stage over the whole index: exact cosine of global vectors (`DenseIndex`, resident),
     Hamming distance of their packed sign codes (`first_stage="binary"`) or FAISS's
     approximate search (`first_stage="faiss"`, `ndvr_jax.collection.approximate`), keeping the
     best `rerank` candidates per query;
  2. the expensive similarities on those candidates only: frame-level Chamfer for pictures,
     AuSiL for sound (`ausil_model`: the index's PCA whitening + Chamfer of segment
     similarities, the package's shipped default, or a trained AuSiL workdir), plus the
     landmark score of their aligned audio landmarks where the index has them
     (`ndvr_jax.landmarks`);
  3. calibrated per-modality probabilities and one fused probability per pair
     (`ndvr_jax.collection.fusion`), keeping each modality's evidence in the output.
`all_pairs` queries every indexed video against the others and groups them: connected
components of the pairs whose fused probability reaches `threshold`.

Outputs in `output_dir`: `results.json` (per query, the ranked matches with their evidence),
`results.csv` (one row per match), `similarities.json` (fused probabilities, the FIVR format
the evaluators read) and, for `all_pairs`, `groups.json` and `report.html`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from ndvr_jax import search
from ndvr_jax.ausil.scoring import make_scorer
from ndvr_jax.chamfer import chamfer_similarity
from ndvr_jax.collection.approximate import FaissIndex
from ndvr_jax.collection.build import video_entries
from ndvr_jax.collection.codes import SIGN, video_codes
from ndvr_jax.collection.fusion import (
    DEFAULT_CALIBRATION,
    fuse,
    load_calibrations,
    modality_calibrations,
)
from ndvr_jax.collection.report import write_report
from ndvr_jax.collection.resident import Index
from ndvr_jax.features import extract_audio, extract_landmarks, extract_visual
from ndvr_jax.features.landmarks import load_landmark_file
from ndvr_jax.hashing.codes import hamming_top_k
from ndvr_jax.io.atomic import atomic_write, save_json_atomic
from ndvr_jax.io.store import FeatureStore, write_id_path_list
from ndvr_jax.landmarks.fingerprint import LandmarkConfig
from ndvr_jax.landmarks.matching import AlignedMatches, fused_similarity

FIRST_STAGES = ("global", "binary", "faiss")
FRAME_SECONDS = LandmarkConfig().frame_seconds


def default_query_config() -> ml_collections.ConfigDict:
    """Every setting of `python -m ndvr_jax.query` (each also a flag of the same name)."""
    return ml_collections.ConfigDict(
        dict(
            index="",  # the index folder
            queries="",  # a list of `<id> <path>` query videos (or give video paths as args)
            all_pairs=False,  # every indexed video against the others: duplicate groups
            k=10,  # matches kept per query
            rerank=50,  # first-stage candidates that get the expensive similarities
            # and the videos with the most aligned audio landmarks that the first stage missed
            landmark_candidates=10,
            first_stage="global",  # global (exact cosine) | binary (Hamming) | faiss (approx.)
            faiss_spec="auto",  # a faiss.index_factory spec; auto: Flat, IVF from 10,000 videos
            nprobe=16,  # inverted lists a FAISS IVF search visits
            fusion="corroborate",  # visual | audio | any | corroborate
            calibration="",  # calibration JSON (default: the shipped one)
            ausil_model="shipped",  # shipped | index (its PCA + Chamfer) | a workdir
            threshold=0.5,  # fused probability from which a pair is a copy
            output_dir="query_results",
        )
    )


@dataclasses.dataclass
class QueryFeatures:
    """Frame features (and audio segments and landmarks, possibly empty) of the queries."""

    visual: dict[str, np.ndarray]
    audio: dict[str, np.ndarray]
    paths: dict[str, str] = dataclasses.field(default_factory=dict)
    landmarks: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def indexed_queries(index: Index) -> QueryFeatures:
    """The indexed videos themselves as queries (`all_pairs`)."""
    ids = index.ids
    return QueryFeatures(
        {v: index.visual.load(v) for v in ids},
        {v: index.audio_of(v) for v in ids},
        {r.id: r.path for r in index.records},
        {v: index.landmarks_of(v) for v in ids} if index.landmarks is not None else {},
    )


def extract_queries(
    index: Index, entries: Sequence[tuple[str, str]], folder: Path
) -> QueryFeatures:
    """Query videos through the index's own extraction settings (into `folder`, resumable)."""
    listing = folder / "queries.txt"
    write_id_path_list(listing, entries)
    visual = extract_visual(index.config.extract, str(listing), str(folder / "visual"))
    if visual.failed:
        raise ValueError(f"query videos without frames: {visual.failed}")
    store = FeatureStore(folder / "visual", index.config.extract.layout)
    audio: dict[str, np.ndarray] = {}
    marks: dict[str, np.ndarray] = {}
    audio_config = ml_collections.ConfigDict({**index.config.extract.to_dict(), "mode": "audio"})
    if index.audio is not None:
        extract_audio(audio_config, str(listing), str(folder / "audio"))
        audio_store = FeatureStore(folder / "audio", "ausil")
        audio = {
            v: audio_store.load(v).astype(np.float32) if audio_store.is_complete(v) else
            np.zeros((0, 1), np.float32) for v, _ in entries
        }  # fmt: skip
    if index.landmarks is not None:
        extract_landmarks(audio_config, str(listing), str(folder / "landmarks"))
        marks_store = FeatureStore(folder / "landmarks")
        marks = {
            v: load_landmark_file(marks_store.feature_path(v), v) if marks_store.is_complete(v)
            else np.zeros((0, 2), np.int64) for v, _ in entries
        }  # fmt: skip
    visual = {v: store.load(v) for v, _ in entries}
    return QueryFeatures(visual, audio, dict(entries), marks)


def first_stage(index: Index, queries: QueryFeatures, config: ml_collections.ConfigDict):
    """`(candidates [Q, C] rows into index.records (-1: none), first-stage scores [Q, C])`."""
    count = min(config.rerank + int(config.all_pairs), len(index.records))  # + the query itself
    q_global = search.global_vectors(list(queries.visual.values()))
    if config.first_stage == "binary":
        codes = video_codes(
            index.config.get("codes", SIGN), list(queries.visual.values()), q_global
        )
        top = hamming_top_k(codes, index.vectors["codes"], count)
        bits = index.vectors["codes"].shape[1] * 32
        return top.index, 1.0 - top.distance / bits
    if config.first_stage == "faiss":
        top = FaissIndex.open_or_build(
            index.catalogue.folder, index.ids, index.vectors["global"], config.faiss_spec,
            config.nprobe,
        ).search(q_global, count)  # fmt: skip
        return top.index, top.similarity
    if config.first_stage != "global":
        raise ValueError(f"first_stage must be one of {FIRST_STAGES}, got {config.first_stage!r}")
    top = search.DenseIndex(index.vectors["global"]).search(q_global, count)
    return top.index, top.similarity


def audio_scorer(index: Index, ausil_model: str):
    """The AuSiL scorer of the audio stage: `ausil_model` "index" (the index's PCA whitening +
    Chamfer), "shipped" (the package's pretrained default, scored as its dev set chose) or a
    trained AuSiL workdir."""
    if ausil_model == "index":
        return make_scorer(index.catalogue.folder, untrained=True)[0]
    return make_scorer("" if ausil_model == "shipped" else ausil_model)[0]


def rank(index: Index, queries: QueryFeatures, config: ml_collections.ConfigDict):
    """`{query: [match, ...]}` best first: each match with its fused probability and evidence."""
    with_marks = index.landmarks is not None and bool(queries.landmarks)
    calibration = modality_calibrations(
        load_calibrations(config.calibration or DEFAULT_CALIBRATION), with_marks
    )
    candidates, stage_scores = first_stage(index, queries, config)
    scorer = None
    if index.audio is not None and (index.catalogue.folder / "pca.npz").is_file():
        scorer = audio_scorer(index, config.ausil_model)
    results: dict[str, list[dict[str, Any]]] = {}
    for row, query in enumerate(queries.visual):
        aligned = index.landmark_index.match(queries.landmarks[query]) if with_marks else None
        counts = aligned.counts if aligned is not None else None
        rows, stage = _candidates(index, query, candidates[row], stage_scores[row], counts, config)
        if not rows:
            results[query] = []
            continue
        ids = [index.records[i].id for i in rows]
        visual = chamfer_similarity([queries.visual[query]], [index.visual.load(v) for v in ids])[0]
        q_audio = queries.audio.get(query, np.zeros((0, 1)))
        audio, hits, offsets = _audio_evidence(index, q_audio, ids, rows, scorer, aligned)
        p_visual = calibration["visual"](visual)
        p_audio = np.where(np.isnan(audio), 0.0, calibration["audio"](np.nan_to_num(audio)))
        fused = fuse(p_visual, p_audio, config.fusion)
        order = np.argsort(-fused, kind="stable")[: config.k]
        results[query] = [
            {
                "id": ids[i],
                "probability": round(float(fused[i]), 6),
                "copy": bool(fused[i] >= config.threshold),
                "visual": round(float(visual[i]), 6),
                "audio": None if np.isnan(audio[i]) else round(float(audio[i]), 6),
                "p_visual": round(float(p_visual[i]), 6),
                "p_audio": round(float(p_audio[i]), 6),
                "landmarks": int(hits[i]),
                "audio_offset_s": round(float(offsets[i]), 3) if hits[i] else None,
                "first_stage": None if np.isnan(stage[i]) else round(float(stage[i]), 6),
            }
            for i in order
        ]
    return results


def _audio_evidence(
    index: Index,
    q_audio: np.ndarray,
    ids: list[str],
    rows: list[int],
    scorer,
    aligned: AlignedMatches | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate: the audio score (AuSiL, plus the landmark score when `aligned` holds the
    query's landmark matches; NaN without sound), the landmark hits and the offset in seconds
    where the query's sound sits in it (its time = query time + offset)."""
    audio = np.full(len(ids), np.nan, np.float32)
    if scorer is not None and len(q_audio):
        db_audio = [index.audio_of(v) for v in ids]
        has = [i for i, a in enumerate(db_audio) if len(a)]
        if has:
            audio[has] = scorer.matrix([q_audio], [db_audio[i] for i in has])[0]
    if aligned is None:
        return audio, np.zeros(len(ids), np.int64), np.zeros(len(ids))
    hits = aligned.counts[rows]
    fused = fused_similarity(audio, hits).astype(np.float32)
    return fused, hits, aligned.offsets[rows] * FRAME_SECONDS


def _candidates(
    index: Index,
    query: str,
    rows: np.ndarray,
    scores: np.ndarray,
    counts: np.ndarray | None,
    config: ml_collections.ConfigDict,
) -> tuple[list[int], np.ndarray]:
    """Rows into `index.records` that get the expensive similarities and their first-stage
    scores: the first stage's best `rerank` (never the query itself with `all_pairs`), then the
    `landmark_candidates` videos it missed with the most aligned landmark hits (`counts`, over
    the whole index; score NaN): sound copied under other pictures."""
    own = lambda i: config.all_pairs and index.records[i].id == query
    picked = [
        (int(i), float(s)) for i, s in zip(rows, scores, strict=True) if i >= 0 and not own(i)
    ]
    picked = picked[: config.rerank]
    if counts is not None and config.landmark_candidates:
        seen = {i for i, _ in picked}
        best = np.argsort(-counts, kind="stable")[: len(seen) + config.landmark_candidates + 1]
        extra = [int(i) for i in best if counts[i] > 0 and int(i) not in seen and not own(i)]
        picked += [(i, np.nan) for i in extra[: config.landmark_candidates]]
    return [i for i, _ in picked], np.array([s for _, s in picked], np.float64)


def duplicate_groups(results: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[list[str]]:
    """Connected components (size >= 2) of the pairs marked as copies, largest first."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for query, matches in results.items():
        for match in matches:
            if match["copy"]:
                parent[find(query)] = find(match["id"])
    groups: dict[str, list[str]] = {}
    for video in parent:
        groups.setdefault(find(video), []).append(video)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g))


def write_results(results: Mapping[str, Sequence[Mapping[str, Any]]], folder: Path) -> None:
    """`results.json`, `results.csv` and the fused `similarities.json`."""
    save_json_atomic(folder / "results.json", results)
    table = io.StringIO()
    columns = ["query", "rank", "id", "probability", "copy", "visual", "audio", "p_visual",
               "p_audio", "landmarks", "audio_offset_s", "first_stage"]  # fmt: skip
    writer = csv.DictWriter(table, columns)
    writer.writeheader()
    for query, matches in results.items():
        for rank_, match in enumerate(matches, 1):
            writer.writerow({"query": query, "rank": rank_, **match})
    with atomic_write(folder / "results.csv") as f:
        f.write(table.getvalue())
    similarities = {q: {m["id"]: m["probability"] for m in ms} for q, ms in results.items()}
    search.save_similarities(folder / "similarities.json", similarities)


def run_query(config: ml_collections.ConfigDict, videos: Sequence[str] = ()) -> dict[str, Any]:
    """Opens the index, gets the queries' features, ranks, writes the outputs."""
    index = Index.open(config.index)
    folder = Path(config.output_dir)
    try:
        if config.all_pairs:
            queries = indexed_queries(index)
        else:
            entries = video_entries(config.queries) if config.queries else []
            entries += [(Path(v).stem, os.path.abspath(v)) for v in videos]
            if not entries:
                raise ValueError("give query videos, --queries=LIST or --all_pairs")
            missing = [p for _, p in entries if not os.path.isfile(p)]
            if missing:
                raise FileNotFoundError(f"query videos not found: {missing[:5]}")
            cache = folder / "query_features"
            cache.mkdir(parents=True, exist_ok=True)
            queries = extract_queries(index, entries, cache)
        results = rank(index, queries, config)
        write_results(results, folder)
        summary: dict[str, Any] = {
            "queries": len(results),
            "pairs_marked_copies": sum(m["copy"] for ms in results.values() for m in ms),
        }
        if config.all_pairs:
            groups = duplicate_groups(results)
            save_json_atomic(folder / "groups.json", groups)
            write_report(index, results, groups, folder / "report.html")
            summary["groups"] = len(groups)
        return summary
    finally:
        index.catalogue.close()
