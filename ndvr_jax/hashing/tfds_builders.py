"""TFDS builders of frame features from a user's local UCF101 / HMDB51 download, and of the
toolkit's own benchmarks (`ndvr_demo_features`: copy groups as classes); no TensorFlow.

Nothing is downloaded: the videos and the official split files are read from `manual_dir`, and
every video's frame features `[n, D]` come from `<manual_dir>/features/<video_id>.npy` (the
extract binary's `ndvr-dml` layout). Videos without a feature file are extracted first by running
the extract binary (`extract_command`) on them. Examples: `{"id": text, "features": float32
[n, D] Tensor, "label": ClassLabel}`, stored as array_record, read back with
`tfds.data_source(...)`. One builder config per official split (split1, split2, split3).

    python -m ndvr_jax.build_tfds --dataset=ucf101_features/split1 \
        --manual_dir=~/data/ucf101 --data_dir=tensorflow_datasets

(The `tfds build` command line needs TensorFlow; this one does not.)

Layouts under `manual_dir`:
  UCF101   UCF-101/<Class>/<video>.avi; ucfTrainTestlist/classInd.txt ("1 ApplyEyeMakeup"),
           trainlist0<k>.txt ("<Class>/<video>.avi 1"), testlist0<k>.txt ("<Class>/<video>.avi").
  HMDB51   hmdb51_org/<class>/<video>.avi; testTrainMulti_7030_splits/<class>_test_split<k>.txt
           ("<video>.avi <0|1|2>": 1 train, 2 test, 0 unused).
"""

from __future__ import annotations

import abc
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from ndvr_jax.data.annotations import copy_group_labels, load_annotation
from ndvr_jax.io.store import FeatureStore, read_id_path_list, write_id_path_list

Items = dict[str, list[tuple[str, int]]]  # split -> [(path relative to manual_dir, label)]
DEFAULT_EXTRACT_COMMAND = (
    sys.executable,
    "-m",
    "ndvr_jax.extract",
    "--config=configs/extract.py",
)


@dataclasses.dataclass
class SplitConfig(tfds.core.BuilderConfig):
    """Which official split, and how missing features are extracted."""

    split: int = 1
    extract_command: tuple[str, ...] = DEFAULT_EXTRACT_COMMAND


SPLIT_CONFIGS = [SplitConfig(name=f"split{k}", split=k) for k in (1, 2, 3)]


def video_id(path: str) -> str:
    """The id of a video file: its name without the extension."""
    return Path(path).stem


def video_features(label: tfds.features.FeatureConnector) -> tfds.features.FeaturesDict:
    """An example of every builder: its id, its frame features `[n, D]` and its `label`."""
    return tfds.features.FeaturesDict(
        {
            "id": tfds.features.Text(),
            "features": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="zlib"),
            "label": label,
        }
    )


def ensure_features(manual_dir: Path, paths: list[str], command: tuple[str, ...]) -> FeatureStore:
    """The feature store of `manual_dir`, after extracting the videos that have no features."""
    store = FeatureStore(manual_dir / "features")
    missing = [p for p in paths if not store.feature_path(video_id(p)).is_file()]
    if missing:
        video_list = store.root / "missing_videos.txt"
        write_id_path_list(video_list, [(video_id(p), str(manual_dir / p)) for p in missing])
        subprocess.run(
            [*command, f"--video_list={video_list}", f"--output_dir={store.root}"], check=True
        )
    return store


class _ActionFeatures(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Shared builder: class folders + split lists -> feature examples."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = SPLIT_CONFIGS

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=video_features(tfds.features.ClassLabel(num_classes=self.NUM_CLASSES)),
            supervised_keys=("features", "label"),
        )

    @abc.abstractmethod
    def _split_items(self, manual_dir: Path) -> Items:
        """Every split's videos (paths relative to manual_dir) and labels."""

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = Path(dl_manager.manual_dir)
        items = self._split_items(manual_dir)
        paths = [p for split in items.values() for p, _ in split]
        store = ensure_features(manual_dir, paths, tuple(self.builder_config.extract_command))
        return {split: self._generate_examples(store, rows) for split, rows in items.items()}

    def _generate_examples(self, store: FeatureStore, rows: list[tuple[str, int]]) -> Iterator:
        for path, label in rows:
            vid = video_id(path)
            yield vid, {"id": vid, "features": store.load(vid), "label": label}


