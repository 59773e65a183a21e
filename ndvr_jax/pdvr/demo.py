"""PDVR's part of the main job: copy localisation on the demo benchmark.

The main job's features are sampled at `extract.fps` (1 fps), too sparse for the demo's 2–4 s
compilation parts; this step extracts every demo video again at `localize.fps` into a store of
its own (`<workdir>/features`, resumable, the same backbone and frame size), runs
`ndvr_jax.pdvr.localize.localize` over all queries against the whole database, and scores VFRM,
TN and DP against the demo's `segments.json` (visual copies). Returns the scores, a markdown
table for the main report and the timeline PNG of the first compilation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ml_collections

from ndvr_jax.features.visual import extract_visual
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from ndvr_jax.pdvr import formats
from ndvr_jax.pdvr.evaluate import markdown_table
from ndvr_jax.pdvr.localize import localize

__all__ = ["localize_demo_run"]


def _split_lists(store: FeatureStore, data: Path, available: set[str]) -> tuple[str, str]:
    """`queries.txt` and `database.txt` feature lists in the store (extracted videos only)."""
    paths = []
    for name in ("queries.txt", "database.txt"):
        ids = [v for v, _ in read_id_path_list(data / name) if v in available]
        paths.append(str(store.write_list(ids, name)))
    return paths[0], paths[1]


def localize_demo_run(
    config: ml_collections.ConfigDict,
    extract_config: ml_collections.ConfigDict,
    data_dir: str | os.PathLike,
    workdir: str | os.PathLike,
) -> dict[str, Any]:
    """Localisation on the demo benchmark in `data_dir`; outputs under `workdir`.

    `config` is `configs/localize_demo.py`'s (its `fps` and `insets` are the extraction's here;
    its `output_dir` and `ground_truth` are set to `workdir` and the benchmark's `segments.json`);
    `extract_config` is the main job's extraction config (backbone, frame size, devices).
    Returns `localize`'s summary plus `table` (markdown) and `timeline` (a PNG path or None).
    """
    data, work = Path(data_dir), Path(workdir)
    extract = ml_collections.ConfigDict(extract_config.to_dict())
    extract.fps, extract.insets = config.fps, config.get("insets", False)
    extracted = extract_visual(extract, str(data / "videos.txt"), str(work / "features"))
    print(f"localisation features ({config.fps:g} fps): {extracted}", flush=True)
    store = FeatureStore(work / "features", extract.layout)
    queries, database = _split_lists(store, data, set(extracted.done) | set(extracted.skipped))
    run_config = ml_collections.ConfigDict(config.to_dict())
    run_config.update(output_dir=str(work), ground_truth=str(data / "segments.json"))
    summary = localize(run_config, queries, database)
    truth = formats.load_segments_json(run_config.ground_truth)
    compilations = [q for q, segs in truth.items() if len({s.source for s in segs}) >= 2]
    shown = sorted(compilations or truth)[:1]
    timeline = work / "timelines" / f"{shown[0]}.png" if shown and config.timelines else None
    summary["table"] = markdown_table(summary["scores"])
    summary["timeline"] = str(timeline) if timeline is not None and timeline.is_file() else None
    return summary
