"""AuSiL on the demo benchmark with its audio segment features read from a TFDS source.

The builder's `audio` config stores every demo video's AuSiL segment features (extracting those
missing from `<manual_dir>/audio_features` with `extract --config.mode=audio`); training draws
its triplets (the annotation's `DA` videos, as `configs/ausil_demo.py`) through grain: every
triplet once an epoch, in a new order each epoch, each process reading only its rows' features
from the source (`ndvr_jax.ausil.training.GrainAusilTask`):

    python -m ndvr_jax.build_tfds --dataset=ndvr_demo_features/audio \
        --manual_dir=demo_data --data_dir=tfds_data
    python -m ndvr_jax.train --config=configs/ausil_demo_tfds.py --workdir=ausil_tfds \
        --config.data.tfds_data_dir=tfds_data

The rest is `configs/ausil_demo.py` (annotation, held-out queries, PCA, loss, augmentation);
`:runlocal` is the tiny variant.
"""

import ml_collections

from ndvr_jax.config_files import sibling_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "ausil_demo", arg)
    config.data.source = "tfds"
    return config
