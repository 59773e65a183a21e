"""The VFRM recurrence: a `lax.scan` over query frames that follows copies of candidate sources.

Per query frame t and candidate source c the carry holds
  * `memory[c, r]`: the continuity memory, a running mean of frame similarity along the best
    alignment path that reaches reference position r (its argmax is the aligned position, so the
    position follows the path rather than each frame's noisiest match);
  * `belief[c]`: the video memory, a running mean of the probability that frames copy c.
The gate `keep_t = 1 − cut_t` comes from the transition probability between frames t−1 and t
(the transition DNN, or `cut_from_features`). Without a cut the memory moves on by one of
`len(shift_costs)` steps (0, 1, 2, …: speeds 0.5–2× and short gaps), paying `shift_costs[d]`; a
cut releases both memories but for the shares `memory_retain` and `belief_retain` (so a copy that
goes on across a cut of its source keeps its place in a shot whose frames all look alike, and its
source). The copy logit of position r is the report's three-term sum

    sim_f = w_frame · e_t[c, r] + w_continuity · f_{t+1}[c, r] + w_video · v_t[c] + bias

with e_t the frame similarity, f_{t+1} the memory carried to frame t, v_t the belief. The frame
decision for c is its best logit. The weights and the two memory rates are a pytree
(`VFRMParams`) that `fit_vfrm` learns by gradient descent through the scan.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from ndvr_jax import sharding

DEFAULT_SHIFT_COSTS = (0.05, 0.0, 0.05, 0.1, 0.15)
MISSING = -1e9  # logit of masked positions and missing candidates (finite: clean gradients)


class VFRMParams(NamedTuple):
    """Learnable weights of the recurrence (scalars)."""

    w_frame: jax.Array
    w_continuity: jax.Array
    w_video: jax.Array
    bias: jax.Array
    memory_rate: jax.Array  # logit of α: memory ← (1 − α)·memory + α·e
    belief_rate: jax.Array  # logit of β: belief ← (1 − β)·belief + β·p
    memory_retain: jax.Array  # share of the memory kept across a cut (clipped to [0, 1])
    belief_retain: jax.Array  # share of the belief kept across a cut (clipped to [0, 1])


def default_params(
    w_frame: float = 10.0,
    w_continuity: float = 3.0,
    w_video: float = 1.0,
    bias: float = -5.0,
    memory_rate: float = 0.1,
    belief_rate: float = 0.3,
    memory_retain: float = 0.0,
    belief_retain: float = 0.0,
) -> VFRMParams:
    """Parameters from plain values (rates in (0, 1), retained shares in [0, 1])."""
    logit = lambda p: float(np.log(p / (1.0 - p)))
    values = (w_frame, w_continuity, w_video, bias, logit(memory_rate), logit(belief_rate))
    values += (memory_retain, belief_retain)
    return VFRMParams(*(jnp.float32(v) for v in values))


def params_to_dict(params: VFRMParams) -> dict[str, float]:
    """Plain values (rates as probabilities), e.g. for JSON."""
    out = {k: float(v) for k, v in params._asdict().items()}
    for key in ("memory_rate", "belief_rate"):
        out[key] = float(jax.nn.sigmoid(out[key]))
    return out


def _carry_forward(memory: jax.Array, shift_costs: tuple[float, ...]) -> jax.Array:
    """Best memory reachable at each position by moving d = 0, 1, … positions on, floored at 0."""
    moved = [memory - shift_costs[0]]
    for d, cost in enumerate(shift_costs[1:], 1):
        pad = [(0, 0)] * (memory.ndim - 1) + [(d, 0)]
        moved.append(jnp.pad(memory, pad)[..., :-d] - cost)
    return jnp.maximum(jnp.max(jnp.stack(moved), axis=0), 0.0)


def _step(params: VFRMParams, shift_costs, ref_mask, carry, inputs):
    """One query frame for every query and candidate: [..., C, R] similarities."""
    memory, belief = carry
    sims, cut = inputs
    retained = lambda share: (1.0 - cut + cut * jnp.clip(share, 0.0, 1.0))[..., None]
    memory = retained(params.memory_retain)[..., None] * _carry_forward(memory, shift_costs)
    belief = retained(params.belief_retain) * belief
    logit = (
        params.w_frame * sims
        + params.w_continuity * memory
        + (params.w_video * belief + params.bias)[..., None]
    )
    logit = jnp.where(ref_mask, logit, MISSING)
    score = jnp.max(logit, axis=-1)
    alpha, beta = jax.nn.sigmoid(params.memory_rate), jax.nn.sigmoid(params.belief_rate)
    memory = jnp.where(ref_mask, (1.0 - alpha) * memory + alpha * sims, 0.0)
    position = jnp.argmax(jnp.where(ref_mask, memory, MISSING), axis=-1).astype(jnp.int32)
    belief = (1.0 - beta) * belief + beta * jax.nn.sigmoid(score)
    return (memory, belief), (score, position)


def vfrm_scan(
    params: VFRMParams,
    sims: jax.Array,
    ref_mask: jax.Array,
    cut_prob: jax.Array,
    shift_costs: tuple[float, ...] = DEFAULT_SHIFT_COSTS,
) -> tuple[jax.Array, jax.Array]:
    """Copy logits and aligned positions, both [B, T, C], of a batch of queries.

    `sims` [B, T, C, R]: similarity of query frame t to frame r of candidate c; `ref_mask`
    [B, C, R]: real reference frames (an all-false row is a missing candidate, logit `MISSING`);
    `cut_prob` [B, T]: probability of a cut between frames t − 1 and t (frame 0 always starts
    afresh). Padded query frames may hold anything; their outputs are to be ignored.
    """
    sims = jnp.asarray(sims, jnp.float32)
    cut = jnp.asarray(cut_prob, jnp.float32).at[:, 0].set(1.0)
    shape = sims.shape[:1] + sims.shape[2:]
    init = (jnp.zeros(shape, jnp.float32), jnp.zeros(shape[:-1], jnp.float32))
    step = functools.partial(_step, params, tuple(shift_costs), ref_mask)
    _, (score, position) = jax.lax.scan(
        step, init, (jnp.moveaxis(sims, 1, 0), jnp.moveaxis(cut, 1, 0))
    )
    return jnp.moveaxis(score, 0, 1), jnp.moveaxis(position, 0, 1)


@functools.lru_cache(maxsize=16)
def _compiled(shift_costs: tuple[float, ...], mesh: Mesh | None):
    scan = functools.partial(vfrm_scan, shift_costs=shift_costs)
    if mesh is None:
        return jax.jit(scan)
    split = sharding.batch_sharded(mesh)
    return jax.jit(
        scan,
        in_shardings=(sharding.replicated(mesh), split, split, split),
        out_shardings=(split, split),
    )


def run_vfrm(
    params: VFRMParams,
    sims: np.ndarray,
    ref_mask: np.ndarray,
    cut_prob: np.ndarray,
    shift_costs: tuple[float, ...] = DEFAULT_SHIFT_COSTS,
    mesh: Mesh | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`vfrm_scan`, jitted; with `mesh`, queries are split over its devices (batch padded)."""
    fn = _compiled(tuple(shift_costs), mesh)
    n = len(sims)
    if mesh is not None:
        pad = -n % sharding.data_parallel_size(mesh)
        widen = lambda x: np.pad(np.asarray(x), [(0, pad)] + [(0, 0)] * (np.ndim(x) - 1))
        sims, ref_mask, cut_prob = (widen(x) for x in (sims, ref_mask, cut_prob))
        params = sharding.replicate(params, mesh)
    score, position = fn(params, sims, ref_mask, cut_prob)
    return np.asarray(score)[:n], np.asarray(position)[:n]


