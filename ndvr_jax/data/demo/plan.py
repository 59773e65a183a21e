"""The benchmark's plan: which videos exist and exactly what each one contains, drawn from a seed.

The plan is plain JSON data and cheap to make (nothing is decoded or rendered): it is the
manifest's `videos`, `render` draws it and `truth` derives the ground truth from it. All times are
in seconds; every segment lasts a whole number of its video's frames.

Database: references (shots of real photos and clips with pans/zooms, cuts or dissolves, and a
synthesised sound track of their own), related videos (FIVR's DS / CS / IS relations to one shot
of a reference) and distractors (unrelated photos). Queries: transformed copies of references,
audio-only copies, video-only copies and compilations of spans of several references.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import media, transforms
from .encode import PROFILES, resolve

Spec = dict[str, Any]

REFERENCE_PICTURES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle_left",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "camera",
    "coins",
)
DISTRACTOR_PICTURES = ("page", "text", "brick", "grass", "gravel", "horse", "colorwheel", "moon")
# Second view of a reference picture, for the CS ("complementary scene") relation.
OTHER_VIEWS = {"motorcycle_left": "motorcycle_right"}
CLIP_REFERENCE_PART = 0.55  # references use a clip's start; IS-related videos its end
# Profiles that videos take in turn (a shuffled cycle per role) unless a recipe names one.
PROFILE_CYCLE = ("mp4", "mkv", "webm_vp9", "avi_mjpeg", "mov", "ts", "webm_vp8", "avi_mpeg4")

# Copy recipes: visual transformations (in order), temporal changes, output size, profile.
RECIPES: dict[str, dict[str, Any]] = {
    "reencode": {"profile": "mp4_low"},
    "mobile": {"size": (144, 176), "profile": "3gp"},
    "resize": {"resize": True},
    "crop": {"transforms": ("crop",)},
    "flip": {"transforms": ("hflip",)},
    "color": {"transforms": ("color", "gamma")},
    "gray_noise": {"transforms": ("grayscale", "noise")},
    "blur_low": {"transforms": ("blur",), "profile": "mp4_low"},
    "border": {"transforms": ("border",)},
    "pip": {"transforms": ("pip",)},
    "overlay": {"transforms": ("logo", "text")},
    "speed": {"speed": (1.25, 1.5)},
    "slow_fps": {"speed": (0.75, 0.8), "fps": True},
    "subclip": {"subclip": True},
    "fps_resize": {"fps": True, "resize": True},
    "combo_a": {"transforms": ("crop", "hflip", "color", "text"), "profile": "mp4_low"},
    "combo_b": {"transforms": ("blur", "border"), "subclip": True, "speed": (1.5,)},
    "combo_c": {"transforms": ("noise", "gamma"), "fps": True},
    "combo_d": {"transforms": ("grayscale", "border", "logo")},
    "pip_subclip": {"transforms": ("pip",), "subclip": True},
    "real_distortion": {"swap": {"carphone": "carphone_distorted"}},
}
_PART_TRANSFORMS = ("hflip", "color", "crop", "blur", "text")


@dataclass(frozen=True)
class SizeConfig:
    """How big a benchmark is. Frame sizes are (height, width)."""

    n_references: int
    n_pictures: int  # reference pictures used (besides every clip in `clips`)
    min_shots: int  # a video with fewer sources shows one of them again, framed anew
    max_shots: int
    shot_seconds: tuple[float, float]
    n_distractors: int
    relations: tuple[str, ...]
    frame_sizes: tuple[tuple[int, int], ...]
    copy_sizes: tuple[tuple[int, int], ...]
    fps: tuple[int, ...]
    copy_fps: tuple[int, ...]
    clips: tuple[str, ...]
    recipes: tuple[str, ...]
    n_audio_copies: int
    n_video_copies: int
    n_compilations: int
    compilation_parts: int
    part_seconds: tuple[float, float]
    max_side: int  # photos are kept at most this big; clips at 3/4 of it
    profiles: tuple[str, ...] = PROFILE_CYCLE


SIZES = {
    "tiny": SizeConfig(
        n_references=3,
        n_pictures=4,
        min_shots=1,
        max_shots=2,
        shot_seconds=(1.5, 2.5),
        n_distractors=1,
        relations=("DS",),
        frame_sizes=((96, 128),),
        copy_sizes=((72, 128), (96, 96)),
        fps=(12,),
        copy_fps=(10, 15),
        clips=("carphone",),
        recipes=("combo_a", "combo_b", "pip"),
        n_audio_copies=1,
        n_video_copies=1,
        n_compilations=1,
        compilation_parts=3,
        part_seconds=(0.75, 1.25),
        max_side=256,
        profiles=("mp4", "webm_vp9", "avi_mjpeg", "mkv", "mov", "avi_mpeg4"),
    ),
    "small": SizeConfig(
        n_references=8,
        n_pictures=10,
        min_shots=2,
        max_shots=3,
        shot_seconds=(3.0, 5.0),
        n_distractors=5,
        relations=("DS", "CS", "IS"),
        frame_sizes=((240, 320), (180, 320)),
        copy_sizes=((144, 192), (180, 240), (120, 160), (240, 240), (270, 480)),
        fps=(24, 25, 30),
        copy_fps=(12, 15, 24, 30),
        clips=("bigbuckbunny", "bikes", "carphone"),
        recipes=tuple(RECIPES),
        n_audio_copies=2,
        n_video_copies=2,
        n_compilations=2,
        compilation_parts=6,
        part_seconds=(2.0, 4.0),
        max_side=640,
    ),
}


def _r(x: float, digits: int = 6) -> float:
    return round(float(x), digits)


def framing(rng: np.random.Generator, clip: bool) -> tuple[list[float], list[float]]:
    """Start and end window of a shot: a pan, a zoom in or a zoom out (gentler on clips)."""
    uniform = lambda lo, hi: float(rng.uniform(lo, hi))
    if clip:
        start = [0.5, 0.5, 1.0]
        end = [uniform(0.2, 0.8), uniform(0.2, 0.8), uniform(0.75, 0.95)]
    else:
        scale = uniform(0.5, 0.85)
        a = [uniform(0, 1), uniform(0, 1), scale]
        b = [1 - a[0] if abs(a[0] - 0.5) > 0.2 else uniform(0, 1), uniform(0, 1)]
        motion = ("pan", "zoom_in", "zoom_out")[int(rng.integers(3))]
        start, end = {
            "pan": (a, [*b, scale]),
            "zoom_in": ([*b, 1.0], a),
            "zoom_out": (a, [*b, 1.0]),
        }[motion]
    return [_r(x, 3) for x in start], [_r(x, 3) for x in end]


def video_spec(
    kind: str,
    role: str,
    visual: list[Spec],
    sound: list[Spec] | None,
    *,
    hw: tuple[int, int],
    fps: int,
    profile: str,
    channels: int,
    **extra: Any,
) -> Spec:
    """A video's spec: its segments, its format (resolved from `profile` here) and extras."""
    n_frames = round(sum(seg["duration"] for seg in visual) * fps)
    enc = resolve(profile, *hw)
    return {
        "path": f"{PROFILES[profile].ext}",  # completed once the video has an id
        "kind": kind,
        "role": role,
        "profile": profile,
        "container": enc.container,
        "video_codec": enc.video_codec,
        "audio_codec": enc.audio_codec if sound else None,
        "video_encoder": enc.video_encoder,
        "audio_encoder": enc.audio_encoder if sound else None,
        "low_bitrate": enc.low_bitrate,
        "width": hw[1],
        "height": hw[0],
        "fps": fps,
        "n_frames": n_frames,
        "duration": _r(n_frames / fps),
        "has_audio": sound is not None,
        "channels": enc.channels(channels) if sound else 0,
        "sample_rate": enc.sample_rate if sound else 0,
        **extra,
        "visual": visual,
        "audio": sound,
    }


