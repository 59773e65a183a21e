"""The unlabelled training corpus: videos made of real media of the `train` sources only.

Every video is a few shots of pool pictures with camera moves (pans, zooms), hard cuts or
dissolves, and a real sound track (a music span, or spoken words, sometimes over a music bed),
in a random container/codec. No two videos share a picture shot's framing or a piece of sound;
pictures recur (with other framings), as they would in a collection.

    from ndvr_jax.data.corpus.training import build_corpus
    build_corpus("corpus", n_videos=300)

Layout under `out_dir`: `videos/<id>.<ext>`, `videos.txt` (`<id>\\t<path>`), `media.json` (every
source file with its package, version and licence), `manifest.json` (the plan).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndvr_jax.data.demo.build import write_benchmark
from ndvr_jax.data.demo.plan import framing, video_spec

from .collect import collect
from .pool import MediaPool
from .render import PoolRenderer
from .sound_plan import Spans
from .sources import Source

Spec = dict[str, Any]
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CorpusConfig:
    """How the corpus looks. Frame sizes are (height, width)."""

    n_videos: int = 300
    seconds: tuple[float, float] = (10.0, 30.0)
    shot_seconds: tuple[float, float] = (2.0, 6.0)
    frame_sizes: tuple[tuple[int, int], ...] = ((120, 160), (180, 240), (240, 320), (180, 320))
    fps: tuple[int, ...] = (12, 15, 24, 25)
    profiles: tuple[str, ...] = ("mp4", "webm_vp9", "mkv", "mp4_low", "avi_mpeg4", "mov")
    speech_share: float = 0.35
    bed_share: float = 0.3  # speech videos over a quiet music bed
    dissolve_share: float = 0.3
    max_side: int = 480  # pictures are kept at most this big


def _r(x: float) -> float:
    return round(float(x), 6)


def shots_segment(
    rng: np.random.Generator, pictures: list[str], seconds: float, fps: int, cfg: CorpusConfig
) -> Spec:
    """A `shots` segment of about `seconds` (whole frames) over random `pictures`."""
    shots, total = [], 0
    goal = max(1, round(seconds * fps))
    while total < goal:
        n = min(goal - total, max(1, round(rng.uniform(*cfg.shot_seconds) * fps)))
        start, end = framing(rng, clip=False)
        source = pictures[int(rng.integers(len(pictures)))]
        shots.append({"source": source, "duration": _r(n / fps), "from": start, "to": end})
        total += n
    dissolves = [bool(rng.random() < cfg.dissolve_share) for _ in shots[1:]]
    return {"type": "shots", "duration": _r(total / fps), "shots": shots, "dissolves": dissolves}


def make_plan(pool: MediaPool, cfg: CorpusConfig, seed: int) -> dict[str, Spec]:
    """`{video_id: spec}`, ordered so that videos using the same music track are adjacent."""
    rng = np.random.default_rng(seed)
    pictures = pool.pictures()
    if not pictures:
        raise ValueError("the media pool has no pictures")
    spans = Spans(pool, rng)
    profiles = itertools.cycle(rng.permutation(cfg.profiles).tolist())
    specs = []
    for _ in range(cfg.n_videos):
        fps = int(rng.choice(cfg.fps))
        hw = tuple(int(x) for x in cfg.frame_sizes[int(rng.integers(len(cfg.frame_sizes)))])
        visual = shots_segment(rng, pictures, float(rng.uniform(*cfg.seconds)), fps, cfg)
        sound = spans.track(visual["duration"], cfg.speech_share, cfg.bed_share)
        media = sorted(
            {s["source"] for s in visual["shots"]} | {p["name"] for p in sound["pieces"]}
        )
        specs.append(
            video_spec(
                "corpus",
                "corpus",
                [visual],
                [sound],
                hw=hw,
                fps=fps,
                profile=next(profiles),
                channels=int(rng.integers(1, 3)),
                sound_kind=sound["kind"],
                media=media,
            )
        )
    specs.sort(key=lambda s: s["audio"][0]["pieces"][-1]["name"])
    width = len(str(len(specs) - 1))
    videos = {}
    for k, spec in enumerate(specs):
        vid = f"c{k:0{width}d}"
        videos[vid] = {**spec, "path": f"videos/{vid}.{spec['path']}"}
    return videos


def build_corpus(
    out_dir: str | os.PathLike,
    *,
    cache: str | os.PathLike | None = None,
    config: CorpusConfig = CorpusConfig(),
    seed: int = 0,
    sources: tuple[Source, ...] | None = None,
    verbose: bool = True,
) -> Path:
    """Fetches the `train` media (or finds it in `cache`) and renders the corpus into `out_dir`
    (skipped when complete, resumed when interrupted); returns manifest.json's path."""
    media = collect("train", cache, sources, verbose=verbose)
    pool = MediaPool(media)
    manifest = {
        "generator": "ndvr_jax.data.corpus.training",
        "version": FORMAT_VERSION,
        "seed": seed,
        "config": asdict(config),
        "media": sorted(f["sha256"] for f in media["files"]),
        "videos": make_plan(pool, config, seed),
    }
    renderer = PoolRenderer(manifest["videos"], config.max_side, pool, keep_sound=False)
    return write_benchmark(
        out_dir,
        manifest,
        renderer,
        {"media.json": media},
        label="training corpus",
        lists={"videos.txt": None},
        verbose=verbose,
    )
