"""DML on VCDB triplets with up to 10,000 injected CC_WEB_VIDEO triplets (the paper's injection).

    python -m ndvr_jax.triplets --dataset=cc_web_video \
        --feature_files=cc_web_video_feature_files.txt --output_dir=output_data/
    python -m ndvr_jax.dml_train --config=configs/dml_vcdb_ccweb_injection.py --workdir=model/
    python -m ndvr_jax.evaluate --config=configs/dml_vcdb_ccweb_injection.py --model_dir=model/

The chosen CC_WEB_VIDEO triplets (a seeded random subset) are appended to the VCDB ones and
their features after VCDB's, as the original's `--evaluation_set`/`--evaluation_triplets`.
"""

import importlib.util
import os

import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dml_vcdb.py")
    spec = importlib.util.spec_from_file_location("configs_dml_vcdb", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg)
    config.data.inject_features = "output_data/cc_web_video_features.npy"
    config.data.inject_triplets = "output_data/cc_web_video_triplets.npy"
    config.data.max_injected = 10000
    return config
