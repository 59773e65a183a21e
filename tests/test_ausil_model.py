"""Tests for ndvr_jax.ausil.model: numerics against numpy, padding/masking, whitening, losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from numpy.lib.stride_tricks import sliding_window_view

from ndvr_jax.ausil import model as ausil

DIMS = 24


# ----- plain numpy reference of one unpadded pair -------------------------------------------


def np_conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Valid convolution of `[H, W, C]` with `[kh, kw, C, O]`."""
    kh, kw = kernel.shape[:2]
    windows = sliding_window_view(x, (kh, kw), axis=(0, 1))  # [H', W', C, kh, kw]
    return np.einsum("ijcab,abco->ijo", windows, kernel) + bias


def np_pool(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w]
    return x.reshape(h // 2, 2, w // 2, 2, -1).max(axis=(1, 3))


def np_pad(x: np.ndarray) -> np.ndarray:
    return np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="symmetric")


def np_params(model: ausil.AuSiL) -> dict:
    return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model)))


def np_embed(params: dict, x: np.ndarray) -> np.ndarray:
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    x = (x - params["pca_mean"]) @ params["pca_weights"]
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return x * (x @ params["attention"] / 2 + 0.5)[:, None]


def np_comparator(params: dict, sim: np.ndarray) -> np.ndarray:
    c = params["comparator"]
    relu = lambda v: np.maximum(v, 0)
    x = sim[:, :, None]
    x = np_pool(relu(np_conv(np_pad(x), c["conv1"]["kernel"], c["conv1"]["bias"])))
    x = np_pool(relu(np_conv(np_pad(x), c["conv2"]["kernel"], c["conv2"]["bias"])))
    x = relu(np_conv(np_pad(x), c["conv3"]["kernel"], c["conv3"]["bias"]))
    return np_conv(x, c["fconv"]["kernel"], c["fconv"]["bias"])[:, :, 0]


def np_similarity(params: dict, q: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
    raw = np_comparator(params, np_embed(params, q) @ np_embed(params, p).T)
    return float(np.clip(raw, -1, 1).max(axis=1).mean()), raw


# ----- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> ausil.AuSiL:
    """Random weights set from numpy (random init op by op takes seconds on a busy CPU)."""
    rng = np.random.default_rng(0)
    graphdef, state = nnx.split(nnx.eval_shape(lambda: ausil.AuSiL(dims=DIMS, rngs=nnx.Rngs(0))))
    fan_in = lambda shape: np.prod(shape[:-1]) if len(shape) > 1 else shape[0]
    state = jax.tree.map(
        lambda v: jnp.asarray(rng.normal(size=v.shape) / np.sqrt(fan_in(v.shape)), jnp.float32),
        state,
    )
    m = nnx.merge(graphdef, state)
    m.set_whitening(ausil.fit_pca_whitening(rng.normal(size=(200, DIMS)) + 0.3))
    return m


forward = nnx.jit(lambda model, q, q_len, p, p_len: model(q, q_len, p, p_len))


def video(rng: np.random.Generator, n: int, base: np.ndarray | None = None) -> np.ndarray:
    """Segment features; near-copies of `base` when given (so the similarity is non-trivial)."""
    if base is None:
        return rng.normal(size=(n, DIMS)).astype(np.float32)
    return (base[:n] + 0.3 * rng.normal(size=(n, DIMS))).astype(np.float32)


# ----- tests ----------------------------------------------------------------------------------


def test_comparator_and_chamfer_match_numpy(model):
    rng = np.random.default_rng(1)
    params = np_params(model)
    for n, m in [(13, 22), (17, 11)]:
        q = video(rng, n)
        p = video(rng, m, q) if m <= n else video(rng, m)
        out = forward(model, q[None], jnp.array([n]), p[None], jnp.array([m]))
        expected, raw = np_similarity(params, q, p)
        assert out.raw.shape == (1, n // 4, m // 4) == (1, *raw.shape)
        np.testing.assert_allclose(out.raw[0], raw, atol=2e-5)
        np.testing.assert_allclose(out.similarity[0], expected, atol=2e-5)


def test_padding_gives_identical_results(model):
    rng = np.random.default_rng(2)
    params = np_params(model)
    q_lens, p_lens = [10, 13, 16, 31, 12], [27, 10, 19, 14, 32]
    queries = [video(rng, n) for n in q_lens]
    database = [
        video(rng, m, q) if m <= len(q) else video(rng, m)
        for q, m in zip(queries, p_lens, strict=True)
    ]
    q, q_len = ausil.pack_videos(queries, length=32)
    p, p_len = ausil.pack_videos(database, length=32)
    # Padding may hold anything finite: fill it with large garbage.
    for packed, lengths in ((q, q_len), (p, p_len)):
        for i, n in enumerate(lengths):
            packed[i, n:] = 1e3 * rng.normal(size=packed[i, n:].shape)
    batched = forward(model, q, q_len, p, p_len)
    for i in range(len(queries)):
        expected, raw = np_similarity(params, queries[i], database[i])
        np.testing.assert_allclose(batched.similarity[i], expected, atol=2e-5)
        rows, cols = batched.rows[i], batched.cols[i]
        assert (rows, cols) == raw.shape
        np.testing.assert_allclose(batched.raw[i, :rows, :cols], raw, atol=2e-5)


def test_micro_batches_give_the_same_pairs_and_gradients(model):
    rng = np.random.default_rng(10)
    q, q_len = ausil.pack_videos([video(rng, n) for n in (10, 16, 12, 14, 11)], length=16)
    p, p_len = ausil.pack_videos([video(rng, m) for m in (13, 10, 16, 12, 15)], length=16)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def run(params, q, q_len, p, p_len, micro_batch):
        m = nnx.merge(graphdef, params, rest)
        return m.compare(m.embed(q), q_len, m.embed(p), p_len, micro_batch=micro_batch)

    run = jax.jit(run, static_argnames="micro_batch")
    loss = jax.jit(
        jax.grad(lambda params, *rest: jnp.sum(run(params, *rest).similarity)),
        static_argnums=5,
    )
    whole = run(params, q, q_len, p, p_len, 0)
    expected_grad = loss(params, q, q_len, p, p_len, 0)
    for micro_batch in (2, 3):  # 5 pairs: the last chunk is padded
        chunked = run(params, q, q_len, p, p_len, micro_batch)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), chunked, whole)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
            loss(params, q, q_len, p, p_len, micro_batch),
            expected_grad,
        )
    one_query = run(params, q[0], q_len[0], p, p_len, 2).similarity
    expected = run(params, q[0], q_len[0], p, p_len, 0).similarity
    np.testing.assert_allclose(one_query, expected, atol=1e-6)


