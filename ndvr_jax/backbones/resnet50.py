"""ResNet-50 trunk returning the outputs of its 4 stages (256+512+1024+2048 = 3,840-d MAC)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ndvr_jax.backbones.layers import PREPROCESSING, conv, preprocess

__all__ = ["Bottleneck", "ResNet50"]

# (blocks, bottleneck width, stride of the first block) per stage.
RESNET50_STAGES = ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2))
EXPANSION = 4


class Bottleneck(nnx.Module):
    """1x1 -> 3x3 -> 1x1 bottleneck with identity or 1x1 projection shortcut (BN folded)."""

    def __init__(
        self,
        in_features: int,
        width: int,
        stride: int,
        *,
        stride_in_1x1: bool,
        dtype: Any,
        rngs: nnx.Rngs,
    ) -> None:
        out = width * EXPANSION
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv(in_features, width, 1, stride=s1, dtype=dtype, rngs=rngs)
        self.conv2 = conv(width, width, 3, stride=s3, padding=1, dtype=dtype, rngs=rngs)
        self.conv3 = conv(width, out, 1, dtype=dtype, rngs=rngs)
        project = stride != 1 or in_features != out
        self.downsample = (
            conv(in_features, out, 1, stride=stride, dtype=dtype, rngs=rngs) if project else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        y = nnx.relu(self.conv1(x))
        y = nnx.relu(self.conv2(y))
        y = self.conv3(y)
        shortcut = x if self.downsample is None else self.downsample(x)
        return nnx.relu(y + shortcut)


class ResNet50(nnx.Module):
    """ResNet-50 without its classifier. `model(images)` -> [stage1, stage2, stage3, stage4].

    `stride_in_1x1=False` is torchvision's layout (v1.5: stride on the 3x3 conv);
    `stride_in_1x1=True` is Keras's (v1: stride on the first 1x1 conv). Parameters are
    `stem/*`, `layers/<stage>/<block>/{conv1,conv2,conv3,downsample}/{kernel,bias}`.
    """

    FEATURE_DIM = 3840

    def __init__(
        self,
        *,
        preprocessing: str = "torchvision",
        stride_in_1x1: bool = False,
        dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"unknown preprocessing {preprocessing!r}")
        self.preprocessing = preprocessing
        self.dtype = dtype
        self.stem = conv(3, 64, 7, stride=2, padding=3, dtype=dtype, rngs=rngs)
        stages, cin = [], 64
        for n_blocks, width, stride in RESNET50_STAGES:
            blocks = []
            for i in range(n_blocks):
                blocks.append(
                    Bottleneck(
                        cin,
                        width,
                        stride if i == 0 else 1,
                        stride_in_1x1=stride_in_1x1,
                        dtype=dtype,
                        rngs=rngs,
                    )
                )
                cin = width * EXPANSION
            stages.append(nnx.List(blocks))
        self.layers = nnx.List(stages)

    def __call__(self, images: jax.Array) -> list[jax.Array]:
        x = preprocess(images, self.preprocessing, self.dtype)
        x = nnx.relu(self.stem(x))
        x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        outputs = []
        for stage in self.layers:
            for block in stage:
                x = block(x)
            outputs.append(x)
        return outputs
