"""The transition DNN's `TrainTask` and `run_training`, the `train` binary's "transition" task.

Pairs come from `stitching.PairSampler` over the training videos of `config.data.features` (an
`<id>\\t<path>` feature list; empty: synthetic videos); a share of the videos is held out. After
training, the held-out pairs give accuracy, precision and recall (threshold 0.5), the average
precision and PR curve (PNG), and the accuracy at positive shares 0.0–1.0 (the report's Table 2).
Writes `<workdir>/transition_model.npz`, `transition_pr.png` and `transition_summary.json`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from ndvr_jax.evaluation.metrics import RECALL_LEVELS, average_precision, interpolated_precision
from ndvr_jax.evaluation.plots import plot_pr_curves
from ndvr_jax.io.atomic import save_json_atomic
from ndvr_jax.pdvr.model import HIDDEN_SIZES, TransitionNet, pair_cut_probabilities, save_model
from ndvr_jax.pdvr.stitching import PairSampler, load_feature_list, synthetic_videos
from ndvr_jax.training import loop

MODEL_FILE = "transition_model.npz"


def default_transition_config() -> ml_collections.ConfigDict:
    """The loop's keys plus the model's and the pair generator's."""
    config = loop.default_train_config()
    config.task = "transition"
    config.num_steps = 2000
    config.batch_size = 256
    config.log_every = 100
    config.checkpoint_every = 1000
    config.keep_checkpoints = 1
    config.model = ml_collections.ConfigDict(dict(hidden_sizes=HIDDEN_SIZES))
    config.data = ml_collections.ConfigDict(
        dict(
            features="",  # `<id>\t<path>` feature list; "" = synthetic videos
            synthetic_videos=200,
            synthetic_frames=60,
            synthetic_dim=256,
            held_out_share=0.2,
            positive_share=0.5,
            jump_share=0.3,
            max_step=2,
            min_jump=8,
            strength=0.3,
            noise=0.1,
            eval_pairs=2000,
            eval_ratios=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
        )
    )
    return config


class TransitionTask:
    """Stitched frame pairs → cut / no cut, softmax cross-entropy."""

    def __init__(self, sampler: PairSampler, config: ml_collections.ConfigDict):
        self.sampler, self.config = sampler, config
        self.dim = sampler.videos[0].shape[-1]

    def create_model(self, rngs: nnx.Rngs) -> TransitionNet:
        return TransitionNet(self.dim, self.config.model.hidden_sizes, rngs=rngs)

    def batch(self, step: int) -> dict[str, np.ndarray]:
        seed = np.random.SeedSequence([self.config.seed, step]).generate_state(1)[0]
        pairs, labels = self.sampler.sample(
            self.config.batch_size, self.config.data.positive_share, int(seed)
        )
        return {"pairs": pairs, "label": labels}

    def loss(self, model: TransitionNet, batch, rng: jax.Array):
        del rng
        logits = model(batch["pairs"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
        accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
        return loss, {"accuracy": accuracy}


def _videos(data: ml_collections.ConfigDict, seed: int) -> list[np.ndarray]:
    if data.features:
        return load_feature_list(data.features)[1]
    return synthetic_videos(data.synthetic_videos, data.synthetic_frames, data.synthetic_dim, seed)


def _samplers(config: ml_collections.ConfigDict) -> tuple[PairSampler, PairSampler]:
    """Training and held-out pair samplers over disjoint videos."""
    videos = _videos(config.data, config.seed)
    order = np.random.default_rng(config.seed).permutation(len(videos))
    n_held = min(max(2, round(config.data.held_out_share * len(videos))), len(videos) - 2)
    keys = ("jump_share", "max_step", "min_jump", "strength", "noise")
    options = {k: config.data[k] for k in keys}
    held = PairSampler([videos[i] for i in order[:n_held]], **options)
    return PairSampler([videos[i] for i in order[n_held:]], **options), held


def binary_scores(prob: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, precision and recall of `prob ≥ 0.5` against 0/1 labels."""
    pred, labels = prob >= 0.5, labels.astype(bool)
    tp = float(np.sum(pred & labels))
    return {
        "accuracy": float(np.mean(pred == labels)),
        "precision": tp / max(float(np.sum(pred)), 1.0),
        "recall": tp / max(float(np.sum(labels)), 1.0),
    }


def evaluate_transition(
    model: TransitionNet, sampler: PairSampler, data: ml_collections.ConfigDict, seed: int
) -> dict[str, Any]:
    """Held-out scores at the training share, AP and PR curve, accuracy per positive share."""
    pairs, labels = sampler.sample(data.eval_pairs, data.positive_share, seed)
    prob = pair_cut_probabilities(model, pairs)
    scores, relevance = jnp.asarray(prob[None]), jnp.asarray(labels[None] > 0)
    curve = {
        "recall": [float(x) for x in RECALL_LEVELS],
        "precision": [float(x) for x in interpolated_precision(scores, relevance)[0]],
    }
    by_share = {}
    for i, share in enumerate(data.eval_ratios):
        x, y = sampler.sample(data.eval_pairs, share, seed + 1 + i)
        by_share[f"{share:.1f}"] = binary_scores(pair_cut_probabilities(model, x), y)["accuracy"]
    return {
        **binary_scores(prob, labels),
        "average_precision": float(average_precision(scores, relevance)[0]),
        "pr_curve": curve,
        "accuracy_by_positive_share": by_share,
    }


def run_training(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains the transition DNN into `workdir` (resuming); returns the held-out summary (the
    PR curve only in `transition_summary.json`)."""
    train_sampler, held_sampler = _samplers(config)
    model, history = loop.train(TransitionTask(train_sampler, config), config, workdir)
    summary = evaluate_transition(model, held_sampler, config.data, config.seed + 1000)
    rows = [r for r in history if "loss" in r]
    summary.update(
        train_loss=rows[-1]["loss"] if rows else None,
        model=os.path.abspath(os.path.join(workdir, MODEL_FILE)),
    )
    save_model(model, summary["model"])
    plot_pr_curves(
        {"transition DNN": {**summary["pr_curve"], "mAP": summary["average_precision"]}},
        os.path.join(workdir, "transition_pr.png"),
        title="Transition DNN, held-out stitched pairs",
    )
    save_json_atomic(os.path.join(workdir, "transition_summary.json"), summary)
    return {k: v for k, v in summary.items() if k != "pr_curve"}  # the curve: in the JSON