class _Planner:
    def __init__(self, seed: int, size: str):
        if size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)}, not {size!r}")
        self.cfg = SIZES[size]
        self.rng = np.random.default_rng(seed)
        self.profiles = {
            role: itertools.cycle(self.rng.permutation(self.cfg.profiles).tolist())
            for role in ("database", "query")
        }

    def seed(self) -> int:
        return int(self.rng.integers(2**31))

    def choice(self, options: Any) -> Any:
        options = list(options)
        return options[int(self.rng.integers(len(options)))]

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    # ----------------------------------------------------------------------------- database
    def framing(self, clip: bool) -> tuple[list[float], list[float]]:
        return framing(self.rng, clip)

    def shot(self, source: str, fps: int, clip_window: tuple[float, float] | None = None) -> Spec:
        """One shot of a photo or of a clip (inside `clip_window`, seconds of the clip)."""
        seconds = self.uniform(*self.cfg.shot_seconds)
        is_clip = source in media.CLIPS
        start, end = self.framing(is_clip)
        spec: Spec = {"source": source}
        if is_clip:
            length = media.clip_duration(source)
            lo, hi = clip_window or (0.0, CLIP_REFERENCE_PART * length)
            seconds = min(seconds, hi - lo)
            spec["clip_start"] = _r(self.uniform(lo, hi - seconds), 3)
        n = max(1, int(seconds * fps))
        spec.update(duration=_r(n / fps), **{"from": start, "to": end})
        return spec

    def shots(self, sources: list[str], fps: int) -> list[Spec]:
        """Shots of `sources` in a random order, at least `min_shots` of them."""
        extra = [self.choice(sources) for _ in range(self.cfg.min_shots - len(sources))]
        sources = sources + extra
        return [self.shot(sources[i], fps) for i in self.rng.permutation(len(sources))]

    def shots_video(self, kind: str, shots: list[Spec], fps: int, hw: tuple[int, int]) -> Spec:
        """A database video made of `shots`, with its own synthesised sound."""
        duration = _r(round(sum(s["duration"] for s in shots) * fps) / fps)
        dissolves = [bool(self.rng.random() < 0.3) for _ in shots[1:]]
        visual = [{"type": "shots", "duration": duration, "shots": shots, "dissolves": dissolves}]
        sound = {"type": "synth", "duration": duration, "seed": self.seed()}
        offsets = np.cumsum([0.0] + [s["duration"] for s in shots])
        mixes = [
            {
                "clip": s["source"],
                "clip_start": s["clip_start"],
                "start": _r(t),
                "duration": s["duration"],
            }
            for s, t in zip(shots, offsets, strict=False)
            if s["source"] in media.CLIPS_WITH_SOUND
        ]
        if mixes:
            sound["mix"] = mixes
        media_names = sorted({s["source"] for s in shots})
        return self.video(kind, "database", visual, [sound], hw=hw, fps=fps, media=media_names)

    def references(self) -> list[Spec]:
        cfg = self.cfg
        pictures = self.rng.permutation(REFERENCE_PICTURES)[: cfg.n_pictures].tolist()
        sources = self.rng.permutation(cfg.clips).tolist() + pictures
        groups = [[s] for s in sources[: cfg.n_references]]
        for source in sources[cfg.n_references :]:  # to the references with fewest sources
            fewest = min(len(g) for g in groups)
            if fewest < cfg.max_shots:
                self.choice(g for g in groups if len(g) == fewest).append(source)
        refs = []
        for group in groups:
            fps, hw = self.choice(cfg.fps), self.choice(cfg.frame_sizes)
            refs.append(self.shots_video("reference", self.shots(group, fps), fps, hw))
        return refs

    def related(self, refs: list[Spec], label: str, spare: list[str]) -> Spec | None:
        """A database video sharing one shot's scene with a reference (FIVR DS, CS or IS)."""
        fits = {
            "DS": lambda ref, shot: len(set(ref["media"])) > 1,
            "CS": lambda ref, shot: shot["source"] in OTHER_VIEWS or shot["source"] in media.CLIPS,
            "IS": lambda ref, shot: shot["source"] in media.CLIPS,
        }[label]
        candidates = [
            (i, k, shot)
            for i, ref in enumerate(refs)
            for k, shot in enumerate(ref["visual"][0]["shots"])
            if fits(ref, shot)
        ]
        other_view = [c for c in candidates if c[2]["source"] in OTHER_VIEWS]
        if not candidates:
            return None
        i, k, shot = self.choice(other_view if label == "CS" and other_view else candidates)
        ref = refs[i]
        ref_shots = ref["visual"][0]["shots"]
        starts = np.cumsum([0.0] + [s["duration"] for s in ref_shots])
        fps, hw = ref["fps"], (ref["height"], ref["width"])
        if label == "DS":  # the very same shot
            mine = dict(shot)
        elif label == "CS" and shot["source"] in OTHER_VIEWS:  # same moment, other camera
            mine = {**shot, "source": OTHER_VIEWS[shot["source"]]}
        elif label == "CS":  # same moment of the clip, framed differently
            start, end = self.framing(clip=False)
            mine = {**shot, "from": start, "to": end}
        else:  # IS: the same clip (event), a later, disjoint moment
            length = media.clip_duration(shot["source"])
            mine = self.shot(shot["source"], fps, (CLIP_REFERENCE_PART * length + 0.2, length))
        own = self.choice((0, 1))  # next to an unrelated shot, before or after it
        shots = [mine, self.shot(spare.pop(), fps)][:: 1 - 2 * own]
        video = self.shots_video("related", shots, fps, hw)
        own_start = shots[0]["duration"] if own else 0.0
        video["relation"] = {
            "label": label,
            "to": i,  # index into refs until ids are given
            "span": [_r(starts[k]), _r(starts[k + 1])],  # the shot this video relates to
            "own_span": [_r(own_start), _r(own_start + mine["duration"])],
            # every shot of the reference showing the same source: copies of these relate
            "scene_spans": [
                [_r(starts[j]), _r(starts[j + 1])]
                for j, s in enumerate(ref_shots)
                if s["source"] == shot["source"]
            ],
        }
        return video

    def distractors(self, spare: list[str]) -> list[Spec]:
        out = []
        for k in range(self.cfg.n_distractors):
            if not spare:
                raise RuntimeError("not enough distractor pictures for this size")
            n = 2 if len(spare) > self.cfg.n_distractors - k else 1
            fps, hw = self.choice(self.cfg.fps), self.choice(self.cfg.frame_sizes)
            shots = self.shots([spare.pop() for _ in range(n)], fps)
            out.append(self.shots_video("distractor", shots, fps, hw))
        return out

    # ----------------------------------------------------------------------------- queries
    def sound_copy(self, seg: Spec, allow_none: bool = True) -> list[Spec] | None:
        """Sound copied along with a visual copy segment, with some gain/noise, or none."""
        if allow_none and self.rng.random() < 0.15:
            return None
        noisy = self.rng.random() < 0.4
        return [
            {
                "type": "copy",
                "duration": seg["duration"],
                "source": seg["source"],
                "source_start": seg["source_start"],
                "source_end": seg["source_end"],
                "speed": seg["speed"],
                "gain_db": _r(self.uniform(-8, 3), 2),
                "noise_snr_db": _r(self.uniform(15, 30), 2) if noisy else None,
                "seed": self.seed(),
            }
        ]

    def copy_segment(
        self,
        source_id: str,
        src: Spec,
        fps: int,
        start: float,
        length: float,
        speed: float,
        names: tuple[str, ...],
    ) -> Spec:
        n = max(1, int(length / speed * fps + 1e-6))
        duration = n / fps
        return {
            "type": "copy",
            "duration": _r(duration),
            "source": source_id,
            "source_start": _r(start),
            "source_end": _r(min(start + duration * speed, src["duration"])),
            "speed": speed,
            "transforms": [transforms.sample(name, self.rng) for name in names],
        }

    def copy_query(self, recipe_name: str, source_id: str, src: Spec) -> Spec:
        recipe = RECIPES[recipe_name]
        src_hw = (src["height"], src["width"])
        fps = src["fps"]
        if recipe.get("fps"):
            fps = self.choice(f for f in self.cfg.copy_fps if f != src["fps"])
        speed = float(self.choice(recipe["speed"])) if "speed" in recipe else 1.0
        start, length = 0.0, src["duration"]
        if recipe.get("subclip"):
            length = self.uniform(0.4, 0.7) * src["duration"]
            start = self.uniform(0, src["duration"] - length)
        names = recipe.get("transforms", ())
        hw = tuple(recipe.get("size", src_hw))
        if recipe.get("resize"):
            hw = self.choice(s for s in self.cfg.copy_sizes if s != src_hw)
        if "border" in names:
            aspect = transforms.border_aspect(*src_hw)
            hw = (2 * round(src["width"] / aspect / 2), src["width"])
        seg = self.copy_segment(source_id, src, fps, start, length, speed, names)
        if "swap" in recipe:
            seg["media_swap"] = recipe["swap"]
        profile = recipe.get("profile") or next(self.profiles["query"])
        changes = {
            "subclip": recipe.get("subclip", False),
            "speed": speed != 1.0,
            "fps": fps != src["fps"],
            "resize": hw != src_hw,
            "real_distortion": "swap" in recipe,
            "low_bitrate": PROFILES[profile].low_bitrate,
        }
        sound = self.sound_copy(seg)
        summary = [*names, *(name for name, changed in changes.items() if changed)]
        extra = {"sources": [source_id], "transforms": summary + _sound_changes(sound)}
        extra["recipe"] = recipe_name
        return self.video("copy", "query", [seg], sound, hw=hw, fps=fps, profile=profile, **extra)

    def audio_copy(self, source_id: str, src: Spec) -> Spec:
        """Another picture (procedural), the same sound (with a gain, maybe noise)."""
        fps, hw = self.choice(self.cfg.fps), self.choice(self.cfg.frame_sizes)
        seg = self.copy_segment(source_id, src, fps, 0.0, src["duration"], 1.0, ())
        visual = [{"type": "procedural", "duration": seg["duration"], "seed": self.seed()}]
        sound = self.sound_copy(seg, allow_none=False)
        extra = {"sources": [source_id], "transforms": ["new_picture", *_sound_changes(sound)]}
        return self.video("audio_copy", "query", visual, sound, hw=hw, fps=fps, **extra)

    def video_copy(self, source_id: str, src: Spec) -> Spec:
        """The same pictures (lightly changed), another sound or none."""
        names = self.choice(((), ("color",), ("crop",)))
        seg = self.copy_segment(source_id, src, src["fps"], 0.0, src["duration"], 1.0, names)
        sound = None
        if self.rng.random() < 0.5:
            sound = [{"type": "synth", "duration": seg["duration"], "seed": self.seed()}]
        extra = {
            "sources": [source_id],
            "transforms": [*names, "no_sound" if sound is None else "new_sound"],
        }
        hw = (src["height"], src["width"])
        return self.video("video_copy", "query", [seg], sound, hw=hw, fps=src["fps"], **extra)

    def compilation(self, ids: list[str], refs: list[Spec]) -> Spec:
        """Spans of several references with procedural fillers between them."""
        fps, hw = self.choice(self.cfg.fps), self.choice(self.cfg.frame_sizes)
        picks = self.rng.permutation(len(ids)).tolist()
        picks = (picks * self.cfg.compilation_parts)[: self.cfg.compilation_parts]
        visual, sound = [], []
        for k in picks:
            if self.rng.random() < 0.6:
                filler = {"duration": _r(round(self.uniform(0.5, 1.5) * fps) / fps)}
                visual.append({"type": "procedural", **filler, "seed": self.seed()})
                sound.append({"type": "synth", **filler, "seed": self.seed()})
            speed = 1.25 if self.rng.random() < 0.2 else 1.0
            length = min(self.uniform(*self.cfg.part_seconds) * speed, refs[k]["duration"])
            start = self.uniform(0, refs[k]["duration"] - length)
            names = (self.choice(_PART_TRANSFORMS),) if self.rng.random() < 0.5 else ()
            seg = self.copy_segment(ids[k], refs[k], fps, start, length, speed, names)
            visual.append(seg)
            copied = self.sound_copy(seg)
            sound += copied or [{"type": "synth", "duration": seg["duration"], "seed": self.seed()}]
        sources = sorted({ids[k] for k in picks})
        return self.video("compilation", "query", visual, sound, hw=hw, fps=fps, sources=sources)

    # ----------------------------------------------------------------------------- common
    def video(
        self,
        kind: str,
        role: str,
        visual: list[Spec],
        sound: list[Spec] | None,
        *,
        hw: tuple[int, int],
        fps: int,
        profile: str | None = None,
        **extra: Any,
    ) -> Spec:
        """A video's spec: segments, format (from the profile, or the role's next one), extras."""
        channels = self.choice((1, 2))
        profile = profile or next(self.profiles[role])
        return video_spec(
            kind, role, visual, sound, hw=hw, fps=fps, profile=profile, channels=channels, **extra
        )


