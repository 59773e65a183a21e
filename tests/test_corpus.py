"""Real-media sources, licences and the unlabelled training corpus, on a fake package cache
(generated pictures and tones; nothing is downloaded, no Debian media is read)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from ndvr_jax.data.corpus import debian, sources
from ndvr_jax.data.corpus.collect import collect
from ndvr_jax.data.corpus.pool import MediaPool
from ndvr_jax.data.corpus.sources import ReservedPackageError, Source, Take
from ndvr_jax.data.corpus.training import CorpusConfig, build_corpus, make_plan
from ndvr_jax.io.audio import encode_audio

RATE = 22050
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fake

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: data/photos/*
Copyright: 2021 A Photographer
License: CC-BY-SA-4.0
 The licence text goes on here
 and here.

Files: sounds/*.wav
Copyright: 2022 A Musician
License: CC0-1.0
"""


def _write_package(cache: Path, package: str, files: dict[str, object], copyright: str) -> None:
    root = debian.package_root(cache, package)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Image.Image):
            content.save(path)
        else:
            encode_audio(path, content, RATE, codec="pcm_s16le", container_format="wav")
    doc = root / "usr/share/doc" / package / "copyright"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(copyright)
    record = {"package": package, "version": "1.0-1", "deb": f"{package}.deb"}
    (cache / "root" / f"{package}.json").write_text(json.dumps(record))


def _photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth random colour field with a few bright rectangles (different every call)."""
    coarse = rng.uniform(0, 255, (3, 4, 3)).astype(np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(image).copy()
    for _ in range(4):
        y, x = rng.integers(0, height - 20), rng.integers(0, width - 20)
        pixels[y : y + 20, x : x + 20] = rng.integers(0, 256, 3)
    return Image.fromarray(pixels)


def _tone(rng: np.random.Generator, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    freqs = rng.uniform(150, 1500, 3)
    wave = sum(
        np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sin(np.pi * t * k))
        for k, f in enumerate(freqs, 1)
    )
    return (0.25 * wave).astype(np.float32)


def make_fake_cache(cache: Path, prefix: str = "fake") -> tuple[Source, ...]:
    """Three fake packages per role in `cache` (photos, music, speech); returns their sources."""
    rng = np.random.default_rng(0)
    out = []
    for role in ("train", "test"):
        photos = {f"usr/share/{role}/data/photos/p{k}.png": _photo(rng, 240, 160) for k in range(5)}
        photos[f"usr/share/{role}/data/photos/icon.png"] = _photo(rng, 24, 24)
        music = {f"usr/share/{role}/sounds/m{k}.wav": _tone(rng, 12.0) for k in range(2)}
        words = {
            f"usr/share/{role}/voice/{lang}/w{k}.wav": _tone(rng, 0.4)
            for lang in ("en", "fr")
            for k in range(6)
        }
        for kind, files, take in (
            (
                "photos",
                photos,
                Take("photo", ("*/photos/*.png",), min_bytes=10, min_side=64, tiles=2),
            ),
            ("music", music, Take("music", ("*/sounds/*.wav",))),
            ("speech", words, Take("speech", ("*/voice/*/*.wav",))),
        ):
            package = f"{prefix}-{role}-{kind}"
            _write_package(cache, package, files, COPYRIGHT)
            out.append(Source(package, role, (take,)))
    return tuple(out)


@pytest.fixture()
def no_network(monkeypatch):
    """Fails the test if anything tries to run apt-get or dpkg-deb."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"subprocess called: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)


def test_reserved_packages_are_refused(no_network, tmp_path):
    take = (Take("music", ("*.ogg",)),)
    for name in ("wesnoth-1.16-music", "wesnoth-1.18-data", "fillets-ng-data", "opencv-doc"):
        with pytest.raises(ReservedPackageError):
            sources.check_allowed([Source(name, "test", take)])
        with pytest.raises(ReservedPackageError):
            debian.fetch(Source(name, "test", take), tmp_path)
    with pytest.raises(ValueError, match="both roles"):
        sources.check_allowed([Source("a", "train", take), Source("a", "test", take)])


def test_declared_sources_are_disjoint_and_complete():
    train, test = sources.for_role("train"), sources.for_role("test")
    assert not {s.package for s in train} & {s.package for s in test}
    for role in (train, test):
        kinds = set().union(*(s.kinds for s in role))
        assert {"music", "speech", "photo"} <= kinds
        assert not any(sources.is_reserved(s.package) for s in role)


