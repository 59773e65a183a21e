"""Triplet generation binary (the original's `triplet_generator.py`); see `ndvr_jax.dml.generation`.

    python -m ndvr_jax.triplets --dataset=vcdb --dataset_path=datasets/vcdb.pickle \\
        --feature_files=vcdb_features/feature_files.txt --output_dir=output_data/
    python -m ndvr_jax.triplets --dataset=annotation --dataset_path=annotation.json \\
        --queries=queries.txt --database=database.txt \\
        --feature_files=feature_files.txt --output_dir=output_data/ [--positive_labels=ND,DS]

Datasets: `vcdb` (pickle, or a folder of raw annotation CSVs), `cc_web_video` (pickle, or the raw
folder), `annotation` (FIVR-style JSON with id lists) and `generic` (the toolkit's dataset JSON,
one query set per group of `--split`). Exit status 2 on a dataset or feature error.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags

from ndvr_jax.data.benchmarks import DATASETS
from ndvr_jax.dml.generation import generate
from ndvr_jax.io import console

flags.DEFINE_enum("dataset", None, DATASETS, "Which dataset the feature list covers.")
flags.DEFINE_string("feature_files", None, "File of `<video_id>\\t<path.npy>` lines.")
flags.DEFINE_string("output_dir", None, "Where the .npy outputs go.")
flags.DEFINE_string("dataset_path", None, "Pickle, raw folder, annotation.json or dataset.json.")
flags.DEFINE_string("name", None, "Output prefix (default: the dataset name).")
flags.DEFINE_string("queries", None, "annotation: id list of the queries.")
flags.DEFINE_string("database", None, "annotation: id list of the database videos.")
flags.DEFINE_string("split", None, "generic: the split to generate from (default: all).")
flags.DEFINE_list("positive_labels", ["ND", "DS"], "annotation: positive labels.")
flags.DEFINE_list("negative_labels", [], "annotation: negative labels (default: unlabelled).")
flags.DEFINE_float("threshold", 0.8, "vcdb: minimum overlap of a positive pair in both videos.")
flags.DEFINE_float("min_positive_distance", 0.1, "Skip positive pairs closer than this.")
flags.DEFINE_integer("max_relevant", 2, "annotation groups: leave out queries with more.")
flags.DEFINE_enum("missing", "error", ["error", "zeros"], "Videos without features.")
flags.DEFINE_float("fps", 1.0, "vcdb raw annotations: frames per second of the features.")
flags.mark_flags_as_required(["dataset", "feature_files", "output_dir"])
_OPTIONS = (
    "dataset_path", "name", "queries", "database", "split", "positive_labels", "negative_labels",
    "threshold", "min_positive_distance", "max_relevant", "missing", "fps",
)  # fmt: skip


def main(argv: Sequence[str]) -> None:
    del argv
    console.quiet_jax()
    f = flags.FLAGS
    try:
        out = generate(
            f.dataset, f.feature_files, f.output_dir, **{k: f[k].value for k in _OPTIONS}
        )
    except console.USAGE_ERRORS as e:  # DatasetError, FeatureError are ValueErrors
        console.exit_with_error(e)
    written = ", ".join(map(str, (out.features, out.triplets, out.ids, out.groups)))
    print(f"{out.num_triplets} triplets; wrote {written}")


if __name__ == "__main__":
    app.run(main)
