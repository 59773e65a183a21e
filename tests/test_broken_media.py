"""Broken media: every file fails (or lacks a stream) exactly as `expected.json` says."""

import json
from pathlib import Path

import av
import numpy as np
import pytest

from ndvr_jax.data.broken_media import AUDIO_OK, KINDS, VIDEO_OK, make_broken_media


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_broken_media(tmp_path_factory.mktemp("broken"))


def _decode(path: str, kind: str) -> list[np.ndarray]:
    """Decodes every frame of the first stream of `kind` ("video" or "audio")."""
    with av.open(path) as container:
        stream = getattr(container.streams, kind)[0]
        return [frame.to_ndarray() for frame in container.decode(stream)]


def _streams(path: str) -> set[str]:
    with av.open(path) as container:
        return {s.type for s in container.streams}


def test_lists_every_kind(broken: dict[str, str]):
    assert set(broken) == set(KINDS)
    folder = Path(broken["empty"]).parent
    listed = dict(line.split("\t") for line in (folder / "broken.txt").read_text().splitlines())
    assert listed == broken
    assert json.loads((folder / "expected.json").read_text()) == {k: k for k in KINDS}
    assert all(Path(p).is_file() for p in broken.values())


@pytest.mark.parametrize("kind", ["empty", "not_media", "truncated"])
def test_unopenable(broken: dict[str, str], kind: str):
    with pytest.raises(av.error.FFmpegError):
        av.open(broken[kind]).close()


def test_no_video_stream(broken: dict[str, str]):
    assert _streams(broken["no_video_stream"]) == {"audio"}
    assert sum(a.shape[-1] for a in _decode(broken["no_video_stream"], "audio")) > 44100


def test_corrupt_packets_do_not_decode(broken: dict[str, str]):
    path = broken["corrupt_packets"]
    with av.open(path) as container:
        (stream,) = container.streams.video
        assert stream.frames > 0  # the header and index are intact
    with pytest.raises(av.error.FFmpegError):
        _decode(path, "video")


def test_zero_frames(broken: dict[str, str]):
    assert _streams(broken["zero_frames"]) == {"video"}
    assert _decode(broken["zero_frames"], "video") == []


def test_valid_video_without_usable_sound(broken: dict[str, str]):
    assert _streams(broken["no_audio_stream"]) == {"video"}
    assert len(_decode(broken["no_audio_stream"], "video")) == 24
    assert _streams(broken["silent_audio"]) == {"video", "audio"}
    assert len(_decode(broken["silent_audio"], "video")) == 24
    sound = np.concatenate([a.ravel() for a in _decode(broken["silent_audio"], "audio")])
    assert sound.size > 44100 and np.abs(sound).max() < 1e-4


def _usable(path: str, kind: str) -> bool:
    """Whether a stream of `kind` opens and decodes to something (audio: not silence)."""
    try:
        data = _decode(path, kind)
    except (av.error.FFmpegError, IndexError):  # unreadable, or no such stream
        return False
    if kind == "audio":
        return bool(data) and max(np.abs(a).max() for a in data) > 1e-3
    return bool(data)


@pytest.mark.parametrize("kind", KINDS)
def test_usable_streams_are_as_documented(broken: dict[str, str], kind: str):
    assert _usable(broken[kind], "video") == (kind in VIDEO_OK)
    assert _usable(broken[kind], "audio") == (kind in AUDIO_OK)


def test_deterministic(broken: dict[str, str], tmp_path: Path):
    again = make_broken_media(tmp_path)
    for kind in KINDS:
        assert Path(again[kind]).read_bytes() == Path(broken[kind]).read_bytes(), kind
