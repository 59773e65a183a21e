"""Media files that a robust feature extractor must reject (or treat specially), one per failure.

`make_broken_media(out_dir)` writes them with `broken.txt` (`<id>\\t<path>`) and `expected.json`
(`{id: kind}`); an id is its failure kind. What a reader sees, by kind:

- empty: a zero-byte `.mp4`: opening fails.
- not_media: random bytes named `.mp4`: opening fails.
- truncated: a valid mp4 cut to its first 40 %; the index (moov atom) is lost: opening fails.
- no_video_stream: a valid audio-only `.m4a`: there is no video stream.
- corrupt_packets: a valid mp4 header and index, every video packet's payload overwritten with
  random bytes: decoding raises (no frame comes out).
- zero_frames: a valid `.avi` whose video stream holds no frame: decoding gives nothing.
- no_audio_stream: a valid video without sound: fine for visual features; audio: "no audio".
- silent_audio: a valid video whose sound is digital silence: audio features see only zeros.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ndvr_jax.data.demo.audio import n_samples, synth_track
from ndvr_jax.data.demo.encode import resolve, write_video
from ndvr_jax.data.demo.shots import Procedural
from ndvr_jax.io.atomic import atomic_write, save_json_atomic

KINDS = (
    "empty",
    "not_media",
    "truncated",
    "no_video_stream",
    "corrupt_packets",
    "zero_frames",
    "no_audio_stream",
    "silent_audio",
)
VIDEO_OK = ("no_audio_stream", "silent_audio")  # usable for visual features
AUDIO_OK = ("no_video_stream",)  # usable for audio features
_HW, _FPS, _SECONDS = (96, 128), Fraction(12), 2.0


def _frames() -> list[np.ndarray]:
    track = Procedural(seed=7)
    n = int(_SECONDS * _FPS)
    return [(track.frame(i / float(_FPS), *_HW) * 255).astype(np.uint8) for i in range(n)]


def _corrupt_packets(valid: Path, path: Path, rng: np.random.Generator) -> None:
    """Remuxes `valid`'s video stream with every packet's bytes replaced by random ones."""
    with (
        av.open(str(valid)) as src,
        atomic_write(path, "wb") as f,
        av.open(f, "w", format="mp4") as dst,
    ):
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        for packet in src.demux(stream):
            if packet.dts is None:  # the flush packet
                continue
            bad = av.Packet(rng.bytes(packet.size))
            bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
            bad.is_keyframe, bad.stream = packet.is_keyframe, out
            dst.mux(bad)


def make_broken_media(out_dir: str | os.PathLike) -> dict[str, str]:
    """Writes one file per failure kind (deterministically) into `out_dir`; returns id -> path."""
    out = Path(out_dir).resolve()
    rng = np.random.default_rng(0)
    frames = _frames()
    sound = synth_track(seed=11, duration=_SECONDS, channels=2)
    mp4 = resolve("mp4", *_HW)
    paths = {kind: out / f"{kind}.mp4" for kind in KINDS}
    paths.update(no_video_stream=out / "no_video_stream.m4a", zero_frames=out / "zero_frames.avi")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".valid", dir=out) as tmp:
        valid = Path(tmp) / "valid.mp4"
        write_video(valid, frames, fps=_FPS, encoding=mp4, audio=sound)
        data = valid.read_bytes()
        _corrupt_packets(valid, paths["corrupt_packets"], rng)
    for kind, payload in (
        ("empty", b""),
        ("not_media", rng.bytes(16384)),
        ("truncated", data[: len(data) * 2 // 5]),
    ):
        with atomic_write(paths[kind], "wb") as f:
            f.write(payload)
    write_video(paths["no_video_stream"], (), fps=None, encoding=mp4, audio=sound)
    write_video(paths["zero_frames"], (), fps=_FPS, encoding=resolve("avi_mpeg4", *_HW), size=_HW)
    write_video(paths["no_audio_stream"], frames, fps=_FPS, encoding=mp4)
    silence = np.zeros((1, n_samples(_SECONDS)), np.float32)
    write_video(paths["silent_audio"], frames, fps=_FPS, encoding=mp4, audio=silence)
    with atomic_write(out / "broken.txt") as f:
        f.writelines(f"{kind}\t{paths[kind]}\n" for kind in KINDS)
    save_json_atomic(out / "expected.json", {kind: kind for kind in KINDS})
    return {kind: str(paths[kind]) for kind in KINDS}
