"""A synthetic class-structured video set: frame features drawn around per-class patterns.

Every class has a few "action" patterns; a video of the class is a sequence of frames, each a
noisy mix of one of its class patterns and a pattern shared by all classes (background), with
some frames pure background. Frames are L2-normalised like MAC features. The first
`train_fraction` of each class's videos go to "train", the rest to "test".
"""

from __future__ import annotations

import numpy as np


def synthetic_videos(
    num_classes: int = 10,
    videos_per_class: int = 20,
    feature_dim: int = 128,
    frames: tuple[int, int] = (8, 32),
    patterns_per_class: int = 3,
    noise: float = 0.8,
    background_fraction: float = 0.3,
    train_fraction: float = 0.7,
    seed: int = 0,
) -> dict[str, list[dict]]:
    """{"train": [...], "test": [...]} examples `{"id", "features" [n, D], "label"}`."""
    rng = np.random.default_rng(seed)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    patterns = unit(rng.normal(size=(num_classes, patterns_per_class, feature_dim)))
    background = unit(rng.normal(size=(8, feature_dim)))
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    num_train = round(train_fraction * videos_per_class)
    for label in range(num_classes):
        for v in range(videos_per_class):
            n = int(rng.integers(frames[0], frames[1] + 1))
            own = patterns[label, rng.integers(0, patterns_per_class, n)]
            shared = background[rng.integers(0, len(background), n)]
            mix = rng.uniform(0.3, 1.0, (n, 1)) * (rng.random((n, 1)) >= background_fraction)
            features = (
                mix * own
                + shared
                + noise * rng.normal(size=(n, feature_dim)) / np.sqrt(feature_dim / 8)
            )
            splits["train" if v < num_train else "test"].append(
                {
                    "id": f"c{label:03d}_v{v:03d}",
                    "features": unit(features).astype(np.float32),
                    "label": label,
                }
            )
    return splits
