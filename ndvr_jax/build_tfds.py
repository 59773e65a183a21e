"""Builds a TFDS dataset of features from a local download (`ndvr_jax.data.tfds_builders`).

    python -m ndvr_jax.build_tfds --dataset=ucf101_features/split1 \\
        --manual_dir=~/data/ucf101 --data_dir=tensorflow_datasets
    # as an Apache Beam pipeline (pip install 'ndvr-jax[beam]'); any Beam runner's options
    python -m ndvr_jax.build_tfds --dataset=ucf101_features/split1 \\
        --manual_dir=~/data/ucf101 --data_dir=tensorflow_datasets \\
        --beam_pipeline_options=runner=DirectRunner,direct_num_workers=2

Datasets: `ucf101_features/split{1,2,3}`, `hmdb51_features/split{1,2,3}` and
`ndvr_demo_features/{all,fold0of2,fold1of2,audio}` (a benchmark folder of `scripts/make_demo.py`,
copy groups as classes; `audio`: AuSiL segment features); array_record files that
`tfds.data_source` reads without TensorFlow (the `tfds build` command needs TensorFlow).
`--beam_pipeline_options` takes `tfds build`'s comma-separated form; without it the examples
are generated in this process.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags

from ndvr_jax.data.tfds_builders import build
from ndvr_jax.io import console

_DATASET = flags.DEFINE_string("dataset", "ucf101_features/split1", "name/config to build")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None, "the local download", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", "tensorflow_datasets", "where TFDS data go")
_BEAM = flags.DEFINE_string(
    "beam_pipeline_options", "", "build with Apache Beam: comma-separated pipeline options"
)


def main(argv: Sequence[str]) -> None:
    del argv
    console.quiet_jax()
    options = None
    if _BEAM.value:
        from ndvr_jax.data.tfds_beam import pipeline_options

        options = pipeline_options(_BEAM.value)
    builder = build(_DATASET.value, _MANUAL_DIR.value, _DATA_DIR.value, beam_options=options)
    print(f"{builder.info.full_name}: {builder.info.splits} in {builder.data_dir}")


if __name__ == "__main__":
    app.run(main)
