"""Debian packages as a media source: download (`apt-get download`), unpack (`dpkg-deb -x`, no
installation) and each file's licence from the package's DEP-5 `copyright` file.

Cache layout: `<cache>/debs/<file>.deb` and `<cache>/root/<package>/` (the unpacked tree), with
`<cache>/root/<package>.json` (package, version, .deb sha256) written last: a package whose
record exists is complete and is not fetched again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ndvr_jax.io.atomic import save_json_atomic

from .sources import Source, check_allowed

NOT_MACHINE_READABLE = "unknown (copyright file is not DEP-5; see copyright_file)"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_root(cache: Path, package: str) -> Path:
    return cache / "root" / package


def package_record(cache: Path, package: str) -> dict[str, Any] | None:
    """The record of a complete fetch of `package`, or None."""
    path = cache / "root" / f"{package}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")


def fetch(source: Source, cache: Path) -> dict[str, Any]:
    """Downloads and unpacks a package (skipped when complete); returns its record."""
    check_allowed([source])
    package = source.package
    record = package_record(cache, package)
    if record is not None:
        return record
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not available: fetching needs a Debian-like system")
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        _run(["apt-get", "download", package], debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise RuntimeError(f"apt-get download {package} wrote no .deb")
    deb = found[-1]
    root = package_root(cache, package)
    if root.exists():
        shutil.rmtree(root)  # a half-unpacked tree from an interrupted run
    root.mkdir(parents=True)
    _run(["dpkg-deb", "-x", str(deb), str(root)], debs)
    version = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    record = {
        "package": package,
        "version": version,
        "deb": deb.name,
        "deb_bytes": deb.stat().st_size,
        "deb_sha256": sha256(deb),
    }
    save_json_atomic(cache / "root" / f"{package}.json", record)
    return record


@dataclass(frozen=True)
class FilesParagraph:
    patterns: tuple[str, ...]
    licence: str


def parse_copyright(text: str) -> list[FilesParagraph] | None:
    """The `Files:` paragraphs (patterns, licence short name) of a DEP-5 file, or None if the
    file is not machine-readable."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    if not paragraphs or not paragraphs[0].lower().startswith("format:"):
        return None
    out = []
    for paragraph in paragraphs:
        fields: dict[str, str] = {}
        key = None
        for line in paragraph.split("\n"):
            if line[:1] in (" ", "\t"):
                if key == "files":  # patterns may go on; a licence's text is not kept
                    fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields and "license" in fields:
            out.append(FilesParagraph(tuple(fields["files"].split()), fields["license"]))
    return out


def _tails(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[i:]) for i in range(len(parts))]


def licence_for(path: str, paragraphs: list[FilesParagraph]) -> tuple[str, str]:
    """(licence, matching pattern) of an installed file. DEP-5 patterns name source-tree paths,
    which installation moves: a pattern matches when a trailing part of it matches a trailing
    part of the path (`data/music/*` matches `usr/share/game/music/a.ogg`). The last matching
    paragraph wins, as in DEP-5."""
    tails = _tails(path)
    best = ("", "")
    for paragraph in paragraphs:
        for pattern in paragraph.patterns:
            # trailing parts that keep a folder (`sounds/*.wav` must not become `*.wav`)
            pattern_tails = [t for t in _tails(pattern) if "/" in t and t.strip("*/")]
            pattern_tails = pattern_tails if "/" in pattern else [pattern]
            if any(fnmatch.fnmatchcase(a, b) for a in tails for b in pattern_tails):
                best = (paragraph.licence, pattern)
    return best


def copyright_path(root: Path, package: str) -> Path:
    return root / "usr" / "share" / "doc" / package / "copyright"


class Licences:
    """Licence lookup for files of one unpacked package."""

    def __init__(self, root: Path, package: str):
        path = copyright_path(root, package)
        self.file = path.relative_to(root).as_posix() if path.is_file() else None
        text = path.read_text(errors="replace") if path.is_file() else ""
        self.sha256 = sha256(path) if path.is_file() else None
        self.paragraphs = parse_copyright(text) if text else None

    def __call__(self, path: str) -> dict[str, Any]:
        if self.paragraphs is None:
            licence, pattern = NOT_MACHINE_READABLE, None
        else:
            licence, pattern = licence_for(path, self.paragraphs)
            licence = licence or NOT_MACHINE_READABLE
        return {
            "licence": licence,
            "licence_pattern": pattern,
            "copyright_file": self.file,
            "copyright_sha256": self.sha256,
        }
