"""An independent test set made only of the `test` sources' media: references, distractors and
queries that are visual copies, audio copies or compilations, with FIVR-style ground truth.

Database: references (shots of one or two pool pictures with camera moves, real music or speech)
and distractors (the same, unrelated). Queries: one visual copy per (class, reference) pair drawn
(`copy_classes.VISUAL_CLASSES`, the sound kept, lightly changed, or replaced), audio copies (the
reference's sound under `copy_classes.AUDIO_CLASSES`, over foreign pictures) and compilations
(spans of several references between foreign fillers). Foreign pictures and sounds are test media
that no database video shows or plays (whole music tracks and speakers are kept apart, about
`foreign_sound_share` of them), so a query matches nothing but what it copies.

Layout under `out_dir` (as the demo's): `videos/<id>.<ext>`, `videos.txt`, `queries.txt`,
`database.txt`, `annotation.json` (FIVR labels ND/DS/DA), `segments.json`, `queries.json` (per
query: class, modality, transformation names and parameters, sources), `media.json` (licences),
`manifest.json`.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndvr_jax.data.demo import transforms, truth
from ndvr_jax.data.demo.build import write_benchmark
from ndvr_jax.data.demo.plan import video_spec

from . import copy_classes
from .collect import collect
from .pool import MediaPool
from .render import PoolRenderer
from .sound_plan import Spans, split_sounds
from .sources import Source
from .training import shots_segment

Spec = dict[str, Any]
FORMAT_VERSION = 2  # 2: foreign sound from tracks and speakers of its own


@dataclass(frozen=True)
class TestSetConfig:
    """How big the test set is and which sources' media it draws (`role`: "test" for the
    independent test set, "train" for a dev set to select settings on). Frame sizes are
    (height, width)."""

    __test__ = False  # not a pytest class

    role: str = "test"
    n_references: int = 40
    n_distractors: int = 12
    seconds: tuple[float, float] = (12.0, 20.0)
    shot_seconds: tuple[float, float] = (3.0, 6.0)
    frame_sizes: tuple[tuple[int, int], ...] = ((120, 160), (180, 240), (144, 256))
    fps: tuple[int, ...] = (15, 24, 25)
    copy_fps: tuple[int, ...] = (8, 10, 20)
    visual_per_class: int = 2
    audio_per_class: int = 3
    n_compilations: int = 8
    compilation_parts: int = 4
    part_seconds: tuple[float, float] = (3.0, 6.0)
    speech_share: float = 0.4
    bed_share: float = 0.3
    dissolve_share: float = 0.3
    foreign_sound_share: float = 0.25
    visual_classes: tuple[str, ...] = tuple(copy_classes.VISUAL_CLASSES)
    audio_classes: tuple[str, ...] = copy_classes.AUDIO_CLASSES
    profiles: tuple[str, ...] = ("mp4", "webm_vp9", "mkv", "mov", "avi_mpeg4", "ts")
    max_side: int = 400


def _r(x: float) -> float:
    return round(float(x), 6)


class _Planner:
    def __init__(self, pool: MediaPool, cfg: TestSetConfig, seed: int):
        self.pool, self.cfg = pool, cfg
        self.rng = np.random.default_rng(seed)
        own, foreign = split_sounds(pool, self.rng, cfg.foreign_sound_share)
        self.spans, self.foreign = Spans(pool, self.rng, own), Spans(pool, self.rng, foreign)
        self.profiles = itertools.cycle(self.rng.permutation(cfg.profiles).tolist())
        self.pictures = self.rng.permutation(pool.pictures()).tolist()
        need = cfg.n_references + cfg.n_distractors + 2
        if len(self.pictures) < need:
            raise ValueError(
                f"the {cfg.role} media has {len(self.pictures)} pictures, {need} needed"
            )
        self.speech = [n for n in pool.sounds("speech") if n in foreign]  # mixed-in sound
        self.music = [n for n in pool.sounds("music") if n in foreign]

    def pick(self, options: Any) -> Any:
        options = list(options)
        return options[int(self.rng.integers(len(options)))]

    def video(self, kind, role, visual, sound, *, hw, fps, profile=None, **extra) -> Spec:
        channels = int(self.rng.integers(1, 3))
        profile = profile or next(self.profiles)
        return video_spec(
            kind, role, visual, sound, hw=hw, fps=fps, profile=profile, channels=channels, **extra
        )

    # --------------------------------------------------------------------------- database
    def own_video(self, kind: str, pictures: list[str]) -> Spec:
        """Shots of `pictures` (each at least once, framed anew) and a sound of its own."""
        cfg = self.cfg
        fps, hw = self.pick(cfg.fps), tuple(self.pick(cfg.frame_sizes))
        visual = shots_segment(self.rng, pictures, self.rng.uniform(*cfg.seconds), fps, cfg)
        sound = self.spans.track(visual["duration"], cfg.speech_share, cfg.bed_share)
        media = sorted(set(pictures) | {p["name"] for p in sound["pieces"]})
        return self.video(kind, "database", [visual], [sound], hw=hw, fps=fps, media=media)

    def database(self) -> tuple[list[Spec], list[Spec]]:
        cfg = self.cfg
        n = cfg.n_references + cfg.n_distractors
        foreign = max(2, len(self.pictures) // 4)  # kept for queries' foreign footage
        extra = max(0, len(self.pictures) - n - foreign)
        groups = [[self.pictures.pop()] for _ in range(n)]
        for k in range(min(extra, cfg.n_references)):
            groups[k].append(self.pictures.pop())
        refs = [self.own_video("reference", g) for g in groups[: cfg.n_references]]
        distractors = [self.own_video("distractor", g) for g in groups[cfg.n_references :]]
        return refs, distractors

    # --------------------------------------------------------------------------- queries
    def foreign_shots(self, seconds: float, fps: int) -> Spec:
        return shots_segment(self.rng, self.pictures, seconds, fps, self.cfg)

    def foreign_sound(self, seconds: float) -> Spec:
        return self.foreign.track(seconds, 0.5, 0.0)  # tracks and speakers of no database video

    def copy(self, rid: str, ref: Spec, fps: int, start: float, length: float, speed: float):
        n = max(1, int(length / speed * fps + 1e-6))
        duration = n / fps
        end = min(start + duration * speed, ref["duration"])
        return {
            "type": "copy",
            "duration": _r(duration),
            "source": rid,
            "source_start": _r(start),
            "source_end": _r(end),
            "speed": speed,
        }

    def sound_copy(self, seg: Spec, effects: list[Spec], keep_pitch: bool = False) -> Spec:
        return {
            **{k: seg[k] for k in ("duration", "source", "source_start", "source_end", "speed")},
            "type": "copy",
            "gain_db": 0.0,
            "noise_snr_db": None,
            "seed": int(self.rng.integers(2**31)),
            "effects": effects,
            "keep_pitch": keep_pitch,
        }

    def visual_query(self, name: str, rid: str, ref: Spec) -> Spec:
        recipe = copy_classes.VISUAL_CLASSES[name]
        src_hw = (ref["height"], ref["width"])
        fps = self.pick(self.cfg.copy_fps) if recipe.get("fps") else ref["fps"]
        speed = copy_classes.speed_factor(self.rng) if recipe.get("speed") else 1.0
        start, length = 0.0, ref["duration"]
        if recipe.get("subclip"):
            length = float(self.rng.uniform(0.25, 0.38)) * ref["duration"]
            start = float(self.rng.uniform(0, ref["duration"] - length))
        seg = self.copy(rid, ref, fps, start, length, speed)
        names = recipe.get("transforms", ())
        seg["transforms"] = [copy_classes.visual_params(t, self.rng) for t in names]
        hw = tuple(recipe.get("size", src_hw))
        if "border" in names:
            aspect = transforms.border_aspect(*src_hw)
            hw = (2 * round(ref["width"] / aspect / 2), ref["width"])
        if "pip" in recipe:
            seg["pip"] = {
                **copy_classes.pip_params(self.rng, recipe["pip"]),
                "foreign": self.foreign_shots(seg["duration"], fps),
            }
        kept = self.rng.random() < 0.7  # else foreign sound: the copy is purely visual
        mild = [{"name": "volume", "gain_db": round(float(self.rng.uniform(-6, 2)), 2)}]
        sound = self.sound_copy(seg, mild) if kept else self.foreign_sound(seg["duration"])
        flags = {
            "speed": speed != 1.0,
            "frame_rate": fps != ref["fps"],
            "subclip": bool(recipe.get("subclip")),
            f"pip_{recipe.get('pip')}": "pip" in recipe,
            "low_bitrate": recipe.get("profile") in ("mp4_low", "3gp"),
            "resize": hw != src_hw,
        }
        changes = [*names, *(flag for flag, on in flags.items() if on)]
        return self.video(
            "visual_copy",
            "query",
            [seg],
            [sound],
            hw=hw,
            fps=fps,
            profile=recipe.get("profile"),
            sources=[rid],
            transform_class=name,
            modality="visual",
            transforms=changes,
            sound_kept=kept,
        )

    def audio_query(self, name: str, rid: str, ref: Spec) -> Spec:
        speed, keep_pitch, effects = copy_classes.audio_effects(
            name, self.rng, self.speech, self.music
        )
        fps, hw = self.pick(self.cfg.fps), tuple(self.pick(self.cfg.frame_sizes))
        seg = self.copy(rid, ref, fps, 0.0, ref["duration"], speed)
        visual = self.foreign_shots(seg["duration"], fps)
        sound = self.sound_copy(seg, effects, keep_pitch)
        return self.video(
            "audio_copy",
            "query",
            [visual],
            [sound],
            hw=hw,
            fps=fps,
            sources=[rid],
            transform_class=name,
            modality="audio",
            transforms=[e["name"] for e in effects] + ["speed"] * (speed != 1.0),
        )

    def compilation(self, ids: list[str], refs: list[Spec]) -> Spec:
        """Spans of several references (some transformed) between foreign fillers."""
        cfg = self.cfg
        fps, hw = self.pick(cfg.fps), tuple(self.pick(cfg.frame_sizes))
        picks = self.rng.permutation(len(ids))[: cfg.compilation_parts].tolist()
        visual, sound = [], []
        for k in picks:
            if self.rng.random() < 0.7:
                filler = self.foreign_shots(float(self.rng.uniform(1.5, 4.0)), fps)
                visual.append(filler)
                sound.append(self.foreign_sound(filler["duration"]))
            length = min(float(self.rng.uniform(*cfg.part_seconds)), refs[k]["duration"])
            start = float(self.rng.uniform(0, refs[k]["duration"] - length))
            seg = self.copy(ids[k], refs[k], fps, start, length, 1.0)
            names = (
                [self.pick(("crop", "text", "gamma", "blur"))] if self.rng.random() < 0.5 else []
            )
            seg["transforms"] = [copy_classes.visual_params(t, self.rng) for t in names]
            visual.append(seg)
            sound.append(self.sound_copy(seg, []))
        sources = sorted({ids[k] for k in picks})
        return self.video(
            "compilation",
            "query",
            visual,
            sound,
            hw=hw,
            fps=fps,
            sources=sources,
            transform_class="compilation",
            modality="visual+audio",
            transforms=["compilation"],
        )


def _ids(prefix: str, specs: list[Spec], rng: np.random.Generator) -> list[tuple[str, Spec]]:
    order = rng.permutation(len(specs))
    width = max(3, len(str(len(specs) - 1)))
    return [(f"{prefix}{order[i]:0{width}d}", spec) for i, spec in enumerate(specs)]


def make_plan(pool: MediaPool, cfg: TestSetConfig, seed: int) -> dict[str, Spec]:
    """Every video of the test set, database first, each sorted by id: `{video_id: spec}`."""
    p = _Planner(pool, cfg, seed)
    refs, distractors = p.database()
    database = _ids("db", refs + distractors, p.rng)
    ref_ids = [vid for vid, _ in database[: len(refs)]]
    cycle = itertools.cycle(p.rng.permutation(len(refs)).tolist())
    queries = []
    for name in cfg.visual_classes:
        for _ in range(cfg.visual_per_class):
            k = next(cycle)
            queries.append(p.visual_query(name, ref_ids[k], refs[k]))
    for name in cfg.audio_classes:
        for _ in range(cfg.audio_per_class):
            k = next(cycle)
            queries.append(p.audio_query(name, ref_ids[k], refs[k]))
    queries += [p.compilation(ref_ids, refs) for _ in range(cfg.n_compilations)]
    videos = dict(sorted(database) + sorted(_ids("q", queries, p.rng)))
    for vid, spec in videos.items():
        spec["path"] = f"videos/{vid}.{spec['path']}"
    return videos


def query_table(videos: dict[str, Spec]) -> dict[str, Spec]:
    """Per query: class, modality, change names, sources and every segment's parameters."""
    out = {}
    for vid, v in videos.items():
        if v["role"] != "query":
            continue
        copies = [s for s in v["visual"] if s["type"] == "copy"]
        sounds = [s for s in v["audio"] or () if s["type"] == "copy"]
        out[vid] = {
            "class": v["transform_class"],
            "modality": v["modality"],
            "transforms": v["transforms"],
            "sources": v["sources"],
            "profile": v["profile"],
            "fps": v["fps"],
            "size": [v["height"], v["width"]],
            "visual": [
                {k: s[k] for k in ("source", "source_start", "source_end", "speed", "transforms")}
                | (
                    {"pip": {k: x for k, x in s["pip"].items() if k != "foreign"}}
                    if "pip" in s
                    else {}
                )
                for s in copies
            ],
            "audio": [
                {
                    k: s[k]
                    for k in (
                        "source",
                        "source_start",
                        "source_end",
                        "speed",
                        "keep_pitch",
                        "effects",
                    )
                }
                for s in sounds
            ],
        }
    return out


def build_testset(
    out_dir: str | os.PathLike,
    *,
    cache: str | os.PathLike | None = None,
    config: TestSetConfig = TestSetConfig(),
    seed: int = 0,
    sources: tuple[Source, ...] | None = None,
    verbose: bool = True,
) -> Path:
    """Fetches the media of `config.role`'s sources (or finds it in `cache`) and builds the test
    set in `out_dir` (skipped when complete, resumed when interrupted); returns manifest.json's
    path."""
    media = collect(config.role, cache, sources, verbose=verbose)
    pool = MediaPool(media)
    videos = make_plan(pool, config, seed)
    manifest = {
        "generator": "ndvr_jax.data.corpus.testset",
        "version": FORMAT_VERSION,
        "seed": seed,
        "config": asdict(config),
        "media": sorted(f["sha256"] for f in media["files"]),
        "videos": videos,
    }
    json_files = {
        "annotation.json": truth.annotation(videos),
        "segments.json": truth.segments(videos),
        "queries.json": query_table(videos),
        "media.json": media,
    }
    return write_benchmark(
        out_dir,
        manifest,
        PoolRenderer(videos, config.max_side, pool),
        json_files,
        label="test set",
        verbose=verbose,
    )
