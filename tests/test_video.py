"""Video decoding: sampling, timestamps, resize recipes, bad files."""

import numpy as np
import pytest

from ndvr_jax.io import video
from tests.media import write_test_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    write_test_video(path, seconds=3.0, fps=10, width=96, height=64)
    return path


def test_samples_one_frame_per_second_with_timestamps(clip):
    decoded = video.decode_video(clip, fps=1.0, size=48)
    np.testing.assert_allclose(decoded.timestamps, [0.0, 1.0, 2.0], atol=1e-6)
    assert decoded.frames.shape == (3, 48, 48, 3) and decoded.frames.dtype == np.uint8
    assert decoded.duration == pytest.approx(3.0, abs=0.15)
    assert decoded.source_fps == pytest.approx(10.0)


def test_higher_rate_and_content_follows_time(clip):
    decoded = video.decode_video(clip, fps=2.0, size=48)
    np.testing.assert_allclose(decoded.timestamps, np.arange(6) * 0.5, atol=1e-6)
    # frame i has grey level 10*i: the sampled frames at t=0.5k are frames 5k
    centre = decoded.frames[:, 24, 40].mean(axis=1)
    np.testing.assert_allclose(centre, (50 * np.arange(6)) % 250, atol=6)


def test_pad_keeps_aspect_with_centred_zero_bands(clip):
    frame = video.decode_video(clip, size=48, mode="pad").frames[0]
    # 96x64 -> 48x32, padded with 8 rows of zeros above and below
    assert frame[:8].max() == 0 and frame[-8:].max() == 0
    assert frame[8:40, :10].min() > 200  # the bright left band survives on the left


def test_crop_fills_the_canvas(clip):
    frame = video.decode_video(clip, size=48, mode="crop").frames[1]
    assert frame.min() > 0  # no padding; frame 10 has grey level 100


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "missing"), (b"", "empty"), (b"\x00junk" * 100, "unreadable")],
)
def test_bad_files_raise_clear_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(video.VideoDecodeError) as info:
        video.decode_video(path)
    assert info.value.reason == reason


def test_truncated_file_is_detected(tmp_path):
    write_test_video(tmp_path / "full.mkv", seconds=4.0)
    full = (tmp_path / "full.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(full[: len(full) // 2])
    assert len(video.decode_video(tmp_path / "full.mkv").frames) == 4
    with pytest.raises(video.VideoDecodeError) as info:
        video.decode_video(tmp_path / "cut.mkv")
    assert info.value.reason == "truncated"
