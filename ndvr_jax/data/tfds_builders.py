"""TFDS builders of frame features from a user's local UCF101 / HMDB51 download, and of the
toolkit's own benchmarks (`ndvr_demo_features`: copy groups as classes); no TensorFlow.

Nothing is downloaded: the videos and the official split files are read from `manual_dir`, and
every video's features come from a feature store under it (`ndvr_jax.data.tfds_features`:
`<manual_dir>/features/<id>.npy`, the extract binary's `ndvr-dml` layout; the demo builder's
`audio` config reads AuSiL segment features from `<manual_dir>/audio_features/<id>/wlaf.npz`).
Videos without features are extracted first by running the extract binary (`extract_command`)
on them. Examples: `{"id": text, "features": float32 [n, D] Tensor, "label": ClassLabel or
int64}`, stored as array_record, read back with `tfds.data_source(...)`. One builder config per
official split (split1, split2, split3).

    python -m ndvr_jax.build_tfds --dataset=ucf101_features/split1 \
        --manual_dir=~/data/ucf101 --data_dir=tensorflow_datasets

With Beam options in the download config (`build(..., beam_options=...)`, `build_tfds
--beam_pipeline_options=...` or `tfds build ... --beam_pipeline_options=...`) every builder
generates its examples as an Apache Beam pipeline (`ndvr_jax.data.tfds_beam`: extraction and
loading per batch of videos inside a DoFn, so workers share a large collection); without, in
this process. Both write the same array_record files.

Layouts under `manual_dir`:
  UCF101   UCF-101/<Class>/<video>.avi; ucfTrainTestlist/classInd.txt ("1 ApplyEyeMakeup"),
           trainlist0<k>.txt ("<Class>/<video>.avi 1"), testlist0<k>.txt ("<Class>/<video>.avi").
  HMDB51   hmdb51_org/<class>/<video>.avi; testTrainMulti_7030_splits/<class>_test_split<k>.txt
           ("<video>.avi <0|1|2>": 1 train, 2 test, 0 unused).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from ndvr_jax.data.annotations import copy_group_labels, load_annotation
from ndvr_jax.data.tfds_features import DEFAULT_EXTRACT_COMMAND, FeatureSource
from ndvr_jax.io.store import FeatureStore, read_id_path_list

Row = tuple[str, str, int]  # (video id, path: absolute or relative to manual_dir, label)
BEAM_BATCH_SIZE = 64  # videos per extract run in a Beam worker


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
    """An example of every builder: its id, its features `[n, D]` and its `label`."""
    return tfds.features.FeaturesDict(
        {
            "id": tfds.features.Text(),
            "features": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="zlib"),
            "label": label,
        }
    )


class _VideoFeatureBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """What every builder shares: the rows of each split -> examples of a feature store, in this
    process or (with Beam options) as a Beam pipeline."""

    _beam = False

    @abc.abstractmethod
    def _split_rows(self, manual_dir: Path) -> dict[str, list[Row]]:
        """Every split's videos and labels."""

    def _feature_source(self, manual_dir: Path) -> FeatureSource:
        return FeatureSource(str(manual_dir), command=tuple(self.builder_config.extract_command))

    def _generate_splits(self, dl_manager, download_config):
        self._beam = bool(download_config.beam_runner or download_config.beam_options)
        return super()._generate_splits(dl_manager, download_config)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = Path(dl_manager.manual_dir)
        splits = self._split_rows(manual_dir)
        entries = list(
            {vid: (vid, path) for rows in splits.values() for vid, path, _ in rows}.values()
        )
        source = self._feature_source(manual_dir)
        if self._beam:
            from ndvr_jax.data import tfds_beam

            shared = tfds_beam.SharedFeatures(source, entries, BEAM_BATCH_SIZE)
            return {
                split: tfds_beam.SplitExamples(shared, {vid: label for vid, _, label in rows})
                for split, rows in splits.items()
            }
        store = source.ensure(entries)
        return {split: self._generate_examples(store, rows) for split, rows in splits.items()}

    def _generate_examples(self, store: FeatureStore, rows: list[Row]) -> Iterator:
        for vid, _, label in rows:
            yield vid, {"id": vid, "features": store.load(vid), "label": label}


class _ActionFeatures(_VideoFeatureBuilder, skip_registration=True):
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
    def _split_items(self, manual_dir: Path) -> dict[str, list[tuple[str, int]]]:
        """Every split's videos (paths relative to manual_dir) and labels."""

    def _split_rows(self, manual_dir: Path) -> dict[str, list[Row]]:
        items = self._split_items(manual_dir)
        return {
            split: [(video_id(p), p, label) for p, label in rows] for split, rows in items.items()
        }


