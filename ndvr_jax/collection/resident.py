"""An index opened for searching: its usable catalogue rows, their vectors loaded (and verified)
from the shards, and the feature stores of frames, audio segments and audio landmarks."""

from __future__ import annotations

import dataclasses
import functools
import os

import ml_collections
import numpy as np

from ndvr_jax.collection.build import open_index
from ndvr_jax.collection.catalogue import Catalogue, VideoRecord
from ndvr_jax.collection.shards import load_vectors
from ndvr_jax.features.landmarks import load_landmark_file
from ndvr_jax.io.store import FeatureStore
from ndvr_jax.landmarks.matching import LandmarkIndex


@dataclasses.dataclass
class Index:
    """An opened index: its catalogue rows with vectors, the vectors and the feature stores."""

    catalogue: Catalogue
    config: ml_collections.ConfigDict
    records: list[VideoRecord]
    vectors: dict[str, np.ndarray]
    visual: FeatureStore
    audio: FeatureStore | None
    landmarks: FeatureStore | None = None

    @classmethod
    def open(cls, folder: str | os.PathLike) -> Index:
        catalogue, config = open_index(folder)
        records = catalogue.records("ok")
        if not records:
            raise ValueError(f"index {folder} holds no usable videos")
        audio_root = catalogue.folder / "audio"
        audio = FeatureStore(audio_root, "ausil") if config.audio and audio_root.is_dir() else None
        visual = FeatureStore(catalogue.folder / "visual", config.extract.layout)
        marks_root = catalogue.folder / "landmarks"
        landmarks = FeatureStore(marks_root) if audio and marks_root.is_dir() else None
        vectors = load_vectors(catalogue, records)
        return cls(catalogue, config, records, vectors, visual, audio, landmarks)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    def audio_of(self, video_id: str) -> np.ndarray:
        if self.audio is None or not self.audio.is_complete(video_id):
            return np.zeros((0, 1), np.float32)
        return self.audio.load(video_id).astype(np.float32)

    def landmarks_of(self, video_id: str) -> np.ndarray:
        if self.landmarks is None or not self.landmarks.is_complete(video_id):
            return np.zeros((0, 2), np.int64)
        return load_landmark_file(self.landmarks.feature_path(video_id), video_id)

    @functools.cached_property
    def landmark_index(self) -> LandmarkIndex:
        """Every indexed video's landmarks, in `records` order (built on first use)."""
        return LandmarkIndex([self.landmarks_of(v) for v in self.ids])
