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
import stat
from collections.abc import Iterator

import av
import numpy as np
from PIL import Image

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

    def chunks(self) -> Iterator[np.ndarray]:
        """The frames as one chunk (what batch extraction reads, as from a `VideoStream`)."""
        yield self.frames


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


def square_image(image: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Any uint8 `[h, w, 3]` image scaled (bilinear) and placed on the canvas as frames are."""
    width, height = _scaled_size(image.shape[1], image.shape[0], size, mode)
    scaled = Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.BILINEAR)
    return fit_to_square(np.asarray(scaled), size, mode)


def check_media_file(
    path: str | os.PathLike, error: type[VideoDecodeError] = VideoDecodeError
) -> None:
    """Raises `error(reason, ...)` before anything opens `path` if it is missing, not a regular
    file (a FIFO, device or folder, whose reads can block forever) or empty."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise error("missing", f"no such file: {path}") from None
    except OSError as e:
        raise error("unreadable", f"{path}: cannot be read ({e.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise error("not_a_file", f"{path}: not a regular file (a FIFO, device or folder)")
    if info.st_size == 0:
        raise error("empty", f"empty file: {path}")


def check_coverage(
    path: str | os.PathLike,
    end: float,
    duration: float | None,
    min_coverage: float,
    error: type[VideoDecodeError] = VideoDecodeError,
) -> None:
    """Raises `error("truncated", ...)` if decoding ended (at `end` s) before `min_coverage` of
    the `duration` the container announced."""
    if duration and end < min_coverage * duration:
        raise error("truncated", f"{path}: decoding ends at {end:.2f}s of {duration:.2f}s")


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    check_media_file(path)
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
    """Decodes `fps` frames per second of `path`, scaled onto a `size`² canvas, all at once.

    Raises `VideoDecodeError` for a missing, non-regular, empty, unreadable, video-less,
    frame-less or truncated file (decoded frames cover less than `min_coverage` of the
    container duration). `VideoStream` decodes the same frames a chunk at a time.
    """
    stream = VideoStream(path, fps, size, mode, min_coverage)
    frames = np.concatenate(list(stream.chunks()))
    return DecodedVideo(frames, *stream.info())


class VideoStream:
    """The frames `decode_video` gives, decoded on demand `chunk_frames` at a time, so memory
    does not grow with the video's duration.

    `chunks()` yields uint8 `[n, size, size, 3]` arrays (raising `VideoDecodeError` where
    `decode_video` would, a truncation only at the end); once they are exhausted, `timestamps`,
    `duration`, `source_fps`, `codec` and `container` describe the video as `DecodedVideo` does.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float = 1.0,
        size: int = 224,
        mode: str = "pad",
        min_coverage: float = 0.9,
        chunk_frames: int = 64,
    ):
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path, self.fps, self.size, self.mode = path, fps, size, mode
        self.min_coverage, self.chunk_frames = min_coverage, chunk_frames
        self.timestamps = np.zeros(0, np.float64)
        self.duration, self.source_fps, self.codec, self.container = 0.0, 0.0, "", ""

    def info(self) -> tuple[np.ndarray, float, float, str, str]:
        """`(timestamps, duration, source_fps, codec, container)`, the fields of `DecodedVideo`
        after its frames."""
        return self.timestamps, self.duration, self.source_fps, self.codec, self.container

    def chunks(self) -> Iterator[np.ndarray]:
        """Decodes the video, yielding its sampled frames `chunk_frames` at a time."""
        path = self.path
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
                    frames.append(self._canvas(frame))
                    stamps.append(frame.time)
                    next_time = (np.floor(frame.time * self.fps + 1e-6) + 1) / self.fps
                    if len(frames) == self.chunk_frames:
                        yield np.stack(frames)
                        frames = []
            except av.error.FFmpegError as e:
                raise VideoDecodeError("corrupt", f"{path}: decoding failed ({e})") from e
            if not stamps:
                raise VideoDecodeError("no_frames", f"{path}: no decodable video frames")
            duration = container_duration(container, stream) or last_time
            frame_step = 1.0 / float(stream.average_rate or 25)
            check_coverage(path, last_time + frame_step, duration, self.min_coverage)
            if frames:
                yield np.stack(frames)
            self.timestamps = np.asarray(stamps, np.float64)
            self.duration, self.source_fps = float(duration), float(stream.average_rate or 0.0)
            self.codec, self.container = stream.codec_context.name, container.format.name

    def _canvas(self, frame: av.VideoFrame) -> np.ndarray:
        """One decoded frame scaled (inside libswscale) and placed on the square canvas."""
        width, height = _scaled_size(frame.width, frame.height, self.size, self.mode)
        rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
        return fit_to_square(rgb, self.size, self.mode)


def container_duration(container: av.container.InputContainer, stream) -> float | None:
    """Duration in seconds from the stream or container header, if known."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None
