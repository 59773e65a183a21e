"""The demo's renderer on pool media: shots of pool pictures, sound tracks made of pieces of
pool sounds (a music span, or spoken words one after another), audio copy operations
(`audio_ops`) and picture-in-picture with real foreign footage both ways.

Extra segment fields (the rest is the demo's, see `ndvr_jax.data.demo.render`):
- sound `{"type": "media", "duration", "gain_db", "pieces": [{"name", "start", "at",
  "duration", "gain_db"?}]}`: each piece is `duration` seconds of pool sound `name` from
  `start`, placed `at` seconds into the segment (optionally attenuated);
- sound copies may have `"keep_pitch": true` (the speed change is a time stretch) and
  `"effects"` (`audio_ops` specs);
- visual copies may have `"pip": {"mode": "inset" | "host", "foreign": <visual segment>,
  "scale", "u", "v"}`: the copy shrunk inside the foreign footage (`inset`), or the foreign
  footage shrunk inside the copy (`host`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ndvr_jax.data.demo import audio
from ndvr_jax.data.demo.render import Renderer
from ndvr_jax.data.demo.shots import Shot, Track

from . import audio_ops
from .pool import MediaPool

Spec = dict[str, Any]


@dataclass(frozen=True)
class PictureInPicture:
    """`inset` shrunk to `scale` of the frame at (`u`, `v`) over `host`, with a thin white edge."""

    host: Track
    inset: Track
    scale: float
    u: float
    v: float

    @property
    def duration(self) -> float:
        return self.host.duration

    def frame(self, t: float, height: int, width: int) -> np.ndarray:
        canvas = np.array(self.host.frame(t, height, width), np.float32)
        ph, pw = max(2, round(height * self.scale)), max(2, round(width * self.scale))
        y0, x0 = round((height - ph) * self.v), round((width - pw) * self.u)
        edge = max(1, height // 120)
        canvas[max(0, y0 - edge) : y0 + ph + edge, max(0, x0 - edge) : x0 + pw + edge] = 1.0
        canvas[y0 : y0 + ph, x0 : x0 + pw] = self.inset.frame(t, ph, pw)
        return canvas


class PoolRenderer(Renderer):
    """`Renderer` whose shots and sounds may come from a `MediaPool`.

    With `keep_sound=False` a video's sound is not kept after it is made (a corpus without
    copies needs no video's sound twice, and keeping all of them would fill the memory).
    """

    def __init__(
        self, videos: dict[str, Spec], max_side: int, pool: MediaPool, keep_sound: bool = True
    ):
        super().__init__(videos, max_side)
        self.pool = pool
        self.keep_sound = keep_sound

    def _shot(self, shot: Spec, swap: dict[str, str]) -> Shot:
        if shot["source"] not in self.pool:
            return super()._shot(shot, swap)
        framing = dict(duration=shot["duration"], start=tuple(shot["from"]), end=tuple(shot["to"]))
        return Shot(self.pool.picture(shot["source"], self.max_side), **framing)

    def _segment(self, seg: Spec, swap: dict[str, str]) -> Track:
        track = super()._segment(seg, swap)
        pip = seg.get("pip")
        if pip is None:
            return track
        foreign = self._segment(pip["foreign"], swap)
        host, inset = (foreign, track) if pip["mode"] == "inset" else (track, foreign)
        return PictureInPicture(host, inset, pip["scale"], pip["u"], pip["v"])

    def sound(self, video_id: str) -> np.ndarray | None:
        track = super().sound(video_id)
        if not self.keep_sound:
            del self._sound[video_id]
        return track

    def _sound_segment(self, seg: Spec, channels: int) -> np.ndarray:
        if seg["type"] == "media":
            return self._media_sound(seg, channels)
        if seg["type"] != "copy" or not (seg.get("effects") or seg.get("keep_pitch")):
            return super()._sound_segment(seg, channels)
        n = audio.n_samples(seg["duration"])
        if seg.get("keep_pitch"):  # read at normal speed, then stretch in time
            plain = {**seg, "speed": 1.0, "duration": seg["duration"] * seg["speed"]}
            track = audio_ops.tempo(super()._sound_segment(plain, channels), seg["speed"], n)
        else:
            track = super()._sound_segment(seg, channels)
        return audio_ops.apply(seg.get("effects", ()), track, self.pool.sound)

    def _media_sound(self, seg: Spec, channels: int) -> np.ndarray:
        out = np.zeros(audio.n_samples(seg["duration"]), np.float32)
        for piece in seg["pieces"]:
            source = self.pool.sound(piece["name"])
            i0, n = audio.n_samples(piece["start"]), audio.n_samples(piece["duration"])
            chunk = source[i0 : i0 + n]
            at = audio.n_samples(piece["at"])
            chunk = chunk[: max(0, out.size - at)]
            out[at : at + chunk.size] += chunk * 10 ** (piece.get("gain_db", 0.0) / 20)
        peak = float(np.abs(out).max())
        out *= 10 ** (seg.get("gain_db", 0.0) / 20) * (0.9 / peak if peak > 0.9 else 1.0)
        return audio.to_channels(out[None], channels)
