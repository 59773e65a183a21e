"""The audio CNN of Kumar, Khadkevich & Fügen (ICASSP 2018), `weak_mxh64_1024`, in Flax NNX.

Input: Mel-spectrogram windows `[N, time, mel]` or `[N, time, mel, 1]` (NHWC; AuSiL uses
174 × 128). Layers, named as in the original PyTorch network so that its state dict maps 1:1:

    layer1  conv3×3 16 + BN + ReLU      layer10 conv3×3 128 + BN + ReLU
    layer2  conv3×3 16 + BN + ReLU      layer11 conv3×3 128 + BN + ReLU
    layer3  maxpool 2                   layer12 maxpool 2
    layer4  conv3×3 32 + BN + ReLU      layer13 conv3×3 256 + BN + ReLU
    layer5  conv3×3 32 + BN + ReLU      layer14 conv3×3 256 + BN + ReLU
    layer6  maxpool 2                   layer15 maxpool 2
    layer7  conv3×3 64 + BN + ReLU      layer16 conv3×3 512 + BN + ReLU
    layer8  conv3×3 64 + BN + ReLU      layer17 maxpool 2
    layer9  maxpool 2                   layer18 conv2×2 (no padding) 1024 + BN + ReLU
                                        layer19 conv1×1 n_classes + sigmoid (optional head)

3×3 convolutions pad by 1; max pools have stride 2 and drop odd remainders. AuSiL takes MAC from
the 12 conv blocks layer1…layer18 (16+16+32+32+64+64+128+128+256+256+512+1024 = 2,528-d): per
layer, L2-normalise over channels at every position, global max over time × mel, L2-normalise;
concatenate in layer order (`ndvr_jax.backbones.mac`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ndvr_jax.backbones import torch_pickle
from ndvr_jax.backbones.mac import mac

# (name, output channels, kernel size) of the conv blocks; "pool" marks a 2×2 max pool.
LAYERS: tuple[tuple[str, int, int] | str, ...] = (
    ("layer1", 16, 3),
    ("layer2", 16, 3),
    "pool",
    ("layer4", 32, 3),
    ("layer5", 32, 3),
    "pool",
    ("layer7", 64, 3),
    ("layer8", 64, 3),
    "pool",
    ("layer10", 128, 3),
    ("layer11", 128, 3),
    "pool",
    ("layer13", 256, 3),
    ("layer14", 256, 3),
    "pool",
    ("layer16", 512, 3),
    "pool",
    ("layer18", 1024, 2),
)
MAC_LAYERS: tuple[str, ...] = tuple(layer[0] for layer in LAYERS if layer != "pool")
FEATURE_DIM = sum(layer[1] for layer in LAYERS if layer != "pool")  # 2,528
AUDIOSET_CLASSES = 527


def _max_pool(x: jax.Array) -> jax.Array:
    return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="VALID")


class ConvBlock(nnx.Module):
    """Conv (3×3 padded by 1, or 2×2 unpadded) + batch norm + ReLU."""

    def __init__(self, in_features: int, out_features: int, kernel: int, *, rngs: nnx.Rngs):
        padding = ((1, 1), (1, 1)) if kernel == 3 else "VALID"
        self.conv = nnx.Conv(
            in_features, out_features, (kernel, kernel), padding=padding, rngs=rngs
        )
        # torch BatchNorm2d defaults: eps 1e-5, momentum 0.1 (flax counts the complement).
        self.bn = nnx.BatchNorm(out_features, momentum=0.9, epsilon=1e-5, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jax.nn.relu(self.bn(self.conv(x)))


class AudioCNN(nnx.Module):
    """Kumar et al. 2018 `weak_mxh64_1024`; `model(windows)` returns the 12 MAC layers' maps."""

    FEATURE_DIM = FEATURE_DIM

    def __init__(self, num_classes: int | None = None, *, rngs: nnx.Rngs):
        """`num_classes` adds the original conv1×1 + sigmoid clip classifier (527: AudioSet)."""
        in_features = 1
        for layer in LAYERS:
            if layer != "pool":
                name, out_features, kernel = layer
                setattr(self, name, ConvBlock(in_features, out_features, kernel, rngs=rngs))
                in_features = out_features
        self.layer19 = (
            nnx.Conv(in_features, num_classes, (1, 1), rngs=rngs) if num_classes else None
        )

    def __call__(self, x: jax.Array) -> list[jax.Array]:
        """NHWC outputs of the 12 conv blocks (`MAC_LAYERS` order) for windows `[N, T, M(, 1)]`."""
        if x.ndim == 3:
            x = x[..., None]
        outputs = []
        for layer in LAYERS:
            if layer == "pool":
                x = _max_pool(x)
            else:
                x = getattr(self, layer[0])(x)
                outputs.append(x)
        return outputs

    def classify(self, x: jax.Array) -> jax.Array:
        """Clip-level class probabilities `[N, num_classes]` (sigmoid, then global max pool)."""
        if self.layer19 is None:
            raise ValueError("this AudioCNN was built without a classifier (num_classes=None)")
        last = self(x)[-1]
        return jnp.max(jax.nn.sigmoid(self.layer19(last)), axis=(1, 2))


