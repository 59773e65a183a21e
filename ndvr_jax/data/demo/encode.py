"""Writing video (+ sound) files with PyAV, in several containers and codecs.

A `Profile` names a container and, for video and sound, a list of encoders in order of preference;
`resolve` picks the first that this PyAV build has, so the choice is made (and recorded in the
manifest) before anything is encoded. Files are written atomically.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ndvr_jax.io.atomic import atomic_write

from .media import AUDIO_RATE


@dataclass(frozen=True)
class Profile:
    """A file extension and container format, and encoders in order of preference."""

    ext: str
    format: str
    video: tuple[str, ...]
    audio: tuple[str, ...]
    low_bitrate: bool = False


PROFILES = {
    "mp4": Profile("mp4", "mp4", ("libx264", "mpeg4"), ("aac",)),
    "mp4_low": Profile("mp4", "mp4", ("libx264", "mpeg4"), ("aac",), low_bitrate=True),
    "mkv": Profile("mkv", "matroska", ("libx265", "libx264", "mpeg4"), ("flac", "pcm_s16le")),
    "webm_vp9": Profile("webm", "webm", ("libvpx-vp9", "libvpx"), ("libopus", "vorbis")),
    "webm_vp8": Profile("webm", "webm", ("libvpx", "libvpx-vp9"), ("vorbis", "libopus")),
    "avi_mjpeg": Profile("avi", "avi", ("mjpeg",), ("pcm_s16le",)),
    "avi_mpeg4": Profile("avi", "avi", ("mpeg4",), ("libmp3lame", "mp2", "pcm_s16le")),
    "mov": Profile("mov", "mov", ("libx264", "mpeg4"), ("alac", "aac")),
    "ts": Profile("ts", "mpegts", ("mpeg2video",), ("mp2",)),
    "3gp": Profile("3gp", "3gp", ("h263", "mpeg4"), ("aac",), low_bitrate=True),
}
H263_SIZES = ((96, 128), (144, 176), (288, 352))  # the only sizes H.263 can code (h, w)
_STEREO_ONLY = {"vorbis"}
_AUDIO_RATES = {"libopus": 48000}
# bits per pixel per frame for encoders driven by a bit rate
_BPP = {"mjpeg": 0.8, "mpeg4": 0.15, "mpeg2video": 0.2, "h263": 0.15, "libvpx": 0.1}
_OPTIONS = {
    "libx264": {"preset": "veryfast", "crf": "23"},
    "libx265": {"preset": "ultrafast", "crf": "26", "x265-params": "log-level=none"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "row-mt": "1"},
    "libvpx": {"deadline": "realtime", "cpu-used": "8"},
}
_LOW_BPP = 0.03
_AUDIO_OPTIONS = {"vorbis": {"strict": "experimental"}}  # FFmpeg's own Vorbis encoder
_AUDIO_BITRATES = {"aac": 96_000, "libmp3lame": 96_000, "libopus": 64_000, "mp2": 128_000}


@functools.cache
def has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # UnknownCodecError and friends differ between PyAV versions
        return False
    return True


@dataclass(frozen=True)
class Encoding:
    """What a profile resolved to here: what the manifest records about a file's format."""

    container: str
    video_encoder: str
    audio_encoder: str
    low_bitrate: bool

    @property
    def video_codec(self) -> str:
        return av.codec.Codec(self.video_encoder, "w").canonical_name

    @property
    def audio_codec(self) -> str:
        return av.codec.Codec(self.audio_encoder, "w").canonical_name

    @property
    def sample_rate(self) -> int:
        return _AUDIO_RATES.get(self.audio_encoder, AUDIO_RATE)

    def channels(self, wanted: int) -> int:
        return 2 if self.audio_encoder in _STEREO_ONLY else wanted


def resolve(profile_name: str, height: int, width: int) -> Encoding:
    """First available encoders of a profile (H.263 only where the frame size allows it)."""
    profile = PROFILES[profile_name]
    video = [
        c
        for c in profile.video
        if has_encoder(c) and (c != "h263" or (height, width) in H263_SIZES)
    ]
    audio = [c for c in profile.audio if has_encoder(c)]
    if not video or not audio:
        raise RuntimeError(f"PyAV here has none of {profile.video} or none of {profile.audio}")
    return Encoding(profile.format, video[0], audio[0], profile.low_bitrate)


def _video_stream(container, enc: Encoding, fps: Fraction, height: int, width: int):
    stream = container.add_stream(enc.video_encoder, rate=fps)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuvj420p" if enc.video_encoder == "mjpeg" else "yuv420p"
    stream.thread_count = 1
    options = dict(_OPTIONS.get(enc.video_encoder, {}))
    pixel_rate = width * height * float(fps)
    if enc.low_bitrate:
        options.pop("crf", None)
        stream.bit_rate = max(16_000, round(pixel_rate * _LOW_BPP))
    elif "crf" not in options:
        stream.bit_rate = round(pixel_rate * _BPP.get(enc.video_encoder, 0.1))
    stream.options = options
    return stream


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: Fraction | None,
    encoding: Encoding,
    audio: np.ndarray | None = None,
    size: tuple[int, int] | None = None,
) -> None:
    """Encodes uint8 RGB frames `[H, W, 3]` (all of one size) at `fps`, and optionally a float32
    track `[C, N]` at `AUDIO_RATE`, interleaved, into `path` (written atomically).

    With `size` (height, width), `frames` may be empty: a video stream without a single frame.
    With `fps=None` there is no video stream at all (an audio-only file).
    """
    frames = iter(frames)
    first = next(frames, None)
    if fps is not None and first is None and size is None:
        raise ValueError("no frames: give `size` to write a video stream without frames")
    height, width = (size or (0, 0)) if first is None else first.shape[:2]
    with (
        atomic_write(path, "wb") as f,
        av.open(f, "w", format=encoding.container, options={"fflags": "+bitexact"}) as container,
    ):
        vstream = None if fps is None else _video_stream(container, encoding, fps, height, width)
        astream = None if audio is None else _audio_stream(container, encoding, audio.shape[0])
        container.start_encoding()  # header even when no packet follows
        written = 0
        images = itertools.chain([] if first is None else [first], frames) if vstream else ()
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts, frame.time_base = i, 1 / fps
            container.mux(vstream.encode(frame))
            if astream is not None:  # sound up to the end of this frame, for interleaving
                end = min(audio.shape[1], round((i + 1) / fps * AUDIO_RATE))
                written = _encode_audio(container, astream, audio, written, end)
        if astream is not None:
            _encode_audio(container, astream, audio, written, audio.shape[1])
            container.mux(astream.encode(None))
        if vstream is not None:
            container.mux(vstream.encode(None))


def _audio_stream(container, enc: Encoding, channels: int):
    layout = "mono" if channels == 1 else "stereo"
    stream = container.add_stream(enc.audio_encoder, rate=enc.sample_rate, layout=layout)
    stream.thread_count = 1
    stream.options = dict(_AUDIO_OPTIONS.get(enc.audio_encoder, {}))
    if enc.audio_encoder in _AUDIO_BITRATES:
        stream.bit_rate = _AUDIO_BITRATES[enc.audio_encoder]
    return stream


def _encode_audio(container, stream, audio: np.ndarray, start: int, end: int) -> int:
    if end <= start:
        return start
    chunk = np.ascontiguousarray(audio[:, start:end], dtype=np.float32)
    layout = "mono" if audio.shape[0] == 1 else "stereo"
    frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
    container.mux(stream.encode(frame))
    return end
