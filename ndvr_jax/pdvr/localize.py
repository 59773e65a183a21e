"""Database-wide copy localisation: which database videos, and which time spans, every part of
each query copies.

1. Frame features, whole-frame `[T, D]` or regional `[T, R, D]` (`frames.similarity_map`), are
   centred on the database's mean frame and L2-normalised.
2. Candidate stage (`candidates.vote_candidates`): k-NN of every query frame over all database
   frames, votes per video, the top candidates per query.
3. VFRM over all of a query's candidates at once (batched over queries, sharded over devices),
   gated by the transition DNN's cut probabilities (or, without a model, consecutive-frame cosine),
   with weights fitted on queries stitched from the database itself; TN and DP on each
   query–candidate similarity map.
4. The "no copy" decision (`ndvr_jax.pdvr.verify`, `config.verify`): a segment stays only if
   the calibrated probability that its query span copies its source span reaches a threshold.
5. Segments in seconds (the feature sidecars' timestamps), written per method as segments JSON,
   VSC CSV and VCSL box JSON, a timeline PNG per query, and, given ground truth, the scores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import ml_collections
import numpy as np

from ndvr_jax import sharding
from ndvr_jax.collection.fusion import fit_calibration
from ndvr_jax.io.atomic import save_json_atomic
from ndvr_jax.io.store import read_id_path_list
from ndvr_jax.pdvr import formats
from ndvr_jax.pdvr.aligners import make_aligner
from ndvr_jax.pdvr.candidates import vote_candidates
from ndvr_jax.pdvr.evaluate import evaluate_methods, format_table
from ndvr_jax.pdvr.frames import similarity_map, whole_frames
from ndvr_jax.pdvr.model import cut_probabilities, load_model
from ndvr_jax.pdvr.segments import MergeRule, Segment, merge_segments, to_seconds
from ndvr_jax.pdvr.stitching import load_features, stitch_query
from ndvr_jax.pdvr.timeline import plot_timeline
from ndvr_jax.pdvr.verify import (
    Verifier,
    fit_segment_calibration,
    overlaps_truth,
    segment_evidence,
)
from ndvr_jax.pdvr.vfrm import (
    VFRMParams,
    cut_from_features,
    default_params,
    fit_vfrm,
    params_to_dict,
    run_vfrm,
)

Candidates = list[list[tuple[int, int]]]  # per query: (database index, votes)


class Video(NamedTuple):
    id: str
    frames: np.ndarray  # [T, D]
    times: np.ndarray  # [T] seconds


def load_videos(list_path: str | os.PathLike, fps: float = 1.0) -> list[Video]:
    """Videos of an `<id>\\t<path>` feature list; times from the `<stem>.json` sidecar's
    `timestamps` when there is one, else frame / fps."""
    videos = []
    for video_id, item in read_id_path_list(list_path):
        frames = load_features(item)
        sidecar = Path(item).with_suffix(".json")
        times = np.arange(len(frames)) / fps
        if sidecar.is_file():
            times = np.asarray(json.loads(sidecar.read_text()).get("timestamps", times))
        videos.append(Video(video_id, frames, np.asarray(times, float)))
    return videos


def normalise(frames: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Frames minus the database mean, L2-normalised (cosine similarity is then a dot product)."""
    x = np.asarray(frames, np.float32) - mean
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _bucket(n: int) -> int:
    return max(16, 1 << (n - 1).bit_length())


