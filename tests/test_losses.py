"""Triplet losses against brute-force numpy enumeration, and 1 vs 8 devices."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ndvr_jax import sharding
from ndvr_jax.training import losses

MARGIN = 0.5


def _embeddings(n, dim=6, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _labels(n, seed=0):
    # groups 0..3 plus "no group" rows (-1); several rows per group
    return np.random.default_rng(seed + 1).integers(-1, 4, size=n).astype(np.int32)


def _sqdist(x):
    x = x.astype(np.float64)
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)


def _roles(labels, valid):
    n = len(labels)
    valid = np.ones(n, bool) if valid is None else valid
    pos = {
        (a, p)
        for a, p in itertools.permutations(range(n), 2)
        if valid[a] and valid[p] and labels[a] >= 0 and labels[a] == labels[p]
    }
    neg = {
        (a, k)
        for a, k in itertools.permutations(range(n), 2)
        if valid[a] and valid[k] and (a, k) not in pos
    }
    return pos, neg


def brute_force(kind, x, labels, margin, valid=None):
    """Loops over every (anchor, positive, negative) the way a reader would write them."""
    d = _sqdist(x)
    pos, neg = _roles(labels, valid)
    negs_of = {a: [k for (b, k) in sorted(neg) if b == a] for a in range(len(labels))}
    if kind == "batch_all":
        trips = [(a, p, k) for (a, p) in sorted(pos) for k in negs_of[a]]
        ls = np.array([max(0.0, d[a, p] - d[a, k] + margin) for a, p, k in trips])
        active = ls > 0
        loss = ls[active].mean() if active.any() else 0.0
        pos_d = np.mean([d[a, p] for a, p in pos]) if pos else 0.0
        neg_d = np.mean([d[a, k] for a, k in neg]) if neg else 0.0
        return loss, active.mean() if len(ls) else 0.0, len(ls), pos_d, neg_d
    if kind == "batch_hard":
        rows = []
        for a in range(len(labels)):
            ps = [d[a, p] for (b, p) in pos if b == a]
            if ps and negs_of[a]:
                hp, hn = max(ps), min(d[a, k] for k in negs_of[a])
                rows.append((max(0.0, hp - hn + margin), hp, hn))
    else:  # semi_hard
        rows = []
        for a, p in sorted(pos):
            if not negs_of[a]:
                continue
            farther = [d[a, k] for k in negs_of[a] if d[a, k] > d[a, p]]
            dn = min(farther) if farther else max(d[a, k] for k in negs_of[a])
            rows.append((max(0.0, d[a, p] - dn + margin), d[a, p], dn))
    if not rows:
        return 0.0, 0.0, 0, 0.0, 0.0
    r = np.array(rows)
    return r[:, 0].mean(), (r[:, 0] > 0).mean(), len(r), r[:, 1].mean(), r[:, 2].mean()


def _check(kind, x, labels, valid=None, margin=MARGIN):
    loss, aux = losses.MINING_STRATEGIES[kind](jnp.asarray(x), jnp.asarray(labels), margin, valid)
    want = brute_force(kind, x, labels, margin, None if valid is None else np.asarray(valid))
    got = (loss, aux["active_fraction"], aux["num_triplets"], aux["pos_dist"], aux["neg_dist"])
    np.testing.assert_allclose(np.array(got, np.float64), np.array(want), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("kind", ["batch_all", "batch_hard", "semi_hard"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mining_matches_brute_force(kind, seed):
    _check(kind, _embeddings(14, seed=seed), _labels(14, seed))


@pytest.mark.parametrize("kind", ["batch_all", "batch_hard", "semi_hard"])
def test_mining_with_padding_rows(kind):
    x, labels = _embeddings(12, seed=5), _labels(12, 5)
    valid = np.arange(12) < 9
    _check(kind, x, labels, jnp.asarray(valid))
    # padding rows hold garbage: the result must not depend on them
    x2 = x.copy()
    x2[9:] = 7.0
    a = losses.MINING_STRATEGIES[kind](jnp.asarray(x), jnp.asarray(labels), MARGIN, valid)
    b = losses.MINING_STRATEGIES[kind](jnp.asarray(x2), jnp.asarray(labels), MARGIN, valid)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)


@pytest.mark.parametrize("kind", ["batch_all", "batch_hard", "semi_hard"])
def test_mining_edge_cases(kind):
    x = _embeddings(6, seed=3)
    # no positive pairs at all (every row alone or in no group): zero loss, no triplets
    loss, aux = losses.MINING_STRATEGIES[kind](x, np.array([-1, -1, 0, 1, 2, 3]), MARGIN)
    assert float(loss) == 0.0 and float(aux["num_triplets"]) == 0.0
    # a single group: positives but no negatives
    loss, aux = losses.MINING_STRATEGIES[kind](x, np.zeros(6, np.int32), MARGIN)
    assert float(loss) == 0.0 and float(aux["num_triplets"]) == 0.0
    # a huge margin makes every triplet active
    _check(kind, x, np.array([0, 0, 1, 1, -1, 2]), margin=100.0)


def _dense_batch_all(x, labels, margin):
    """Batch-all through the full [B, B, B] tensor (reference for gradients)."""
    d = losses.pairwise_squared_distances(x)
    pos, neg = losses.pair_masks(labels)
    mask = pos[:, :, None] & neg[:, None, :]
    ls = jnp.where(mask, jax.nn.relu(d[:, :, None] - d[:, None, :] + margin), 0.0)
    return jnp.sum(ls) / jnp.maximum(jnp.sum(ls > 0), 1)


def test_batch_all_gradient_matches_dense_reference():
    x, labels = jnp.asarray(_embeddings(16, seed=7)), jnp.asarray(_labels(16, 7))
    g = jax.grad(lambda e: losses.batch_all_triplet_loss(e, labels, MARGIN)[0])(x)
    g_ref = jax.grad(lambda e: _dense_batch_all(e, labels, MARGIN))(x)
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["batch_hard", "semi_hard"])
def test_gradients_are_finite(kind):
    x = jnp.asarray(_embeddings(10, seed=2))
    labels = jnp.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 1])  # anchor 9 has no positive
    g = jax.grad(lambda e: losses.MINING_STRATEGIES[kind](e, labels, MARGIN)[0])(x)
    assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).sum() > 0


def test_offline_triplet_loss_matches_numpy():
    rng = np.random.default_rng(0)
    a, p, n = (rng.normal(size=(9, 5)).astype(np.float32) for _ in range(3))
    valid = np.arange(9) < 7
    loss, aux = losses.triplet_loss(a, p, n, 1.0, valid)
    dp = ((a - p) ** 2).sum(1)[:7].astype(np.float64)
    dn = ((a - n) ** 2).sum(1)[:7].astype(np.float64)
    ls = np.maximum(0, dp - dn + 1.0)
    np.testing.assert_allclose(loss, ls.mean(), rtol=1e-5)
    np.testing.assert_allclose(aux["active_fraction"], (ls > 0).mean(), rtol=1e-6)
    np.testing.assert_allclose(aux["pos_dist"], dp.mean(), rtol=1e-5)
    np.testing.assert_allclose(aux["neg_dist"], dn.mean(), rtol=1e-5)
    assert float(aux["num_triplets"]) == 7
    full, _ = losses.triplet_loss(a, p, n, 1.0)
    d_all = ((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1)
    np.testing.assert_allclose(full, np.maximum(0, d_all + 1.0).mean(), rtol=1e-5)


def test_unknown_strategy_raises():
    with pytest.raises(ValueError, match="unknown mining strategy"):
        losses.mined_triplet_loss(jnp.zeros((4, 2)), jnp.zeros(4, jnp.int32), "hardest")


@pytest.mark.parametrize("kind", ["batch_all", "batch_hard", "semi_hard"])
def test_same_values_on_one_and_eight_devices(kind):
    assert jax.device_count() == 8
    x, labels = _embeddings(64, dim=16, seed=11), _labels(64, 11)
    valid = np.arange(64) < 60

    def step(e, y, v):
        loss, aux = losses.mined_triplet_loss(e, y, kind, MARGIN, v)
        return loss, aux, jax.grad(lambda e: losses.mined_triplet_loss(e, y, kind, MARGIN, v)[0])(e)

    fn = jax.jit(step)
    single = fn(*(jax.device_put(a, jax.devices()[0]) for a in (x, labels, valid)))
    mesh = sharding.make_mesh(8)
    spec = sharding.batch_sharded(mesh)
    sharded_inputs = [jax.device_put(a, spec) for a in (x, labels, valid)]
    assert len(sharded_inputs[0].sharding.device_set) == 8
    multi = fn(*sharded_inputs)
    for s, m in zip(jax.tree.leaves(single), jax.tree.leaves(multi), strict=True):
        # reductions run in another order across devices: equal up to float32 rounding
        np.testing.assert_allclose(np.asarray(s), np.asarray(m), rtol=1e-6, atol=1e-7)
