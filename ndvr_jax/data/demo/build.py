"""Builds the demo benchmark on disk: plan, render and encode every video, then write the lists,
the ground truth and, last, the manifest.

Layout under `out_dir`: `videos/<id>.<ext>`; `videos.txt`, `queries.txt`, `database.txt`
(`<id>\\t<absolute path>` per line); `annotation.json`; `segments.json`; `manifest.json`.
A build whose manifest and files are all there is skipped; an interrupted build resumes (every
file is written atomically, so a file that exists is complete).
"""

from __future__ import annotations

import json
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from ndvr_jax.io.atomic import atomic_write, save_json_atomic

from . import truth
from .encode import resolve, write_video
from .media import AUDIO_RATE
from .plan import SIZES, make_plan
from .render import Renderer

FORMAT_VERSION = 1
_LISTS = {"videos.txt": None, "queries.txt": "query", "database.txt": "database"}
_PENDING = ".pending_manifest.json"


def manifest_for(seed: int = 0, size: str = "small") -> dict[str, Any]:
    """The manifest a build with this seed and size writes (made without rendering anything)."""
    return {
        "generator": "ndvr_jax.data.demo",
        "version": FORMAT_VERSION,
        "seed": seed,
        "size": size,
        "audio_rate": AUDIO_RATE,
        "videos": make_plan(seed, size),
    }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1)


def _complete(out: Path, text: str, videos: dict[str, Any], names: list[str]) -> bool:
    manifest = out / "manifest.json"
    return (
        manifest.is_file()
        and manifest.read_text() == text
        and all((out / name).is_file() for name in names)
        and all((out / v["path"]).is_file() for v in videos.values())
    )


class _Progress:
    """One line per video with the time spent and an ETA weighted by frame counts."""

    def __init__(self, videos: dict[str, Any], verbose: bool):
        self.total = sum(v["n_frames"] for v in videos.values())
        self.n, self.i, self.frames, self.rendered = len(videos), 0, 0, 0
        self.start, self.verbose = time.monotonic(), verbose

    def step(self, vid: str, v: dict[str, Any], path: Path, skipped: bool = False) -> None:
        self.i += 1
        self.frames += v["n_frames"]
        elapsed = time.monotonic() - self.start
        if not skipped:
            self.rendered += v["n_frames"]
        rate = self.rendered / elapsed if self.rendered else 0.0
        eta = f"{(self.total - self.frames) / rate:4.0f}s" if rate else "   ?"
        if self.verbose:
            codecs = f"{v['video_codec']}+{v['audio_codec'] or '-'}"
            print(
                f"[{self.i:>{len(str(self.n))}}/{self.n}] {vid:<5} {v['kind']:<11} "
                f"{path.suffix[1:]:<4} {codecs:<16} {v['width']:>3}x{v['height']:<3} "
                f"{v['duration']:5.1f}s {path.stat().st_size / 1024:6.0f} kB"
                f"{'  (kept)' if skipped else ''}  elapsed {elapsed:4.0f}s  ETA {eta}",
                file=sys.stderr,
                flush=True,
            )


def build_demo_benchmark(
    out_dir: str | os.PathLike, *, seed: int = 0, size: str = "small", verbose: bool = True
) -> Path:
    """Builds (or finds complete) the demo benchmark in `out_dir`; returns manifest.json's path."""
    manifest = manifest_for(seed, size)
    videos = manifest["videos"]
    return write_benchmark(
        out_dir,
        manifest,
        Renderer(videos, SIZES[size].max_side),
        {"annotation.json": truth.annotation(videos), "segments.json": truth.segments(videos)},
        label=f"demo benchmark (seed {seed}, {size})",
        verbose=verbose,
    )


def write_benchmark(
    out_dir: str | os.PathLike,
    manifest: dict[str, Any],
    renderer: Renderer,
    json_files: dict[str, Any],
    *,
    label: str,
    lists: dict[str, str | None] = _LISTS,
    verbose: bool = True,
) -> Path:
    """Renders and encodes every video of `manifest["videos"]` into `out_dir`, then writes
    `lists` (file name -> role, None for every video), `json_files` and, last, the manifest.
    A complete output with the same manifest is kept; an interrupted one resumes."""
    out = Path(out_dir).resolve()
    videos = manifest["videos"]
    text = _dumps(manifest)
    if _complete(out, text, videos, [*lists, *json_files]):
        if verbose:
            print(f"{label} in {out} is complete", file=sys.stderr)
        return out / "manifest.json"
    pending = out / _PENDING
    resume = pending.is_file() and pending.read_text() == text
    if not resume:
        _remove_stale(out, videos)
        with atomic_write(pending) as f:
            f.write(text)
    progress = _Progress(videos, verbose)
    for vid, v in videos.items():
        path = out / v["path"]
        kept = resume and path.is_file()
        if not kept:
            write_video(
                path,
                renderer.frames(vid),
                fps=Fraction(v["fps"]),
                encoding=resolve(v["profile"], v["height"], v["width"]),
                audio=renderer.sound(vid),
            )
        progress.step(vid, v, path, skipped=kept)
    for name, role in lists.items():
        with atomic_write(out / name) as f:
            f.writelines(
                f"{vid}\t{out / v['path']}\n"
                for vid, v in videos.items()
                if role in (None, v["role"])
            )
    for name, obj in json_files.items():
        save_json_atomic(out / name, obj)
    with atomic_write(out / "manifest.json") as f:
        f.write(text)
    pending.unlink()
    return out / "manifest.json"


def _remove_stale(out: Path, videos: dict[str, Any]) -> None:
    """Deletes files in `out/videos` that this plan does not write (left by another build)."""
    keep = {Path(v["path"]).name for v in videos.values()}
    folder = out / "videos"
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file() and path.name not in keep:
                path.unlink()
    (out / "manifest.json").unlink(missing_ok=True)
