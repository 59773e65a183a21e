"""Visual mode of batch extraction: per-frame MAC features of a list of videos."""

from __future__ import annotations

import functools

from ndvr_jax.backbones import create_backbone, mac
from ndvr_jax.features.batching import ExtractionSummary, extract_list
from ndvr_jax.features.encoder import DTYPES, BatchEncoder
from ndvr_jax.io import video as video_io


def describe_video(config, decoded: video_io.DecodedVideo) -> dict:
    """Sidecar metadata of one decoded video."""
    return {
        "timestamps": [round(float(t), 6) for t in decoded.timestamps],
        "duration": decoded.duration,
        "source_fps": decoded.source_fps,
        "codec": decoded.codec,
        "container": decoded.container,
        "backbone": config.backbone,
        "weights": str(config.weights),
        "fps": config.fps,
        "size": config.size,
        "resize": config.resize,
        "dtype": config.dtype,
    }


def extract_visual(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Extracts the visual features of every video of `video_list` (this process's share)."""
    model = create_backbone(config.backbone, weights=config.weights, dtype=DTYPES[config.dtype])
    decode = functools.partial(
        video_io.decode_video, fps=config.fps, size=config.size, mode=config.resize
    )
    return extract_list(
        config,
        video_list,
        output_dir,
        layout=config.layout,
        make_encoder=lambda mesh: BatchEncoder(
            model, mac, mesh, config.batch_size, config.get("micro_batch")
        ),
        load=decode,
        describe=functools.partial(describe_video, config),
    )
