"""Tests for ndvr_jax.io.audio: decoding statuses, mono mix, resampling, Mel windows, padding."""

import io

import av
import numpy as np
import pytest

from ndvr_jax.io import audio

SR = 44100


def tone(seconds: float, sr: int = SR, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_video(path, with_audio: bool) -> None:
    """A tiny MPEG-4 video (8 frames of 32×32), with a 1 s AAC tone if asked."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=8)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        if with_audio:
            sound = container.add_stream("aac", rate=SR, layout="mono")
            frame = av.AudioFrame.from_ndarray(tone(1.0)[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = SR, 0
            for packet in sound.encode(frame):
                container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
        for i in range(8):
            image = np.full((32, 32, 3), 16 * i, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)


def test_video_without_audio_stream(tmp_path):
    path = tmp_path / "mute.mp4"
    write_video(path, with_audio=False)
    result = audio.load_audio_windows(path)
    assert result.status == audio.AudioStatus.NO_AUDIO_STREAM
    assert result.windows.shape == (0, 174, 128)


def test_video_with_audio_stream(tmp_path):
    path = tmp_path / "sound.mp4"
    write_video(path, with_audio=True)
    decoded = audio.decode_audio(path)
    assert decoded.status == audio.AudioStatus.OK
    assert abs(decoded.samples.size - SR) < 3000  # codec priming/padding only
    # 1 s is shorter than a 2 s window.
    assert audio.load_audio_windows(path).status == audio.AudioStatus.TOO_SHORT


def test_silent_file(tmp_path):
    path = tmp_path / "silence.wav"
    audio.encode_audio(path, np.zeros(3 * SR, np.float32), SR)
    result = audio.load_audio_windows(path)
    assert result.status == audio.AudioStatus.SILENT
    assert result.windows.shape == (0, 174, 128)
    assert result.num_samples == 3 * SR


def test_constant_offset_is_silent():
    result = audio.waveform_windows(np.full(SR, 0.3, np.float32))
    assert result.status == audio.AudioStatus.SILENT


def test_corrupt_and_missing_files_raise(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(audio.AudioDecodeError, match="bad.mp4"):
        audio.load_audio_windows(bad)
    with pytest.raises(audio.AudioDecodeError):
        audio.decode_audio(tmp_path / "missing.wav")


def test_mono_mix_is_channel_mean_and_resampled(tmp_path):
    path = tmp_path / "stereo.wav"
    left, right = tone(1.0, 48000, amp=0.8), tone(1.0, 48000, amp=0.2)
    audio.encode_audio(path, np.stack([left, right]), 48000)
    decoded = audio.decode_audio(path, sample_rate=SR)
    assert decoded.samples.dtype == np.float32
    assert decoded.samples.size == SR
    middle = decoded.samples[1000:-1000]
    np.testing.assert_allclose(np.abs(middle).max(), 0.5, atol=2e-3)
    # Opposite channels cancel in the mean: the file is silent.
    audio.encode_audio(path, np.stack([left, -left]), 48000)
    assert audio.load_audio_windows(path).status == audio.AudioStatus.SILENT


def test_in_memory_round_trip():
    buffer = io.BytesIO()
    audio.encode_audio(buffer, tone(2.5), SR, codec="libmp3lame", container_format="mp3")
    buffer.seek(0)
    decoded = audio.decode_audio(buffer)
    assert decoded.samples.size == int(2.5 * SR)


def test_mel_spectrogram_shape_and_scale():
    mel = audio.mel_spectrogram(tone(1.0))
    assert mel.shape == (1 + SR // 512, 128)
    assert mel.dtype == np.float32
    # power_to_db with top_db 80: the dynamic range is at most 80 dB.
    assert mel.max() - mel.min() <= 80.0 + 1e-3


@pytest.mark.parametrize(
    ("n_frames", "expected"), [(0, 0), (1, 1), (173, 1), (174, 1), (175, 2), (261, 2), (262, 3)]
)
def test_num_windows(n_frames, expected):
    assert audio.num_windows(n_frames) == expected


def test_windows_are_strided_slices_with_padded_tail():
    config = audio.AudioConfig(pad_db=-7.0)
    mel = np.random.default_rng(0).normal(size=(300, 128)).astype(np.float32)
    windows = audio.spectrogram_windows(mel, config)
    assert windows.shape == (3, 174, 128)
    np.testing.assert_array_equal(windows[0], mel[0:174])
    np.testing.assert_array_equal(windows[1], mel[87:261])
    np.testing.assert_array_equal(windows[2, : 300 - 174], mel[174:300])
    assert np.all(windows[2, 300 - 174 :] == -7.0)


def test_short_clip_gives_one_padded_window():
    samples = tone(0.5)
    result = audio.waveform_windows(samples)
    n_frames = 1 + samples.size // 512
    assert result.status == audio.AudioStatus.TOO_SHORT
    assert result.windows.shape == (1, 174, 128)
    centred = samples - samples.mean()
    expected = audio.mel_spectrogram(centred / np.abs(centred).max())
    np.testing.assert_array_equal(result.windows[0, :n_frames], expected)
    assert np.all(result.windows[0, n_frames:] == 0.0)
    # Shorter than one FFT frame still works.
    assert audio.waveform_windows(tone(0.005)).windows.shape == (1, 174, 128)


def test_ok_clip_is_peak_normalised():
    samples = tone(3.0, amp=0.9) + 0.05
    result = audio.waveform_windows(samples)
    assert result.status == audio.AudioStatus.OK
    assert result.windows.shape == (audio.num_windows(1 + samples.size // 512), 174, 128)
    quieter = audio.waveform_windows(0.1 * samples)
    np.testing.assert_allclose(quieter.windows, result.windows, atol=1e-3)
    unnormalised = audio.waveform_windows(0.1 * samples, audio.AudioConfig(normalize=False))
    assert np.abs(unnormalised.windows - result.windows).max() > 10.0
