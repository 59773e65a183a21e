"""DML by in-batch mining on the demo's copy groups read from a TFDS source through grain.

The builder `ndvr_demo_features/fold0of2` labels every demo video with the copy groups of the
queries outside fold 0 (`ndvr_jax.data.tfds_builders`); training reads shuffled epochs of its
`train` split through grain, each process its own rows (`ndvr_jax.dml.training.SourceMiningTask`):

    python -m ndvr_jax.build_tfds --dataset=ndvr_demo_features/fold0of2 \
        --manual_dir=demo_data --data_dir=tfds_data
    python -m ndvr_jax.train --config=configs/dml_demo_tfds.py --workdir=dml_tfds \
        --config.data.tfds_data_dir=tfds_data

The rest is `configs/dml_demo.py` (its `evaluate` section scores the network:
`python -m ndvr_jax.evaluate --config=configs/dml_demo.py --model_dir=dml_tfds`).
`:runlocal` is the tiny variant.
"""

import ml_collections

from ndvr_jax.config_files import sibling_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "dml_demo", arg)
    config.data.update(
        source="tfds",
        tfds_name="ndvr_demo_features/fold0of2",
        tfds_data_dir="tensorflow_datasets",
        train_split="train",
    )
    config.batch_size = 8 if arg == "runlocal" else 32  # videos a step, mined in the batch
    return config