def vfrm_reference(
    params: VFRMParams,
    sims: np.ndarray,
    ref_mask: np.ndarray,
    cut_prob: np.ndarray,
    shift_costs: tuple[float, ...] = DEFAULT_SHIFT_COSTS,
) -> tuple[np.ndarray, np.ndarray]:
    """The same recurrence as a plain Python loop over queries, frames and candidates (numpy)."""
    p = {k: float(v) for k, v in params._asdict().items()}
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))
    alpha, beta = sigmoid(p["memory_rate"]), sigmoid(p["belief_rate"])
    b, t_len, c_len, r_len = sims.shape
    score = np.zeros((b, t_len, c_len), np.float32)
    position = np.zeros((b, t_len, c_len), np.int32)
    for q in range(b):
        memory = np.zeros((c_len, r_len))
        belief = np.zeros(c_len)
        for t in range(t_len):
            cut = 1.0 if t == 0 else float(cut_prob[q, t])
            keep_memory = 1.0 - cut + cut * min(max(p["memory_retain"], 0.0), 1.0)
            keep_belief = 1.0 - cut + cut * min(max(p["belief_retain"], 0.0), 1.0)
            for c in range(c_len):
                moved = np.full(r_len, -np.inf)
                for d, cost in enumerate(shift_costs):
                    shifted = np.concatenate([np.zeros(d), memory[c, : r_len - d]])
                    moved = np.maximum(moved, shifted - cost)
                carried = keep_memory * np.maximum(moved, 0.0)
                belief[c] *= keep_belief
                logit = p["w_frame"] * sims[q, t, c] + p["w_continuity"] * carried
                logit = logit + p["w_video"] * belief[c] + p["bias"]
                logit = np.where(ref_mask[q, c], logit, MISSING)
                score[q, t, c] = logit.max()
                memory[c] = np.where(
                    ref_mask[q, c], (1 - alpha) * carried + alpha * sims[q, t, c], 0
                )
                position[q, t, c] = int(np.argmax(np.where(ref_mask[q, c], memory[c], MISSING)))
                belief[c] = (1 - beta) * belief[c] + beta * sigmoid(score[q, t, c])
    return score, position


