"""mAP@k against code length: learned hashing codes vs sign / ITQ codes of global vectors and of
DML embeddings, and the float vectors themselves.

    python -m ndvr_jax.hashing.report --config=configs/hashing_base.py:runlocal \
        --workdir=/tmp/hashing_report --bits=64,128,256,512
    python -m ndvr_jax.hashing.report --config=configs/hashing_base.py --workdir=runs/report \
        --config.data.kind=demo --config.data.demo_dir=demo_data \
        --config.data.features_dir=demo_run/features

For every bit length the hashing network is trained (`run_training`, in `<workdir>/<bits>`; the
triplet margin scales with the bits) and its codes ranked by Hamming distance. Baselines on the
same videos: ITQ codes of the videos' global vectors (`ndvr_jax.search.global_vectors`, fitted
on the training videos; only where bits <= min(videos, dims)), their sign codes, and the float32
vectors ranked by cosine; the same three for the embeddings of a DML network trained on the same
labels (`--dml_steps`, in `<workdir>/dml`). Writes `report.md` and `report.json`; prints the
table.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.dml.embed import embed_early
from ndvr_jax.dml.training import build_task, default_dml_config, train_dml
from ndvr_jax.hashing import evaluate
from ndvr_jax.hashing.codes import pack_bits
from ndvr_jax.hashing.data import labels_of, video_id
from ndvr_jax.hashing.sources import VideoSets, load_video_sets
from ndvr_jax.hashing.training import relevance_of, run_training
from ndvr_jax.io import console
from ndvr_jax.io.atomic import atomic_write, save_json_atomic
from ndvr_jax.search import global_vectors

_CONFIG = config_flags.DEFINE_config_file("config", None, "hashing base config file")
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder", required=True)
_BITS = flags.DEFINE_list("bits", ["64", "128", "256", "512"], "code lengths")
_DML_STEPS = flags.DEFINE_integer(
    "dml_steps", 500, "steps of the DML network whose embeddings give sign / ITQ codes (0: none)"
)

Row = dict[str, Any]


def _vectors(source) -> np.ndarray:
    return global_vectors([np.asarray(source[i]["features"]) for i in range(len(source))])


def code_rows(
    name: str,
    vectors: tuple[np.ndarray, np.ndarray, np.ndarray],
    relevance: np.ndarray,
    mask: np.ndarray,
    bits: Sequence[int],
    ks: Sequence[int],
) -> list[Row]:
    """Rows of one kind of float vector (train, database, queries): its ITQ codes per bit length
    (where they fit), its sign codes (as many bits as dimensions) and the floats themselves."""
    train, database, queries = vectors
    rows = []
    for n in bits:
        if n > min(train.shape):
            continue
        itq = evaluate.fit_itq(train, n)
        scores = evaluate.hamming_metrics(
            evaluate.itq_codes(itq, queries), evaluate.itq_codes(itq, database), relevance, mask, ks
        )
        rows.append({"method": f"ITQ ({name})", "bits": n, **scores})
    sign = evaluate.hamming_metrics(
        np.asarray(pack_bits(queries > 0)), np.asarray(pack_bits(database > 0)), relevance, mask, ks
    )
    rows.append({"method": f"sign ({name})", "bits": train.shape[1], **sign})
    floats = evaluate.retrieval_metrics(queries @ database.T, relevance, mask, ks)
    rows.append({"method": f"float32 {name}", "bits": 32 * train.shape[1], **floats})
    return rows


def dml_embeddings(
    sets: VideoSets, vectors: Sequence[np.ndarray], workdir: Path, steps: int
) -> list[np.ndarray]:
    """`vectors` embedded by a DML network trained (in-batch mining) on the training videos'
    global vectors with the same class labels the hashing network learns from."""
    config = default_dml_config()
    config.update(mode="mining", num_steps=steps, log_every=max(1, steps // 4),
                  checkpoint_every=steps, keep_checkpoints=1)  # fmt: skip
    config.optimizer.learning_rate = 1e-3
    config.model.update(hidden_sizes=(512,), embedding_dim=256)
    labels = labels_of(sets.train)
    classes = len(np.unique(labels[labels >= 0]))
    config.mining.update(groups_per_batch=min(16, classes), videos_per_group=4, background=16)
    task = build_task(config, features=vectors[0], groups=labels)
    model, _ = train_dml(config, workdir, task)
    return [embed_early(model, v) for v in vectors]


def baseline_rows(
    sets: VideoSets,
    bits: Sequence[int],
    ks: Sequence[int],
    dml_workdir: Path | None = None,
    dml_steps: int = 500,
) -> list[Row]:
    """Codes of the global vectors and, with `dml_workdir`, of DML embeddings (`code_rows`)."""
    vectors = [_vectors(s) for s in (sets.train, sets.database, sets.queries)]
    ids = lambda source: [video_id(source[i]) for i in range(len(source))]
    relevance, mask = relevance_of(sets, ids(sets.queries), ids(sets.database))
    rows = code_rows("global vector", tuple(vectors), relevance, mask, bits, ks)
    if dml_workdir is not None:
        embedded = dml_embeddings(sets, vectors, dml_workdir, dml_steps)
        rows += code_rows("DML embedding", tuple(embedded), relevance, mask, bits, ks)
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
    console.quiet_jax()
    base, workdir = _CONFIG.value, Path(_WORKDIR.value)
    bits = [int(b) for b in _BITS.value]
    rows = []
    for n in bits:
        config = copy.deepcopy(base)
        config.loss.margin = base.loss.margin * n / base.num_bits
        config.num_bits = n
        summary = run_training(config, str(workdir / str(n)))
        rows.append({"method": "learned hashing", "bits": n, **summary})
    dml = workdir / "dml" if _DML_STEPS.value > 0 else None
    rows += baseline_rows(load_video_sets(base.data), bits, base.eval_ks, dml, _DML_STEPS.value)
    table = markdown_table(rows, base.eval_ks)
    save_json_atomic(workdir / "report.json", rows)
    with atomic_write(workdir / "report.md") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    app.run(main)
