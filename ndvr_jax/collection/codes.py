"""Binary codes of videos for the index's Hamming first stage (`first_stage="binary"`).

`config.codes` of an index: "sign" (the signs of the global vectors, no training) or the workdir
of a trained deep-hashing model (`python -m ndvr_jax.train --config=configs/hashing_64.py`):
its n-bit codes of each video's frame features. Indexed videos and queries get codes the same
way, from the index's own settings.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ndvr_jax.hashing.codes import binarize, pack_bits
from ndvr_jax.hashing.model import HashingNet
from ndvr_jax.hashing.training import encode, load_model

SIGN = "sign"
ENCODE_BATCH = 32
MAX_FRAMES = 128  # frames a video's code is computed from (evenly subsampled beyond)


@functools.lru_cache(maxsize=4)
def _hashing_model(workdir: str) -> HashingNet:
    if not (Path(workdir) / "model.json").is_file():
        raise FileNotFoundError(
            f"codes={workdir!r}: no hashing model there (model.json); give 'sign' or the "
            "workdir of `python -m ndvr_jax.train --config=configs/hashing_64.py`"
        )
    return load_model(workdir)


def video_codes(
    source: str, frames: Sequence[np.ndarray], global_vectors: np.ndarray
) -> np.ndarray:
    """Packed uint32 codes `[N, words]` of videos given their frame features and global vectors."""
    if source == SIGN:
        return np.asarray(pack_bits(np.asarray(global_vectors) > 0))
    model = _hashing_model(source)
    width = model.feature_dim
    for i, f in enumerate(frames):
        if np.shape(f)[-1] != width:
            raise ValueError(
                f"codes={source!r} expects {width}-d frame features, video {i} has "
                f"{np.shape(f)[-1]}: index with the backbone the hashing model was trained on"
            )
    rows, bits = encode(model, [{"features": f, "label": 0} for f in frames], ENCODE_BATCH,
                        MAX_FRAMES)  # fmt: skip
    return np.asarray(pack_bits(binarize(bits[np.argsort(rows)])))
