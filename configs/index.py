"""Settings of a collection index (fixed when it is built; `add` reuses them).

    python -m ndvr_jax.index build --index=my_index --videos=my_videos/ --config=configs/index.py
    python -m ndvr_jax.index add --index=my_index --videos=new_videos.txt
    python -m ndvr_jax.query --index=my_index query.mp4

`extract` is `configs/extract.py`'s (visual frame features; audio mode for the audio segments);
`audio=False` indexes pictures only; `landmarks=False` leaves out the audio landmarks. `:runlocal`
shrinks frames and batches for a quick check.
"""

import ml_collections

from ndvr_jax.config_files import sibling_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.extract = sibling_config(__file__, "extract", arg)
    config.audio = True  # also index AuSiL audio segment features
    # and audio landmarks (`ndvr_jax.landmarks`), added to AuSiL's score at query time
    config.landmarks = True
    config.pca_dims = 32 if arg == "runlocal" else 64  # audio whitening (capped by the data)
    # Codes of the Hamming first stage: "sign" (of the global vectors) or a deep-hashing
    # workdir (`python -m ndvr_jax.train --config=configs/hashing_64.py`) trained on these features.
    config.codes = "sign"
    return config
