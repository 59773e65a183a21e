"""Deep hashing to 128-bit video codes (classification + in-batch triplet loss), Hamming retrieval.

    python -m ndvr_jax.train --config=configs/hashing_128.py --workdir=runs/hashing_128
    python -m ndvr_jax.train --config=configs/hashing_128.py:runlocal --workdir=/tmp/hashing_128

Shares `hashing_base.py`; override the data with e.g. `--config.data.kind=demo
--config.data.demo_dir=demo_data --config.data.features_dir=demo_run/features`.
"""

import ml_collections

from ndvr_jax.config_files import sibling_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    return sibling_config(__file__, "hashing_base", f"128,{arg}")
