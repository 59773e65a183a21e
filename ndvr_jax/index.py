"""Builds and changes a persistent index of a video collection (`ndvr_jax.collection.build`).

    python -m ndvr_jax.index build --index=my_index --videos=my_videos/ [--config=configs/index.py]
    python -m ndvr_jax.index add --index=my_index --videos=new_videos.txt
    python -m ndvr_jax.index remove --index=my_index --ids=video_a,video_b
    python -m ndvr_jax.index info --index=my_index

`--videos` is a folder (every video file below it) or a list of `<id> <path>` lines. `build`
creates the index with `--config`'s settings (`--rebuild` first drops the catalogue and shards,
keeping extracted features); `add` extends it with its own settings. Exit status 1 if a video
failed, 2 on bad input.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.collection.build import add_videos, index_info, remove_videos
from ndvr_jax.collection.catalogue import CATALOGUE_FILE
from ndvr_jax.collection.shards import SHARD_DIR
from ndvr_jax.io import console

COMMANDS = ("build", "add", "remove", "info")
_CONFIG = config_flags.DEFINE_config_file("config", "configs/index.py", "Index settings (build).")
_INDEX = flags.DEFINE_string("index", None, "The index folder.", required=True)
_VIDEOS = flags.DEFINE_string("videos", None, "build/add: a folder of videos or a video list.")
_IDS = flags.DEFINE_list("ids", [], "remove: the video ids to remove.")
_REBUILD = flags.DEFINE_bool("rebuild", False, "build: drop the catalogue and shards first.")


def _run(command: str) -> int:
    if command == "info":
        print(json.dumps(index_info(_INDEX.value), indent=1))
        return 0
    if command == "remove":
        print(f"removed {remove_videos(_INDEX.value, _IDS.value)} of {len(_IDS.value)} videos")
        return 0
    if not _VIDEOS.value:
        raise app.UsageError(f"{command} needs --videos")
    if command == "build" and _REBUILD.value:
        Path(_INDEX.value, CATALOGUE_FILE).unlink(missing_ok=True)
        shutil.rmtree(Path(_INDEX.value, SHARD_DIR), ignore_errors=True)
    summary = add_videos(_INDEX.value, _VIDEOS.value, _CONFIG.value if command == "build" else None)
    print(summary)
    for video_id, reason in summary.failed.items():
        print(f"failed: {video_id} ({reason})", file=sys.stderr)
    return 1 if summary.failed else 0


def main(argv: Sequence[str]) -> None:
    console.quiet_jax()
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"give one command: {' | '.join(COMMANDS)}")
    try:
        sys.exit(_run(argv[1]))
    except (FileNotFoundError, ValueError) as e:  # CatalogueError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
