"""Visual mode of batch extraction: per-frame MAC features of a list of videos.

`config.regions` = 0 stores whole-frame MAC `[T, D]`; n > 0 stores ViSiL-style regional MAC
`[T, R, D]` (`ndvr_jax.backbones.regional_mac`: region 0 the whole frame, then an n x n grid);
`config.zoom` = n > 0 appends the MAC of n x n zoomed crops (`ndvr_jax.backbones.views`, 1 + n²
backbone runs a frame), for a source shown small inside another video; `config.insets` appends
the MAC of each frame's detected picture-in-picture inset (`ndvr_jax.regional.insets`; one more
backbone run a frame; the frame itself where none is found).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
from flax import nnx

from ndvr_jax.backbones import create_backbone, mac, regional_mac, weights_setting
from ndvr_jax.backbones.views import InsetViews, ZoomViews, inset_pool, view_pool
from ndvr_jax.features.batching import ExtractionSummary, extract_list, weights_record
from ndvr_jax.features.encoder import DTYPES, BatchEncoder
from ndvr_jax.io import video as video_io
from ndvr_jax.regional.insets import InsetSearch, InsetStream


def describe_video(decoded: video_io.DecodedVideo | video_io.VideoStream) -> dict:
    """Sidecar metadata of one decoded video (with `InsetStream`, each frame's inset box)."""
    described = {
        "timestamps": [round(float(t), 6) for t in decoded.timestamps],
        "duration": decoded.duration,
        "source_fps": decoded.source_fps,
        "codec": decoded.codec,
        "container": decoded.container,
    }
    if isinstance(decoded, InsetStream):
        described["inset_boxes"] = decoded.boxes  # (top, left, height, width) of the canvas
    return described


def visual_settings(config) -> dict:
    """What a sidecar records of the run, so a rerun with other settings extracts again."""
    weights = weights_setting(config.weights)
    return {
        "mode": "visual",
        "backbone": config.backbone,
        **weights_record(str(weights), weights),
        **{key: config[key] for key in ("fps", "size", "resize", "dtype")},
        # None when off, as stores from before regions were an option read back
        "regions": config.get("regions") or None,
        "zoom": config.get("zoom") or None,
        # the detector's settings too, so a change of its defaults extracts again
        **(
            {"insets": {"window_s": config.inset_window_s, **dataclasses.asdict(_search(config))}}
            if config.get("insets")
            else {}
        ),  # fmt: skip
    }


def _search(config) -> InsetSearch:
    """The inset detector's settings: its defaults, and `inset_border_sides`."""
    return InsetSearch(border_sides=config.get("inset_border_sides", InsetSearch.border_sides))


def frame_model(
    config,
) -> tuple[nnx.Module, Callable[[Sequence[jax.Array]], jax.Array]]:
    """The model of the frames and the pooling of its activations into frame features: `mac`,
    `regional_mac` on a `config.regions` grid, with `config.zoom` the zoomed crops too, and with
    `config.insets` the detected inset last."""
    regions, zoom = config.get("regions", 0), config.get("zoom", 0)
    if regions < 0 or zoom < 0:
        raise ValueError(f"regions and zoom must be 0 (off) or a grid size, got {regions}, {zoom}")
    backbone = create_backbone(config.backbone, weights=config.weights, dtype=DTYPES[config.dtype])
    if zoom:
        model = ZoomViews(backbone, zoom)
        pool = functools.partial(view_pool, grid=regions or 1, zoom=zoom)
    else:
        model, pool = backbone, (functools.partial(regional_mac, grid=regions) if regions else mac)
    if config.get("insets"):
        return InsetViews(model, backbone), functools.partial(inset_pool, frame_pool=pool)
    return model, pool


def extract_visual(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Extracts the visual features of every video of `video_list` (this process's share)."""
    stream = video_io.VideoStream
    if config.get("insets"):
        stream = functools.partial(
            InsetStream, window_s=config.inset_window_s, search=_search(config)
        )
    decode = functools.partial(  # frames a chunk at a time: memory independent of duration
        stream, fps=config.fps, size=config.size, mode=config.resize
    )
    return extract_list(
        config,
        video_list,
        output_dir,
        layout=config.layout,
        make_encoder=lambda mesh: BatchEncoder(  # the model is built once the list is read
            *frame_model(config),
            mesh,
            config.batch_size,
            config.get("micro_batch"),
        ),
        load=decode,
        describe=describe_video,
        settings=visual_settings(config),
    )