def mac_extractor(model: AudioCNN) -> Callable[[jax.Array], jax.Array]:
    """A jitted function: windows `[N, T, M]` → MAC descriptors `[N, 2528]` (running BN stats)."""
    graphdef, state = nnx.split(nnx.view(model, use_running_average=True))

    @jax.jit
    def extract(state: nnx.State, windows: jax.Array) -> jax.Array:
        return mac(nnx.merge(graphdef, state)(windows))

    return lambda windows: extract(state, windows)


def segment_features(
    extract: Callable[[jax.Array], jax.Array], windows: np.ndarray, batch_size: int = 64
) -> np.ndarray:
    """Descriptors `[S, 2528]` of windows `[S, time, mel]`, in batches of one fixed size.

    The last batch is padded with zeros (and the padding dropped), so one compiled function
    serves every video.
    """
    chunks = []
    for start in range(0, windows.shape[0], batch_size):
        batch = windows[start : start + batch_size]
        n = batch.shape[0]
        if n < batch_size:
            batch = np.concatenate(
                [batch, np.zeros((batch_size - n, *batch.shape[1:]), batch.dtype)]
            )
        chunks.append(np.asarray(extract(jnp.asarray(batch)))[:n])
    if not chunks:
        return np.zeros((0, FEATURE_DIM), np.float32)
    return np.concatenate(chunks)


def assign_torch_state_dict(model: AudioCNN, state_dict: Mapping[str, np.ndarray]) -> None:
    """Copies the original network's PyTorch state dict (as numpy arrays) into `model`.

    Accepts the `module.` prefix that `DataParallel` checkpoints carry. `num_batches_tracked` is
    ignored, as is the classifier (`layer19`) when the model has none. Raises on missing keys,
    unknown keys, or shape mismatches.
    """
    expected: dict[str, tuple[nnx.Variable, Callable[[np.ndarray], np.ndarray]]] = {}
    conv_kernel = lambda w: np.transpose(w, (2, 3, 1, 0))  # OIHW → HWIO
    same = lambda w: w
    for name in MAC_LAYERS:
        block = getattr(model, name)
        expected[f"{name}.0.weight"] = (block.conv.kernel, conv_kernel)
        expected[f"{name}.0.bias"] = (block.conv.bias, same)
        expected[f"{name}.1.weight"] = (block.bn.scale, same)
        expected[f"{name}.1.bias"] = (block.bn.bias, same)
        expected[f"{name}.1.running_mean"] = (block.bn.mean, same)
        expected[f"{name}.1.running_var"] = (block.bn.var, same)
    if model.layer19 is not None:
        expected["layer19.0.weight"] = (model.layer19.kernel, conv_kernel)
        expected["layer19.0.bias"] = (model.layer19.bias, same)

    seen = set()
    for raw_key, value in state_dict.items():
        key = raw_key.removeprefix("module.")
        if key.endswith("num_batches_tracked") or (
            key.startswith("layer19.") and model.layer19 is None
        ):
            continue
        if key not in expected:
            raise KeyError(f"unexpected key in audio CNN state dict: {raw_key!r}")
        variable, convert = expected[key]
        array = convert(np.asarray(value, np.float32))
        if array.shape != variable.shape:
            raise ValueError(f"{raw_key}: shape {array.shape}, model expects {variable.shape}")
        variable.set_value(jnp.asarray(array))
        seen.add(key)
    missing = sorted(set(expected) - seen)
    if missing:
        raise KeyError(f"audio CNN state dict lacks {len(missing)} keys, e.g. {missing[:4]}")


def load_audio_cnn(path: str | os.PathLike, *, with_classifier: bool = False) -> AudioCNN:
    """Builds an `AudioCNN` (eval mode) from the original PyTorch weight file (a state dict).

    The file is read without torch (`ndvr_jax.backbones.torch_pickle`). The original weights are
    `mx-h64-1024_0d3-1.17.pkl` from Kumar's `weak_feature_extractor`.
    """
    state_dict = torch_pickle.load_state_dict(path)
    num_classes = AUDIOSET_CLASSES if with_classifier else None
    # Built abstract (no random init): every variable is then set from the file.
    model = nnx.eval_shape(lambda: AudioCNN(num_classes, rngs=nnx.Rngs(0)))
    assign_torch_state_dict(model, state_dict)
    model.eval()
    return model
