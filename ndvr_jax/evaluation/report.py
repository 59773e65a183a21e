"""Benchmark reports: several systems' [Q, N] similarities evaluated on every protocol variant,
written as `results.json`, `results.md` (the table), `pr_curves.png` and similarity JSONs."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ndvr_jax import search
from ndvr_jax.data.annotations import Protocol, get_protocol
from ndvr_jax.data.benchmarks import Benchmark
from ndvr_jax.evaluation import plots, retrieval
from ndvr_jax.io.atomic import atomic_write, save_json_atomic


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
            v.name: retrieval.evaluate(
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
    table = retrieval.format_table(results, [f"{v}/mAP" for v in variants])
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
        scores = search.to_similarity_dict(sim, query_ids, database_ids, top_k=top_k)
        search.save_similarities(out / f"similarities_{_slug(name)}.json", scores)
    return table
