"""Tests for ndvr_jax.ausil.augment: each augmentation changes the waveform as it should."""

import numpy as np
import pytest

from ndvr_jax.ausil import augment as aug

SR = 22050


def tone(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / SR)[np.argmax(spectrum)])


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def test_speed_change_alters_duration_and_pitch():
    out = aug.change_speed(tone(440), SR, 1.25)
    assert out.dtype == np.float32
    assert abs(out.size - SR / 1.25) <= 2
    assert abs(peak_hz(out) - 550) < 3


def test_tempo_change_alters_duration_not_pitch():
    out = aug.change_tempo(tone(440), 0.8)
    assert abs(out.size - SR / 0.8) <= 2
    assert abs(peak_hz(out) - 440) < 3


def test_pitch_shift_keeps_duration():
    out = aug.pitch_shift(tone(440), SR, 12.0)
    assert out.size == SR
    assert abs(peak_hz(out) - 880) < 5


@pytest.mark.parametrize("codec", ["mp3", "aac"])
def test_reencode_is_lossy_low_pass_with_same_length(codec):
    rate = 44100  # at 32 kbit/s both encoders cut the top of the 22 kHz band
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, rate // 2).astype(np.float32)
    out = aug.reencode(noise, rate, codec, bit_rate=32000)
    assert out.shape == noise.shape and out.dtype == np.float32
    freqs = np.fft.rfftfreq(noise.size, 1 / rate)
    high = lambda x: np.sum(np.abs(np.fft.rfft(x))[freqs > 16000] ** 2)
    assert high(out) < 0.05 * high(noise)


def test_mp3_keeps_a_tone():
    x = tone(440)
    out = aug.reencode(x, SR, "mp3", bit_rate=64000)
    assert np.corrcoef(x[2000:-2000], out[2000:-2000])[0, 1] > 0.95


def test_band_limit_removes_out_of_band_tones():
    x = tone(100) + tone(1000) + tone(6000)
    np.testing.assert_allclose(aug.band_limit(x, SR, 300, 3400), tone(1000), atol=1e-4)


def test_noise_at_exact_snr():
    x = tone(440)
    out = aug.add_noise(x, 10.0, np.random.default_rng(0))
    snr = 10 * np.log10(power(x) / power(out - x))
    np.testing.assert_allclose(snr, 10.0, atol=1e-3)


def test_volume_scales_and_clips():
    x = tone(440)
    np.testing.assert_allclose(aug.change_volume(x, -20 * np.log10(2)), x / 2, atol=1e-6)
    loud = aug.change_volume(x, 20.0)
    assert np.abs(loud).max() == 1.0


def test_mix_adds_looped_background_at_snr():
    x, other = tone(440), tone(3000, seconds=0.3)
    out = aug.mix(x, other, 6.0, np.random.default_rng(1))
    residual = out - x
    np.testing.assert_allclose(10 * np.log10(power(x) / power(residual)), 6.0, atol=1e-3)
    assert abs(peak_hz(residual) - 3000) < 5
    np.testing.assert_array_equal(aug.mix(x, np.zeros(10), 6.0, np.random.default_rng(1)), x)


def test_random_augment_is_seeded():
    x = tone(440, seconds=2.0) + tone(2000, seconds=2.0, amp=0.1)
    backgrounds = [tone(300, seconds=0.5)]
    a, names_a = aug.random_augment(x, SR, np.random.default_rng(7), backgrounds=backgrounds)
    b, names_b = aug.random_augment(x, SR, np.random.default_rng(7), backgrounds=backgrounds)
    assert names_a == names_b
    np.testing.assert_array_equal(a, b)


def test_random_augment_applies_chain_in_order():
    every = aug.AudioAugmentConfig(
        speed_prob=1,
        pitch_prob=1,
        mix_prob=1,
        band_prob=1,
        noise_prob=1,
        reencode_prob=1,
        volume_prob=1,
        codecs=("mp3",),
    )
    x = tone(440, seconds=1.0)
    out, names = aug.random_augment(x, SR, np.random.default_rng(0), every, [tone(300)])
    kinds = [name.split("(")[0] for name in names]
    assert kinds == ["speed", "pitch", "mix", "band", "noise", "mp3", "volume"]
    assert out.dtype == np.float32 and out.size != x.size  # the speed change
    nothing = aug.AudioAugmentConfig(
        speed_prob=0,
        tempo_prob=0,
        pitch_prob=0,
        mix_prob=1,
        band_prob=0,
        noise_prob=0,
        reencode_prob=0,
        volume_prob=0,
    )
    same, names = aug.random_augment(x, SR, np.random.default_rng(0), nothing)  # no backgrounds
    assert names == []
    np.testing.assert_array_equal(same, x)
    assert aug.random_augment(np.zeros(0, np.float32), SR, np.random.default_rng(0), every)[1] == []
