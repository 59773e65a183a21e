"""Pieces the backbones share: the input recipes and the conv factory with its CPU fast paths.

The backbones' convs are `nnx.Conv`s (parameters `kernel` HWIO and `bias`, so weight converters
never care how a conv is computed) whose convolution is `conv_general_dilated` below. On CPU it
computes two kinds of conv another way, because XLA:CPU (jax 0.10) is slow at them:

* bfloat16 convs: XLA:CPU has no bf16 convolution (it widens the operands and runs a float32
  conv), but a bf16 x bf16 -> float32 *matmul* runs on the CPU's bf16 matrix units (AMX) at
  several times the float32 rate. So every conv (groups 1) becomes one matmul. At stride 1 the
  kw horizontal taps are concatenated along the channel axis (K = kw * C_in: kw shifted copies of
  the input) and the kh vertical taps are stacked along the output axis (N = kh * C_out); the kh
  partial outputs are then summed at their row offsets, in float32, and cast back. Strided convs,
  1x1 convs, and those where that moves more bytes than a full im2col (kw * C_in < 2 * C_out: an
  RGB input, a block's first, channel-doubling conv) put all kh * kw taps on the channel axis
  instead (im2col: K = kh * kw * C_in, N = C_out; strided taps are only output-sized).
* depthwise convs (any dtype): a float32 sum of kh * kw shifted slices times the channel
  weights, 5-20x faster than XLA:CPU's grouped convolution.

Everything else (other grouped convs, float32 non-depthwise convs, other backends) goes to
`lax.conv_general_dilated`. `set_conv_impl(model, "xla")` puts a built model back on XLA's
convolution everywhere (to compare, or if a fast path misbehaves).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

__all__ = [
    "CONV_IMPLS",
    "PREPROCESSING",
    "conv",
    "conv_general_dilated",
    "preprocess",
    "set_conv_impl",
]

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


_NHWC = ("NHWC", "HWIO", "NHWC")


def _cpu_route(lhs: jax.Array, rhs: jax.Array, strides, dilations, dims, groups) -> str | None:
    """How to compute this conv: "matmul", "depthwise" or None (XLA's convolution)."""
    if jax.default_backend() != "cpu" or lhs.ndim != 4 or dims is None:
        return None
    nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    if lax.conv_dimension_numbers(lhs.shape, rhs.shape, dims) != nhwc or set(dilations) != {1}:
        return None
    kh, kw, cin, cout = rhs.shape
    if groups == 1 and lhs.dtype == rhs.dtype == jnp.bfloat16:
        return "matmul"
    if cin == 1 and groups == cout == lhs.shape[-1]:
        return "depthwise"
    return None


def _depthwise(x: jax.Array, w: jax.Array, strides, pads) -> jax.Array:
    """Depthwise conv as a float32 sum of kh * kw strided shifted slices times the channel
    weights: one fused elementwise pass, 5-20x faster than XLA:CPU's grouped convolution."""
    kh, kw = w.shape[:2]
    x = jnp.pad(x.astype(jnp.float32), ((0, 0), *pads, (0, 0)))
    taps = _taps(x, kh, kw, strides)
    terms = (
        taps[i * kw + j] * w[i, j, 0].astype(jnp.float32) for i in range(kh) for j in range(kw)
    )
    return functools.reduce(operator.add, terms)


def _taps(x: jax.Array, kh: int, kw: int, strides) -> list[jax.Array]:
    """The kh * kw (row-major) strided views of padded `x` that a VALID conv multiplies."""
    (sh, sw), height, width = strides, x.shape[1] - kh + 1, x.shape[2] - kw + 1
    return [x[:, i : i + height : sh, j : j + width : sw] for i in range(kh) for j in range(kw)]


def _conv_as_matmul(x: jax.Array, w: jax.Array, strides, pads) -> jax.Array:
    """NHWC x HWIO conv as one bf16 matmul with float32 accumulation."""
    kh, kw, cin, cout = w.shape
    bits = jnp.pad(_to_bits(x), ((0, 0), *pads, (0, 0)))
    if tuple(strides) != (1, 1) or kh == 1 or kw * cin < 2 * cout:  # im2col: all taps in K
        cols = _from_bits(jnp.concatenate(_taps(bits, kh, kw, strides), axis=-1))
        return jnp.dot(cols, w.reshape(kh * kw * cin, cout), preferred_element_type=jnp.float32)
    height = bits.shape[1] - kh + 1
    cols = _from_bits(jnp.concatenate(_taps(bits, 1, kw, strides), axis=-1))
    taps = w.transpose(1, 2, 0, 3).reshape(kw * cin, kh * cout)  # [(j, c), (i, o)]
    rows = jnp.dot(cols, taps, preferred_element_type=jnp.float32)
    rows = rows.reshape(*rows.shape[:3], kh, cout)  # the partial outputs of each vertical tap
    return functools.reduce(operator.add, (rows[:, i : i + height, :, i] for i in range(kh)))


# Copies (pad, shifted slices, concatenation) are made on the raw bits: XLA:CPU would widen bf16
# copies to float32, and copies of channel pairs as uint32 run about twice as fast as uint16.
def _to_bits(x: jax.Array) -> jax.Array:
    if x.shape[-1] % 2:
        return lax.bitcast_convert_type(x, jnp.uint16)
    return lax.bitcast_convert_type(x.reshape(*x.shape[:-1], -1, 2), jnp.uint32)


def _from_bits(bits: jax.Array) -> jax.Array:
    x = lax.bitcast_convert_type(bits, jnp.bfloat16)
    return x if bits.dtype == jnp.uint16 else x.reshape(*x.shape[:-2], -1)


def conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    precision: Any = None,
    preferred_element_type: Any = None,
    **kwargs: Any,
) -> jax.Array:
    """`lax.conv_general_dilated`, computed another way on CPU where that is faster (see module
    docstring); the output dtype is `preferred_element_type` or the input's."""
    dilations = tuple(lhs_dilation or (1, 1)) + tuple(rhs_dilation or (1, 1))
    route = _cpu_route(lhs, rhs, window_strides, dilations, dimension_numbers, feature_group_count)
    if route is None:
        return lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation,
            rhs_dilation,
            dimension_numbers,
            feature_group_count,
            precision=precision,
            preferred_element_type=preferred_element_type,
            **kwargs,
        )
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
    compute = _conv_as_matmul if route == "matmul" else _depthwise
    return compute(lhs, rhs, window_strides, padding).astype(preferred_element_type or lhs.dtype)


CONV_IMPLS = {"auto": conv_general_dilated, "xla": lax.conv_general_dilated}


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
        conv_general_dilated=conv_general_dilated,
        rngs=rngs,
    )


def set_conv_impl(model: nnx.Module, impl: str) -> None:
    """Makes every `nnx.Conv` of `model` use `impl`: "auto" (the default: the CPU fast paths of
    the module docstring) or "xla" (always `lax.conv_general_dilated`)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"unknown conv implementation {impl!r}; expected {list(CONV_IMPLS)}")
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Conv):
            node.conv_general_dilated = CONV_IMPLS[impl]