class Ucf101Features(_ActionFeatures):
    """UCF101 (101 actions) frame features; official splits 1-3."""

    NUM_CLASSES = 101
    MANUAL_DOWNLOAD_INSTRUCTIONS = """Put UCF-101/ (class folders of .avi files) and
    ucfTrainTestlist/ (classInd.txt, trainlist0k.txt, testlist0k.txt) in manual_dir."""

    def _split_items(self, manual_dir: Path) -> dict[str, list[tuple[str, int]]]:
        lists = manual_dir / "ucfTrainTestlist"
        classes = {}
        for line in (lists / "classInd.txt").read_text().split("\n"):
            if line.strip():
                number, name = line.split()
                classes[name] = int(number) - 1
        k = self.builder_config.split
        items = {}
        for split, name in (("train", f"trainlist0{k}.txt"), ("test", f"testlist0{k}.txt")):
            rows = [line.split()[0] for line in (lists / name).read_text().split("\n") if line]
            items[split] = [(f"UCF-101/{p}", classes[p.split("/")[0]]) for p in rows]
        return items


class Hmdb51Features(_ActionFeatures):
    """HMDB51 (51 actions) frame features; official 70/30 splits 1-3."""

    NUM_CLASSES = 51
    MANUAL_DOWNLOAD_INSTRUCTIONS = """Put hmdb51_org/ (class folders of .avi files) and
    testTrainMulti_7030_splits/ (<class>_test_split<k>.txt) in manual_dir."""

    def _split_items(self, manual_dir: Path) -> dict[str, list[tuple[str, int]]]:
        k = self.builder_config.split
        files = sorted((manual_dir / "testTrainMulti_7030_splits").glob(f"*_test_split{k}.txt"))
        names = [f.name.removesuffix(f"_test_split{k}.txt") for f in files]  # label = sorted order
        items: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
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
    """Which queries are held out (`fold` of `folds`; folds = 1: none), which form no class, and
    which features: `visual` frame features, or `audio` AuSiL segment features (classes from
    the `DA` copies)."""

    fold: int = 0
    folds: int = 1
    max_relevant: int = 2
    modality: str = "visual"
    extract_command: tuple[str, ...] = DEFAULT_EXTRACT_COMMAND


MODALITIES: dict[str, dict[str, Any]] = {
    "visual": dict(folder="features", layout="ndvr-dml", labels=("ND", "DS"), extra=()),
    "audio": dict(folder="audio_features", layout="ausil", labels=("DA",),
                  extra=("--config.mode=audio",)),
}  # fmt: skip


class NdvrDemoFeatures(_VideoFeatureBuilder):
    """A benchmark in the toolkit's demo layout (`scripts/make_demo.py`): frame features (or, in
    config `audio`, AuSiL audio segment features), with copy groups as classes
    (`ndvr_jax.data.annotations.copy_group_labels`; -1: in no group).

    Splits: `train` (every video, labelled from the annotations of the queries not held out),
    `database` and `queries` (the held-out fold's queries, or all with `folds` = 1). Relevance for
    scoring is the benchmark's `annotation.json`, not the class (`data.annotation_file`).
    """

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [
        FoldConfig(name="all"),
        *(FoldConfig(name=f"fold{f}of2", fold=f, folds=2) for f in range(2)),
        FoldConfig(name="audio", modality="audio"),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """manual_dir: a benchmark folder written by
    scripts/make_demo.py (videos.txt, queries.txt, database.txt, annotation.json); features
    missing from <manual_dir>/features (audio: <manual_dir>/audio_features) are extracted."""

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=video_features(tfds.features.Scalar(dtype=np.int64)),
        )

    def _feature_source(self, manual_dir: Path) -> FeatureSource:
        config = self.builder_config
        modality = MODALITIES[config.modality]
        return FeatureSource(
            str(manual_dir),
            modality["folder"],
            modality["layout"],
            (*config.extract_command, *modality["extra"]),
        )

    def _split_rows(self, manual_dir: Path) -> dict[str, list[Row]]:
        config = self.builder_config
        queries = read_id_path_list(manual_dir / "queries.txt")
        database = read_id_path_list(manual_dir / "database.txt")
        query_ids = {v for v, _ in queries}
        everything = queries + [(v, p) for v, p in database if v not in query_ids]
        held_out = queries[config.fold :: config.folds]
        held_ids = {v for v, _ in held_out} if config.folds > 1 else set()
        annotation = load_annotation(manual_dir / "annotation.json")
        training = {q: labels for q, labels in annotation.items() if q not in held_ids}
        ids = [v for v, _ in everything]
        copies = MODALITIES[config.modality]["labels"]
        labels = copy_group_labels(training, ids, copies, max_relevant=config.max_relevant)
        label = dict(zip(ids, labels.tolist(), strict=True))
        rows = lambda entries: [(v, p, label[v]) for v, p in entries]  # noqa: E731
        return {"train": rows(everything), "database": rows(database), "queries": rows(held_out)}


def build(
    dataset: str, manual_dir: str | Path, data_dir: str, beam_options: Any = None
) -> tfds.core.DatasetBuilder:
    """Builds `dataset` (e.g. "ucf101_features/split1") as array_record into `data_dir`; with
    `beam_options` (Beam `PipelineOptions`) as a Beam pipeline."""
    builder = tfds.builder(dataset, data_dir=data_dir, file_format="array_record")
    download_config = tfds.download.DownloadConfig(
        manual_dir=str(Path(manual_dir).expanduser()), beam_options=beam_options
    )
    builder.download_and_prepare(download_config=download_config)
    return builder