def test_comparator_on_a_padded_matrix(model):
    # The comparator called on a similarity matrix (padding done on the matrix, not on segments).
    rng = np.random.default_rng(9)
    params = np_params(model)
    sizes = [(10, 17), (16, 12), (13, 16)]
    sim = 1e3 * rng.normal(size=(len(sizes), 16, 17)).astype(np.float32)
    for i, (n, m) in enumerate(sizes):
        sim[i, :n, :m] = rng.uniform(-1, 1, size=(n, m))
    rows, cols = jnp.array([n for n, _ in sizes]), jnp.array([m for _, m in sizes])
    raw, out_rows, out_cols = nnx.jit(lambda c, s, r, k: c(s, r, k))(
        model.comparator, sim, rows, cols
    )
    for i, (n, m) in enumerate(sizes):
        expected = np_comparator(params, sim[i, :n, :m].astype(np.float64))
        assert (out_rows[i], out_cols[i]) == expected.shape
        np.testing.assert_allclose(raw[i, : n // 4, : m // 4], expected, atol=2e-5)


def test_one_compilation_serves_all_lengths(model):
    rng = np.random.default_rng(8)
    graphdef, state = nnx.split(model)
    traces = []

    @jax.jit
    def similarity(state, q, q_len, p, p_len):
        traces.append(q.shape)
        return nnx.merge(graphdef, state)(q, q_len, p, p_len).similarity

    for n, m in [(10, 16), (16, 11), (13, 13)]:
        q, q_len = ausil.pack_videos([video(rng, n)], length=16)
        p, p_len = ausil.pack_videos([video(rng, m)], length=16)
        similarity(state, q, q_len, p, p_len)
    assert len(traces) == 1


def test_gradients_identical_with_padding(model):
    rng = np.random.default_rng(3)
    q, p = video(rng, 10), video(rng, 13)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, q, q_len, p, p_len):
        out = nnx.merge(graphdef, params, rest)(q, q_len, p, p_len)
        reg = ausil.similarity_regularisation(out.raw, out.rows, out.cols)
        return jnp.sum(out.similarity) + 0.1 * reg * len(q_len)

    grad = jax.jit(jax.grad(loss))
    expected = grad(params, q[None], jnp.array([10]), p[None], jnp.array([13]))
    # The same pair twice, padded to 16 with different garbage: twice the gradient.
    qs, q_len = ausil.pack_videos([q, q], length=16)
    ps, p_len = ausil.pack_videos([p, p], length=16)
    qs[0, 10:], qs[1, 10:], ps[1, 13:] = 50.0, -7.0, rng.normal(size=(3, DIMS))
    together = grad(params, qs, q_len, ps, p_len)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, 2 * b, rtol=1e-4, atol=1e-6), together, expected
    )


