"""The unlabelled training corpus from real media (`ndvr_jax.data.corpus.training`).

    python -m ndvr_jax.corpus --out=corpus --videos=300

Keys are `CorpusConfig`'s fields plus `seed`. `:runlocal` is a tiny corpus (a quick check).
"""

import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.n_videos = 300
    config.seconds = (10.0, 30.0)
    config.shot_seconds = (2.0, 6.0)
    config.frame_sizes = ((120, 160), (180, 240), (240, 320), (180, 320))
    config.fps = (12, 15, 24, 25)
    config.profiles = ("mp4", "webm_vp9", "mkv", "mp4_low", "avi_mpeg4", "mov")
    config.speech_share = 0.35
    config.bed_share = 0.3
    config.dissolve_share = 0.3
    config.max_side = 480
    if arg == "runlocal":
        config.n_videos = 4
        config.seconds = (3.0, 5.0)
        config.frame_sizes = ((96, 128),)
        config.max_side = 256
    return config
