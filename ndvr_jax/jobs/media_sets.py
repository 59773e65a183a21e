"""Jobs that build data sets from real media: the unlabelled training corpus and the
independent test set (`ndvr_jax.data.corpus`), with a one-line summary."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import ml_collections

from ndvr_jax.data.corpus.sources import ReservedPackageError
from ndvr_jax.data.corpus.testset import TestSetConfig, build_testset
from ndvr_jax.data.corpus.training import CorpusConfig, build_corpus
from ndvr_jax.io.console import exit_with_error
from ndvr_jax.jobs.testset_eval import run_testset_evaluation


def _dataclass_from(config: ml_collections.ConfigDict, cls: type):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - names - {"seed", "evaluate"})
    if unknown:
        raise ValueError(f"unknown settings {unknown}; known: {sorted(names | {'seed'})}")
    return cls(**{k: v for k, v in config.items() if k in names})


def _summary(manifest: Path, start: float) -> None:
    files = [p for p in manifest.parent.rglob("*") if p.is_file()]
    megabytes = sum(p.stat().st_size for p in files) / 2**20
    seconds = time.monotonic() - start
    print(f"{manifest} ({len(files)} files, {megabytes:.1f} MiB, {seconds:.1f} s)", file=sys.stderr)


def _build(build, settings_class, config: ml_collections.ConfigDict, out: str, cache):
    """`build(out, ...)` with `config` as its settings, one-line errors, then the summary."""
    start = time.monotonic()
    try:
        manifest = build(
            out, cache=cache, config=_dataclass_from(config, settings_class), seed=config.seed
        )
    except (ReservedPackageError, ValueError, RuntimeError) as error:
        exit_with_error(error)
    _summary(manifest, start)
    return manifest


def run_corpus(config: ml_collections.ConfigDict, out: str, cache: str | None) -> Path:
    """Builds the training corpus described by `config` (`configs/corpus.py`) into `out`."""
    return _build(build_corpus, CorpusConfig, config, out, cache)


def run_testset(config: ml_collections.ConfigDict, out: str, cache: str | None) -> Path:
    """Builds the test set described by `config` (`configs/testset.py`) into `out`."""
    return _build(build_testset, TestSetConfig, config, out, cache)


def run_testset_eval(config: ml_collections.ConfigDict, data: str, workdir: str) -> None:
    """Evaluates the toolkit's systems on a built test set, per transformation class."""
    try:
        run_testset_evaluation(config.evaluate, data, workdir)
    except (FileNotFoundError, ValueError) as error:
        exit_with_error(error)
