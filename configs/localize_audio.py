"""Audio copy localisation with landmarks: which spans of each query's sound copy which database
videos, and where (`ndvr_jax.landmarks.localize`).

    python -m ndvr_jax.extract --config=configs/extract.py --config.mode=landmarks \
        --video_list=demo_data/videos.txt --output_dir=demo_landmarks
    grep -P '^q' demo_landmarks/feature_files.txt > demo_landmarks/queries.txt
    grep -P '^db' demo_landmarks/feature_files.txt > demo_landmarks/database.txt
    python -m ndvr_jax.localize --config=configs/localize_audio.py \
        --queries=demo_landmarks/queries.txt --database=demo_landmarks/database.txt \
        --config.ground_truth=demo_data/segments.json --config.output_dir=localize_audio

Writes `segments_landmarks.json`, `matches_landmarks.csv` (VSC), `boxes_landmarks.json` (VCSL),
`timelines/<query>.png` and `summary.json`. `spans` are `SpanRule`'s fields.
"""

import ml_collections

from ndvr_jax.landmarks.localize import default_audio_localize_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    del arg  # nothing to shrink: no network, no training
    return default_audio_localize_config()
