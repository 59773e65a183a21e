"""The transition DNN: is there a cut between two consecutive frames?

Input: the two frame embeddings e1, e2 (L2-normalised, so any feature scale works), concatenated
as the PDVR report, plus e1 ⊙ e2 and
|e1 − e2| (with those the net generalises to videos it has not seen; on the concatenation alone
it learns its training videos). FC 1000, 512, 128, each with batch norm (momentum 0.9) and tanh,
then 2 logits (no cut, cut). `cut_probabilities` runs a trained model on a video's frames (or
any frame pairs) as one pure jitted function; `save_model` / `load_model` keep it in one `.npz`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ndvr_jax.io.atomic import save_npz_atomic

HIDDEN_SIZES = (1000, 512, 128)


class TransitionNet(nnx.Module):
    """Pairs [B, 2, D] → logits [B, 2]."""

    def __init__(self, dim: int, hidden_sizes: Sequence[int] = HIDDEN_SIZES, *, rngs: nnx.Rngs):
        self.dim, self.hidden_sizes = dim, tuple(hidden_sizes)
        sizes = (4 * dim, *self.hidden_sizes)
        self.dense = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:], strict=False)]
        )
        self.norms = nnx.List(
            [nnx.BatchNorm(b, momentum=0.9, rngs=rngs) for b in self.hidden_sizes]
        )
        self.out = nnx.Linear(sizes[-1], 2, rngs=rngs)

    def __call__(self, pairs: jax.Array) -> jax.Array:
        pairs = pairs / jnp.maximum(jnp.linalg.norm(pairs, axis=-1, keepdims=True), 1e-12)
        a, b = pairs[:, 0], pairs[:, 1]
        x = jnp.concatenate([a, b, a * b, jnp.abs(a - b)], axis=-1)
        for dense, norm in zip(self.dense, self.norms, strict=True):
            x = jnp.tanh(norm(dense(x)))
        return self.out(x)


@jax.jit
def _pair_prob(graphdef: nnx.GraphDef, state: nnx.State, pairs: jax.Array) -> jax.Array:
    return jax.nn.softmax(nnx.merge(graphdef, state)(pairs), axis=-1)[:, 1]


def pair_cut_probabilities(model: TransitionNet, pairs: np.ndarray) -> np.ndarray:
    """Cut probability [B] of frame pairs [B, 2, D]. Switches `model` to eval mode (running
    batch statistics); batches are padded to a power of two, so each size compiles once."""
    pairs = np.asarray(pairs, np.float32)
    model.eval()
    graphdef, state = nnx.split(model)
    size = max(16, 1 << max(len(pairs) - 1, 0).bit_length())
    padded = np.pad(pairs, [(0, size - len(pairs)), (0, 0), (0, 0)])
    return np.asarray(_pair_prob(graphdef, state, padded))[: len(pairs)]


def cut_probabilities(model: TransitionNet, frames: np.ndarray) -> np.ndarray:
    """Cut probabilities [T] of a video's frames [T, D]: entry t is between frames t−1 and t;
    entry 0 is 1 (a video starts afresh)."""
    frames = np.asarray(frames, np.float32)
    cut = pair_cut_probabilities(model, np.stack([frames[:-1], frames[1:]], axis=1))
    return np.concatenate([[1.0], cut]).astype(np.float32)


def save_model(model: TransitionNet, path: str | os.PathLike) -> None:
    """All variables (parameters and batch statistics) and the sizes, in one `.npz`."""
    leaves = jax.tree.leaves(nnx.state(model))
    meta = json.dumps({"dim": model.dim, "hidden_sizes": list(model.hidden_sizes)})
    arrays = {f"v{i:03d}": np.asarray(x) for i, x in enumerate(leaves)}
    save_npz_atomic(path, meta=np.array(meta), **arrays)


def load_model(path: str | os.PathLike) -> TransitionNet:
    """The model `save_model` wrote, in eval mode."""
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        leaves = [data[k] for k in sorted(data.files) if k != "meta"]
    model = TransitionNet(meta["dim"], meta["hidden_sizes"], rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    treedef = jax.tree.structure(state)
    if treedef.num_leaves != len(leaves):
        raise ValueError(f"{path}: {len(leaves)} arrays for a model with {treedef.num_leaves}")
    model = nnx.merge(graphdef, jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves]))
    model.eval()
    return model