def _fit_loss(params, sims, ref_mask, cut_prob, labels, weight, shift_costs):
    score, _ = vfrm_scan(params, sims, ref_mask, cut_prob, shift_costs)
    loss = optax.sigmoid_binary_cross_entropy(score, labels)
    return jnp.sum(loss * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def fit_vfrm(
    params: VFRMParams,
    sims: np.ndarray,
    ref_mask: np.ndarray,
    cut_prob: np.ndarray,
    labels: np.ndarray,
    weight: np.ndarray,
    *,
    steps: int = 200,
    learning_rate: float = 0.05,
    shift_costs: tuple[float, ...] = DEFAULT_SHIFT_COSTS,
) -> tuple[VFRMParams, list[float]]:
    """Fits the weights to per-frame copy labels [B, T, C] (1: frame t copies candidate c),
    weighting each term by `weight` [B, T, C] (0 for padding); returns params and the losses."""
    tx = optax.adam(learning_rate)
    data = [jnp.asarray(x) for x in (sims, ref_mask, cut_prob, labels, weight)]

    @jax.jit
    def update(params, opt_state):
        loss, grads = jax.value_and_grad(_fit_loss)(params, *data, tuple(shift_costs))
        updates, opt_state = tx.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state, losses = tx.init(params), []
    for _ in range(steps):
        params, opt_state, loss = update(params, opt_state)
        losses.append(float(loss))
    return params, losses


def cut_from_features(
    frames: np.ndarray, threshold: float = 0.5, width: float = 0.05
) -> np.ndarray:
    """Cut probabilities [T] from consecutive-frame cosine similarity, when no transition model
    is given: σ((threshold − cos(x_{t−1}, x_t)) / width); frame 0 gets 1."""
    x = np.asarray(frames, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    cos = np.sum(x[1:] * x[:-1], axis=-1)
    return np.concatenate([[1.0], 1.0 / (1.0 + np.exp(-(threshold - cos) / width))])
