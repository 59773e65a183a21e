"""VGG16 convolutional trunk returning the conv2_1 ... conv5_3 activations (ndvr-dml's layers).

Also holds the pieces the other backbones share: the input recipes and the conv factory.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["PREPROCESSING", "VGG16", "conv", "preprocess"]

# Input recipes, chosen by where the weights come from (images arrive as RGB in [0, 255]).
#   torchvision:       RGB / 255, minus ImageNet mean, divided by ImageNet std.
#   caffe:             RGB -> BGR, minus the BGR ImageNet mean (Keras VGG16 / ResNet50).
#   efficientnet_lite: (x - 127) / 128 (TensorFlow EfficientNet-Lite).
PREPROCESSING = ("torchvision", "caffe", "efficientnet_lite")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def preprocess(images: jax.Array, recipe: str, dtype: Any = jnp.float32) -> jax.Array:
    """Normalises float NHWC RGB images in [0, 255] by `recipe`, in float32, then casts."""
    x = jnp.asarray(images, jnp.float32)
    if recipe == "torchvision":
        x = (x / 255.0 - jnp.asarray(_IMAGENET_MEAN)) / jnp.asarray(_IMAGENET_STD)
    elif recipe == "caffe":
        x = x[..., ::-1] - jnp.asarray(_CAFFE_BGR_MEAN)
    elif recipe == "efficientnet_lite":
        x = (x - 127.0) / 128.0
    else:
        raise ValueError(f"unknown preprocessing {recipe!r}; expected one of {PREPROCESSING}")
    return x.astype(dtype)


def conv(
    in_features: int,
    out_features: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: int | str = 0,
    groups: int = 1,
    dtype: Any,
    rngs: nnx.Rngs,
) -> nnx.Conv:
    """Square conv with bias (BatchNorm, where a network has it, is folded into it on load)."""
    return nnx.Conv(
        in_features,
        out_features,
        (kernel, kernel),
        strides=stride,
        padding=padding,
        feature_group_count=groups,
        dtype=dtype,
        param_dtype=jnp.float32,
        rngs=rngs,
    )


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
