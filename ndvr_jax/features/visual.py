"""Visual mode of batch extraction: per-frame MAC features of a list of videos."""

from __future__ import annotations

import functools

from ndvr_jax.backbones import create_backbone, mac, weights_setting
from ndvr_jax.features.batching import ExtractionSummary, extract_list, weights_record
from ndvr_jax.features.encoder import DTYPES, BatchEncoder
from ndvr_jax.io import video as video_io


def describe_video(decoded: video_io.DecodedVideo | video_io.VideoStream) -> dict:
    """Sidecar metadata of one decoded video."""
    return {
        "timestamps": [round(float(t), 6) for t in decoded.timestamps],
        "duration": decoded.duration,
        "source_fps": decoded.source_fps,
        "codec": decoded.codec,
        "container": decoded.container,
    }


def visual_settings(config) -> dict:
    """What a sidecar records of the run, so a rerun with other settings extracts again."""
    weights = weights_setting(config.weights)
    return {
        "mode": "visual",
        "backbone": config.backbone,
        **weights_record(str(weights), weights),
        **{key: config[key] for key in ("fps", "size", "resize", "dtype")},
    }


def extract_visual(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Extracts the visual features of every video of `video_list` (this process's share)."""
    decode = functools.partial(  # frames a chunk at a time: memory independent of duration
        video_io.VideoStream, fps=config.fps, size=config.size, mode=config.resize
    )
    return extract_list(
        config,
        video_list,
        output_dir,
        layout=config.layout,
        make_encoder=lambda mesh: BatchEncoder(  # the model is built once the list is read
            create_backbone(config.backbone, weights=config.weights, dtype=DTYPES[config.dtype]),
            mac,
            mesh,
            config.batch_size,
            config.get("micro_batch"),
        ),
        load=decode,
        describe=describe_video,
        settings=visual_settings(config),
    )
