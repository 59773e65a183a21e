"""Extracts per-frame MAC features of a list of videos (`<id> <path>` lines).

    python -m ndvr_jax.extract --config=configs/extract.py \
        --video_list=videos.txt --output_dir=features/

Writes `<output_dir>/<id>.npy` ([n_frames, D] float32) with a `<id>.json` sidecar (timestamps,
extraction metadata), `feature_files.txt` (`<id>\\t<path>`), and `failures.tsv`. Reruns skip
finished videos. Exits with status 1 if any video failed.
"""

from __future__ import annotations

import functools
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from ndvr_jax import sharding
from ndvr_jax.extraction import DTYPES, BatchEncoder, ExtractionSummary, extract_to_store
from ndvr_jax.io import video as video_io
from ndvr_jax.io.store import FeatureStore, read_id_path_list

_CONFIG = config_flags.DEFINE_config_file("config", "configs/extract.py", "Extraction config.")
_VIDEO_LIST = flags.DEFINE_string("video_list", None, "File of `<id> <path>` lines.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the feature files.")


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


def run(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Extracts the visual features of every video of `video_list` (this process's share)."""
    from ndvr_jax.backbones import create_backbone
    from ndvr_jax.backbones.mac import mac

    sharding.maybe_initialize_distributed(config.distributed)
    entries = sharding.process_share(read_id_path_list(video_list))
    mesh = sharding.make_mesh(config.num_devices)
    model = create_backbone(config.backbone, weights=config.weights, dtype=DTYPES[config.dtype])
    encoder = BatchEncoder(model, mac, mesh, config.batch_size)
    store = FeatureStore(output_dir, config.layout)
    decode = functools.partial(
        video_io.decode_video, fps=config.fps, size=config.size, mode=config.resize
    )
    summary = extract_to_store(
        entries,
        decode,
        encoder,
        store,
        functools.partial(describe_video, config),
        num_workers=config.num_workers,
        failures_name=f"failures{_process_suffix()}.tsv",
    )
    finished = [v for v, _ in entries if v in set(summary.done) | set(summary.skipped)]
    store.write_list(finished, f"feature_files{_process_suffix()}.txt")
    return summary


def _process_suffix() -> str:
    return "" if jax.process_count() == 1 else f".{jax.process_index()}"


def main(argv: list[str]) -> None:
    del argv
    if not _VIDEO_LIST.value or not _OUTPUT_DIR.value:
        raise app.UsageError("--video_list and --output_dir are required")
    summary = run(_CONFIG.value, _VIDEO_LIST.value, _OUTPUT_DIR.value)
    logging.info("%s", summary)
    print(summary, flush=True)
    if summary.failed:
        print(f"failures listed in {_OUTPUT_DIR.value}/failures.tsv", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
