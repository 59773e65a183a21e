"""The TFDS builders' examples as an Apache Beam pipeline (`ndvr_jax.data.tfds_builders`).

One stage reads every video of the builder once, whichever splits list it: the videos go in
batches (`beam.BatchElements`, at most `batch_size`) to a DoFn that extracts the missing features
of its batch (one run of the extract binary per batch, `FeatureSource.ensure`) and loads them.
Each split is then that `(id, features)` collection filtered to the split's videos and labelled.
TFDS writes the splits (array_record), as without Beam. Needs `apache-beam` (the `beam` extra).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
import numpy as np

from ndvr_jax.data.tfds_features import Entry, FeatureSource

KeyExample = tuple[str, dict[str, Any]]


class ExtractAndLoad(beam.DoFn):
    """A batch of `(id, path)` entries -> `(id, features)` of each, extracting missing ones."""

    def __init__(self, source: FeatureSource):
        super().__init__()
        self.source = source

    def process(self, entries: Sequence[Entry]) -> Iterator[tuple[str, np.ndarray]]:
        store = self.source.ensure(entries)
        for video_id, _ in entries:
            yield video_id, store.load(video_id)


class SharedFeatures:
    """The `(id, features)` collection of every video, made once per pipeline for all splits."""

    def __init__(self, source: FeatureSource, entries: Sequence[Entry], batch_size: int):
        self.source, self.entries, self.batch_size = source, list(entries), batch_size
        self._made: tuple[beam.Pipeline, beam.PCollection] | None = None

    def of(self, pipeline: beam.Pipeline) -> beam.PCollection:
        if self._made is None or self._made[0] is not pipeline:
            features = (
                pipeline
                | "Videos" >> beam.Create(self.entries)
                | "Batches" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
                | "ExtractAndLoad" >> beam.ParDo(ExtractAndLoad(self.source))
            )
            self._made = (pipeline, features)
        return self._made[1]


def _labelled(item: tuple[str, np.ndarray], labels: Mapping[str, int]) -> Iterator[KeyExample]:
    video_id, features = item
    if video_id in labels:
        yield video_id, {"id": video_id, "features": features, "label": labels[video_id]}


class SplitExamples(beam.PTransform):
    """A split's `(key, example)` collection: the shared features of its videos, labelled."""

    def __init__(self, shared: SharedFeatures, labels: Mapping[str, int]):
        super().__init__()
        self.shared, self.labels = shared, dict(labels)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return self.shared.of(pbegin.pipeline) | "Label" >> beam.FlatMap(
            _labelled, labels=self.labels
        )


def pipeline_options(text: str) -> beam.options.pipeline_options.PipelineOptions:
    """Beam options from `tfds build`'s comma-separated form ("runner=DirectRunner,...")."""
    flags = [f"--{option.strip()}" for option in text.split(",") if option.strip()]
    return beam.options.pipeline_options.PipelineOptions(flags=flags)
