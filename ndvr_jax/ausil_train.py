"""Trains AuSiL on extracted audio segment features and an annotation (DA = positives).

    python -m ndvr_jax.ausil_train --config=configs/ausil_demo.py --workdir=ausil_run

Reads `config.features_dir` (an `ausil` store from `python -m ndvr_jax.extract
--config.mode=audio`), `config.annotation_file` and, for waveform augmentation,
`config.video_list`. Writes `<workdir>/pca.npz`, checkpoints (a rerun resumes), metrics and
`<workdir>/ausil_model.npz`. See `ndvr_jax.ausil_training`.
"""

from __future__ import annotations

from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.ausil_training import train_ausil

_CONFIG = config_flags.DEFINE_config_file("config", "configs/ausil_demo.py", "Training config.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, PCA, metrics and the model.")


def main(argv: list[str]) -> None:
    del argv
    if not _WORKDIR.value:
        raise app.UsageError("--workdir is required")
    _, history = train_ausil(_CONFIG.value, _WORKDIR.value)
    if history:
        print({k: round(v, 4) for k, v in history[-1].items()}, flush=True)
    print(f"model written to {_WORKDIR.value}/ausil_model.npz", flush=True)


if __name__ == "__main__":
    app.run(main)
