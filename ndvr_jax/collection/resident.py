"""An index opened for searching: its usable catalogue rows, their vectors loaded (and verified)
from the shards, and the feature stores of frames and audio segments."""

from __future__ import annotations

import dataclasses
import os

import ml_collections
import numpy as np

from ndvr_jax.collection.build import open_index
from ndvr_jax.collection.catalogue import Catalogue, VideoRecord
from ndvr_jax.collection.shards import load_vectors
from ndvr_jax.io.store import FeatureStore


@dataclasses.dataclass
class Index:
    """An opened index: its catalogue rows with vectors, the vectors and the feature stores."""

    catalogue: Catalogue
    config: ml_collections.ConfigDict
    records: list[VideoRecord]
    vectors: dict[str, np.ndarray]
    visual: FeatureStore
    audio: FeatureStore | None

    @classmethod
    def open(cls, folder: str | os.PathLike) -> Index:
        catalogue, config = open_index(folder)
        records = catalogue.records("ok")
        if not records:
            raise ValueError(f"index {folder} holds no usable videos")
        audio_root = catalogue.folder / "audio"
        audio = FeatureStore(audio_root, "ausil") if config.audio and audio_root.is_dir() else None
        visual = FeatureStore(catalogue.folder / "visual", config.extract.layout)
        return cls(catalogue, config, records, load_vectors(catalogue, records), visual, audio)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    def audio_of(self, video_id: str) -> np.ndarray:
        if self.audio is None or not self.audio.is_complete(video_id):
            return np.zeros((0, 1), np.float32)
        return self.audio.load(video_id).astype(np.float32)
