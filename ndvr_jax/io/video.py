"""Video decoding with PyAV: n frames per second, exact timestamps, resize to a square canvas.

Two resize recipes:
  * `pad`  (ndvr-dml): scale the long side to `size` keeping the aspect ratio, then zero-pad the
    short side (centred) to a `size`×`size` canvas;
  * `crop` (ViSiL): scale the short side to `size`, then take the centred `size`×`size` crop.

Frame sampling: for target times 0, 1/fps, 2/fps, … the first decoded frame whose presentation
time is at or after the target is kept, with its real timestamp. Every frame is decoded (codecs
need them), but only kept frames are converted and scaled, inside libswscale.
"""

from __future__ import annotations

import dataclasses
import os

import av
import numpy as np

RESIZE_MODES = ("pad", "crop")


class VideoDecodeError(Exception):
    """A video that cannot be used; `reason` is a short machine-readable kind."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclasses.dataclass
class DecodedVideo:
    """Sampled frames of one video."""

    frames: np.ndarray  # uint8 [T, size, size, 3], RGB
    timestamps: np.ndarray  # float64 [T], seconds
    duration: float  # seconds, from the container (or the last frame)
    source_fps: float
    codec: str
    container: str


def _scaled_size(width: int, height: int, size: int, mode: str) -> tuple[int, int]:
    """Output (width, height) of the aspect-preserving scale for `mode`."""
    if mode == "pad":
        scale = size / max(width, height)
    elif mode == "crop":
        scale = size / min(width, height)
    else:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_to_square(image: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Places an already scaled [h, w, 3] image on the `size`×`size` canvas (pad or crop)."""
    h, w = image.shape[:2]
    if mode == "pad":
        canvas = np.zeros((size, size, 3), np.uint8)
        top, left = (size - h) // 2, (size - w) // 2
        canvas[top : top + h, left : left + w] = image[:size, :size]
        return canvas
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    if not os.path.exists(path):
        raise VideoDecodeError("missing", f"no such file: {path}")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError("empty", f"empty file: {path}")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise VideoDecodeError("unreadable", f"{path}: not a readable media file ({e})") from e


def decode_video(
    path: str | os.PathLike,
    fps: float = 1.0,
    size: int = 224,
    mode: str = "pad",
    min_coverage: float = 0.9,
) -> DecodedVideo:
    """Decodes `fps` frames per second of `path`, scaled onto a `size`² canvas.

    Raises `VideoDecodeError` for a missing, empty, unreadable, video-less, frame-less or
    truncated file (decoded frames cover less than `min_coverage` of the container duration).
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    with _open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError("no_video_stream", f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames, stamps = [], []
        next_time, last_time = 0.0, None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                last_time = frame.time
                if frame.time + 1e-6 < next_time:
                    continue
                width, height = _scaled_size(frame.width, frame.height, size, mode)
                rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
                frames.append(fit_to_square(rgb, size, mode))
                stamps.append(frame.time)
                next_time = (np.floor(frame.time * fps + 1e-6) + 1) / fps
        except av.error.FFmpegError as e:
            raise VideoDecodeError("corrupt", f"{path}: decoding failed ({e})") from e
        if not frames:
            raise VideoDecodeError("no_frames", f"{path}: no decodable video frames")
        duration = _container_duration(container, stream) or last_time
        frame_step = 1.0 / float(stream.average_rate or 25)
        if duration and (last_time + frame_step) < min_coverage * duration:
            raise VideoDecodeError(
                "truncated", f"{path}: frames end at {last_time:.2f}s of {duration:.2f}s"
            )
        return DecodedVideo(
            frames=np.stack(frames),
            timestamps=np.asarray(stamps, np.float64),
            duration=float(duration),
            source_fps=float(stream.average_rate or 0.0),
            codec=stream.codec_context.name,
            container=container.format.name,
        )


def _container_duration(container: av.container.InputContainer, stream) -> float | None:
    """Duration in seconds from the stream or container header, if known."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None