class Localizer:
    """Everything that depends on the database only: features, the gate, the VFRM weights."""

    def __init__(self, config: ml_collections.ConfigDict, database: Sequence[Video]):
        self.config = config
        self.mesh = sharding.make_mesh(config.num_devices)
        frames = np.concatenate([v.frames for v in database])
        self.mean = frames.mean(0) if config.center else np.zeros(frames.shape[1:], np.float32)
        self.raw = [v.frames for v in database]
        self.database = [normalise(x, self.mean) for x in self.raw]
        self.transition = load_model(config.transition_model) if config.transition_model else None
        self.rule = MergeRule(**config.merge)
        self.shift_costs = tuple(config.vfrm.shift_costs)
        self.params = default_params(**config.vfrm.weights)
        self.fit_losses: list[float] = []
        if config.vfrm.fit_steps:
            self.params, self.fit_losses = self.fit(np.random.default_rng(config.seed))

    def cut_prob(self, raw: np.ndarray) -> np.ndarray:
        """Cut probabilities of a query's frames (features as extracted)."""
        if self.transition is not None:
            return cut_probabilities(self.transition, whole_frames(raw))
        return cut_from_features(whole_frames(normalise(raw, self.mean)), **self.config.cut)

    def _batch(self, raw_queries, candidates, rows: int):
        """VFRM inputs of a few queries: sims [B, T, C, R], ref mask, cut probabilities, padded
        to `rows` queries and power-of-two T and R (few shapes, few compilations)."""
        queries = [normalise(q, self.mean) for q in raw_queries]
        cuts = [self.cut_prob(q) for q in raw_queries]
        c_len = self.config.candidates.num_candidates
        t_len = _bucket(max(len(q) for q in queries))
        r_len = _bucket(
            max([len(self.database[i]) for cands in candidates for i, _ in cands] or [1])
        )
        sims = np.zeros((rows, t_len, c_len, r_len), np.float32)
        mask = np.zeros((rows, c_len, r_len), bool)
        cut = np.ones((rows, t_len), np.float32)
        for b, (q, cands) in enumerate(zip(queries, candidates, strict=True)):
            cut[b, : len(q)] = cuts[b]
            for c, (i, _) in enumerate(cands):
                ref = self.database[i]
                sims[b, : len(q), c, : len(ref)] = similarity_map(q, ref)
                mask[b, c, : len(ref)] = True
        return sims, mask, cut

    def fit(self, rng: np.random.Generator) -> tuple[VFRMParams, list[float]]:
        """VFRM weights fitted on queries stitched from a part of the database (the rest are
        fillers), each against its own sources and other videos as candidates."""
        fit = self.config.vfrm
        order = rng.permutation(len(self.database))
        n_fill = len(order) // 3
        sources, fillers = order[n_fill:], [self.raw[i] for i in order[:n_fill]]
        queries, candidates, labels = [], [], []
        for _ in range(fit.fit_queries):
            q = stitch_query([self.raw[i] for i in sources], fillers, rng, **fit.stitch)
            own = list(dict.fromkeys(int(sources[s]) for s in q.source if s >= 0))
            others = [int(i) for i in rng.permutation(sources) if i not in own]
            cands = (own + others)[: self.config.candidates.num_candidates]
            queries.append(q.frames)
            candidates.append([(i, 0) for i in cands])
            label = np.zeros((len(q.frames), self.config.candidates.num_candidates), np.float32)
            for c, i in enumerate(cands):
                label[:, c] = (q.source >= 0) & (sources[np.maximum(q.source, 0)] == i)
            labels.append(label)
        sims, mask, cut = self._batch(queries, candidates, len(queries))
        y = np.zeros(sims.shape[:3], np.float32)
        weight = np.zeros_like(y)
        for b, label in enumerate(labels):
            y[b, : len(label)] = label
            weight[b, : len(label), : len(candidates[b])] = 1.0
        return fit_vfrm(
            self.params,
            sims,
            mask,
            cut,
            y,
            weight,
            steps=fit.fit_steps,
            learning_rate=fit.fit_lr,
            shift_costs=self.shift_costs,
        )

    def vfrm(self, queries, candidates: Candidates) -> list[list[Segment]]:
        """Frame-unit segments (source = database index) of every query (features as
        extracted), by VFRM."""
        out = []
        step = self.config.vfrm.batch_queries
        for start in range(0, len(queries), step):
            part, cands = queries[start : start + step], candidates[start : start + step]
            sims, mask, cut = self._batch(part, cands, step)
            score, position = run_vfrm(self.params, sims, mask, cut, self.shift_costs, self.mesh)
            for b, (q, cand) in enumerate(zip(part, cands, strict=True)):
                lengths = [len(self.database[i]) for i, _ in cand]
                segments = merge_segments(
                    score[b, : len(q)], position[b, : len(q)], self.rule, lengths
                )
                out.append([s._replace(source=cand[s.source][0]) for s in segments])
        return out

    def pairwise(self, name: str, queries, candidates: Candidates) -> list[list[Segment]]:
        """Frame-unit segments of every query (features as extracted) by a pairwise aligner."""
        aligner = make_aligner(name, **self.config[name])
        queries = [normalise(q, self.mean) for q in queries]
        return [
            [
                Segment(b.q_start, b.q_end, i, b.r_start, b.r_end, b.score)
                for i, _ in cands
                for b in aligner.align(similarity_map(q, self.database[i]))
            ]
            for q, cands in zip(queries, candidates, strict=True)
        ]


def _in_seconds(segments, query: Video, database: Sequence[Video]) -> list[Segment]:
    out = [
        to_seconds(s, query.times, database[s.source].times, database[s.source].id)
        for s in segments
    ]
    return sorted(out, key=lambda s: (s.query_start, s.source))


