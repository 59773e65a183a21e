"""Dataset descriptions: the originals' benchmarks and the toolkit's own format.

- `cc_web`: CC_WEB_VIDEO from `cc_web_video.pickle` or the raw `Seed.txt`/`Video_List.txt`/`GT/`.
- `vcdb`: VCDB from `vcdb.pickle` or the raw annotation CSVs.
- `generic`: the toolkit's JSON dataset format (FIVR-style `annotation.json`: `..annotations`).

Pickles are read only through `ndvr_jax.data.safe_pickle`, which refuses anything but plain data.
"""

from ndvr_jax.data.datasets.cc_web import CCWebVideo, load_cc_web_pickle, read_cc_web_raw
from ndvr_jax.data.datasets.generic import (
    DatasetError,
    GenericDataset,
    load_generic_dataset,
    save_generic_dataset,
)
from ndvr_jax.data.datasets.vcdb import (
    VCDB,
    SegmentPair,
    load_vcdb_pickle,
    read_vcdb_annotations,
    vcdb_from_annotations,
)

__all__ = [
    "VCDB",
    "CCWebVideo",
    "DatasetError",
    "GenericDataset",
    "SegmentPair",
    "load_cc_web_pickle",
    "load_generic_dataset",
    "load_vcdb_pickle",
    "read_cc_web_raw",
    "read_vcdb_annotations",
    "save_generic_dataset",
    "vcdb_from_annotations",
]
