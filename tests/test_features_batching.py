"""Batched extraction: cross-video batching, sharding, resume, failures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ndvr_jax import sharding
from ndvr_jax.backbones import create_backbone, mac
from ndvr_jax.features.batching import extract_to_store
from ndvr_jax.features.encoder import BatchEncoder, micro_batch_size
from ndvr_jax.io import video
from ndvr_jax.io.store import FeatureStore
from tests.media import write_test_video


class TinyNet(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)

    def __call__(self, x):
        return [nnx.relu(self.conv(x / 255.0))]


def mean_pool(activations):
    return jnp.concatenate([a.mean(axis=(1, 2)) for a in activations], axis=-1)


def reference(model, images):
    return np.asarray(mean_pool(model(jnp.asarray(images, jnp.float32))))


@pytest.mark.parametrize("devices", [1, 8])
def test_encoder_matches_direct_call_for_any_count(devices):
    model = TinyNet(nnx.Rngs(0))
    encoder = BatchEncoder(model, mean_pool, sharding.make_mesh(devices), batch_size=8)
    images = np.random.default_rng(0).integers(0, 255, (19, 16, 16, 3), dtype=np.uint8)
    np.testing.assert_allclose(encoder(images), reference(model, images), rtol=1e-5, atol=1e-6)


def test_extract_to_store_batches_across_videos_resumes_and_logs_failures(tmp_path):
    entries = []
    for i, seconds in enumerate([3.0, 1.0, 5.0, 2.0]):
        path = tmp_path / f"v{i}.mp4"
        write_test_video(path, seconds=seconds, fps=5)
        entries.append((f"v{i}", str(path)))
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    entries.insert(2, ("bad", str(tmp_path / "bad.mp4")))
    entries.append(("gone", str(tmp_path / "gone.mp4")))

    model = TinyNet(nnx.Rngs(0))
    encoder = BatchEncoder(model, mean_pool, sharding.make_mesh(4), batch_size=4)
    store = FeatureStore(tmp_path / "features")

    def decode(path):
        return video.decode_video(path, size=16)

    def describe(decoded):
        return {"timestamps": decoded.timestamps.tolist()}

    summary = extract_to_store(entries, decode, encoder, store, describe)
    assert summary.done == ["v0", "v1", "v2", "v3"]
    assert summary.failed == {"bad": "unreadable", "gone": "missing"}
    failures = (tmp_path / "features" / "failures.tsv").read_text().splitlines()
    assert [row.split("\t")[:3] for row in failures] == [
        ["bad", str(tmp_path / "bad.mp4"), "unreadable"],
        ["gone", str(tmp_path / "gone.mp4"), "missing"],
    ]
    for video_id, path in entries[:2] + entries[3:5]:
        expected = reference(model, decode(path).frames)
        np.testing.assert_allclose(store.load(video_id), expected, rtol=1e-5, atol=1e-6)
        assert len(store.load_meta(video_id)["timestamps"]) == len(expected)

    again = extract_to_store(entries, decode, encoder, store, describe)
    assert again.done == [] and sorted(again.skipped) == ["v0", "v1", "v2", "v3"]
    assert set(again.failed) == {"bad", "gone"}
    assert jax.device_count() == 8


@pytest.mark.parametrize(
    "devices, micro_batch, dtype", [(1, 1, "float32"), (1, 4, "bfloat16"), (4, 1, "float32")]
)
def test_micro_batched_encoder_gives_the_same_features(devices, micro_batch, dtype):
    model = create_backbone("efficientnet_lite0", weights=None, dtype=jnp.dtype(dtype))
    images = np.random.default_rng(1).integers(0, 255, (13, 32, 32, 3), dtype=np.uint8)
    mesh = sharding.make_mesh(devices)
    whole = BatchEncoder(model, mac, mesh, batch_size=8, micro_batch=0)
    micro = BatchEncoder(model, mac, mesh, batch_size=8, micro_batch=micro_batch)
    assert (whole.micro_batch, micro.micro_batch) == (8 // devices, micro_batch)
    assert micro.output_dim((32, 32, 3)) == whole.output_dim((32, 32, 3))
    # The same numbers up to rounding: XLA may pick another conv algorithm for a smaller batch.
    rtol, atol = {"float32": (1e-5, 1e-6), "bfloat16": (1e-2, 1e-3)}[dtype]
    np.testing.assert_allclose(micro(images), whole(images), rtol=rtol, atol=atol)


def test_micro_batch_size():
    assert micro_batch_size("auto", 16, "cpu") == 2
    assert micro_batch_size("auto", 5, "cpu") == 1
    assert micro_batch_size("auto", 16, "gpu") == 16
    assert micro_batch_size(None, 16, "cpu") == micro_batch_size("0", 16, "cpu") == 16
    assert micro_batch_size("8", 16, "cpu") == micro_batch_size(8, 16, "gpu") == 8
    with pytest.raises(ValueError, match="does not divide"):
        micro_batch_size(3, 16, "cpu")
