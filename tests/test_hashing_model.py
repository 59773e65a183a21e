"""The hashing network: masked attention pooling against numpy, bits in (0, 1), shapes."""

import numpy as np
from flax import nnx

from ndvr_jax.hashing.model import HashingNet, masked_attention_weights


def _batch(seed=0, b=3, t=6, d=8):
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(b, t, d)).astype(np.float32)
    lengths = np.array([6, 2, 4])[:b]
    return frames, np.arange(t)[None, :] < lengths[:, None]


def test_attention_weights_match_numpy_softmax_over_real_frames():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(3, 5)).astype(np.float32) * 10
    mask = np.array([[1, 1, 1, 1, 1], [1, 0, 1, 0, 0], [0, 0, 0, 0, 0]], bool)
    got = np.asarray(masked_attention_weights(scores, mask))
    for row in range(2):
        e = np.exp(scores[row, mask[row]] - scores[row, mask[row]].max())
        np.testing.assert_allclose(got[row, mask[row]], e / e.sum(), rtol=1e-5)
    np.testing.assert_array_equal(got[~mask], 0.0)


def test_pooling_ignores_padded_frames():
    model = HashingNet(8, 16, 5, rngs=nnx.Rngs(0))
    frames, mask = _batch()
    out = model(frames, mask)
    noisy = np.where(mask[..., None], frames, np.float32(1e6))
    noisy[1, 3] = np.nan
    again = model(noisy, mask)
    np.testing.assert_array_equal(np.asarray(again.bits), np.asarray(out.bits))
    np.testing.assert_array_equal(np.asarray(again.logits), np.asarray(out.logits))
    # The same video alone, unpadded, gives the same bits.
    alone = model(frames[1:2, :2], mask[1:2, :2])
    np.testing.assert_allclose(np.asarray(alone.bits[0]), np.asarray(out.bits[1]), rtol=1e-6)


def test_output_shapes_and_ranges():
    model = HashingNet(8, 16, 5, rngs=nnx.Rngs(0))
    frames, mask = _batch()
    out = model(frames, mask)
    assert out.bits.shape == (3, 16) and out.logits.shape == (3, 5)
    bits = np.asarray(out.bits)
    assert np.all((bits > 0) & (bits < 1))
    np.testing.assert_allclose(np.asarray(out.weights).sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(out.weights)[~mask], 0.0)
    # Pooled vector = numpy weighted average of the real frames, each centred and L2-normalised.
    pooled, weights = model.pool(frames, mask)
    centred = frames - frames.mean(-1, keepdims=True)
    unit = centred / (np.linalg.norm(centred, axis=-1, keepdims=True) + 1e-6)
    want = np.einsum("bt,btd->bd", np.asarray(weights), unit * mask[..., None])
    np.testing.assert_allclose(np.asarray(pooled), want, rtol=1e-5, atol=1e-6)
