"""AuSiL similarities of a query list against a database list, in the AuSiL JSON format.

    python -m ndvr_jax.ausil_similarity --config=configs/ausil_demo.py --workdir=ausil_run \
        --queries_file=queries.txt --database_file=database.txt \
        [--features_dir=ausil_run/features] [--annotation_file=annotation.json] [--untrained]

List lines are `<id> <path>`; the path is a `wlaf.npz`, a folder holding one, or an `ausil`
store root (holding `<id>/wlaf.npz`). With `--features_dir`, features are read from that store by
id and the list paths are ignored (so the video lists themselves can be passed). `--workdir`
holds `ausil_model.npz` from `ndvr_jax.ausil_train`, or only `pca.npz`: then (or with
`--untrained`) the score is the Chamfer similarity of PCA-whitened segments, nothing learned.

Writes `--output` (default `<workdir>/similarities.json`, `{query_id: {db_id: similarity}}`;
videos without features are left out). With `--annotation_file`, prints the DAVR mAP and writes
`<workdir>/davr.json` and the PR curve `<workdir>/pr_davr.png`.
"""

from __future__ import annotations

from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from ndvr_jax import plots, search
from ndvr_jax.ausil_pipeline import evaluate_davr, make_scorer, similarity_matrix
from ndvr_jax.ausil_training import read_segment_features
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.io.atomic import save_json_atomic
from ndvr_jax.io.store import read_id_path_list

_CONFIG = config_flags.DEFINE_config_file("config", "configs/ausil_demo.py", "AuSiL config.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir (ausil_model.npz / pca.npz).")
_QUERIES = flags.DEFINE_string("queries_file", None, "`<id> <features path>` lines.")
_DATABASE = flags.DEFINE_string("database_file", None, "`<id> <features path>` lines.")
_FEATURES = flags.DEFINE_string("features_dir", None, "Read features from this ausil store.")
_OUTPUT = flags.DEFINE_string("output", None, "Similarity JSON (default workdir).")
_ANNOTATION = flags.DEFINE_string("annotation_file", None, "FIVR-style annotation for DAVR.")
_UNTRAINED = flags.DEFINE_bool("untrained", False, "Ignore a trained model: PCA + Chamfer.")


def _load(list_file: str) -> tuple[list[str], dict]:
    entries = read_id_path_list(list_file)
    features = {}
    for video_id, path in entries:
        source = _FEATURES.value or path
        try:
            features[video_id] = read_segment_features(source, video_id)
        except (OSError, KeyError, ValueError) as e:
            logging.warning("no features for %s (%s): left out", video_id, e)
    empty = [v for v, f in features.items() if not len(f)]
    if empty:
        logging.warning("%d videos have no audio segments (left out): %s", len(empty), empty[:5])
    return [v for v, _ in entries], features


def main(argv: list[str]) -> None:
    del argv
    if not (_WORKDIR.value and _QUERIES.value and _DATABASE.value):
        raise app.UsageError("--workdir, --queries_file and --database_file are required")
    work = Path(_WORKDIR.value)
    query_ids, queries = _load(_QUERIES.value)
    db_ids, database = _load(_DATABASE.value)
    scorer, name = make_scorer(work, _CONFIG.value, _UNTRAINED.value)
    matrix = similarity_matrix(scorer, queries, database, query_ids, db_ids)
    output = _OUTPUT.value or work / "similarities.json"
    search.save_similarities(output, search.to_similarity_dict(matrix, query_ids, db_ids))
    print(f"{name} AuSiL: {len(query_ids)} x {len(db_ids)} similarities in {output}", flush=True)
    if _ANNOTATION.value:
        result = evaluate_davr(matrix, query_ids, db_ids, load_annotation(_ANNOTATION.value))
        save_json_atomic(work / "davr.json", result)
        plots.plot_pr_curves({f"AuSiL {name}": result}, work / "pr_davr.png", title="DAVR")
        print(f"DAVR mAP {result['mAP']:.4f} over {result['num_queries']} queries", flush=True)


if __name__ == "__main__":
    app.run(main)
