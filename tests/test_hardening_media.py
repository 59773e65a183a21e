"""Decoding bad media: audio gets the video checks (truncation, file type); nothing blocks."""

import os
import threading

import numpy as np
import pytest

from ndvr_jax.features.audio import audio_backbone, load_audio_segments
from ndvr_jax.io import audio, video

SR = 16000


def finishes(fn, *args, seconds: float = 20.0):
    """Runs `fn(*args)` in a thread; returns the exception it raised (fails if it blocks)."""
    raised = []

    def target():
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - what the test inspects
            raised.append(e)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} blocked for {seconds}s"
    return raised[0] if raised else None


@pytest.mark.parametrize(("ext", "codec"), [("mkv", "flac"), ("webm", "libopus")])
def test_truncated_audio_is_a_failure_not_ok(tmp_path, ext, codec):
    rate = 48000 if codec == "libopus" else SR
    tone = 0.5 * np.sin(np.arange(8 * rate) * 2 * np.pi * 440 / rate).astype(np.float32)
    whole = tmp_path / f"whole.{ext}"
    audio.encode_audio(whole, tone, rate, codec=codec)
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert audio.decode_audio(whole, SR).samples.size == pytest.approx(8 * SR, rel=0.01)
    with pytest.raises(audio.AudioDecodeError, match="ends at") as error:
        load_audio_segments(str(cut), audio_backbone("kumar2018"))
    assert error.value.reason == "truncated"


@pytest.mark.parametrize(
    "load",
    [video.decode_video, audio.decode_audio,
     lambda p: load_audio_segments(p, audio_backbone("musicnn_vgg"))],
)  # fmt: skip
def test_a_fifo_is_rejected_before_it_is_opened(tmp_path, load):
    fifo = tmp_path / "stream.mp4"
    os.mkfifo(fifo)
    error = finishes(load, str(fifo))
    assert isinstance(error, video.VideoDecodeError) and error.reason == "not_a_file"


def test_a_folder_and_an_empty_file_are_named(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    assert finishes(audio.decode_audio, tmp_path).reason == "not_a_file"
    assert finishes(audio.decode_audio, tmp_path / "empty.wav").reason == "empty"
    assert finishes(audio.decode_audio, tmp_path / "gone.wav").reason == "missing"
