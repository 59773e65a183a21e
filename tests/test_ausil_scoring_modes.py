"""The untrained AuSiL's aggregates and z-normalisation against numpy references."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from ndvr_jax import sharding
from ndvr_jax.ausil.aggregate import AGGREGATES, aggregate, znorm
from ndvr_jax.ausil.model import PCAWhitening
from ndvr_jax.ausil.scoring import Scorer, untrained_model


def _reference(sim: np.ndarray, name: str, fraction: float) -> float:
    forward, backward = sim.max(axis=1), sim.max(axis=0)
    if name == "chamfer":
        return float(forward.mean())
    if name == "reference":
        return float(backward.mean())
    if name == "symmetric":
        return float(0.5 * (forward.mean() + backward.mean()))
    k = max(1, int(np.ceil(fraction * len(forward))))
    return float(np.sort(forward)[::-1][:k].mean())


@pytest.mark.parametrize("name", AGGREGATES)
@pytest.mark.parametrize("fraction", [0.3, 0.5])
def test_aggregates_match_numpy_on_the_valid_block(name, fraction):
    rng = np.random.default_rng(3)
    sim = rng.uniform(-1, 1, (4, 7, 6)).astype(np.float32)
    rows, cols = np.array([7, 3, 1, 5]), np.array([6, 2, 4, 1])
    got = np.asarray(
        aggregate(jnp.asarray(sim), jnp.asarray(rows), jnp.asarray(cols), name, fraction)
    )
    want = [_reference(sim[b, : rows[b], : cols[b]], name, fraction) for b in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_unknown_aggregate_is_refused():
    with pytest.raises(ValueError, match="aggregate"):
        aggregate(jnp.zeros((1, 2, 2)), jnp.array([2]), jnp.array([2]), "max")


def test_znorm_matches_numpy_and_keeps_missing_pairs():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(3, 5)).astype(np.float32)
    m[1, 2] = np.nan
    got = znorm(m)
    for q in range(3):
        row = m[q][~np.isnan(m[q])]
        np.testing.assert_allclose(
            got[q][~np.isnan(m[q])], (row - row.mean()) / row.std(), rtol=1e-5
        )
    assert np.isnan(got[1, 2])


def test_scorer_uses_the_chosen_aggregate_and_normalisation():
    rng = np.random.default_rng(1)
    dims = 8
    pca = PCAWhitening(np.zeros(dims, np.float32), np.eye(dims, dtype=np.float32))
    videos = [rng.normal(size=(n, dims)).astype(np.float32) for n in (12, 12, 16)]
    mesh = sharding.make_mesh(1)
    unit = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in videos]
    for name in ("reference", "top"):
        scorer = Scorer(untrained_model(pca), False, mesh, 4, name, 0.25, normalise=True)
        got = scorer.matrix(videos[:1], videos)
        raw = np.array([[_reference(unit[0] @ v.T, name, 0.25) for v in unit]])
        want = (raw - raw.mean()) / raw.std()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
