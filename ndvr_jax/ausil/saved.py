"""Where a trained AuSiL lives on disk: a workdir's `pca.npz` and `ausil_model.npz` (+ `.json`
sizes), and the pretrained default shipped inside the package (`weights/default.npz`, its model
card `weights/MODEL_CARD.md`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx

from ndvr_jax.ausil.model import AuSiL, PCAWhitening, fit_pca_whitening
from ndvr_jax.io.atomic import save_json_atomic, save_npz_atomic

PCA_FILE = "pca.npz"
MODEL_FILE = "ausil_model.npz"
DEFAULT_MODEL = Path(__file__).parent / "weights" / "default.npz"


def init_ausil(dims: int, pca_dims: int, key: jax.Array) -> AuSiL:
    """A freshly initialised AuSiL, its initialisation compiled once (not run op by op)."""
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: AuSiL(dims, pca_dims, rngs=nnx.Rngs(0))))
    state = jax.jit(lambda k: nnx.state(AuSiL(dims, pca_dims, rngs=nnx.Rngs(params=k))))(key)
    return nnx.merge(graphdef, state)


def _key(path: tuple) -> str:
    return jax.tree_util.keystr(path, simple=True, separator="/")


def save_model(model: AuSiL, workdir: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Writes every variable of `model` (whitening included) and its sizes to the workdir."""
    leaves = jax.tree_util.tree_flatten_with_path(nnx.state(model))[0]
    flat = {_key(path): np.asarray(leaf) for path, leaf in leaves}
    save_npz_atomic(Path(workdir) / MODEL_FILE, **flat)
    dims, pca_dims = flat["pca_weights/value"].shape
    sizes = {"dims": dims, "pca_dims": pca_dims, **meta}
    save_json_atomic(Path(workdir, MODEL_FILE).with_suffix(".json"), sizes)


def load_model(workdir: str | os.PathLike) -> AuSiL | None:
    """The trained AuSiL of a workdir (its `ausil_model.npz`) or of a model `.npz` file beside its
    `.json` sizes; None if there is none."""
    path = Path(workdir)
    path = path if path.suffix == ".npz" else path / MODEL_FILE
    if not path.is_file():
        return None
    with open(path.with_suffix(".json")) as f:
        sizes = json.load(f)
    abstract = nnx.eval_shape(lambda: AuSiL(sizes["dims"], sizes["pca_dims"], rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    with np.load(path) as data:
        missing = [_key(p) for p, _ in leaves if _key(p) not in data.files]
        if missing:
            raise KeyError(f"{path} lacks {missing}")
        values = [jnp.asarray(data[_key(p)]) for p, _ in leaves]
    return nnx.merge(graphdef, jax.tree_util.tree_unflatten(treedef, values))


def load_default_model() -> AuSiL:
    """The pretrained AuSiL shipped with the package (`DEFAULT_MODEL`, see its model card)."""
    model = load_model(DEFAULT_MODEL)
    if model is None:
        raise FileNotFoundError(f"the shipped AuSiL weights {DEFAULT_MODEL} are missing")
    return model


def default_model_dims() -> int:
    """The segment feature width the shipped model takes."""
    return json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())["dims"]


def default_model_mode() -> str:
    """How the shipped model scores by default, as its validation split chose: "trained" (the
    whole AuSiL) or "untrained" (its PCA whitening + Chamfer, when the comparator did not beat
    that on validation)."""
    return model_mode(DEFAULT_MODEL.parent)


def model_mode(workdir: str | os.PathLike) -> str:
    """How a workdir's model scores by default: its `mode` ("trained" unless its validation
    found the PCA + Chamfer better, "untrained"); the shipped default's for its folder."""
    folder = Path(workdir)
    sizes = folder / (DEFAULT_MODEL.name if folder == DEFAULT_MODEL.parent else MODEL_FILE)
    sizes = sizes.with_suffix(".json")
    return json.loads(sizes.read_text()).get("mode", "trained") if sizes.is_file() else "trained"


def default_model_scoring() -> dict[str, Any]:
    """How the shipped model's untrained path scores pairs, as the dev set chose (`Scorer`'s
    `aggregate_name`, `top_fraction`, `normalise`; empty: plain Chamfer)."""
    return json.loads(DEFAULT_MODEL.with_suffix(".json").read_text()).get("scoring", {})


def whitening_of(model: AuSiL) -> PCAWhitening:
    """The PCA whitening a model holds."""
    return PCAWhitening(np.asarray(model.pca_mean[...]), np.asarray(model.pca_weights[...]))


def load_pca(workdir: str | os.PathLike) -> PCAWhitening:
    """The PCA whitening saved in a workdir."""
    return PCAWhitening.load(Path(workdir) / PCA_FILE)


def fit_or_load_pca(
    features: Mapping[str, np.ndarray], n_components: int | None, workdir: str | os.PathLike
) -> PCAWhitening:
    """Fits whitening on every segment of `features` and saves it, or reloads the saved one."""
    path = Path(workdir) / PCA_FILE
    if path.is_file():
        return PCAWhitening.load(path)
    segments = np.concatenate(list(features.values()))
    n_components = min(n_components or segments.shape[1], len(segments) - 1)
    pca = fit_pca_whitening(segments, n_components)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    pca.save(path)
    logging.info("PCA whitening %s fitted on %d segments", pca.weights.shape, len(segments))
    return pca
