"""AuSiL on the demo benchmark: audio extraction -> PCA whitening -> training -> similarity -> DAVR.

Step by step from the command line (the demo benchmark is built by `scripts/make_demo.py`):

    python scripts/make_demo.py --out demo_data --size small
    python -m ndvr_jax.extract --config=configs/extract.py --config.mode=audio \
        --video_list=demo_data/videos.txt --output_dir=ausil_run/features
    python -m ndvr_jax.train --config=configs/ausil_demo.py --workdir=ausil_run
    python -m ndvr_jax.similarity --system=ausil --model_dir=ausil_run \
        --queries=demo_data/queries.txt --database=demo_data/database.txt \
        --features_dir=ausil_run/features --output=ausil_run/similarities.json
    python -m ndvr_jax.evaluate --dataset=annotation --dataset_path=demo_data/annotation.json \
        --queries=demo_data/queries.txt --database=demo_data/database.txt \
        --similarities=ausil=ausil_run/similarities.json --protocols=DAVR

or all of it in one process: `ndvr_jax.ausil.demo.ausil_demo_run(config, data_dir, workdir)`.
`--config=configs/ausil_demo.py:runlocal` is the tiny variant (tiny benchmark, a few steps).
Paths may contain `{workdir}` and `{data_dir}`; the loop's keys are `ndvr_jax.training.loop`'s.
"""

import ml_collections

from ndvr_jax.config_files import sibling_config
from ndvr_jax.training.loop import default_train_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    runlocal = arg == "runlocal"
    config = default_train_config()
    config.task = "ausil"
    # Data: the demo benchmark (`ausil_demo_run` builds it with this seed and size).
    config.data_dir = "demo_data"
    config.data_seed = 0
    config.size = "tiny" if runlocal else "small"
    config.features_dir = "{workdir}/features"  # an `ausil` store (extract --config.mode=audio)
    config.annotation_file = "{data_dir}/annotation.json"
    config.database_list = "{data_dir}/database.txt"  # ids of the negatives' pool ("" = all)
    config.video_list = "{data_dir}/videos.txt"  # raw files for augmentation ("" = none)
    config.extract = sibling_config(__file__, "extract", arg)
    config.extract.mode = "audio"
    config.landmarks = True  # also the shipped AuSiL + audio landmarks (`ndvr_jax.landmarks`)
    config.holdout_every = 2  # every 2nd annotated query is kept out of training (0 = none)
    # Where the segment features come from: the `features_dir` store, or a TFDS source read
    # through grain (`configs/ausil_demo_tfds.py`: `ndvr_demo_features/audio`).
    config.data = ml_collections.ConfigDict(
        dict(
            source="store",  # store | tfds
            tfds_name="ndvr_demo_features/audio",
            tfds_data_dir="tensorflow_datasets",
            train_split="train",
        )
    )

    # Model and loss.
    config.pca_dims = 32 if runlocal else 64  # capped at (number of segments - 1)
    config.margin = 0.5
    config.reg_weight = 0.5
    config.max_segments = 32  # longer videos are cut to a random span of this many segments

    # Waveform augmentation: distorted random spans of database videos as extra anchors.
    config.augment = ml_collections.ConfigDict(dict(copies_per_video=2, min_seconds=4.0))

    # Training loop.
    config.num_steps = 4 if runlocal else 300
    config.batch_size = 8 if runlocal else 16
    config.log_every = 2 if runlocal else 25
    config.checkpoint_every = 2 if runlocal else 100
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 3e-4

    # Similarity: pairs per compiled batch (a multiple of the device count).
    config.similarity = ml_collections.ConfigDict(dict(batch_size=16, num_devices=0))
    if runlocal:
        config.augment.copies_per_video = 1
        config.augment.min_seconds = 2.0
        config.similarity.batch_size = 8
    return config
