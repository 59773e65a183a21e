"""Sound tracks drawn from the pool: a span of a music track, or spoken words one after another
(one speaker folder, i.e. one language), sometimes over a quiet music bed.

Segments are the `media` sound segments of `render.PoolRenderer`. `Spans` hands out disjoint
spans of music tracks and unused words, so two videos share no piece of sound while the pool
has enough (then pieces repeat).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .pool import MediaPool

Spec = dict[str, Any]


def _r(x: float) -> float:
    return round(float(x), 3)


class Spans:
    """Disjoint pieces of the pool's sounds: music spans and spoken words (each used once,
    while unused ones are left; then reused)."""

    def __init__(self, pool: MediaPool, rng: np.random.Generator):
        self.pool, self.rng = pool, rng
        self.used: dict[str, list[tuple[float, float]]] = {}
        self.words: dict[str, list[str]] = {}
        for name in pool.sounds("speech"):
            self.words.setdefault(pool.group(name), []).append(name)
        self.fresh = {group: list(names) for group, names in self.words.items()}

    def _free(self, name: str, seconds: float) -> list[tuple[float, float]]:
        """Gaps of at least `seconds` between the spans of a track already handed out."""
        edges = [(0.0, 0.0), *sorted(self.used.get(name, [])), (self.pool.duration(name),) * 2]
        gaps = [(a[1], b[0]) for a, b in zip(edges, edges[1:], strict=False)]
        return [(lo, hi) for lo, hi in gaps if hi - lo >= seconds]

    def music(self, seconds: float) -> list[Spec]:
        """Pieces that fill `seconds` with a span of one track that no other video has (while
        the tracks have room; then spans may repeat). A track shorter than that is looped."""
        tracks = self.pool.sounds("music")
        if not tracks:
            raise ValueError("the media pool has no music")
        gaps = [(name, gap) for name in tracks for gap in self._free(name, seconds)]
        if gaps:
            room = np.array([hi - lo - seconds for _, (lo, hi) in gaps]) + 1e-3
            name, (lo, hi) = gaps[int(self.rng.choice(len(gaps), p=room / room.sum()))]
            start = float(self.rng.uniform(lo, hi - seconds))
            self.used.setdefault(name, []).append((start, start + seconds))
            return [{"name": name, "start": _r(start), "at": 0.0, "duration": _r(seconds)}]
        name = tracks[int(self.rng.integers(len(tracks)))]
        length = self.pool.duration(name)
        if length >= seconds:  # every track is full: a span that another video has too
            start = float(self.rng.uniform(0, length - seconds))
            return [{"name": name, "start": _r(start), "at": 0.0, "duration": _r(seconds)}]
        count = int(np.ceil(seconds / length))
        return [
            {"name": name, "start": 0.0, "at": _r(k * length), "duration": _r(length)}
            for k in range(count)
        ]

    def speech(self, seconds: float) -> list[Spec]:
        """Words of one speaker folder with short pauses, filling `seconds`."""
        if not self.words:
            raise ValueError("the media pool has no speech")
        groups = sorted(self.words)
        group = groups[int(self.rng.integers(len(groups)))]
        pieces, t = [], float(self.rng.uniform(0.0, 0.4))
        while t < seconds - 0.3:
            fresh = self.fresh[group]
            if not fresh:
                fresh.extend(self.words[group])
            name = fresh.pop(int(self.rng.integers(len(fresh))))
            length = min(self.pool.duration(name), seconds - t)
            pieces.append({"name": name, "start": 0.0, "at": _r(t), "duration": _r(length)})
            t += length + float(self.rng.uniform(0.08, 0.6))
        return pieces

    def track(self, seconds: float, speech_share: float, bed_share: float) -> Spec:
        """A `media` sound segment: speech (share `speech_share`; over a music bed with
        probability `bed_share`) or music."""
        kind = "speech" if self.words and self.rng.random() < speech_share else "music"
        pieces = self.speech(seconds) if kind == "speech" else self.music(seconds)
        if kind == "speech" and self.pool.sounds("music") and self.rng.random() < bed_share:
            bed_gain = _r(self.rng.uniform(-22, -14))
            pieces += [{**p, "gain_db": bed_gain} for p in self.music(seconds)]
        return {"type": "media", "duration": _r(seconds), "kind": kind, "pieces": pieces}
