"""Tests for ndvr_jax.ausil.augment: each augmentation changes the waveform as it should."""

import dataclasses

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


def _probabilities(value: float) -> dict[str, float]:
    fields = [f.name for f in dataclasses.fields(aug.AudioAugmentConfig)]
    return {name: value for name in fields if name.endswith("_prob")}


def test_random_augment_applies_chain_in_order():
    every = aug.AudioAugmentConfig(**_probabilities(1.0), codecs=("mp3",))
    x = tone(440, seconds=1.0)
    out, names = aug.random_augment(x, SR, np.random.default_rng(0), every, [tone(300)])
    kinds = [name.split("(")[0] for name in names]
    assert kinds == ["speed", "pitch", "mix", "eq", "8 kHz mono", "compress", "echo", "noise",
                     "mp3", "volume"]  # fmt: skip
    assert out.dtype == np.float32 and out.size != x.size  # the speed change
    banded = aug.AudioAugmentConfig(**{**_probabilities(0.0), "band_prob": 1.0})
    assert aug.random_augment(x, SR, np.random.default_rng(0), banded)[1][0].startswith("band(")
    nothing = aug.AudioAugmentConfig(**{**_probabilities(0.0), "mix_prob": 1.0})
    same, names = aug.random_augment(x, SR, np.random.default_rng(0), nothing)  # no backgrounds
    assert names == []
    np.testing.assert_array_equal(same, x)
    assert aug.random_augment(np.zeros(0, np.float32), SR, np.random.default_rng(0), every)[1] == []


def test_random_augment_draws_every_kind():
    x = tone(440, seconds=1.0)
    seen = set()
    for seed in range(60):
        names = aug.random_augment(x, 16000, np.random.default_rng(seed), backgrounds=[x])[1]
        seen |= {name.split("(")[0] for name in names}
    assert seen == {"speed", "tempo", "pitch", "mix", "eq", "8 kHz mono", "band", "compress",
                    "echo", "noise", "mp3", "aac", "opus", "volume"}  # fmt: skip


def test_opus_round_trip_keeps_length_and_signal():
    rate = 16000  # not an opus rate for every input: 22.05 kHz goes through 48 kHz
    for sr in (rate, SR):
        t = np.arange(sr) / sr
        x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)).astype(
            np.float32
        )
        out = aug.reencode(x, sr, "opus", bit_rate=24000)
        assert out.shape == x.shape and out.dtype == np.float32
        lags = np.arange(-800, 801)
        core = slice(1000, -1000)
        best = max(np.corrcoef(x[core], np.roll(out, -k)[core])[0, 1] for k in lags[::1])
        assert best > 0.9


def test_telephone_leaves_nothing_above_4_khz():
    rate = 44100
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, rate).astype(np.float32)
    out = aug.telephone(noise, rate, 8000)
    assert out.shape == noise.shape
    spectrum = np.abs(np.fft.rfft(out)) ** 2
    freqs = np.fft.rfftfreq(out.size, 1 / rate)
    assert spectrum[freqs > 4000].sum() < 1e-6 * spectrum.sum()
    low = lambda x: np.abs(np.fft.rfft(x))[(freqs > 200) & (freqs < 3000)] ** 2
    assert low(out).sum() > 0.8 * low(noise).sum()  # the phone band is kept


def test_band_limit_removes_energy_above_3400_hz():
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, SR).astype(np.float32)
    out = aug.band_limit(noise, SR, 300, 3400)
    freqs = np.fft.rfftfreq(out.size, 1 / SR)
    spectrum = np.abs(np.fft.rfft(out)) ** 2
    assert spectrum[freqs > 3400].sum() < 1e-8 * spectrum.sum()


def test_echo_autocorrelation_peaks_at_delay():
    x = np.random.default_rng(2).standard_normal(SR).astype(np.float32) * 0.1
    out = aug.echo(x, SR, delay_s=0.1, decay=0.5)
    d = int(0.1 * SR)
    np.testing.assert_allclose(out[d:], x[d:] + 0.5 * x[:-d], atol=1e-6)
    auto = np.correlate(out, out, "full")[out.size :]  # lags 1, 2, ...
    assert int(np.argmax(auto[100:])) + 101 == d
    reverb = aug.echo(x, SR, 0.1, 0.5, reverb_s=0.5, rng=np.random.default_rng(0))
    assert power(reverb - out) > 0.01 * power(x)  # a tail was added


def test_compression_reduces_crest_factor():
    t = np.arange(2 * SR) / SR
    bursts = np.sin(2 * np.pi * 440 * t) * np.where((t % 0.5) < 0.1, 0.9, 0.05)
    crest = lambda x: np.abs(x).max() / np.sqrt(power(x))
    out = aug.compress_dynamics(bursts.astype(np.float32), SR, threshold_db=-30, ratio=8)
    assert crest(out) < 0.9 * crest(bursts)
    level_db = lambda x, t0: 20 * np.log10(np.sqrt(power(x[int(t0 * SR) : int((t0 + 0.04) * SR)])))
    spread = lambda x: level_db(x, 0.03) - level_db(x, 0.3)  # mid-burst vs mid-quiet
    # 25 dB apart, the quiet part ~1 dB over the threshold: 8:1 leaves ~ 1 + 24 / 8 = 4 dB
    assert spread(out) < 6.0 < 20.0 < spread(bursts)
    np.testing.assert_allclose(np.abs(out).max(), np.abs(bursts).max(), rtol=1e-5)
    quiet = (0.001 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # below the threshold
    np.testing.assert_allclose(aug.compress_dynamics(quiet, SR, -30, 8), quiet, rtol=1e-4)


def test_equaliser_gains_at_their_frequencies():
    rate = 16000
    x = tone(1000, seconds=1.0)
    peak = aug.equalize(x, SR, [("peak", 1000, 6.0, 1.0)])
    gain_db = 10 * np.log10(power(peak[2000:]) / power(x[2000:]))
    np.testing.assert_allclose(gain_db, 6.0, atol=0.1)
    low, high = tone(50), tone(7000)
    shelf = [("lowshelf", 200, -12.0, 0.707)]
    gain = lambda y, z: 10 * np.log10(power(aug.equalize(y, SR, z)[2000:]) / power(y[2000:]))
    np.testing.assert_allclose(gain(low, shelf), -12.0, atol=0.5)
    np.testing.assert_allclose(gain(high, shelf), 0.0, atol=0.2)
    np.testing.assert_allclose(gain(high, [("highshelf", 3000, 9.0, 0.707)]), 9.0, atol=0.5)
    del rate
