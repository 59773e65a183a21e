"""DML on VCDB triplets, the paper's setting (ndvr-dml `train_dml.py` defaults).

    python -m ndvr_jax.triplets --dataset=vcdb --feature_files=vcdb_feature_files.txt \
        --output_dir=output_data/
    python -m ndvr_jax.dml_train --config=configs/dml_vcdb.py --workdir=model/
    python -m ndvr_jax.evaluate --config=configs/dml_vcdb.py --model_dir=model/

Offline triplets, Adam with learning rate 1e-6, 1000 triplets a batch, 10 epochs, margin 1,
MLP 2000-1000-500 with tanh and L2 normalisation. `loss.l2_regularization` is the original's
`--weight_decay` (TF `l2_regularizer`, default 1e-5: effectively zero). `--config.mode=mining`
trains with in-batch mining from `vcdb_groups.npy` instead (set `num_steps`).
`:runlocal` shrinks the network and the run for a quick check.
"""

import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    # The shared loop's keys (ndvr_jax.train_lib.default_train_config).
    config.seed = 0
    config.num_steps = 0  # 0: `epochs` passes over the triplets
    config.epochs = 10
    config.batch_size = 1000  # triplets a step (offline mode)
    config.num_devices = 0  # 0: all devices
    config.log_every = 50
    config.checkpoint_every = 1000
    config.keep_checkpoints = 3
    config.eval_every = 0
    config.distributed = False
    config.optimizer = ml_collections.ConfigDict(
        dict(
            name="adam",
            learning_rate=1e-6,
            weight_decay=0.0,  # decoupled (AdamW) decay; the original's is loss.l2_regularization
            grad_clip_norm=0.0,
            warmup_steps=0,
            schedule="constant",
        )
    )
    config.mode = "offline"  # offline (the original's triplets) | mining (in-batch, from groups)
    config.data = ml_collections.ConfigDict(
        dict(
            features="output_data/vcdb_features.npy",
            triplets="output_data/vcdb_triplets.npy",
            groups="output_data/vcdb_groups.npy",  # mining mode
            inject_features="",  # injection of evaluation triplets (offline mode)
            inject_triplets="",
            max_injected=10000,
        )
    )
    config.model = ml_collections.ConfigDict(
        dict(hidden_sizes=(2000, 1000), embedding_dim=500, activation="tanh")
    )
    config.loss = ml_collections.ConfigDict(dict(margin=1.0, l2_regularization=1e-5))
    config.mining = ml_collections.ConfigDict(
        dict(strategy="batch_hard", groups_per_batch=64, videos_per_group=4, background=256)
    )
    # `python -m ndvr_jax.evaluate --config=configs/dml_vcdb.py --model_dir=model/`
    config.evaluate = ml_collections.ConfigDict(
        dict(
            dataset="cc_web_video",
            dataset_path="datasets/cc_web_video.pickle",
            queries="",
            database="",
            split="",
            features="output_data/cc_web_video_features.npy",
            ids="",
            feature_files="",  # cc_web_video_feature_files.txt for late fusion
            model_dir="",
            fusion="early",
            similarity="distance",
            protocols="",
            labels="",
            output_dir="evaluation",
            top_k=0,
        )
    )
    if arg == "runlocal":
        config.epochs = 1
        config.batch_size = 64
        config.log_every = 5
        config.model.hidden_sizes = (64,)
        config.model.embedding_dim = 32
        config.mining.update(groups_per_batch=4, videos_per_group=2, background=8)
    return config
