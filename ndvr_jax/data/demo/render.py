"""Turns the plan's video descriptions into pictures and sound.

A video is a list of visual segments (own shots, a copy of a span of another video, or a
procedural background) and an optional list of sound segments (own synthesised track, or a copy
of a span of another video's sound). Copies are rendered from their source's pristine pictures
and sound (not from its encoded file), sampled on the source's frame grid.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import audio, media, transforms
from .shots import Procedural, Shot, ShotSequence, Track, resize

Spec = dict[str, Any]


@dataclass(frozen=True)
class Concat:
    """Visual tracks one after another."""

    parts: tuple[Track, ...]

    @property
    def duration(self) -> float:
        return sum(p.duration for p in self.parts)

    def frame(self, t: float, height: int, width: int) -> np.ndarray:
        for part in self.parts[:-1]:
            if t < part.duration:
                return part.frame(t, height, width)
            t -= part.duration
        return self.parts[-1].frame(t, height, width)


@dataclass(frozen=True)
class Copy:
    """A span of another video, sped up or slowed down, transformed, then resized."""

    source: Track
    source_hw: tuple[int, int]
    source_fps: float
    source_frames: int
    start: float
    speed: float
    duration: float
    transforms: tuple[Spec, ...]

    def frame(self, t: float, height: int, width: int) -> np.ndarray:
        index = int(np.floor((self.start + self.speed * t) * self.source_fps + 1e-6))
        index = min(max(index, 0), self.source_frames - 1)
        image = self.source.frame(index / self.source_fps, *self.source_hw)
        for spec in self.transforms:
            image = transforms.apply(spec, image, t)
        return resize(image, height, width)


class Renderer:
    """Builds (and caches) the visual track and sound of every video of a plan."""

    def __init__(self, videos: dict[str, Spec], max_side: int):
        self.videos = videos
        self.max_side = max_side
        self._tracks: dict[tuple[str, tuple[tuple[str, str], ...]], Track] = {}
        self._sound: dict[str, np.ndarray | None] = {}

    def frames(self, video_id: str) -> Iterator[np.ndarray]:
        """The video's frames as uint8 RGB `[H, W, 3]`."""
        spec = self.videos[video_id]
        track = self.track(video_id)
        for i in range(spec["n_frames"]):
            image = track.frame(i / spec["fps"], spec["height"], spec["width"])
            yield (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)

    def track(self, video_id: str, swap: Sequence[tuple[str, str]] = ()) -> Track:
        """Visual track of a video; `swap` replaces source media by others (name pairs)."""
        key = (video_id, tuple(swap))
        if key not in self._tracks:
            segments = self.videos[video_id]["visual"]
            parts = tuple(self._segment(seg, dict(swap)) for seg in segments)
            self._tracks[key] = parts[0] if len(parts) == 1 else Concat(parts)
        return self._tracks[key]

    def _segment(self, seg: Spec, swap: dict[str, str]) -> Track:
        match seg["type"]:
            case "shots":
                shots = tuple(self._shot(s, swap) for s in seg["shots"])
                return ShotSequence(shots, tuple(seg["dissolves"]))
            case "procedural":
                return Procedural(seg["seed"], seg["duration"])
            case "copy":
                src = self.videos[seg["source"]]
                return Copy(
                    self.track(seg["source"], tuple(seg.get("media_swap", {}).items())),
                    (src["height"], src["width"]),
                    src["fps"],
                    src["n_frames"],
                    seg["source_start"],
                    seg["speed"],
                    seg["duration"],
                    tuple(seg["transforms"]),
                )
        raise ValueError(f"unknown visual segment type {seg['type']!r}")

    def _shot(self, shot: Spec, swap: dict[str, str]) -> Shot:
        name = swap.get(shot["source"], shot["source"])
        framing = dict(duration=shot["duration"], start=tuple(shot["from"]), end=tuple(shot["to"]))
        if name in media.CLIPS:
            clip = media.load_clip(name, self.max_side * 3 // 4)
            return Shot(clip.frames, fps=float(clip.fps), clip_start=shot["clip_start"], **framing)
        return Shot(media.load_picture(name, self.max_side), **framing)

    def sound(self, video_id: str) -> np.ndarray | None:
        """The video's sound `[C, N]` at `media.AUDIO_RATE`, or None when it has none."""
        if video_id not in self._sound:
            spec = self.videos[video_id]
            if spec["audio"] is None:
                self._sound[video_id] = None
            else:
                parts = [self._sound_segment(seg, spec["channels"]) for seg in spec["audio"]]
                track = np.concatenate(parts, axis=1)
                n = audio.n_samples(spec["duration"])
                track = np.pad(track[:, :n], ((0, 0), (0, max(0, n - track.shape[1]))))
                self._sound[video_id] = track
        return self._sound[video_id]

    def _sound_segment(self, seg: Spec, channels: int) -> np.ndarray:
        match seg["type"]:
            case "synth":
                track = audio.synth_track(seg["seed"], seg["duration"], channels)
                mixes = seg.get("mix", ())
                if mixes:  # real sound of clips in front of a quieter synthesised bed
                    track = 0.5 * track
                for mix in mixes:
                    clip = media.load_clip(mix["clip"], self.max_side * 3 // 4)
                    real = audio.copy_span(clip.audio, mix["clip_start"], 1.0, mix["duration"], 2)
                    track = audio.mix_in(track, real, mix["start"], 1.0)
                return np.clip(track, -1.0, 1.0)
            case "copy":
                return audio.copy_span(
                    self.sound(seg["source"]),
                    seg["source_start"],
                    seg["speed"],
                    seg["duration"],
                    channels,
                    seg["gain_db"],
                    seg["noise_snr_db"],
                    seg["seed"],
                )
        raise ValueError(f"unknown sound segment type {seg['type']!r}")
