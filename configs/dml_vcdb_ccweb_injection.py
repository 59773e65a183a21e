"""DML on VCDB triplets with up to 10,000 injected CC_WEB_VIDEO triplets (the paper's injection).

    python -m ndvr_jax.triplets --dataset=cc_web_video \
        --feature_files=cc_web_video_feature_files.txt --output_dir=output_data/
    python -m ndvr_jax.train --config=configs/dml_vcdb_ccweb_injection.py --workdir=model/
    python -m ndvr_jax.evaluate --config=configs/dml_vcdb_ccweb_injection.py --model_dir=model/

The chosen CC_WEB_VIDEO triplets (a seeded random subset) are appended to the VCDB ones and
their features after VCDB's, as the original's `--evaluation_set`/`--evaluation_triplets`.
Everything else is `configs/dml_vcdb.py` (`ndvr_jax.dml.training.default_dml_config`).
"""

import ml_collections

from ndvr_jax.dml.training import default_dml_config, shrink_dml_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = default_dml_config()
    config.data.update(
        inject_features="output_data/cc_web_video_features.npy",
        inject_triplets="output_data/cc_web_video_triplets.npy",
        max_injected=10000,
    )
    if arg == "runlocal":
        shrink_dml_config(config)
    return config
