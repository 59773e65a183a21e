"""Builds the unlabelled training corpus from the `train` real-media sources (Debian packages,
fetched with apt-get download into a cache, never installed).

    python -m ndvr_jax.corpus --out=corpus [--cache=~/.cache/ndvr_jax/media] [--videos=300]

Writes `<out>/videos/`, `<out>/videos.txt` (the extract binary's list), `<out>/media.json`
(every source file with its package, version and licence) and `<out>/manifest.json`. A complete
build is kept; an interrupted one resumes. `--config=configs/corpus.py:runlocal`: a tiny one.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.io import console
from ndvr_jax.jobs.media_sets import run_corpus

_CONFIG = config_flags.DEFINE_config_file("config", "configs/corpus.py", "Corpus config.")
_OUT = flags.DEFINE_string("out", None, "Output folder.", required=True)
_CACHE = flags.DEFINE_string("cache", None, "Package cache (default ~/.cache/ndvr_jax/media).")
_VIDEOS = flags.DEFINE_integer("videos", None, "Number of videos (default: the config's).")


def main(argv: Sequence[str]) -> None:
    del argv
    console.quiet_jax()
    config = _CONFIG.value
    if _VIDEOS.value is not None:
        config.n_videos = _VIDEOS.value
    run_corpus(config, _OUT.value, _CACHE.value)


if __name__ == "__main__":
    app.run(main)
