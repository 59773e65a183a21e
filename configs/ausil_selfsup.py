"""Self-supervised AuSiL on any unlabelled video list (no annotation): augmented views against
their videos, negatives mined in the batch, the checkpoint chosen on held-out videos.

    python -m ndvr_jax.train --config=configs/ausil_selfsup.py --workdir=ausil_selfsup \
        --config.video_list=/work/data/corpus/videos.txt

`video_list` has `<id>\\t<path>` lines (any videos or audio files). The segment features of every
video and of `augment.copies_per_video` augmented views each are computed once with `extract`'s
audio backbone (`config.extract.audio`, default musicnn_vgg) and cached in
`<workdir>/views.npz`. Every `validation_every`-th video is held out (with its views) to pick the
checkpoint (`validation_map` in the summary). The result `<workdir>/ausil_model.npz` is used with
`python -m ndvr_jax.similarity --system=ausil --model_dir=<workdir>`.
`:runlocal` is the tiny variant (the tiny demo benchmark's videos, a few steps).
"""

import ml_collections

from ndvr_jax.config_files import sibling_config
from ndvr_jax.training.loop import default_train_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    runlocal = arg == "runlocal"
    config = default_train_config()
    config.task = "ausil"
    config.annotation_file = ""  # "": self-supervised (ndvr_jax.ausil.selfsup)
    config.video_list = "demo_data/videos.txt"  # `<id>\t<path>`; `{workdir}` may appear
    config.extract = sibling_config(__file__, "extract", arg)
    config.extract.mode = "audio"
    config.validation_every = 5  # every 5th video (sorted ids) is held out

    # Views: spans of `min_seconds`..`max_seconds` after a random chain of copy distortions.
    config.augment = ml_collections.ConfigDict(
        dict(copies_per_video=4, min_seconds=6.0, max_seconds=30.0)
    )

    # Model and loss.
    config.pca_dims = 32 if runlocal else 256  # capped at (number of segments - 1)
    config.margin = 0.5
    config.reg_weight = 0.5
    config.max_segments = 32  # crops of views and videos (segments, ≈1 s each)

    # Training loop; the global batch holds distinct videos (its other videos are the negatives).
    config.num_steps = 4 if runlocal else 1500
    config.batch_size = 4 if runlocal else 24
    config.log_every = 2 if runlocal else 50
    config.checkpoint_every = 2 if runlocal else 250
    config.eval_every = 2 if runlocal else 250
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 3e-4
    config.optimizer.grad_clip_norm = 1.0

    config.similarity = ml_collections.ConfigDict(dict(batch_size=16, num_devices=0))
    if runlocal:
        config.video_list = "/tmp/ndvr_demo_tiny/videos.txt"
        config.validation_every = 3
        config.augment.copies_per_video = 2
        config.augment.min_seconds = 1.0
        config.augment.max_seconds = 3.0
        config.similarity.batch_size = 8
    return config