def _sound_changes(sound: list[Spec] | None) -> list[str]:
    """Summary of what a copy did to the sound it copied (a gain is always applied)."""
    if sound is None:
        return ["no_sound"]
    return ["audio_noise"] if any(s.get("noise_snr_db") is not None for s in sound) else []


def _with_ids(prefix: str, specs: list[Spec], rng: np.random.Generator) -> list[tuple[str, Spec]]:
    """Gives videos ids in a shuffled order, so that an id says nothing about a video's kind."""
    order = rng.permutation(len(specs))
    width = max(2, len(str(len(specs) - 1)))
    return [(f"{prefix}{order[i]:0{width}d}", spec) for i, spec in enumerate(specs)]


def make_plan(seed: int = 0, size: str = "small") -> dict[str, Spec]:
    """Every video of the benchmark, database first, each sorted by id: `{video_id: spec}`."""
    p = _Planner(seed, size)
    cfg = p.cfg
    refs = p.references()
    spare = p.rng.permutation(DISTRACTOR_PICTURES).tolist()
    related = [r for label in cfg.relations if (r := p.related(refs, label, spare)) is not None]
    database = _with_ids("db", refs + related + p.distractors(spare), p.rng)
    ref_ids = [vid for vid, _ in database[: len(refs)]]
    for _, spec in database[len(refs) : len(refs) + len(related)]:
        spec["relation"]["to"] = ref_ids[spec["relation"]["to"]]
    cycle = itertools.cycle(p.rng.permutation(len(refs)).tolist())
    queries = []
    for name in cfg.recipes:
        if name == "real_distortion":  # only for a reference that shows the carphone clip
            ks = [k for k, ref in enumerate(refs) if "carphone" in ref["media"]]
        else:
            ks = [next(cycle)]
        queries += [p.copy_query(name, ref_ids[k], refs[k]) for k in ks]
    for _ in range(cfg.n_audio_copies):
        k = next(cycle)
        queries.append(p.audio_copy(ref_ids[k], refs[k]))
    for _ in range(cfg.n_video_copies):
        k = next(cycle)
        queries.append(p.video_copy(ref_ids[k], refs[k]))
    queries += [p.compilation(ref_ids, refs) for _ in range(cfg.n_compilations)]
    videos = dict(sorted(database) + sorted(_with_ids("q", queries, p.rng)))
    for vid, spec in videos.items():
        spec["path"] = f"videos/{vid}.{spec['path']}"
    return videos
