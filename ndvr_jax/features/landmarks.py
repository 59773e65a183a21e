"""Landmark mode of batch extraction (`python -m ndvr_jax.extract --config.mode=landmarks`).

Each video's audio is decoded at the landmark rate and fingerprinted on the decoding threads; the
store keeps `<id>.npy` as `[N, 2]` float32 (hash, anchor frame: both exact in float32, the hash
has 20 bits) with the usual sidecar, `feature_files.txt` and `failures.tsv`, and reruns skip
videos done with the same settings. No audio stream or silence is stored empty and listed, as in
audio mode.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator
from typing import Any

import ml_collections
import numpy as np

from ndvr_jax.data.feature_lists import FeatureError, load_frame_features
from ndvr_jax.features.audio import UNUSABLE_AUDIO
from ndvr_jax.features.batching import ExtractionSummary, extract_list
from ndvr_jax.io import audio as audio_io
from ndvr_jax.io.store import FeatureStore
from ndvr_jax.landmarks.fingerprint import HASH_BITS, LandmarkConfig, fingerprint
from ndvr_jax.landmarks.matching import aligned_counts


@dataclasses.dataclass(frozen=True)
class Landmarks:
    """One video's landmarks as the extraction loop takes them (one chunk of rows)."""

    marks: np.ndarray  # [N, 2] int64
    status: audio_io.AudioStatus
    num_samples: int

    def chunks(self) -> Iterator[np.ndarray]:
        yield self.marks.astype(np.float32)


class PassThrough:
    """The extraction loop's encoder for rows computed while decoding: returns them as given."""

    batch_size = 1 << 16

    @staticmethod
    def encode_batch(rows: np.ndarray) -> np.ndarray:
        return rows

    @staticmethod
    def output_shape(item_shape: tuple[int, ...]) -> tuple[int, ...]:
        return item_shape


def landmark_config(config) -> LandmarkConfig:
    """The fingerprint settings of an extraction config (`config.landmarks`, else defaults)."""
    return LandmarkConfig(**config.get("landmarks", {}))


def load_landmarks(path: str, settings: LandmarkConfig, silence: float) -> Landmarks:
    """Landmarks of a file's audio; bad files raise `AudioDecodeError` (with its `reason`)."""
    decoded = audio_io.decode_audio(path, settings.sample_rate)
    samples, peak = audio_io.centred(decoded.samples)
    status = decoded.status
    if status == audio_io.AudioStatus.OK and peak < silence:
        status = audio_io.AudioStatus.SILENT
    if status != audio_io.AudioStatus.OK:
        return Landmarks(np.zeros((0, 2), np.int64), status, samples.size)
    return Landmarks(fingerprint(samples, settings), status, samples.size)


def describe_landmarks(settings: LandmarkConfig, loaded: Landmarks) -> dict[str, Any]:
    return {
        "status": str(loaded.status),
        "num_samples": loaded.num_samples,
        "duration": loaded.num_samples / settings.sample_rate,
        "frame_seconds": settings.frame_seconds,
    }


def extract_landmarks(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Extracts the landmark fingerprint `[N, 2]` of every video of `video_list`."""
    settings = landmark_config(config)
    return extract_list(
        config,
        video_list,
        output_dir,
        layout="ndvr-dml",
        make_encoder=lambda mesh: PassThrough(),
        load=functools.partial(
            load_landmarks, settings=settings, silence=audio_io.AudioConfig().silence_threshold
        ),
        describe=functools.partial(describe_landmarks, settings),
        empty_reason=lambda meta: (
            meta.get("status") if meta.get("status") in UNUSABLE_AUDIO else None
        ),  # fmt: skip
        settings={"mode": "landmarks", **dataclasses.asdict(settings)},
    )


def load_landmark_file(path: str | os.PathLike, video_id: str) -> np.ndarray:
    """One video's stored landmarks as `[N, 2]` int64 (none: `[0, 2]`, a video without sound).

    Raises `FeatureError` for a missing or unreadable file, another shape, or values that are
    not landmarks (negative, fractional, hashes past `HASH_BITS`)."""
    array = load_frame_features(path, video_id, expected_dim=2, allow_empty=True)
    if (array < 0).any() or (array != np.round(array)).any() or (array[:, 0] >= 2**HASH_BITS).any():
        raise FeatureError(f"video {video_id!r}: {os.fspath(path)!r} does not hold landmarks "
                           "(hash, frame) from `--config.mode=landmarks`")  # fmt: skip
    return array.astype(np.int64)


def landmark_counts(
    config, video_list: str, output_dir: str, query_ids: list[str], db_ids: list[str]
) -> np.ndarray:
    """Extracts (or reuses) the landmarks of `video_list` into `output_dir` with an extraction
    config's settings, then `[Q, N]` aligned hits of the queries against the database."""
    config = ml_collections.ConfigDict({**config.to_dict(), "mode": "landmarks"})
    print(f"landmarks: {extract_landmarks(config, video_list, output_dir)}", flush=True)
    store = FeatureStore(output_dir)
    marks = lambda ids: [load_landmark_file(store.feature_path(v), v) for v in ids]
    return aligned_counts(marks(query_ids), marks(db_ids))
