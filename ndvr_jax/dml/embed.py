"""A trained DML network on disk (`save_dml` / `load_dml`) and in use: early and late fusion
embeddings of many videos in jitted, fixed-shape batches. `DEFAULT_DML` is the network shipped
in the package (`weights/`, self-supervised on the real-media corpus; see its model card)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ndvr_jax import search
from ndvr_jax.dml.model import DML, embed_video_early, embed_video_late
from ndvr_jax.io.atomic import save_json_atomic, save_npz_atomic

MODEL_FILE = "dml_model.json"
PARAMS_FILE = "dml_params.npz"
DEFAULT_DML = Path(__file__).parent / "weights"


def _param_key(path: tuple[Any, ...]) -> str:
    return "/".join(str(p) for p in path)


def save_dml(
    model: DML, directory: str | os.PathLike, dtype: Any = np.float32, **meta: Any
) -> Path:
    """Writes `dml_model.json` and `dml_params.npz` (parameters as `dtype`; `load_dml` reads them
    back as float32) into `directory`; returns the folder."""
    directory = Path(directory)
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    arrays = {_param_key(path): np.asarray(var.get_value(), dtype) for path, var in flat}
    kernels = [layer.kernel.get_value().shape for layer in model.layers]
    save_npz_atomic(directory / PARAMS_FILE, **arrays)
    save_json_atomic(
        directory / MODEL_FILE,
        {
            "in_features": int(kernels[0][0]),
            "hidden_sizes": [int(k[1]) for k in kernels[:-1]],
            "embedding_dim": int(kernels[-1][1]),
            "activation": model.activation,
            **meta,
        },
    )
    return directory


def load_dml(directory: str | os.PathLike) -> tuple[DML, dict[str, Any]]:
    """Reads a network written by `save_dml` (e.g. a training workdir); returns it and its meta."""
    directory = Path(directory)
    for name in (MODEL_FILE, PARAMS_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(
                f"{directory / name} does not exist: point at the workdir of a finished "
                "`python -m ndvr_jax.train --config=configs/dml_*.py` run"
            )
    meta = json.loads((directory / MODEL_FILE).read_text())
    model = DML(
        meta["in_features"],
        tuple(meta["hidden_sizes"]),
        meta["embedding_dim"],
        meta["activation"],
        rngs=nnx.Rngs(0),
    )
    state = nnx.state(model, nnx.Param)
    with np.load(directory / PARAMS_FILE) as arrays:
        for path, var in nnx.to_flat_state(state):
            value = arrays[_param_key(path)]
            if value.shape != var.get_value().shape:
                raise ValueError(f"{_param_key(path)}: saved shape {value.shape} does not match")
            var.set_value(jnp.asarray(value, var.get_value().dtype))  # shipped as float16
    nnx.update(model, state)
    return model, meta


@functools.partial(jax.jit, static_argnums=0)
def _embed_rows(graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array) -> jax.Array:
    return embed_video_early(nnx.merge(graphdef, state), x)


@functools.partial(jax.jit, static_argnums=0)
def _embed_frames(graphdef: nnx.GraphDef, state: nnx.State, frames, mask) -> jax.Array:
    return embed_video_late(nnx.merge(graphdef, state), frames, mask)


def embed_early(model: DML, vectors: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Early fusion: [N, E] embeddings of [N, D] global vectors, `batch_size` rows at a time."""
    vectors = np.asarray(vectors, np.float32)
    graphdef, state = nnx.split(model)
    size = max(1, min(batch_size, 1 << max(0, len(vectors) - 1).bit_length()))
    out = np.empty((len(vectors), model.embedding_dim), np.float32)
    for start in range(0, len(vectors), size):
        chunk = vectors[start : start + size]
        padded = np.pad(chunk, [(0, size - len(chunk)), (0, 0)])
        embedded = _embed_rows(graphdef, state, padded)
        out[start : start + len(chunk)] = np.asarray(embedded)[: len(chunk)]
    return out


def embed_late(model: DML, videos: Sequence[np.ndarray], max_elements: int = 1 << 24) -> np.ndarray:
    """Late fusion: [N, E] embeddings of `[n_i, D]` frame features (batched by length)."""
    graphdef, state = nnx.split(model)
    out = np.empty((len(videos), model.embedding_dim), np.float32)
    for rows, frames, mask in search.frame_batches(videos, max_elements):
        out[rows] = np.asarray(_embed_frames(graphdef, state, frames, mask))[: len(rows)]
    return out
