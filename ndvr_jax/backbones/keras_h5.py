"""Reads Keras HDF5 weight files (`model.save("x.h5")` or `model.save_weights("x.h5")`).

Layout: the weights live in the root group (weights-only files) or in `model_weights/` (full-model
files). That group's `layer_names` attribute lists the layers in order; each layer group's
`weight_names` attribute lists its datasets, e.g. `block1_conv1/kernel:0`, `block1_conv1/bias:0`.
Kernels are stored HWIO. Full-model files also carry `model_config` (JSON), from which per-layer
settings such as the BatchNorm epsilon are read.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import h5py
import numpy as np

__all__ = ["KerasWeights", "load_keras_h5"]


@dataclasses.dataclass
class KerasWeights:
    """Weights of a Keras model by layer name.

    layers: `{layer_name: {weight_name: array}}` in file order, only layers with weights; weight
      names are shortened to `kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance`.
    configs: `{layer_name: layer config dict}` (empty for weights-only files).
    """

    layers: dict[str, dict[str, np.ndarray]]
    configs: dict[str, dict[str, Any]]


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes | np.bytes_) else str(value)


def _attr_list(obj: h5py.Group, name: str) -> list[str]:
    """A list attribute, which Keras splits into `name0`, `name1`, ... when it is large."""
    if name in obj.attrs:
        return [_text(v) for v in obj.attrs[name]]
    out, chunk = [], 0
    while f"{name}{chunk}" in obj.attrs:
        out.extend(_text(v) for v in obj.attrs[f"{name}{chunk}"])
        chunk += 1
    return out


def _short_name(weight_name: str) -> str:
    """`conv1_conv/kernel:0` -> `kernel`."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def _layer_configs(model_config: Any) -> dict[str, dict[str, Any]]:
    config = json.loads(_text(model_config))
    layers = config.get("config", {}).get("layers", [])
    return {layer["config"]["name"]: layer["config"] for layer in layers if "config" in layer}


def load_keras_h5(path: str | os.PathLike) -> KerasWeights:
    """Reads every layer's weights (and, for full-model files, layer configs) from a Keras `.h5`."""
    with h5py.File(path, "r") as f:
        group = f.get("model_weights", f)
        layer_names = _attr_list(group, "layer_names")
        if not layer_names:
            hint = " (Keras 3 '.weights.h5' files are not supported)" if "layers" in f else ""
            raise ValueError(
                f"{path}: not a Keras HDF5 weights file, no 'layer_names' attribute{hint}; "
                "save the model with model.save('model.h5') or tf.keras save_weights('w.h5')"
            )
        layers: dict[str, dict[str, np.ndarray]] = {}
        for layer_name in layer_names:
            layer = group[layer_name]
            weights: dict[str, np.ndarray] = {}
            for weight_name in _attr_list(layer, "weight_names"):
                short = _short_name(weight_name)
                if short in weights:
                    raise ValueError(f"{path}: layer {layer_name!r} has two {short!r} weights")
                weights[short] = np.asarray(layer[weight_name])
            if weights:
                layers[layer_name] = weights
        configs = _layer_configs(f.attrs["model_config"]) if "model_config" in f.attrs else {}
    return KerasWeights(layers=layers, configs=configs)
