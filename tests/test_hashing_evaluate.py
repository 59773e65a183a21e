"""mAP@k and mAP of Hamming rankings against a numpy loop; ITQ against its definition."""

import numpy as np
import pytest

from ndvr_jax.hashing import codes, evaluate
from ndvr_jax.hashing.report import baseline_rows, markdown_table
from ndvr_jax.hashing.sources import VideoSets
from ndvr_jax.hashing.synthetic import synthetic_videos


def numpy_ap_at_k(distances, relevance, mask, k):
    """Loop reference: rank masked-in items by distance (stable), AP over the top k hits."""
    aps, full = [], []
    for d, rel, m in zip(distances, relevance, mask, strict=True):
        items = np.flatnonzero(m)
        ranked = items[np.argsort(d[items], kind="stable")]
        hits = rel[ranked]
        if hits.sum() == 0:
            continue
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        top = hits[:k]
        aps.append((precision[:k] * top).sum() / top.sum() if top.sum() else 0.0)
        full.append((precision * hits).sum() / hits.sum())
    return np.mean(aps), np.mean(full)


def test_hamming_map_at_k_matches_numpy_loop():
    rng = np.random.default_rng(0)
    db_labels = rng.integers(0, 4, 40)
    q_labels = np.concatenate([rng.integers(0, 4, 9), [-1]])
    centres = rng.random((4, 64)) < 0.5
    flip = lambda labels: centres[np.maximum(labels, 0)] ^ (rng.random((len(labels), 64)) < 0.3)
    q_bits, db_bits = flip(q_labels), flip(db_labels)
    db_ids = [f"d{i}" for i in range(40)]
    q_ids = ["d3", "d7"] + [f"q{i}" for i in range(8)]  # two queries are in the database
    relevance, mask = evaluate.class_relevance(q_labels, db_labels, q_ids, db_ids)
    assert not mask[0, 3] and not mask[1, 7] and mask.sum() == 10 * 40 - 2
    got = evaluate.hamming_metrics(
        codes.pack_bits(q_bits), codes.pack_bits(db_bits), relevance, mask
    )
    distances = (q_bits[:, None] != db_bits[None]).sum(-1)
    for k in (5, 10, 20, 100):
        want_k, want_full = numpy_ap_at_k(distances, relevance, mask, k)
        np.testing.assert_allclose(got[f"mAP@{k}"], want_k, rtol=1e-5)
    np.testing.assert_allclose(got["mAP"], want_full, rtol=1e-5)


def test_itq_rotation_is_orthogonal_and_lowers_quantisation_error():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 32)) @ rng.normal(size=(32, 32))
    itq = evaluate.fit_itq(x, 16, iterations=50)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    pca = vt[:16].T
    rotation = np.linalg.lstsq(pca, itq.projection, rcond=None)[0]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(16), atol=1e-4)
    v = (x - x.mean(0)) @ pca
    error = lambda r: np.linalg.norm(np.sign(v @ r) - v @ r)
    random = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    assert error(rotation) < error(random)
    packed = evaluate.itq_codes(itq, x)
    want = codes.pack_bits((x - itq.mean) @ itq.projection > 0)
    np.testing.assert_array_equal(packed, want)
    assert packed.shape == (200, 1)
    with pytest.raises(ValueError, match="ITQ needs"):
        evaluate.fit_itq(x[:8], 16)


def test_bytes_per_video_and_table():
    assert [evaluate.bytes_per_video(b) for b in (64, 128, 256, 512, 48)] == [8, 16, 32, 64, 8]
    row = {"method": "m", "bits": 64, "mAP@5": 0.5, "mAP": 0.25}
    table = markdown_table([row], ks=(5,))
    assert "| m | 64 | 8 | 0.500 | 0.250 |" in table


def test_baseline_rows_on_a_synthetic_set():
    splits = synthetic_videos(num_classes=3, videos_per_class=10, feature_dim=16, seed=1)
    sets = VideoSets(splits["train"], splits["train"], splits["test"])
    rows = baseline_rows(sets, bits=(8, 64), ks=(5,))
    assert [(r["method"], r["bits"]) for r in rows] == [
        ("ITQ (global vector)", 8),  # 64 bits > 16 dims: no ITQ row
        ("sign (global vector)", 16),
        ("float32 global vector", 32 * 16),
    ]
    assert all(0 < r["mAP@5"] <= 1 and 0 < r["mAP"] <= 1 for r in rows)


def test_dml_embeddings_give_sign_and_itq_rows(tmp_path):
    splits = synthetic_videos(num_classes=4, videos_per_class=12, feature_dim=16, noise=1.5, seed=2)
    sets = VideoSets(splits["train"], splits["train"], splits["test"])
    rows = baseline_rows(sets, bits=(8,), ks=(5,), dml_workdir=tmp_path / "dml", dml_steps=60)
    by_method = {r["method"]: r for r in rows}
    assert by_method["ITQ (DML embedding)"]["bits"] == 8
    assert by_method["sign (DML embedding)"]["bits"] == 256  # the embedding's dimensions
    assert (tmp_path / "dml" / "dml_params.npz").is_file()
    # trained on the classes, the embedding ranks the held-out videos better than raw vectors
    assert by_method["float32 DML embedding"]["mAP"] > by_method["float32 global vector"]["mAP"]
