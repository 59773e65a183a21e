"""Zoomed views of a frame for regional features: a source shown small inside another video
(picture-in-picture) fills a zoomed crop at the scale it has as a whole frame.

`zoom_crops` cuts an n x n grid of overlapping crops, each 2/(n+1) of the frame's side at
strides of 1/(n+1) (n = 3: half-size crops at 0, 1/4, 1/2), resized back to the frame's size.
`ZoomViews` runs a backbone on every frame and its crops in one call; `view_pool` turns its
activations into `[B, R, D]`: the frame's regional MAC, then each crop's whole MAC.
`InsetViews` and `inset_pool` append one more region: the MAC of the frame's detected
picture-in-picture inset (`ndvr_jax.regional.insets`), cropped before the batch is encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ndvr_jax.backbones.mac import mac, regional_mac


def crop_boxes(zoom: int) -> np.ndarray:
    """`[zoom², 3]` (top, left, side) of the crops, as fractions of the frame, row by row."""
    side = 2 / (zoom + 1)
    offsets = np.arange(zoom) / (zoom + 1)
    top, left = np.meshgrid(offsets, offsets, indexing="ij")
    return np.stack([top.ravel(), left.ravel(), np.full(zoom * zoom, side)], axis=1)


def zoom_crops(images: jax.Array, zoom: int) -> jax.Array:
    """`[B, H, W, C]` float -> `[B, zoom², H, W, C]` crops (`crop_boxes`) resized bilinearly."""
    _, h, w, c = images.shape
    boxes = jnp.asarray(crop_boxes(zoom), jnp.float32)

    def crop(box: jax.Array) -> jax.Array:
        scale = jnp.array([1.0, 1.0]) / box[2]
        translation = -jnp.array([box[0] * h, box[1] * w]) * scale
        return jax.image.scale_and_translate(
            images, images.shape, (1, 2), scale, translation, "linear", antialias=False
        )

    return jnp.moveaxis(jax.vmap(crop)(boxes), 0, 1)


class ZoomViews(nnx.Module):
    """A backbone run on each frame and its `zoom_crops`: activations of `B·(1 + zoom²)`
    images, frame by frame (the frame first, then its crops)."""

    def __init__(self, backbone: nnx.Module, zoom: int):
        self.backbone = backbone
        self.zoom = zoom

    def __call__(self, images: jax.Array) -> list[jax.Array]:
        b, h, w, c = images.shape
        views = jnp.concatenate([images[:, None], zoom_crops(images, self.zoom)], axis=1)
        return self.backbone(views.reshape(-1, h, w, c))


def view_pool(activations: Sequence[jax.Array], grid: int, zoom: int) -> jax.Array:
    """`ZoomViews` activations -> `[B, R, D]`, R = `num_regions(grid)` + zoom²: the regional MAC
    of each frame (`grid` 1: the whole frame only), then the whole MAC of each of its crops."""
    views = 1 + zoom * zoom
    split = [a.reshape(-1, views, *a.shape[1:]) for a in activations]
    frames = regional_mac([a[:, 0] for a in split], grid)
    crops = mac([a[:, 1:].reshape(-1, *a.shape[2:]) for a in split])
    return jnp.concatenate([frames, crops.reshape(len(frames), zoom * zoom, -1)], axis=1)


class InsetViews(nnx.Module):
    """Items `[B, 2, H, W, C]`, a frame and its inset view (`ndvr_jax.regional.insets.
    inset_views`): `frames` (any frame model) runs on the frames, `backbone` on the insets."""

    def __init__(self, frames: nnx.Module, backbone: nnx.Module):
        self.frames = frames
        self.backbone = backbone

    def __call__(self, images: jax.Array) -> tuple[list[jax.Array], list[jax.Array]]:
        return self.frames(images[:, 0]), self.backbone(images[:, 1])


def inset_pool(
    activations: tuple[Sequence[jax.Array], Sequence[jax.Array]],
    frame_pool: Callable[[Sequence[jax.Array]], jax.Array],
) -> jax.Array:
    """`InsetViews` activations -> `[B, R + 1, D]`: the frames' features by `frame_pool` (`[B, D]`
    read as R = 1), then the whole MAC of each inset view."""
    frames, insets = activations
    features = frame_pool(frames)
    features = features[:, None] if features.ndim == 2 else features
    return jnp.concatenate([features, mac(insets)[:, None]], axis=1)
