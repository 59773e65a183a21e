"""The VGG-like audio CNN of musicnn (Pons & Serra 2019) in Flax NNX, with its pretrained weights.

The PyPI package `musicnn` ships TensorFlow 1 checkpoints of networks trained for music tagging:
`MTT_vgg` (MagnaTagATune, 50 tags) and `MSD_vgg` (Million Song Dataset). They are read here
without TensorFlow (`ndvr_jax.backbones.tf_checkpoint`); install the package's files with
`pip install --no-deps musicnn` (its declared dependencies are obsolete and not needed).

Front-end (musicnn's `batch_data`): mono audio at 16 kHz; Mel power spectrogram (n_fft 512, hop
256, 96 bands, librosa defaults), cast to float16, `log10(10000·x + 1)`; windows of 187 frames
(3 s, the length the networks were trained on). Here windows start every 62 frames (≈1 s, as
AuSiL), the audio is DC-removed and peak-normalised first (like `ndvr_jax.io.audio`, so copies
played louder or quieter match), and silence / no audio give the same statuses as there.

Network (`musicnn.models.vgg`, 128 filters), on `[N, 187, 96]` = NHWC `[N, time, mel, 1]`:
input batch norm; then 5 × (conv3×3 SAME + ReLU → batch norm → max pool), pools (4,1)/(2,2),
(2,2)/(2,2) ×3, (4,4)/(4,4) (VALID); flatten → dense 50 → sigmoid. Batch norms use TF's
epsilon 1e-3. MAC for AuSiL: over the 5 pool outputs (musicnn's `pool1`…`pool5` features),
5 × 128 = 640-d.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ndvr_jax.backbones.tf_checkpoint import read_checkpoint
from ndvr_jax.io import audio as audio_io

FILTERS = 128
NUM_LAYERS = 5
FEATURE_DIM = NUM_LAYERS * FILTERS  # 640
POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))
MODELS = ("MTT_vgg", "MSD_vgg")
DEFAULT_MODEL = "MTT_vgg"
AUDIO = audio_io.AudioConfig(
    sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, window_frames=187, hop_frames=62
)


def log_mel(samples: np.ndarray, config: audio_io.AudioConfig = AUDIO) -> np.ndarray:
    """musicnn's input `[n_frames, n_mels]`: `log10(10000·mel + 1)` of the float16 Mel power."""
    power = audio_io.mel_power(samples, config, pad_mode="constant").T  # librosa's default
    return np.log10(10000 * power.astype(np.float16).astype(np.float32) + 1).astype(np.float32)


def waveform_windows(
    samples: np.ndarray, config: audio_io.AudioConfig = AUDIO
) -> audio_io.AudioWindows:
    """Windows of musicnn's spectrogram, statuses as `ndvr_jax.io.audio.waveform_windows`."""
    return audio_io.waveform_windows(samples, config, spectrogram=log_mel)


def load_windows(
    source: str | os.PathLike, config: audio_io.AudioConfig = AUDIO
) -> audio_io.AudioWindows:
    """Decodes a file's audio (16 kHz mono) and cuts musicnn's spectrogram into windows."""
    return audio_io.load_audio_windows(source, config, spectrogram=log_mel)


def _batch_norm(features: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    # tf.compat.v1.layers.batch_normalization defaults: epsilon 1e-3, momentum 0.99.
    return nnx.BatchNorm(features, epsilon=1e-3, momentum=0.99, rngs=rngs)


class MusicnnVGG(nnx.Module):
    """musicnn's `vgg` network; `model(windows)` returns the 5 pool outputs (NHWC)."""

    FEATURE_DIM = FEATURE_DIM

    def __init__(self, num_classes: int = 50, *, rngs: nnx.Rngs):
        self.bn_input = _batch_norm(1, rngs)
        channels = [1] + [FILTERS] * NUM_LAYERS
        self.convs = nnx.List(
            [
                nnx.Conv(channels[i], FILTERS, (3, 3), padding="SAME", rngs=rngs)
                for i in range(NUM_LAYERS)
            ]
        )
        self.bns = nnx.List([_batch_norm(FILTERS, rngs) for _ in range(NUM_LAYERS)])
        self.dense = nnx.Linear(2 * 1 * FILTERS, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> list[jax.Array]:
        """Pool outputs `pool1`…`pool5` for windows `[N, 187, 96]` (or `[N, T, M, 1]`)."""
        if x.ndim == 3:
            x = x[..., None]
        x = self.bn_input(x)
        outputs = []
        for conv, bn, (window, strides) in zip(self.convs, self.bns, POOLS, strict=True):
            x = bn(jax.nn.relu(conv(x)))
            x = nnx.max_pool(x, window_shape=window, strides=strides, padding="VALID")
            outputs.append(x)
        return outputs

    def classify(self, x: jax.Array) -> jax.Array:
        """Tag probabilities `[N, num_classes]` of 187-frame windows (sigmoid of the logits)."""
        last = self(x)[-1]
        return jax.nn.sigmoid(self.dense(last.reshape(last.shape[0], -1)))


def checkpoint_path(model: str = DEFAULT_MODEL) -> Path:
    """The checkpoint folder of a pretrained musicnn model in the installed `musicnn` package."""
    if model not in MODELS:
        raise ValueError(f"unknown musicnn model {model!r}; available: {MODELS}")
    spec = importlib.util.find_spec("musicnn")  # located, never imported (it needs TF1)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the musicnn weights need the package's files: `pip install --no-deps musicnn`"
        )
    return Path(next(iter(spec.submodule_search_locations)), model)


def assign_checkpoint(model: MusicnnVGG, tensors: dict[str, np.ndarray]) -> None:
    """Copies musicnn's TF variables (`1CNN/kernel`, `batch_normalization_3/gamma`, ...)."""
    targets: dict[str, nnx.Variable] = {}
    for bn, name in [(model.bn_input, "batch_normalization")] + [
        (b, f"batch_normalization_{i + 1}") for i, b in enumerate(model.bns)
    ]:
        targets |= {
            f"{name}/gamma": bn.scale,
            f"{name}/beta": bn.bias,
            f"{name}/moving_mean": bn.mean,
            f"{name}/moving_variance": bn.var,
        }
    for i, conv in enumerate(model.convs):
        targets |= {f"{i + 1}CNN/kernel": conv.kernel, f"{i + 1}CNN/bias": conv.bias}
    targets |= {"dense/kernel": model.dense.kernel, "dense/bias": model.dense.bias}
    for name, variable in targets.items():
        key = next((k for k in (name, f"model/{name}") if k in tensors), None)
        if key is None:
            raise KeyError(f"musicnn checkpoint lacks {name!r}")
        value = np.asarray(tensors[key], np.float32)
        if value.shape != variable.shape:
            raise ValueError(f"{name}: shape {value.shape}, model expects {variable.shape}")
        variable.set_value(jnp.asarray(value))


def load_musicnn(path: str | os.PathLike | None = None) -> MusicnnVGG:
    """A `MusicnnVGG` (eval mode) with the weights of a musicnn checkpoint (default `MTT_vgg`).

    `path`: a checkpoint prefix / folder, or a model name of the installed package.
    """
    if path is None or str(path) in MODELS:
        path = checkpoint_path(str(path) if path else DEFAULT_MODEL)
    tensors = read_checkpoint(path)
    num_classes = tensors.get("dense/bias", np.zeros(50)).shape[0]
    model = nnx.eval_shape(lambda: MusicnnVGG(num_classes, rngs=nnx.Rngs(0)))
    assign_checkpoint(model, tensors)
    model.eval()
    return model