def test_one_query_against_many(model):
    rng = np.random.default_rng(4)
    query = video(rng, 12)
    database = [video(rng, m) for m in (10, 14, 20)]
    p, p_len = ausil.pack_videos(database)
    q, q_len = ausil.pack_videos([query] * 3)
    embed = ausil.embed_fn(model)
    compare = ausil.similarity_fn(model)
    shared = compare(embed(q[0]), jnp.int32(q_len[0]), embed(p), p_len)
    broadcast = compare(embed(q), q_len, embed(p), p_len)
    np.testing.assert_allclose(shared, broadcast, atol=1e-6)


def test_short_videos_are_repeated(model):
    rng = np.random.default_rng(5)
    short = video(rng, 3)
    repeated = ausil.repeat_to_min_length(short)
    assert repeated.shape[0] == 12
    np.testing.assert_array_equal(repeated, np.concatenate([short] * 4))
    assert [ausil.repeat_to_min_length(np.zeros((n, 2))).shape[0] for n in (1, 5, 9, 10, 11)] == [
        16,
        10,
        18,
        10,
        11,
    ]
    with pytest.raises(ValueError, match="no segments"):
        ausil.repeat_to_min_length(np.zeros((0, DIMS)))
    # pack_videos repeats, so a 3-segment pair compares as its 12-segment repetition.
    other = video(rng, 4)
    q, q_len = ausil.pack_videos([short])
    p, p_len = ausil.pack_videos([other])
    assert (q_len[0], p_len[0], q.shape[1]) == (12, 16, 16)
    out = forward(model, q, q_len, p, p_len)
    expected, _ = np_similarity(np_params(model), repeated, ausil.repeat_to_min_length(other))
    np.testing.assert_allclose(out.similarity[0], expected, atol=2e-5)


def test_bucket_length_and_pack_errors():
    assert [ausil.bucket_length(n) for n in (1, 10, 16, 17, 100)] == [16, 16, 16, 32, 128]
    with pytest.raises(ValueError, match="more than length"):
        ausil.pack_videos([np.zeros((20, 3))], length=16)


def test_pca_whitening_whitens_and_round_trips(tmp_path):
    rng = np.random.default_rng(6)
    mixing = rng.normal(size=(8, 8)) * np.linspace(0.1, 3.0, 8)
    features = rng.normal(size=(4000, 8)) @ mixing + 5.0
    pca = ausil.fit_pca_whitening(features, eps=1e-9, chunk=1000)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    white = pca.apply(unit)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(8), atol=1e-3)
    np.testing.assert_allclose(white.mean(axis=0), 0.0, atol=1e-3)
    # Components come in decreasing variance; fewer can be kept.
    reduced = ausil.fit_pca_whitening(features, n_components=3, eps=1e-9)  # one chunk
    assert reduced.weights.shape == (8, 3)
    np.testing.assert_allclose(np.abs(reduced.weights), np.abs(pca.weights[:, :3]), rtol=1e-4)
    pca.save(tmp_path / "pca.npz")
    loaded = ausil.PCAWhitening.load(tmp_path / "pca.npz")
    np.testing.assert_array_equal(loaded.weights, pca.weights)
    np.testing.assert_array_equal(loaded.mean, pca.mean)
    small = nnx.eval_shape(lambda: ausil.AuSiL(dims=8, pca_dims=4, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="whitening"):
        small.set_whitening(pca)


def test_embedding_matches_numpy_and_whitening_is_not_a_param(model):
    x = np.random.default_rng(7).normal(size=(5, DIMS)).astype(np.float32)
    np.testing.assert_allclose(
        model.embed(jnp.asarray(x)), np_embed(np_params(model), x), atol=1e-5
    )
    params = nnx.state(model, nnx.Param)
    assert "pca_weights" not in params and "attention" in params


def test_triplet_loss():
    pos, neg = jnp.array([0.9, 0.2, 0.5]), jnp.array([0.1, 0.6, 0.1])
    # max(0, n − p + 0.5): 0, 0.9, 0.1
    np.testing.assert_allclose(ausil.ausil_triplet_loss(pos, neg), 1.0 / 3, rtol=1e-6)


def test_similarity_regularisation_counts_only_valid_cells():
    raw = jnp.array([[[1.5, -3.0, 9.0], [0.2, -1.0, 9.0], [9.0, 9.0, 9.0]]])
    # Valid 2×2 block: excess 0.5 + 2.0 + 0 + 0; the 9s are padding.
    value = ausil.similarity_regularisation(raw, jnp.array([2]), jnp.array([2]))
    np.testing.assert_allclose(value, 2.5)