def test_dep5_licences():
    paragraphs = debian.parse_copyright(COPYRIGHT)
    assert [p.licence for p in paragraphs] == ["GPL-2+", "CC-BY-SA-4.0", "CC0-1.0"]
    # installed paths: a trailing part of the pattern matches a trailing part of the path
    assert debian.licence_for("usr/share/x/photos/a.png", paragraphs) == (
        "CC-BY-SA-4.0",
        "data/photos/*",
    )
    assert debian.licence_for("usr/share/x/sounds/a.wav", paragraphs) == ("CC0-1.0", "sounds/*.wav")
    assert debian.licence_for("usr/bin/tool", paragraphs) == ("GPL-2+", "*")
    assert debian.parse_copyright("This package was debianized by...\n\nGPL") is None


def test_collect_records_licences_and_hashes(no_network, tmp_path):
    fake = make_fake_cache(tmp_path)
    media = collect("train", tmp_path, fake, verbose=False)
    names = {f["name"] for f in media["files"]}
    assert not any("icon" in n for n in names)  # below min_side
    assert len(media["files"]) == 5 + 2 + 12
    for f in media["files"]:
        path = debian.package_root(tmp_path, f["package"]) / f["path"]
        assert f["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert f["version"] == "1.0-1"
        expected = {"photo": "CC-BY-SA-4.0", "music": "CC0-1.0", "speech": "GPL-2+"}[f["kind"]]
        assert f["licence"] == expected, f
    music = [f for f in media["files"] if f["kind"] == "music"]
    assert all(abs(f["duration"] - 12.0) < 0.05 for f in music)
    pool = MediaPool(media)
    assert len(pool.pictures()) == 10  # two tiles per photo
    left, right = pool.picture(pool.pictures()[0], 100), pool.picture(pool.pictures()[1], 100)
    assert left.shape == right.shape == (100, 75, 3) and not np.allclose(left, right)
    speakers = {pool.group(n) for n in pool.sounds("speech")}
    assert speakers == {f"fake-train-speech/usr/share/train/voice/{x}" for x in ("en", "fr")}
    # `group_up`: a speaker's folder above the file's own one (gcin: a folder per syllable)
    up = tuple(
        dataclasses.replace(s, takes=tuple(dataclasses.replace(t, group_up=1) for t in s.takes))
        for s in fake
    )
    pool = MediaPool(collect("train", tmp_path, up, verbose=False))
    assert {pool.group(n) for n in pool.sounds("speech")} == {
        "fake-train-speech/usr/share/train/voice"
    }


def test_corpus_videos_decode_with_sound_and_resume(no_network, tmp_path):
    fake = make_fake_cache(tmp_path / "cache")
    config = CorpusConfig(
        n_videos=3,
        seconds=(2.0, 3.0),
        shot_seconds=(1.0, 1.5),
        frame_sizes=((72, 96),),
        fps=(10,),
        max_side=128,
    )
    out = tmp_path / "corpus"
    manifest = build_corpus(
        out, cache=tmp_path / "cache", config=config, sources=fake, verbose=False
    )
    videos = json.loads(manifest.read_text())["videos"]
    lines = (out / "videos.txt").read_text().splitlines()
    assert len(lines) == len(videos) == 3
    used = set()
    for line in lines:
        vid, path = line.split("\t")
        spec = videos[vid]
        with av.open(path) as container:
            frames = list(container.decode(video=0))
        with av.open(path) as container:
            sound = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
        assert abs(len(frames) - spec["n_frames"]) <= 1
        assert np.sqrt(np.mean(sound.astype(np.float64) ** 2)) > 1e-3  # real sound, not silence
        assert all(m.startswith("fake-train-") for m in spec["media"])
        used |= {tuple(p.values()) for p in spec["audio"][0]["pieces"] if "gain_db" not in p}
    media = json.loads((out / "media.json").read_text())
    assert {f["package"] for f in media["files"]} == {s.package for s in fake if s.role == "train"}
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    build_corpus(out, cache=tmp_path / "cache", config=config, sources=fake, verbose=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps


def test_corpus_plan_shares_no_sound():
    """Music spans of different videos never overlap (speech words repeat only when used up)."""
    media = {
        "cache": "/nonexistent",
        "files": [
            {
                "name": "m",
                "kind": "music",
                "package": "p",
                "path": "m",
                "group": "p/",
                "duration": 900.0,
            },
            {"name": "ph", "kind": "photo", "package": "p", "path": "ph", "group": "p/"},
        ],
    }
    videos = make_plan(MediaPool(media), CorpusConfig(n_videos=20, speech_share=0.0), seed=3)
    spans = sorted(
        (p["start"], p["start"] + p["duration"])
        for v in videos.values()
        for p in v["audio"][0]["pieces"]
    )
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
