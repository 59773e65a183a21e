"""Audio landmarks: fingerprinting speed, and matching a query against a database with the
toolkit's sorted-array index against the classic dictionary index, in one run.

    python benchmarks/bench_landmarks.py [--sizes 100,1000,10000 --queries 20 --seconds 20]

Fingerprinting: `ndvr_jax.landmarks.fingerprint` of a 60 s waveform (random notes), seconds of
audio per second. Matching: database videos of `--seconds` seconds with landmarks drawn at the
density real music gives here (about 180 a second, 20-bit hashes); each query is a 10 s span of
one of them with half its landmarks kept and as many random ones added.
  ours       `LandmarkIndex.match`: one hash-sorted array, `searchsorted`, hits counted per
             (video, offset) with `np.unique`, ±1 frame windows by running sums.
  reference  what audfprint-style tools do: a dict from hash to its (video, frame) list, a
             Counter of (video, offset) per query, then the same ±1 frame windows in Python.
Both give the same counts (checked); prints queries/s and the ratio.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

from ndvr_jax.landmarks.fingerprint import HASH_BITS, fingerprint
from ndvr_jax.landmarks.matching import LandmarkIndex

RATE, DENSITY, FRAMES_PER_S = 8000, 180, 50


def random_marks(rng: np.random.Generator, seconds: float) -> np.ndarray:
    n = int(DENSITY * seconds)
    frames = np.sort(rng.integers(0, int(seconds * FRAMES_PER_S), n))
    return np.stack([rng.integers(0, 2**HASH_BITS, n), frames], axis=1)


def make_queries(rng, database: list[np.ndarray], count: int) -> list[np.ndarray]:
    queries = []
    for _ in range(count):
        source = database[int(rng.integers(len(database)))]
        span = source[(source[:, 1] >= 100) & (source[:, 1] < 100 + 10 * FRAMES_PER_S)]
        kept = span[rng.random(len(span)) < 0.5] - np.array([0, 100])
        queries.append(np.concatenate([kept, random_marks(rng, 10.0)]))
    return queries


class DictIndex:
    """The reference: hash -> [(video, frame)], a Counter of offsets per query."""

    def __init__(self, database: list[np.ndarray]):
        self.table = collections.defaultdict(list)
        for video, marks in enumerate(database):
            for h, frame in marks.tolist():
                self.table[h].append((video, frame))
        self.num_videos = len(database)

    def match(self, query: np.ndarray) -> np.ndarray:
        hits = collections.Counter()
        for h, frame in query.tolist():
            for video, d_frame in self.table.get(h, ()):
                hits[video, d_frame - frame] += 1
        best = np.zeros(self.num_videos, np.int64)
        for (video, offset), _ in hits.items():
            window = sum(hits.get((video, offset + d), 0) for d in (-1, 0, 1))
            best[video] = max(best[video], window)
        return best


def timed(fn, *args, repeats: int = 1):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return out, best


def match_all(index, queries: list[np.ndarray]) -> list[np.ndarray]:
    counts = lambda match: match.counts if hasattr(match, "counts") else match
    return [counts(index.match(q)) for q in queries]


def bench_fingerprint() -> None:
    rng = np.random.default_rng(0)
    notes = [
        np.sin(2 * np.pi * rng.uniform(200, 1500) * np.arange(2000) / RATE) for _ in range(240)
    ]
    wave = (np.concatenate(notes) + 0.01 * rng.standard_normal(240 * 2000)).astype(np.float32)
    marks, seconds = timed(fingerprint, wave, repeats=3)
    audio = len(wave) / RATE
    print(f"fingerprint: {audio:.0f} s of audio in {seconds * 1e3:.0f} ms = {audio / seconds:.0f}x "
          f"real time, {len(marks) / audio:.0f} landmarks/s")  # fmt: skip


def bench_matching(sizes: list[int], num_queries: int, seconds: float) -> None:
    for size in sizes:
        rng = np.random.default_rng(size)
        database = [random_marks(rng, seconds) for _ in range(size)]
        queries = make_queries(rng, database, num_queries)
        index, build = timed(LandmarkIndex, database)
        ours, t_ours = timed(match_all, index, queries, repeats=2)
        rows = sum(map(len, database)) / 1e6
        line = (f"{size:6d} videos ({rows:.1f} M landmarks): ours {num_queries / t_ours:8.1f} "
                f"queries/s (index built in {build:.2f} s)")  # fmt: skip
        if size <= 1000:
            ref_index, ref_build = timed(DictIndex, database)
            ref, t_ref = timed(match_all, ref_index, queries)
            assert all(np.array_equal(a, b) for a, b in zip(ours, ref, strict=True))
            line += (f", reference {num_queries / t_ref:7.1f} queries/s (built in {ref_build:.2f}"
                     f" s), ratio {t_ref / t_ours:.1f}x, same counts")  # fmt: skip
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    bench_fingerprint()
    bench_matching([int(s) for s in args.sizes.split(",")], args.queries, args.seconds)


if __name__ == "__main__":
    main()
