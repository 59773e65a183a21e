"""The network-free log-Mel audio baseline: extraction against a plain numpy/librosa computation,
and its Chamfer similarity finds a copy."""

import librosa
import numpy as np

from configs import extract as extract_config
from ndvr_jax.backbones import logmel
from ndvr_jax.chamfer import chamfer_similarity
from ndvr_jax.features import extract
from ndvr_jax.io.audio import encode_audio
from ndvr_jax.io.store import FeatureStore

SR = 16000


def reference_features(samples: np.ndarray) -> np.ndarray:
    """The baseline written out with numpy and librosa only."""
    y = samples - samples.mean()
    y = y / np.abs(y).max()
    power = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=512, hop_length=256, n_mels=64, pad_mode="reflect"
    )
    db = librosa.power_to_db(power).T  # [frames, 64]
    out = []
    for start in range(0, max(len(db) - 128, 0) + 64, 64):
        window = np.zeros((128, 64), np.float32)  # pad_db 0
        part = db[start : start + 128]
        window[: len(part)] = part
        blocks = window.reshape(4, 32, 64).mean(axis=1)
        vector = (blocks - blocks.mean(axis=1, keepdims=True)).ravel()
        out.append(vector / np.linalg.norm(vector))
        if start + 128 >= len(db):
            break
    return np.stack(out)


def test_logmel_features_match_numpy(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(int(4.5 * SR)) / SR
    music = 0.4 * np.sin(2 * np.pi * 330 * t * (1 + 0.2 * np.sin(t))) + 0.05 * rng.standard_normal(
        t.size
    )
    other = 0.3 * rng.standard_normal(t.size) * np.sin(2 * np.pi * 2 * t) ** 2
    for name, x in (("music", music), ("copy", 0.5 * music), ("other", other)):
        encode_audio(tmp_path / f"{name}.wav", x.astype(np.float32), SR)
    (tmp_path / "list.txt").write_text(
        "".join(f"{n}\t{tmp_path / n}.wav\n" for n in ("music", "copy", "other"))
    )
    config = extract_config.get_config("runlocal")
    config.mode = "audio"
    config.audio.backbone = "logmel"
    config.audio.layout = "ndvr-dml"  # `<id>.npy`, what `similarity --system=chamfer` reads
    config.num_devices = 1
    summary = extract(config, str(tmp_path / "list.txt"), str(tmp_path / "features"))
    assert summary.done == ["music", "copy", "other"]
    store = FeatureStore(tmp_path / "features")
    features = {v: store.load(v) for v in summary.done}
    decoded = librosa.load(tmp_path / "music.wav", sr=SR)[0]
    expected = reference_features(decoded)
    assert features["music"].shape == (len(expected), logmel.FEATURE_DIM)
    np.testing.assert_allclose(features["music"], expected, atol=2e-4)
    # gain does not change it (up to the 16-bit wav's rounding)
    np.testing.assert_allclose(features["copy"], features["music"], atol=1e-2)
    sims = chamfer_similarity([features["music"]], [features["copy"], features["other"]])
    assert sims[0, 0] > 0.99 > sims[0, 1]
