"""DML on the demo benchmark, cross-validated over its queries, against the raw baseline.

    python -m ndvr_jax.demo --config=configs/demo.py --workdir=demo_run   # runs it with the rest

Each of `demo.folds` networks is trained by in-batch mining (semi-hard) on group labels made
from the other folds' queries (`ndvr_jax.dml.demo.dml_demo_run`). The same settings train one
network on triplets of the demo's annotation with the `train` binary (`data.*` set to the
triplet generator's outputs), which `evaluate` then reads through this file's `evaluate` section:

    python -m ndvr_jax.triplets --dataset=annotation --dataset_path=demo_data/annotation.json \
        --queries=demo_data/queries.txt --database=demo_data/database.txt \
        --feature_files=demo_run/features/feature_files.txt --output_dir=demo_dml/data
    python -m ndvr_jax.train --config=configs/dml_demo.py --workdir=demo_dml \
        --config.data.features=demo_dml/data/annotation_features.npy \
        --config.data.groups=demo_dml/data/annotation_groups.npy
    python -m ndvr_jax.evaluate --config=configs/dml_demo.py --model_dir=demo_dml

`:runlocal` is a tiny, quick variant (for tests and the tiny benchmark).
"""

import ml_collections

from ndvr_jax.dml.training import default_dml_config, shrink_dml_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = default_dml_config()
    config.mode = "mining"
    config.num_devices = 1
    config.num_steps = 200
    config.checkpoint_every = 200
    config.keep_checkpoints = 1
    config.optimizer.learning_rate = 1e-4
    config.model.hidden_sizes = (1000,)
    config.loss.l2_regularization = 0.0
    config.mining.update(
        strategy="semi_hard", groups_per_batch=8, videos_per_group=4, background=16
    )
    config.data.update(features="", triplets="", groups="")
    config.demo = ml_collections.ConfigDict(
        dict(
            folds=3,
            repeats=1,  # cross-validations with other seeds and splits, averaged
            positive_labels=("ND", "DS"),  # DSVR relevance defines the groups
            max_relevant=2,  # queries with more positives (compilations) are left out
            protocols=("DSVR", "CSVR", "ISVR"),
            similarity="cosine",
        )
    )
    config.evaluate.update(
        dataset="annotation",
        dataset_path="demo_data/annotation.json",
        queries="demo_data/queries.txt",
        database="demo_data/database.txt",
        features="",
        feature_files="demo_run/features/feature_files.txt",
        fusion="both",
        similarity="cosine",
        protocols="DSVR,CSVR,ISVR",
    )
    if arg == "runlocal":
        shrink_dml_config(config)
        config.num_steps = 10
        config.checkpoint_every = 5
    return config
