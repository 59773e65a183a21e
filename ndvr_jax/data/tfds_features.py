"""Where the TFDS builders' features come from: a feature store under the builder's `manual_dir`,
with the videos that have no features yet extracted by the extract binary.

`FeatureSource` is plain data (it travels to Apache Beam workers): the store's folder and layout
(`features/<id>.npy` frame features, or `audio_features/<id>/wlaf.npz` AuSiL segment features)
and the extract command, which `ensure` runs on a temporary `<id> <path>` list of the missing
videos (`--video_list=... --output_dir=<store>`).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ndvr_jax.io.store import FeatureStore, write_id_path_list

DEFAULT_EXTRACT_COMMAND = (
    sys.executable,
    "-m",
    "ndvr_jax.extract",
    "--config=configs/extract.py",
)
Entry = tuple[str, str]  # (video id, video path: absolute, or relative to manual_dir)


@dataclasses.dataclass(frozen=True)
class FeatureSource:
    """A feature store under `manual_dir`, filled by `command` for videos without features."""

    manual_dir: str
    folder: str = "features"
    layout: str = "ndvr-dml"  # ndvr-dml (frames, <id>.npy) | ausil (segments, <id>/wlaf.npz)
    command: tuple[str, ...] = DEFAULT_EXTRACT_COMMAND

    def store(self) -> FeatureStore:
        """The feature store."""
        return FeatureStore(Path(self.manual_dir) / self.folder, self.layout)

    def ensure(self, entries: Sequence[Entry]) -> FeatureStore:
        """The store, after extracting the videos of `entries` that have no features (one run of
        the command for all of them; concurrent calls each write their own list)."""
        store = self.store()
        missing = [(v, p) for v, p in entries if not store.feature_path(v).is_file()]
        if missing:
            with tempfile.TemporaryDirectory() as tmp:
                video_list = Path(tmp) / "missing_videos.txt"
                root = Path(self.manual_dir)
                write_id_path_list(video_list, [(v, str(root / p)) for v, p in missing])
                subprocess.run(
                    [*self.command, f"--video_list={video_list}", f"--output_dir={store.root}"],
                    check=True,
                )
        return store
