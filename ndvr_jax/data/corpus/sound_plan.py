"""Sound tracks drawn from the pool: a span of a music track, or spoken words one after another
(one speaker folder, i.e. one language), sometimes over a quiet music bed.

Segments are the `media` sound segments of `render.PoolRenderer`. `Spans` hands out disjoint
spans of music tracks and unused words, so two videos share no piece of sound while the pool
has enough (then pieces repeat). `split_sounds` keeps whole pieces and speakers apart for a
test set's foreign sound: game music repeats its loops and a speaker's syllables resemble each
other, so another span of a database video's track is not foreign.
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

    def __init__(
        self, pool: MediaPool, rng: np.random.Generator, sounds: frozenset[str] | None = None
    ):
        """`sounds`: the pool's sounds this hands out (default: all)."""
        self.pool, self.rng = pool, rng
        self.tracks = [n for n in pool.sounds("music") if sounds is None or n in sounds]
        self.used: dict[str, list[tuple[float, float]]] = {}
        self.words: dict[str, list[str]] = {}
        for name in pool.sounds("speech"):
            if sounds is None or name in sounds:
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
        tracks = self.tracks
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
        if kind == "speech" and self.tracks and self.rng.random() < bed_share:
            bed_gain = _r(self.rng.uniform(-22, -14))
            pieces += [{**p, "gain_db": bed_gain} for p in self.music(seconds)]
        return {"type": "media", "duration": _r(seconds), "kind": kind, "pieces": pieces}


def split_sounds(
    pool: MediaPool, rng: np.random.Generator, share: float
) -> tuple[frozenset[str], frozenset[str]]:
    """(database, foreign) sounds: whole music tracks, and whole speakers (speech groups), with
    about `share` of the music's duration and of the words foreign; each side keeps at least one
    of each kind where the pool has two."""

    def part(units: dict[str, list[str]], size: dict[str, float]) -> tuple[set[str], set[str]]:
        order = rng.permutation(sorted(units)).tolist()
        total, foreign = sum(size.values()), []
        while len(order) > 1 and sum(size[u] for u in foreign) < share * total:
            foreign.append(order.pop())
        if not foreign and order:  # one unit only: both sides share it
            foreign = list(order)
        pick = lambda keys: {n for k in keys for n in units[k]}
        return pick(order), pick(foreign)

    music = {n: [n] for n in pool.sounds("music")}
    groups: dict[str, list[str]] = {}
    for name in pool.sounds("speech"):
        groups.setdefault(pool.group(name), []).append(name)
    db_music, foreign_music = part(music, {n: pool.duration(n) for n in music})
    db_speech, foreign_speech = part(groups, {g: float(len(w)) for g, w in groups.items()})
    return frozenset(db_music | db_speech), frozenset(foreign_music | foreign_speech)
