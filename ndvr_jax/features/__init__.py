"""Batch feature extraction: frame MAC features (`visual`), AuSiL audio segments (`audio`) and
audio landmark fingerprints (`landmarks`)."""

from __future__ import annotations

from ndvr_jax.features.audio import extract_audio
from ndvr_jax.features.batching import ExtractionSummary
from ndvr_jax.features.landmarks import extract_landmarks
from ndvr_jax.features.visual import extract_visual

__all__ = ["ExtractionSummary", "extract", "extract_audio", "extract_landmarks", "extract_visual"]

EXTRACTORS = {"visual": extract_visual, "audio": extract_audio, "landmarks": extract_landmarks}


def extract(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Visual, audio or landmark extraction, as `config.mode` says."""
    mode = config.get("mode", "visual")
    if mode not in EXTRACTORS:
        raise ValueError(f"config.mode must be one of {sorted(EXTRACTORS)}, got {mode!r}")
    return EXTRACTORS[mode](config, video_list, output_dir)
