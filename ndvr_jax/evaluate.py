"""Evaluation binary (the original's `evaluation.py`): raw global vectors against DML embeddings.

    # CC_WEB_VIDEO, early fusion, from the triplet generator's outputs (as the original):
    python -m ndvr_jax.evaluate --dataset=cc_web_video \\
        --features=output_data/cc_web_video_features.npy --model_dir=model/ --output_dir=eval/
    # late fusion too (frame features), any FIVR-style annotation with chosen labels, cosine:
    python -m ndvr_jax.evaluate --dataset=annotation --dataset_path=annotation.json \\
        --queries=queries.txt --database=database.txt --feature_files=feature_files.txt \\
        --model_dir=model/ --fusion=both --similarity=cosine --protocols=DSVR,CSVR,ISVR \\
        --output_dir=eval/
    # or every setting from a config's `evaluate` section, overridable by the same flags:
    python -m ndvr_jax.evaluate --config=configs/dml_demo.py --model_dir=workdir/

Systems: `baseline` (the global video vectors) and, with `--model_dir` (a `dml_train` workdir),
`DML early` (the network on the global vectors) and `DML late` (the network on every frame,
averaged; needs `--feature_files`). Similarity: `distance` is the original's `1 − d / max(d)`
(max over the whole query × database matrix), `cosine` the dot product of unit vectors.

Protocols (`--protocols`, default the dataset's): CC_WEB and CC_WEB* (the query ranked too, as
the original), plus `clean` variants that drop the excluded videos when the dataset has them;
DSVR, CSVR, ISVR, DAVR; `--labels=ND,DS` for any labels of the annotation. The generic dataset
format uses the label G (same group). Datasets and their files are those of
`python -m ndvr_jax.triplets` (`--features` rows follow `<name>_ids.txt` beside them, else the
dataset's order).

Outputs in `--output_dir`: `results.json` (every result: mAP, µAP, AP per query, PR curve),
`results.md` (the table), `pr_curves.png` (all systems, first protocol) and
`similarities_<system>.json` (`{query_id: {db_id: similarity}}`, the best `--top_k` per query;
0 = all).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from ndvr_jax import dml_training, evaluation, plots, search
from ndvr_jax.data import triplets as rules
from ndvr_jax.data.annotations import Protocol, get_protocol
from ndvr_jax.data.datasets import DatasetError
from ndvr_jax.data.datasets.generic import preview_ids
from ndvr_jax.data.feature_lists import FeatureError, load_frame_features, read_feature_list
from ndvr_jax.io.atomic import atomic_write, save_json_atomic
from ndvr_jax.triplets import Benchmark, load_benchmark, read_row_ids

__all__ = [
    "Variant",
    "default_eval_config",
    "evaluate_systems",
    "protocol_variants",
    "run_evaluation",
    "similarity",
    "write_report",
]

FUSIONS = ("early", "late", "both")


def default_eval_config() -> ml_collections.ConfigDict:
    """Every setting of the binary (each also a flag of the same name)."""
    return ml_collections.ConfigDict(
        dict(
            dataset="cc_web_video",  # cc_web_video | annotation | generic
            dataset_path="",  # default for cc_web_video: datasets/cc_web_video.pickle
            queries="",  # annotation: id list of the queries
            database="",  # annotation: id list of the database
            split="",  # generic: the split to evaluate
            features="",  # <name>_features.npy of the triplet generator
            ids="",  # row ids of --features (default: <name>_ids.txt beside it)
            feature_files="",  # frame features: global vectors when no --features; late fusion
            model_dir="",  # a dml_train workdir; empty: the baseline only
            fusion="early",  # early | late | both
            similarity="distance",  # distance (1 - d / max d, the original) | cosine
            protocols="",  # comma-separated; empty: the dataset's
            labels="",  # comma-separated labels of a custom protocol
            output_dir="evaluation",
            top_k=0,  # similarity JSON: the best k per query (0 = all)
        )
    )


@dataclasses.dataclass(frozen=True)
class Variant:
    """One evaluation: a protocol, optionally with excluded videos (the "clean" variants)."""

    name: str
    protocol: Protocol
    exclude: Mapping[str, Sequence[str]] | None = None


def protocol_variants(
    bench: Benchmark, protocols: Sequence[str] = (), labels: Sequence[str] = ()
) -> list[Variant]:
    """The evaluations to run: named protocols (default: the benchmark's) or custom labels, each
    also as a `clean` variant when the benchmark excludes videos."""
    if labels:
        include_query = bench.name == "cc_web_video"
        chosen = [Protocol("+".join(labels), tuple(labels), include_query=include_query)]
    elif bench.protocols == ("G",) and not protocols:
        chosen = [Protocol("G", ("G",))]
    else:
        chosen = [get_protocol(p) for p in (protocols or bench.protocols)]
    variants = [Variant(p.name, p) for p in chosen]
    if bench.exclude:
        variants += [Variant(f"{p.name} clean", p, bench.exclude) for p in chosen]
    return variants


def similarity(
    queries: np.ndarray, database: np.ndarray, metric: str, chunk: int = 16384
) -> np.ndarray:
    """Dense [Q, N] similarity ("distance": 1 − d / max d over the whole matrix, or "cosine"),
    computed `chunk` database rows at a time."""
    if metric not in ("distance", "cosine"):
        raise ValueError(f"similarity must be 'distance' or 'cosine', got {metric!r}")
    fn = search.cosine_similarity if metric == "cosine" else search.euclidean_distance
    blocks = [
        np.asarray(fn(queries, database[i : i + chunk])) for i in range(0, len(database), chunk)
    ]
    out = np.concatenate(blocks, axis=1)
    if metric == "distance":
        out = np.asarray(search.distance_to_similarity(out, out.max()))
    return out


def evaluate_systems(
    systems: Mapping[str, np.ndarray],
    query_ids: Sequence[str],
    database_ids: Sequence[str],
    annotation: Mapping[str, Mapping[str, Sequence[str]]],
    variants: Sequence[Variant],
) -> dict[str, dict[str, dict[str, Any]]]:
    """`{system: {variant: evaluation result}}` of [Q, N] similarity matrices."""
    return {
        name: {
            v.name: evaluation.evaluate(
                (sim, list(query_ids), list(database_ids)),
                annotation,
                v.protocol,
                exclude=v.exclude,
            )
            for v in variants
        }
        for name, sim in systems.items()
    }


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def write_report(
    output_dir: str | os.PathLike,
    results: Mapping[str, Mapping[str, Mapping[str, Any]]],
    systems: Mapping[str, np.ndarray],
    query_ids: Sequence[str],
    database_ids: Sequence[str],
    *,
    title: str,
    plot_title: str = "",
    top_k: int = 0,
) -> str:
    """Writes results.json, results.md, pr_curves.png and similarity JSONs; returns the table."""
    out = Path(output_dir)
    variants = list(next(iter(results.values())))
    table = evaluation.format_table(results, [f"{v}/mAP" for v in variants])
    save_json_atomic(out / "results.json", results)
    with atomic_write(out / "results.md") as f:
        f.write(f"{title}\n\n{table}\n")
    first = variants[0]
    plots.plot_pr_curves(
        {name: r[first] for name, r in results.items()},
        out / "pr_curves.png",
        title=f"{plot_title or title}, {first}",
    )
    for name, sim in systems.items():
        if 0 < top_k < sim.shape[1]:
            top = search.TopK(*_top_k(sim, top_k))
            scores = search.top_k_to_dict(top, query_ids, database_ids)
        else:
            scores = search.to_similarity_dict(sim, query_ids, database_ids)
        search.save_similarities(out / f"similarities_{_slug(name)}.json", scores)
    return table


def _top_k(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    index = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sim, index, 1), index.astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Inputs.


def _global_vectors(config: ml_collections.ConfigDict, bench: Benchmark, needed: list[str]):
    """[len(needed), D] global vectors from --features (+ row ids) or from --feature_files."""
    if config.features:
        features = dml_training.check_features(
            dml_training.load_npy(config.features, "features"), config.features
        )
        beside = re.sub(r"_features\.npy$", "_ids.txt", config.features)
        ids_path = config.ids or (beside if beside != config.features else "")
        if config.ids and not os.path.isfile(config.ids):
            raise DatasetError(f"id list {config.ids} does not exist")
        row_ids = read_row_ids(ids_path) if os.path.isfile(ids_path) else bench.video_ids
        if len(row_ids) != len(features):
            source = ids_path if os.path.isfile(ids_path) else "in the dataset"
            raise DatasetError(
                f"{config.features} has {len(features)} rows but {len(row_ids)} video ids "
                f"({source})"
            )
        row = {v: i for i, v in enumerate(row_ids)}
        missing = [v for v in needed if v not in row]
        if missing:
            raise DatasetError(
                f"{len(missing)} videos are not rows of {config.features}: {preview_ids(missing)}"
            )
        return features[[row[v] for v in needed]]
    if not config.feature_files:
        raise DatasetError("give --features (global vectors) or --feature_files (frame features)")
    return rules.dataset_global_features(needed, read_feature_list(config.feature_files))


def _late_embeddings(
    model, ids: Sequence[str], feature_files: str, chunk: int = 1024
) -> np.ndarray:
    files = read_feature_list(feature_files)
    missing = [v for v in ids if v not in files]
    if missing:
        raise FeatureError(f"{len(missing)} videos have no frame features: {preview_ids(missing)}")
    parts = []
    for start in range(0, len(ids), chunk):
        videos = [
            load_frame_features(files[v], v, model.layers[0].in_features)
            for v in ids[start : start + chunk]
        ]
        parts.append(dml_training.embed_late(model, videos))
    return np.concatenate(parts)


def run_evaluation(config: ml_collections.ConfigDict) -> dict[str, dict[str, dict[str, Any]]]:
    """Loads everything `config` names, evaluates every system and writes the report."""
    if config.fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {config.fusion!r}")
    available = list(read_feature_list(config.feature_files)) if config.feature_files else None
    bench, _ = load_benchmark(
        config.dataset, config.dataset_path or None, queries=config.queries or None,
        database=config.database or None, split=config.split or None, available=available,
    )  # fmt: skip
    split = lambda text: [x.strip() for x in text.split(",") if x.strip()]
    variants = protocol_variants(bench, split(config.protocols), split(config.labels))
    needed = list(dict.fromkeys([*bench.query_ids, *bench.database_ids]))
    vectors = _global_vectors(config, bench, needed)
    position = {v: i for i, v in enumerate(needed)}
    q_rows = [position[v] for v in bench.query_ids]
    db_rows = [position[v] for v in bench.database_ids]
    embedded = {"baseline": vectors}
    if config.model_dir:
        model, _ = dml_training.load_dml(config.model_dir)
        if model.layers[0].in_features != vectors.shape[1]:
            raise DatasetError(
                f"the model takes {model.layers[0].in_features}-d inputs but the features are "
                f"{vectors.shape[1]}-d"
            )
        if config.fusion in ("early", "both"):
            embedded["DML early"] = dml_training.embed_early(model, vectors)
        if config.fusion in ("late", "both"):
            if not config.feature_files:
                raise DatasetError("late fusion needs the frame features (--feature_files)")
            embedded["DML late"] = _late_embeddings(model, needed, config.feature_files)
    systems = {
        name: similarity(x[q_rows], x[db_rows], config.similarity) for name, x in embedded.items()
    }
    results = evaluate_systems(
        systems, bench.query_ids, bench.database_ids, bench.annotation, variants
    )
    title = (
        f"{bench.name}: {len(bench.query_ids)} queries, {len(bench.database_ids)} database videos, "
        f"{config.similarity} similarity"
    )
    table = write_report(
        config.output_dir, results, systems, bench.query_ids, bench.database_ids,
        title=title, plot_title=f"{bench.name}, {config.similarity}", top_k=config.top_k,
    )  # fmt: skip
    print(table)
    print(
        f"results in {os.path.abspath(config.output_dir)}: results.json, results.md, pr_curves.png"
    )
    return results


def _define_flags() -> None:
    config_flags.DEFINE_config_file("config", None, "Optional config; its `evaluate` section.")
    for name, value in default_eval_config().items():
        define = flags.DEFINE_integer if isinstance(value, int) else flags.DEFINE_string
        define(name, value, f"See `default_eval_config` ({name}).")


def config_from_flags(values: flags.FlagValues) -> ml_collections.ConfigDict:
    """The defaults, then the `--config` file's `evaluate` section, then explicit flags."""
    config = default_eval_config()
    if values.config is not None:
        given = values.config.get("evaluate", values.config)
        config.update(given.to_dict())
    for name in config:
        if values[name].present:
            config[name] = values[name].value
    return config


def main(argv: Sequence[str]) -> None:
    del argv
    config = config_from_flags(flags.FLAGS)
    logging.info("evaluation config:\n%s", json.dumps(config.to_dict(), indent=1))
    try:
        run_evaluation(config)
    except (DatasetError, FeatureError, dml_training.TrainingDataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
