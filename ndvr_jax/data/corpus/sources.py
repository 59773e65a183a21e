"""Declared real-media sources: Debian packages, what each is used for and which files to take.

Every source has a role, `train` (the training corpus) or `test` (the independent test set); no
package is in both. Packages reserved for someone else's evaluation are refused before anything
is downloaded (`check_allowed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ROLES = ("train", "test")
KINDS = ("music", "speech", "photo", "clip")
SOUND_KINDS = ("music", "speech")
PICTURE_KINDS = ("photo",)

# Reserved for an independent evaluation: never downloaded, read or used.
RESERVED = frozenset(
    {
        "wesnoth-1.16-music",
        "singularity-music",
        "fillets-ng-data-nl",
        "lomiri-wallpapers-16.04",
        "lomiri-wallpapers-20.04",
        "mate-backgrounds",
        "plasma-workspace-wallpapers",
        "opencv-doc",
    }
)
# Whole families avoided with them (their other packages may share the reserved media).
RESERVED_PREFIXES = ("wesnoth", "fillets", "singularity", "lomiri-wallpapers", "mate-backgrounds")


@dataclass(frozen=True)
class Take:
    """Files of one kind inside a package: shell globs on the path inside the package (from
    `usr/...`), with size limits (bytes; pictures also by their short side in pixels)."""

    kind: str
    globs: tuple[str, ...]
    min_bytes: int = 1_000
    max_bytes: int = 30_000_000
    max_files: int = 400
    min_side: int = 0  # pictures: smaller ones (icons) are skipped
    tiles: int = 1  # pictures: cut into this many disjoint vertical strips (separate media)
    group_up: int = 0  # a file's group (one speaker) is this many folders above its own


@dataclass(frozen=True)
class Source:
    """A Debian package, its role and the files taken from it (what they are, in `note`)."""

    package: str
    role: str
    takes: tuple[Take, ...]
    note: str = ""

    @property
    def kinds(self) -> set[str]:
        return {take.kind for take in self.takes}


class ReservedPackageError(ValueError):
    """A source names a package reserved for another evaluation."""


def is_reserved(package: str) -> bool:
    return package in RESERVED or package.startswith(RESERVED_PREFIXES)


def check_allowed(sources: Iterable[Source]) -> None:
    """Raises if a source is reserved, has an unknown role/kind, or a package has two roles."""
    roles: dict[str, str] = {}
    for source in sources:
        if is_reserved(source.package):
            raise ReservedPackageError(f"package {source.package!r} is reserved: not used")
        if source.role not in ROLES:
            raise ValueError(f"{source.package}: role must be one of {ROLES}, not {source.role!r}")
        for take in source.takes:
            if take.kind not in KINDS:
                raise ValueError(f"{source.package}: unknown kind {take.kind!r}")
        if roles.setdefault(source.package, source.role) != source.role:
            raise ValueError(f"package {source.package!r} is in both roles")


def for_role(role: str, sources: Iterable[Source] | None = None) -> tuple[Source, ...]:
    """The (checked) sources of `role`, from `SOURCES` unless others are given."""
    sources = tuple(SOURCES if sources is None else sources)
    check_allowed(sources)
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    return tuple(s for s in sources if s.role == role)


_PICTURES = ("*.jpg", "*.png", "*.webp")
SOURCES: tuple[Source, ...] = (
    # ------------------------------------------------------------------ train (~213 MB of .deb)
    Source(
        "warzone2100-music",
        "train",
        (Take("music", ("usr/share/games/warzone2100/music/*.opus",)),),
        "game soundtrack albums (orchestral / electronic), Opus",
    ),
    Source(
        "extremetuxracer-data",
        "train",
        (
            Take("music", ("usr/share/games/etr/music/*.ogg",), min_bytes=200_000),
            Take(
                "photo",
                ("usr/share/games/etr/env/*/*/*H.png", "usr/share/games/etr/courses/*/preview.png"),
                min_side=256,
                tiles=2,
            ),
        ),
        "game music (Vorbis); sky panoramas and rendered course previews",
    ),
    Source(
        "ktuberling-data",
        "train",
        (Take("speech", ("usr/share/ktuberling/sounds/*/*.ogg",), max_files=2000),),
        "spoken words recorded by volunteers in ~25 languages (one folder per language)",
    ),
    Source(
        "neverball-data",
        "train",
        (Take("photo", ("usr/share/games/neverball/shot-*/*.jpg",), min_side=200),),
        "rendered screenshots of 3D game levels",
    ),
    Source(
        "ukui-wallpapers",
        "train",
        (Take("photo", tuple(f"usr/share/backgrounds/{g}" for g in _PICTURES), tiles=3),),
        "desktop wallpapers (digital artwork)",
    ),
    # ------------------------------------------------------------------ test (~265 MB of .deb)
    Source(
        "xmoto-data",
        "test",
        (Take("music", ("usr/share/games/xmoto/Textures/Musics/*.ogg",)),),
        "game music (Vorbis)",
    ),
    Source(
        "frozen-bubble-data",
        "test",
        (Take("music", ("usr/share/games/frozen-bubble/snd/*zik*.ogg",)),),
        "game music (Vorbis)",
    ),
    Source(
        "klettres-data",
        "test",
        (  # <language>/{alpha,syllab}/: one speaker a language
            Take("speech", ("usr/share/klettres/*/*/*.ogg",), max_files=2000, group_up=1),
        ),
        "spoken letters and syllables in ~20 languages",
    ),
    Source(
        "gcin-voice",
        "test",
        (
            Take(
                "speech",
                ("usr/share/gcin-voice/ogg/*/*.ogg",),
                min_bytes=500,
                max_files=2500,
                group_up=1,  # a folder per syllable, one speaker
            ),
        ),
        "recorded Mandarin syllables",
    ),
    Source(
        "palapeli-data",
        "test",
        (Take("photo", ("usr/share/palapeli/*/*.jpg",)),),
        "photographs (puzzle collection) and photographed textures",
    ),
    Source(
        "xplanet-images",
        "test",
        (Take("photo", ("usr/share/xplanet/images/*.jpg",), min_side=400),),
        "NASA Earth / night / Sun imagery",
    ),
    Source(
        "tuxpaint-stamps-default",
        "test",
        (
            Take(
                "photo",
                tuple(
                    f"usr/share/tuxpaint/stamps/{folder}/*.png"
                    for folder in ("animals", "food", "plants", "vehicles", "household", "town")
                ),
                min_side=150,
            ),
        ),
        "stamps: photographed objects and animals cut out (and some drawings), on white",
    ),
)
