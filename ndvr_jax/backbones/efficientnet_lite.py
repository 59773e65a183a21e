"""EfficientNet-Lite0 trunk (ReLU6, no squeeze-excitation, TensorFlow 'SAME' padding).

MAC layers: the outputs of the MBConv stages 2-7 (strides 4 to 32) and of the 1x1 head conv
(after ReLU6), i.e. stages 3-9 of the paper's table: 24+40+80+112+192+320+1280 = 2,048-d. The
first MBConv stage (16 channels at stride 2) is left out, as VGG16's conv1 is.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ndvr_jax.backbones.layers import PREPROCESSING, conv, preprocess

__all__ = ["EfficientNetLite0", "MBConv"]

# (repeats, kernel, stride, expand ratio, output channels) per MBConv stage.
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_FEATURES = 32
HEAD_FEATURES = 1280


class MBConv(nnx.Module):
    """Inverted residual: [1x1 expand, ReLU6] -> kxk depthwise, ReLU6 -> 1x1 project (+ skip)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel: int,
        stride: int,
        expand: int,
        *,
        dtype: Any,
        rngs: nnx.Rngs,
    ) -> None:
        mid = in_features * expand
        self.expand = conv(in_features, mid, 1, dtype=dtype, rngs=rngs) if expand != 1 else None
        self.depthwise = conv(
            mid, mid, kernel, stride=stride, padding="SAME", groups=mid, dtype=dtype, rngs=rngs
        )
        self.project = conv(mid, out_features, 1, dtype=dtype, rngs=rngs)
        self.residual = stride == 1 and in_features == out_features

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x if self.expand is None else nnx.relu6(self.expand(x))
        y = nnx.relu6(self.depthwise(y))
        y = self.project(y)
        return x + y if self.residual else y


class EfficientNetLite0(nnx.Module):
    """EfficientNet-Lite0 without its classifier; `model(images)` -> 7 maps (2,048-d MAC).

    Parameters are `stem/*`, `stages/<stage>/<block>/{expand,depthwise,project}/*`, `head/*`.
    """

    FEATURE_DIM = 2048

    def __init__(
        self,
        *,
        preprocessing: str = "efficientnet_lite",
        dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"unknown preprocessing {preprocessing!r}")
        self.preprocessing = preprocessing
        self.dtype = dtype
        self.stem = conv(3, STEM_FEATURES, 3, stride=2, padding="SAME", dtype=dtype, rngs=rngs)
        stages, cin = [], STEM_FEATURES
        for repeats, kernel, stride, expand, cout in LITE0_STAGES:
            blocks = []
            for i in range(repeats):
                s = stride if i == 0 else 1
                blocks.append(MBConv(cin, cout, kernel, s, expand, dtype=dtype, rngs=rngs))
                cin = cout
            stages.append(nnx.List(blocks))
        self.stages = nnx.List(stages)
        self.head = conv(cin, HEAD_FEATURES, 1, dtype=dtype, rngs=rngs)

    def __call__(self, images: jax.Array) -> list[jax.Array]:
        x = preprocess(images, self.preprocessing, self.dtype)
        x = nnx.relu6(self.stem(x))
        outputs = []
        for s, stage in enumerate(self.stages):
            for block in stage:
                x = block(x)
            if s:
                outputs.append(x)
        outputs.append(nnx.relu6(self.head(x)))
        return outputs
