"""Zoomed crops and their pooling into regional features."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from ndvr_jax.backbones import mac, regional_mac
from ndvr_jax.backbones.views import ZoomViews, crop_boxes, view_pool, zoom_crops


def test_crop_boxes_overlap_and_stay_inside() -> None:
    np.testing.assert_allclose(crop_boxes(1), [[0.0, 0.0, 1.0]])
    boxes = crop_boxes(3)
    assert boxes.shape == (9, 3)
    np.testing.assert_allclose(boxes[:, 2], 0.5)
    np.testing.assert_allclose(boxes[[0, 1, 2], 1], [0.0, 0.25, 0.5])  # left, along a row
    np.testing.assert_allclose(boxes[:, :2].max() + 0.5, 1.0)


def test_zoom_crops_sample_the_box_bilinearly() -> None:
    size = 16
    ramp = np.broadcast_to(np.arange(size, dtype=np.float32)[:, None, None], (size, size, 1))
    images = jnp.asarray(np.stack([ramp, ramp.transpose(1, 0, 2)]))  # rows, then columns ramp
    crops = np.asarray(zoom_crops(images, 3))
    assert crops.shape == (2, 9, size, size, 1)
    centres = np.arange(size) + 0.5
    for k, (top, left, side) in enumerate(crop_boxes(3)):
        rows = centres * side + top * size - 0.5  # where each output row samples the ramp
        cols = centres * side + left * size - 0.5
        inside = (rows >= 0) & (rows <= size - 1)  # away from the image's edge
        np.testing.assert_allclose(crops[0, k, inside, 0, 0], rows[inside], atol=1e-4)
        inside = (cols >= 0) & (cols <= size - 1)
        np.testing.assert_allclose(crops[1, k, 0, inside, 0], cols[inside], atol=1e-4)


class _TwoMaps(nnx.Module):
    """A stand-in backbone: the image and a coarser copy as its two activation maps."""

    def __call__(self, images):
        return [images, images[:, ::2, ::2]]


def test_view_pool_is_regional_mac_then_crop_mac() -> None:
    images = jnp.asarray(np.random.default_rng(0).standard_normal((2, 12, 12, 3)), jnp.float32)
    out = np.asarray(view_pool(ZoomViews(_TwoMaps(), 2)(images), grid=3, zoom=2))
    assert out.shape == (2, 10 + 4, 6)
    np.testing.assert_allclose(out[:, :10], regional_mac(_TwoMaps()(images), 3), atol=1e-6)
    crops = zoom_crops(images, 2).reshape(-1, 12, 12, 3)
    want = np.asarray(mac(_TwoMaps()(crops))).reshape(2, 4, 6)
    np.testing.assert_allclose(out[:, 10:], want, atol=1e-6)
