"""The PDVR transition DNN (cut / no cut between consecutive frames) on stitched frame pairs.

    python -m ndvr_jax.train --config=configs/transition_demo.py --workdir=transition_run \
        --config.data.features=demo_run/features/feature_files.txt

Pairs are stitched from the videos of `data.features` (any `<id>\\t<path>` feature list, e.g. the
one `python -m ndvr_jax.extract` writes); without it, from synthetic feature videos. Writes
`<workdir>/transition_model.npz`, `transition_pr.png` and `transition_summary.json` (held-out
accuracy, precision, recall, AP, accuracy at positive shares 0.0–1.0). `:runlocal` is a tiny,
quick variant (tests, smoke runs).
"""

import ml_collections

from ndvr_jax.pdvr.training import default_transition_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = default_transition_config()
    config.task = "transition"
    config.num_devices = 1
    config.num_steps = 1500
    config.batch_size = 256
    config.optimizer.learning_rate = 1e-3
    if arg == "runlocal":
        config.num_steps = 40
        config.batch_size = 32
        config.log_every = 20
        config.checkpoint_every = 40
        config.optimizer.learning_rate = 3e-3
        config.model.hidden_sizes = (64, 32, 16)
        config.data.update(synthetic_videos=12, synthetic_frames=30, synthetic_dim=32)
        config.data.eval_pairs = 200
    return config