class Ucf101Features(_ActionFeatures):
    """UCF101 (101 actions) frame features; official splits 1-3."""

    NUM_CLASSES = 101
    MANUAL_DOWNLOAD_INSTRUCTIONS = """Put UCF-101/ (class folders of .avi files) and
    ucfTrainTestlist/ (classInd.txt, trainlist0k.txt, testlist0k.txt) in manual_dir."""

    def _split_items(self, manual_dir: Path) -> Items:
        lists = manual_dir / "ucfTrainTestlist"
        classes = {}
        for line in (lists / "classInd.txt").read_text().split("\n"):
            if line.strip():
                number, name = line.split()
                classes[name] = int(number) - 1
        k = self.builder_config.split
        items: Items = {}
        for split, name in (("train", f"trainlist0{k}.txt"), ("test", f"testlist0{k}.txt")):
            rows = [line.split()[0] for line in (lists / name).read_text().split("\n") if line]
            items[split] = [(f"UCF-101/{p}", classes[p.split("/")[0]]) for p in rows]
        return items


class Hmdb51Features(_ActionFeatures):
    """HMDB51 (51 actions) frame features; official 70/30 splits 1-3."""

    NUM_CLASSES = 51
    MANUAL_DOWNLOAD_INSTRUCTIONS = """Put hmdb51_org/ (class folders of .avi files) and
    testTrainMulti_7030_splits/ (<class>_test_split<k>.txt) in manual_dir."""

    def _split_items(self, manual_dir: Path) -> Items:
        k = self.builder_config.split
        files = sorted((manual_dir / "testTrainMulti_7030_splits").glob(f"*_test_split{k}.txt"))
        names = [f.name.removesuffix(f"_test_split{k}.txt") for f in files]  # label = sorted order
        items: Items = {"train": [], "test": []}
        for label, (name, file) in enumerate(zip(names, files, strict=True)):
            for line in file.read_text().split("\n"):
                if line.strip():
                    video, role = line.split()
                    if role in ("1", "2"):
                        split = "train" if role == "1" else "test"
                        items[split].append((f"hmdb51_org/{name}/{video}", label))
        return items


@dataclasses.dataclass
class FoldConfig(tfds.core.BuilderConfig):
    """Which queries are held out (`fold` of `folds`; folds = 1: none) and which form no class."""

    fold: int = 0
    folds: int = 1
    max_relevant: int = 2
    extract_command: tuple[str, ...] = DEFAULT_EXTRACT_COMMAND


class NdvrDemoFeatures(tfds.core.GeneratorBasedBuilder):
    """A benchmark in the toolkit's demo layout (`scripts/make_demo.py`): frame features, with
    copy groups as classes (`ndvr_jax.data.annotations.copy_group_labels`; -1: in no group).

    Splits: `train` (every video, labelled from the annotations of the queries not held out),
    `database` and `queries` (the held-out fold's queries, or all with `folds` = 1). Relevance for
    scoring is the benchmark's `annotation.json`, not the class (`data.annotation_file`).
    """

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [
        FoldConfig(name="all"),
        *(FoldConfig(name=f"fold{f}of2", fold=f, folds=2) for f in range(2)),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """manual_dir: a benchmark folder written by
    scripts/make_demo.py (videos.txt, queries.txt, database.txt, annotation.json); frame features
    missing from <manual_dir>/features are extracted."""

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=video_features(tfds.features.Scalar(dtype=np.int64)),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root, config = Path(dl_manager.manual_dir), self.builder_config
        queries = read_id_path_list(root / "queries.txt")
        database = read_id_path_list(root / "database.txt")
        query_ids = {v for v, _ in queries}
        everything = queries + [(v, p) for v, p in database if v not in query_ids]
        held_out = queries[config.fold :: config.folds]
        held_ids = {v for v, _ in held_out} if config.folds > 1 else set()
        annotation = load_annotation(root / "annotation.json")
        training = {q: labels for q, labels in annotation.items() if q not in held_ids}
        ids = [v for v, _ in everything]
        labels = dict(zip(ids, copy_group_labels(training, ids, max_relevant=config.max_relevant),
                          strict=True))  # fmt: skip
        store = ensure_features(root, [p for _, p in everything], tuple(config.extract_command))
        rows = lambda entries: [(v, int(labels[v])) for v, _ in entries]  # noqa: E731
        return {
            "train": self._generate_examples(store, rows(everything)),
            "database": self._generate_examples(store, rows(database)),
            "queries": self._generate_examples(store, rows(held_out)),
        }

    def _generate_examples(self, store: FeatureStore, rows: list[tuple[str, int]]) -> Iterator:
        for vid, label in rows:
            yield vid, {"id": vid, "features": store.load(vid), "label": label}


def build(dataset: str, manual_dir: str, data_dir: str) -> tfds.core.DatasetBuilder:
    """Builds `dataset` (e.g. "ucf101_features/split1") as array_record into `data_dir`."""
    builder = tfds.builder(dataset, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(Path(manual_dir).expanduser()))
    )
    return builder
