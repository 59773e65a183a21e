"""mAP@k against code length: learned hashing codes vs ITQ codes vs float global vectors.

    python -m ndvr_jax.hashing.report --config=configs/hashing_base.py:runlocal \
        --workdir=/tmp/hashing_report --bits=64,128,256,512
    python -m ndvr_jax.hashing.report --config=configs/hashing_base.py --workdir=runs/report \
        --config.data.kind=demo --config.data.demo_dir=demo_data \
        --config.data.features_dir=demo_run/features

For every bit length the hashing network is trained (`run_training`, in `<workdir>/<bits>`; the
triplet margin scales with the bits) and its codes ranked by Hamming distance. Baselines on the
same videos: ITQ codes of the videos' global vectors (`ndvr_jax.search.global_vectors`, fitted
on the training videos; only where bits <= min(videos, dims)) and the float32 global vectors
ranked by cosine. Writes `report.md` and `report.json`; prints the table.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.hashing import evaluate
from ndvr_jax.hashing.data import video_id
from ndvr_jax.hashing.sources import VideoSets, load_video_sets
from ndvr_jax.hashing.training import relevance_of, run_training
from ndvr_jax.io.atomic import atomic_write, save_json_atomic
from ndvr_jax.search import global_vectors

_CONFIG = config_flags.DEFINE_config_file("config", None, "hashing base config file")
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder", required=True)
_BITS = flags.DEFINE_list("bits", ["64", "128", "256", "512"], "code lengths")

Row = dict[str, Any]


def _vectors(source) -> np.ndarray:
    return global_vectors([np.asarray(source[i]["features"]) for i in range(len(source))])


def baseline_rows(sets: VideoSets, bits: Sequence[int], ks: Sequence[int]) -> list[Row]:
    """ITQ codes per bit length (where they fit) and the float global vectors."""
    train, database, queries = (_vectors(s) for s in (sets.train, sets.database, sets.queries))
    ids = lambda source: [video_id(source[i]) for i in range(len(source))]
    relevance, mask = relevance_of(sets, ids(sets.queries), ids(sets.database))
    rows = []
    for n in bits:
        if n > min(train.shape):
            continue
        itq = evaluate.fit_itq(train, n)
        scores = evaluate.hamming_metrics(
            evaluate.itq_codes(itq, queries), evaluate.itq_codes(itq, database), relevance, mask, ks
        )
        rows.append({"method": "ITQ (global vector)", "bits": n, **scores})
    float_scores = evaluate.retrieval_metrics(queries @ database.T, relevance, mask, ks)
    rows.append({"method": "float32 global vector", "bits": 32 * train.shape[1], **float_scores})
    return rows


def markdown_table(rows: Sequence[Row], ks: Sequence[int]) -> str:
    """The rows as a markdown table (bytes per video from the bits)."""
    columns = [f"mAP@{k}" for k in ks] + ["mAP"]
    lines = [
        "| method | bits | bytes/video | " + " | ".join(columns) + " |",
        "|---|---:|---:|" + "---:|" * len(columns),
    ]
    for row in rows:
        values = " | ".join(f"{row[c]:.3f}" for c in columns)
        lines.append(f"| {row['method']} | {row['bits']} | {row['bits'] // 8} | {values} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str]) -> None:
    del argv
    base, workdir = _CONFIG.value, Path(_WORKDIR.value)
    bits = [int(b) for b in _BITS.value]
    rows = []
    for n in bits:
        config = copy.deepcopy(base)
        config.loss.margin = base.loss.margin * n / base.num_bits
        config.num_bits = n
        summary = run_training(config, str(workdir / str(n)))
        rows.append({"method": "learned hashing", "bits": n, **summary})
    rows += baseline_rows(load_video_sets(base.data), bits, base.eval_ks)
    table = markdown_table(rows, base.eval_ks)
    save_json_atomic(workdir / "report.json", rows)
    with atomic_write(workdir / "report.md") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    app.run(main)
