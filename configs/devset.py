"""A dev set built like the test set (`configs/testset.py`) but from the `train` sources' media
only (never the test set's packages, never the reserved ones), with another seed and its own
durations, frame sizes, frame rates and shares, so settings are chosen on it, not on the test set.

    python -m ndvr_jax.testset build --config=configs/devset.py --out=devset
    python -m ndvr_jax.testset evaluate --config=configs/devset.py --data=devset --workdir=dev_run

`:runlocal` is tiny.
"""

import ml_collections

from ndvr_jax.config_files import sibling_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "testset", arg)
    config.role = "train"
    config.seed = 14
    if arg != "runlocal":
        config.seconds = (10.0, 22.0)
        config.shot_seconds = (2.5, 7.0)
        config.frame_sizes = ((112, 160), (160, 224), (136, 240))
        config.fps = (12, 20, 30)
        config.copy_fps = (6, 12, 15)
        config.part_seconds = (2.5, 7.0)
        config.speech_share = 0.5
        config.bed_share = 0.25
        config.dissolve_share = 0.4
    return config
