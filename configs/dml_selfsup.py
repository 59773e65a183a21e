"""Self-supervised DML on any unlabelled video list: augmented copies against their videos,
negatives mined in the batch (`ndvr_jax.dml.selfsup`).

    python -m ndvr_jax.train --config=configs/dml_selfsup.py --workdir=dml_selfsup \
        --config.video_list=/work/data/corpus/videos.txt
    python -m ndvr_jax.similarity --system=dml --model_dir=dml_selfsup --fusion=early \
        --queries=queries.txt --database=database.txt --features_dir=features/ --output=dml.json

Frame features are `extract`'s (`config.extract`, default EfficientNet-Lite0 ImageNet weights):
extract the evaluated videos with the same settings. Train on unlabelled videos, never on the
test set. `:runlocal` is the tiny variant (the tiny demo benchmark's videos, a few steps).
"""

import ml_collections

from ndvr_jax.config_files import sibling_config
from ndvr_jax.dml.training import default_dml_config, shrink_dml_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = default_dml_config()
    config.task = "dml_selfsup"
    config.mode = "mining"
    config.video_list = "demo_data/videos.txt"  # `<id>\t<path>`, any unlabelled videos
    config.extract = sibling_config(__file__, "extract", arg)
    config.augment = ml_collections.ConfigDict(dict(copies_per_video=4, max_transforms=3))
    config.num_devices = 1
    config.num_steps = 1000
    config.checkpoint_every = 500
    config.validation_every = 5  # every 5th video (and its copies) held out: picks the network
    config.eval_every = 100
    config.keep_checkpoints = 1
    config.optimizer.learning_rate = 1e-4
    config.model.hidden_sizes = (1000,)
    config.loss.update(margin=0.5, l2_regularization=0.0)
    # A batch: 16 videos with 4 of their rows each (the video and copies); no background rows.
    config.mining.update(strategy="batch_hard", groups_per_batch=16, videos_per_group=4,
                         background=0)  # fmt: skip
    config.data.update(features="", triplets="", groups="")
    if arg == "runlocal":
        shrink_dml_config(config)
        config.video_list = "/tmp/ndvr_demo_tiny/videos.txt"
        config.augment.copies_per_video = 2
        config.mining.update(groups_per_batch=2, videos_per_group=2, background=0)
        config.num_steps = 4
        config.checkpoint_every = 2
        config.eval_every = 2
    return config
