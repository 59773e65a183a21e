"""DML on the demo benchmark, cross-validated over its queries, against the raw baseline.

    python -m ndvr_jax.demo --config=configs/demo.py --workdir=demo_run   # benchmark + features
    python -m ndvr_jax.dml_train --config=configs/dml_demo.py --workdir=demo_dml \
        --demo_data=demo_data --demo_features=demo_run/features

Each of `demo.folds` networks is trained by in-batch mining (semi-hard) on group labels made
from the other folds' queries (`ndvr_jax.dml_train.dml_demo_run`). `:runlocal` is a tiny, quick
variant (for tests and the tiny benchmark).
"""

import importlib.util
import os

import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dml_vcdb.py")
    spec = importlib.util.spec_from_file_location("configs_dml_vcdb", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.mode = "mining"
    config.num_devices = 1
    config.num_steps = 200
    config.log_every = 50
    config.checkpoint_every = 200
    config.keep_checkpoints = 1
    config.optimizer.learning_rate = 1e-4
    config.model.hidden_sizes = (1000,)
    config.model.embedding_dim = 500
    config.loss.l2_regularization = 0.0
    config.mining.update(
        strategy="semi_hard", groups_per_batch=8, videos_per_group=4, background=16
    )
    config.data.update(features="", triplets="", groups="")
    config.demo = ml_collections.ConfigDict(
        dict(
            folds=3,
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
        config.num_steps = 10
        config.log_every = 5
        config.checkpoint_every = 5
        config.model.hidden_sizes = (64,)
        config.model.embedding_dim = 32
        config.mining.update(groups_per_batch=4, videos_per_group=2, background=8)
    return config
