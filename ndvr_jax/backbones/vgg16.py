"""VGG16 convolutional trunk returning the conv2_1 ... conv5_3 activations (ndvr-dml's layers)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ndvr_jax.backbones.layers import PREPROCESSING, conv, preprocess

__all__ = ["VGG16", "VGG16_BLOCKS"]

# (convs, channels) per block; MAC uses every conv of blocks 2-5.
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


class VGG16(nnx.Module):
    """VGG16 conv layers. `model(images)` -> 11 post-ReLU maps conv2_1 ... conv5_3 (4,096-d MAC).

    Parameters are `blocks/<block>/<conv>/{kernel,bias}` (HWIO kernels, float32); the compute runs
    in `dtype`.
    """

    FEATURE_DIM = 4096

    def __init__(
        self, *, preprocessing: str = "torchvision", dtype: Any = jnp.float32, rngs: nnx.Rngs
    ) -> None:
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"unknown preprocessing {preprocessing!r}")
        self.preprocessing = preprocessing
        self.dtype = dtype
        blocks, cin = [], 3
        for n_convs, cout in VGG16_BLOCKS:
            layers = []
            for _ in range(n_convs):
                layers.append(conv(cin, cout, 3, padding=1, dtype=dtype, rngs=rngs))
                cin = cout
            blocks.append(nnx.List(layers))
        self.blocks = nnx.List(blocks)

    def __call__(self, images: jax.Array) -> list[jax.Array]:
        x = preprocess(images, self.preprocessing, self.dtype)
        outputs = []
        for b, block in enumerate(self.blocks):
            if b:
                x = nnx.max_pool(x, (2, 2), strides=(2, 2))
            for layer in block:
                x = nnx.relu(layer(x))
                if b:
                    outputs.append(x)
        return outputs
