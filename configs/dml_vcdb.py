"""DML on VCDB triplets, the paper's setting (ndvr-dml `train_dml.py` defaults).

    python -m ndvr_jax.triplets --dataset=vcdb --feature_files=vcdb_feature_files.txt \
        --output_dir=output_data/
    python -m ndvr_jax.train --config=configs/dml_vcdb.py --workdir=model/
    python -m ndvr_jax.evaluate --config=configs/dml_vcdb.py --model_dir=model/

Offline triplets, Adam with learning rate 1e-6, 1000 triplets a batch, 10 epochs, margin 1,
MLP 2000-1000-500 with tanh and L2 normalisation: `ndvr_jax.dml.training.default_dml_config`,
unchanged. `loss.l2_regularization` is the original's `--weight_decay` (TF `l2_regularizer`,
default 1e-5: effectively zero). `--config.mode=mining` trains with in-batch mining from
`vcdb_groups.npy` instead (set `num_steps`). `--config.model.compute_dtype=bfloat16` trains with
bf16 matmuls on float32 parameters (faster on CPUs with AMX and on GPUs). `:runlocal` shrinks
the network and the run for a quick check.
"""

import ml_collections

from ndvr_jax.dml.training import default_dml_config, shrink_dml_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = default_dml_config()
    if arg == "runlocal":
        shrink_dml_config(config)
    return config
