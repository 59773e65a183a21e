"""Regional MAC against a plain numpy implementation with explicit cell slices."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ndvr_jax.backbones import mac, num_regions, regional_mac
from ndvr_jax.backbones.mac import grid_masks


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(np.maximum((v**2).sum(-1, keepdims=True), 1e-12))


def regional_mac_numpy(activations: list[np.ndarray], grid: int) -> np.ndarray:
    """Whole frame, then each cell [floor(i·H/g), ceil((i+1)·H/g)) x (same for W), row by row."""
    layers = []
    for a in activations:
        a = _unit(np.asarray(a, np.float64))
        _, h, w, _ = a.shape
        boxes = [(0, h, 0, w)]
        if grid > 1:
            spans = lambda n: [(i * n // grid, math.ceil((i + 1) * n / grid)) for i in range(grid)]
            boxes += [(y0, y1, x0, x1) for y0, y1 in spans(h) for x0, x1 in spans(w)]
        pooled = np.stack([a[:, y0:y1, x0:x1].max(axis=(1, 2)) for y0, y1, x0, x1 in boxes], 1)
        layers.append(_unit(pooled))
    return np.concatenate(layers, -1)


def random_maps(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(2, 7, 9, 4), (2, 6, 6, 8), (2, 2, 1, 5)]  # uneven, even, smaller than the grid
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("grid", [2, 3])
def test_matches_numpy(grid: int) -> None:
    maps = random_maps()
    ours = jax.jit(regional_mac, static_argnums=1)([jnp.asarray(m) for m in maps], grid)
    assert ours.shape == (2, num_regions(grid), 17) and ours.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(ours), regional_mac_numpy(maps, grid), atol=1e-6)


def test_region_zero_and_grid_one_are_whole_frame_mac() -> None:
    maps = [jnp.asarray(m) for m in random_maps(1)]
    whole = np.asarray(mac(maps))
    np.testing.assert_allclose(np.asarray(regional_mac(maps, 1))[:, 0], whole, atol=1e-6)
    assert regional_mac(maps, 1).shape == (2, 1, 17)
    np.testing.assert_allclose(np.asarray(regional_mac(maps, 3))[:, 0], whole, atol=1e-6)


def test_cells_cover_every_position_and_are_never_empty() -> None:
    for size in (1, 2, 7, 56):
        masks = grid_masks(size, 3)
        assert masks.any(axis=1).all() and masks.any(axis=0).all()
    np.testing.assert_array_equal(grid_masks(7, 3).sum(1), [3, 3, 3])


def test_a_cell_sees_only_its_part() -> None:
    a = np.zeros((1, 6, 6, 2), np.float32)
    a[..., 0] = 1.0
    a[0, 0, 0] = [0.0, 1.0]  # channel 1 lives only in the top-left cell
    out = np.asarray(regional_mac([jnp.asarray(a)], 3))[0]
    np.testing.assert_allclose(out[1], np.sqrt([0.5, 0.5]))
    np.testing.assert_allclose(out[2:], np.tile([1.0, 0.0], (8, 1)))
    np.testing.assert_allclose(out[0], np.sqrt([0.5, 0.5]))


def test_rejects_bad_grid() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        num_regions(0)
