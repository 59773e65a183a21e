"""Extracts per-frame MAC features, or AuSiL audio segment features, of a list of videos.

    python -m ndvr_jax.extract --config=configs/extract.py \
        --video_list=videos.txt --output_dir=features/ [--config.mode=audio]

`--video_list` has `<id> <path>` lines. Visual mode writes `<output_dir>/<id>.npy` ([n_frames, D]
float32); audio mode writes `<output_dir>/<id>/wlaf.npz` (key `features`, [n_segments, D]).
Both write a `<id>.json` sidecar (timestamps, extraction metadata; audio: `status`),
`feature_files.txt` (`<id>\\t<path>`, videos with features) and `failures.tsv` (`<id>, path,
reason, message`; audio adds the reasons `no_audio_stream` and `silent`). Reruns skip videos
finished with the same settings. Exits with status 1 if a file was missing or unreadable (not
for audio-less videos), 2 on bad input (a malformed list, a bad id, a missing weights file).
"""

from __future__ import annotations

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from ndvr_jax.features import extract
from ndvr_jax.features.audio import UNUSABLE_AUDIO
from ndvr_jax.io import console

_CONFIG = config_flags.DEFINE_config_file("config", "configs/extract.py", "Extraction config.")
_VIDEO_LIST = flags.DEFINE_string("video_list", None, "File of `<id> <path>` lines.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the feature files.")


def main(argv: list[str]) -> None:
    del argv
    console.quiet_jax()
    if not _VIDEO_LIST.value or not _OUTPUT_DIR.value:
        raise app.UsageError("--video_list and --output_dir are required")
    try:
        summary = extract(_CONFIG.value, _VIDEO_LIST.value, _OUTPUT_DIR.value)
    except console.USAGE_ERRORS as e:
        console.exit_with_error(e)
    logging.info("%s", summary)
    print(summary, flush=True)
    if summary.failed:
        print(f"failures listed in {_OUTPUT_DIR.value}/failures.tsv", file=sys.stderr)
    if set(summary.failed.values()) - set(UNUSABLE_AUDIO):
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
