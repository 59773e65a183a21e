"""Fits PCA whitening of regional MAC vectors on a corpus, for `--system=regional`.

    python -m ndvr_jax.extract --config=configs/extract.py --config.regions=3 \\
        --video_list=corpus_videos.txt --output_dir=corpus_regions/
    python -m ndvr_jax.fit_region_pca --features=corpus_regions/feature_files.txt \\
        --output=region_pca.npz [--components=512]
    python -m ndvr_jax.similarity --system=regional --region_pca=region_pca.npz ...

Fit on unlabelled videos, never on the test set. Exit status 2 on bad input.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags

from ndvr_jax.ausil.model import PCAWhitening
from ndvr_jax.io import console
from ndvr_jax.regional.features import fit_region_whitening

_FEATURES = flags.DEFINE_string("features", None, "Feature list of regional ([T, R, D]) features.")
_OUTPUT = flags.DEFINE_string("output", "region_pca.npz", "Where to write the whitening.")
_COMPONENTS = flags.DEFINE_integer("components", 0, "Components to keep (0: all, at most D).")
_MAX_VECTORS = flags.DEFINE_integer("max_vectors", 200_000, "Region vectors sampled to fit on.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "float16"], "Stored precision.")


def main(argv: Sequence[str]) -> None:
    del argv
    console.quiet_jax()
    if not _FEATURES.value:
        raise app.UsageError("--features is required")
    try:
        pca = fit_region_whitening(_FEATURES.value, _COMPONENTS.value or None, _MAX_VECTORS.value)
    except console.USAGE_ERRORS as e:
        console.exit_with_error(e)
    stored = PCAWhitening(pca.mean.astype(_DTYPE.value), pca.weights.astype(_DTYPE.value))
    stored.save(_OUTPUT.value)
    print(f"region whitening {pca.weights.shape} in {_OUTPUT.value}")


if __name__ == "__main__":
    app.run(main)