def _fit_verifier(
    verify, found, queries, database, localizer, voted, truth, fitted_on: str
) -> Verifier:
    """Fits the no-copy decision's calibration on the first method's unverified segments,
    labelled by the ground truth; saves it to `verify.fit_to`. With `verify.duplicates` the
    evidence leaves the sources' own copies out of the background, by the cut-off of a first fit
    without that (then fitted again)."""
    if truth is None:
        raise ValueError("verify.fit_to needs ground_truth (annotated segments)")
    background = verify.get("background", 5)
    labels = np.asarray(
        [
            overlaps_truth(
                to_seconds(s, q.times, database[s.source].times, database[s.source].id),
                truth.get(q.id, []),
            )
            for q, segments in zip(queries, found, strict=True)
            for s in segments
        ]
    )

    def evidence(duplicate_cutoff: float | None) -> np.ndarray:
        return np.concatenate(
            [
                segment_evidence(
                    segments, q.frames, localizer.raw, ids, background, duplicate_cutoff, views
                )
                for q, segments, ids in zip(queries, found, voted, strict=True)
            ]
        )

    threshold, views = verify.get("threshold", 0.5), verify.get("inset_views", False)
    cutoff = None
    if verify.get("duplicates", False):
        cutoff = fit_calibration(evidence(None), labels).threshold(threshold)
    calibration = fit_segment_calibration(
        evidence(cutoff), labels, verify.fit_to, background, fitted_on=fitted_on,
        duplicates=cutoff is not None,
    )  # fmt: skip
    return Verifier(calibration, threshold, background, cutoff is not None, views)


def localize(
    config: ml_collections.ConfigDict, queries_list: str, database_list: str
) -> dict[str, Any]:
    """Localises every query of `queries_list` in `database_list`; writes the outputs to
    `config.output_dir` and returns the summary (scores per method when given ground truth)."""
    out_dir = Path(config.output_dir)
    queries = load_videos(queries_list, config.fps)
    database = load_videos(database_list, config.fps)
    localizer = Localizer(config, database)
    frames = [normalise(q.frames, localizer.mean) for q in queries]
    cand = config.candidates
    candidates = vote_candidates(
        frames,
        localizer.database,
        k=cand.k,
        num_candidates=cand.num_candidates,
        min_votes=cand.min_votes,
        mesh=localizer.mesh,
    )
    truth = formats.load_segments_json(config.ground_truth) if config.ground_truth else None
    verify = config.get("verify", {})
    verifier = Verifier.from_config(verify)
    voted = [[i for i, _ in c] for c in candidates]
    results = {}
    for method in config.methods:
        raw = [q.frames for q in queries]
        found = (
            localizer.vfrm(raw, candidates)
            if method == "vfrm"
            else localizer.pairwise(method, raw, candidates)
        )
        if verify.get("fit_to") and method == config.methods[0]:
            fitted_on = f"{queries_list} against {database_list}, truth {config.ground_truth}"
            verifier = _fit_verifier(
                verify, found, queries, database, localizer, voted, truth, fitted_on
            )
        if verifier is not None:
            found = [
                verifier.keep(s, q, localizer.raw, ids)
                for q, s, ids in zip(raw, found, voted, strict=True)
            ]
        results[method] = {
            q.id: _in_seconds(s, q, database) for q, s in zip(queries, found, strict=True)
        }
        formats.save_segments_json(out_dir / f"segments_{method}.json", results[method])
        formats.save_vsc_csv(out_dir / f"matches_{method}.csv", results[method])
        formats.save_vcsl_boxes(out_dir / f"boxes_{method}.json", results[method])
    summary: dict[str, Any] = {
        "queries": len(queries),
        "database": len(database),
        "vfrm_params": params_to_dict(localizer.params),
        "vfrm_fit_loss": localizer.fit_losses[-1:] or None,
    }
    if truth is not None:
        summary["scores"] = evaluate_methods(results, truth, [q.id for q in queries], len(database))
        print(format_table(summary["scores"]), flush=True)
    if config.timelines:
        for q, f, cands in zip(queries, frames, candidates, strict=True):
            rows = {m: results[m][q.id] for m in config.methods}
            if truth is not None:
                rows["truth"] = truth.get(q.id, [])
            curves = {
                database[i].id: similarity_map(f, localizer.database[i]).max(1) for i, _ in cands
            }
            plot_timeline(out_dir / "timelines" / f"{q.id}.png", q.id, rows, q.times, curves)
    save_json_atomic(out_dir / "summary.json", summary)
    return summary
