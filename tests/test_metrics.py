"""Metrics against plain per-query numpy references and hand-built rankings with known answers."""

import jax
import numpy as np
import pytest

from ndvr_jax.evaluation import metrics

# ---------------------------------------------------------------------------------------------
# Plain numpy references: one query at a time, ranking by np.argsort(-score, kind="stable").


def ranked_relevance(scores, relevance, mask):
    valid = np.flatnonzero(mask)
    order = valid[np.argsort(-scores[valid], kind="stable")]
    return relevance[order].astype(bool)


def reference_ap(scores, relevance, mask, num_relevant, k=None, denominator="hits"):
    ranked = ranked_relevance(scores, relevance, mask)[:k]
    precisions = [np.sum(ranked[: i + 1]) / (i + 1) for i in np.flatnonzero(ranked)]
    if k is None:
        count = num_relevant
    else:
        count = len(precisions) if denominator == "hits" else min(k, num_relevant)
    return sum(precisions) / count if num_relevant and count else 0.0


def reference_interpolated(scores, relevance, mask, num_relevant):
    ranked = ranked_relevance(scores, relevance, mask)
    hits = np.cumsum(ranked)
    points = [(hits[i] / num_relevant, hits[i] / (i + 1)) for i in np.flatnonzero(ranked)]
    return [
        max([p for r, p in points if r >= level - 1e-12], default=0.0)
        for level in metrics.RECALL_LEVELS
    ]


def reference_micro_ap(scores, relevance, mask, total):
    flat = lambda x: np.asarray(x).reshape(-1)
    return reference_ap(flat(scores), flat(relevance), flat(mask), total)


def random_problem(seed, num_queries=7, size=40, levels=None):
    """Scores with many ties when `levels` is set (integers in [0, levels))."""
    rng = np.random.default_rng(seed)
    if levels is None:
        scores = rng.normal(size=(num_queries, size)).astype(np.float32)
    else:
        scores = rng.integers(0, levels, (num_queries, size)).astype(np.float32)
    relevance = rng.random((num_queries, size)) < 0.25
    mask = rng.random((num_queries, size)) < 0.85
    relevance[0] = False  # a query without relevant items
    return scores, relevance, mask


def references(scores, relevance, mask, num_relevant=None):
    relevance = relevance & mask
    if num_relevant is None:
        num_relevant = relevance.sum(-1)
    rows = list(zip(scores, relevance, mask, num_relevant, strict=True))
    return (
        np.array([reference_ap(*row) for row in rows]),
        np.array([reference_interpolated(*row) for row in rows]),
        num_relevant,
    )


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [None, 3])
def test_random_rankings_match_numpy(levels):
    scores, relevance, mask = random_problem(0, levels=levels)
    ap, interpolated, num_relevant = references(scores, relevance, mask)
    np.testing.assert_allclose(metrics.average_precision(scores, relevance, mask), ap, rtol=1e-5)
    np.testing.assert_allclose(
        metrics.interpolated_precision(scores, relevance, mask), interpolated, rtol=1e-5
    )
    keep = num_relevant > 0
    np.testing.assert_allclose(
        metrics.mean_average_precision(scores, relevance, mask), ap[keep].mean(), rtol=1e-5
    )
    np.testing.assert_allclose(
        metrics.micro_average_precision(scores, relevance, mask),
        reference_micro_ap(scores, relevance & mask, mask, num_relevant.sum()),
        rtol=1e-5,
    )
    for k in (1, 5, 12):
        for denominator in ("hits", "min_k_relevant"):
            expected = [
                reference_ap(*row, k=k, denominator=denominator)
                for row in zip(scores, relevance & mask, mask, num_relevant, strict=True)
            ]
            got = metrics.average_precision_at_k(
                scores, relevance, k, mask, denominator=denominator
            )
            np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_raw_curve_matches_numpy():
    scores, relevance, mask = random_problem(1)
    precision, recall = map(np.asarray, metrics.precision_recall_curve(scores, relevance, mask))
    for q in range(len(scores)):
        ranked = ranked_relevance(scores[q], relevance[q] & mask[q], mask[q])
        hits = np.cumsum(ranked)
        n = len(ranked)
        np.testing.assert_allclose(precision[q, :n], hits / np.arange(1, n + 1), rtol=1e-6)
        np.testing.assert_allclose(recall[q, :n], hits / max(ranked.sum(), 1), rtol=1e-6)
        assert np.isnan(precision[q, n:]).all() and np.isnan(recall[q, n:]).all()


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_single_relevant_item_at_rank_k(k):
    scores = -np.arange(10, dtype=np.float32)[None]  # item i at rank i + 1
    relevance = np.zeros((1, 10), bool)
    relevance[0, k - 1] = True
    np.testing.assert_allclose(metrics.average_precision(scores, relevance), [1 / k], rtol=1e-6)
    np.testing.assert_allclose(metrics.micro_average_precision(scores, relevance), 1 / k, rtol=1e-6)
    np.testing.assert_allclose(metrics.average_precision_at_k(scores, relevance, k), [1 / k])
    if k > 1:
        np.testing.assert_allclose(metrics.average_precision_at_k(scores, relevance, k - 1), [0])


def test_ties_keep_database_order():
    scores = np.zeros((2, 5), np.float32)
    relevance = np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 1]], bool)
    # Ranked as 0, 1, 2, 3, 4: hits at ranks 2 and 4 → (1/2 + 2/4) / 2; at 1 and 5 → (1 + 2/5) / 2.
    np.testing.assert_allclose(metrics.average_precision(scores, relevance), [0.5, 0.7], rtol=1e-6)
    # -0.0 ties with 0.0 and NaN ranks as -inf, i.e. last.
    scores = np.array([[np.nan, -0.0, 0.0, 1.0]], np.float32)
    relevance = np.array([[1, 0, 1, 0]], bool)
    np.testing.assert_allclose(
        metrics.average_precision(scores, relevance), [(1 / 3 + 2 / 4) / 2], rtol=1e-6
    )
    # µAP pools pairs row-major: a tie between rows goes to the earlier row.
    scores = np.ones((2, 2), np.float32)
    relevance = np.array([[0, 0], [0, 1]], bool)
    np.testing.assert_allclose(metrics.micro_average_precision(scores, relevance), 1 / 4)


def test_queries_without_relevant_are_left_out_of_means():
    scores = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]], np.float32)
    relevance = np.array([[0, 1, 0], [0, 0, 0]], bool)
    np.testing.assert_allclose(metrics.average_precision(scores, relevance), [0.5, 0.0])
    np.testing.assert_allclose(metrics.mean_average_precision(scores, relevance), 0.5)
    np.testing.assert_allclose(metrics.interpolated_precision(scores, relevance)[1], 0.0)
    assert float(metrics.mean_over_queries(np.zeros(2), np.zeros(2, int))) == 0.0


def test_mask_and_unretrieved_relevant_items():
    scores = np.array([[4.0, 3.0, 2.0, 1.0]], np.float32)
    relevance = np.array([[1, 0, 1, 1]], bool)
    mask = np.array([[0, 1, 1, 1]], bool)  # e.g. item 0 is the query itself
    np.testing.assert_allclose(
        metrics.average_precision(scores, relevance, mask), [(1 / 2 + 2 / 3) / 2]
    )
    # Three relevant in the database but only two scored: the third counts as never retrieved.
    np.testing.assert_allclose(
        metrics.average_precision(scores, relevance, mask, np.array([3])),
        [(1 / 2 + 2 / 3) / 3],
        rtol=1e-6,
    )


def test_known_interpolated_curve():
    scores = -np.arange(4, dtype=np.float32)[None]
    relevance = np.array([[1, 0, 1, 0]], bool)  # (recall, precision) = (0.5, 1), (1, 2/3)
    expected = np.where(metrics.RECALL_LEVELS <= 0.5, 1.0, 2 / 3)
    np.testing.assert_allclose(metrics.interpolated_precision(scores, relevance)[0], expected)
    # With R = 4 (two relevant never ranked): points (1/4, 1), (1/2, 2/3); recall > 1/2 gets 0.
    capped = metrics.interpolated_precision(scores, relevance, None, np.array([4]))[0]
    levels = metrics.RECALL_LEVELS
    np.testing.assert_allclose(capped, np.select([levels <= 0.25, levels <= 0.5], [1, 2 / 3]))


@pytest.mark.parametrize("chunk_size", [1, 3, 64, None])
def test_chunked_equals_unchunked(chunk_size):
    scores, relevance, mask = random_problem(2, num_queries=8, size=30, levels=4)
    num_relevant = (relevance & mask).sum(-1) + np.arange(8) % 2  # some relevant never scored
    out = metrics.chunked_query_metrics(
        scores, relevance, mask, num_relevant, k=6, chunk_size=chunk_size
    )
    ap, interpolated, _ = references(scores, relevance, mask, num_relevant)
    np.testing.assert_allclose(out.average_precision, ap, rtol=1e-5)
    np.testing.assert_allclose(out.interpolated_precision, interpolated, rtol=1e-5)
    np.testing.assert_array_equal(out.num_relevant, num_relevant)
    np.testing.assert_allclose(
        out.average_precision_at_k,
        metrics.average_precision_at_k(scores, relevance, 6, mask, num_relevant),
        rtol=1e-6,
    )
    micro = metrics.micro_average_precision(scores, relevance, mask, num_relevant)
    chunked = metrics.chunked_micro_average_precision(
        scores, relevance, mask, num_relevant, chunk_size=chunk_size or 8
    )
    np.testing.assert_allclose(chunked, micro, rtol=1e-5)
    expected = reference_micro_ap(scores, relevance & mask, mask, num_relevant.sum())
    np.testing.assert_allclose(chunked, expected, rtol=1e-5)


def test_chunked_micro_ap_with_nan_and_infinite_scores():
    scores, relevance, mask = random_problem(3, num_queries=5, size=12, levels=3)
    scores[1, :4] = np.nan
    scores[2, 2:5] = -np.inf
    scores[3, 0] = -0.0
    relevance[1, 0] = relevance[2, 3] = mask[1, 0] = mask[2, 3] = True
    expected = metrics.micro_average_precision(scores, relevance, mask)
    got = metrics.chunked_micro_average_precision(scores, relevance, mask, chunk_size=2)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert metrics.chunked_micro_average_precision(scores, np.zeros_like(relevance)) == 0.0


def test_metrics_compose_under_jit():
    scores, relevance, mask = random_problem(4)
    fn = jax.jit(lambda s, r, m: metrics.mean_average_precision(s, r, m))
    np.testing.assert_allclose(
        fn(scores, relevance, mask), metrics.mean_average_precision(scores, relevance, mask)
    )


def test_bad_inputs_raise():
    scores, relevance, mask = random_problem(5, num_queries=2, size=6)
    with pytest.raises(ValueError, match="smaller"):
        metrics.chunked_query_metrics(scores, relevance | True, None, np.array([1, 1]))
    with pytest.raises(ValueError, match="must match"):
        metrics.chunked_query_metrics(scores, relevance[:, :3])
    with pytest.raises(ValueError, match=r"\[Q, N\]"):
        metrics.chunked_micro_average_precision(scores[0], relevance[0])
    with pytest.raises(ValueError, match="denominator"):
        metrics.average_precision_at_k(scores, relevance, 2, denominator="all")


def chunked_against_references(scores, relevance, mask=None, num_relevant=None, k=3):
    """The sort-free chunked path against the per-query numpy references (and the pooled µAP)."""
    mask = np.ones(scores.shape, bool) if mask is None else mask
    ap, interpolated, num_relevant = references(scores, relevance, mask, num_relevant)
    for chunk_size in (1, 2, None):
        out = metrics.chunked_query_metrics(
            scores, relevance, mask, num_relevant, k=k, chunk_size=chunk_size
        )
        np.testing.assert_allclose(out.average_precision, ap, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(out.interpolated_precision, interpolated, rtol=1e-5, atol=1e-7)
        expected_at_k = [
            reference_ap(*row, k=k)
            for row in zip(scores, relevance & mask, mask, num_relevant, strict=True)
        ]
        np.testing.assert_allclose(out.average_precision_at_k, expected_at_k, rtol=1e-5)
        expected_micro = (
            reference_micro_ap(scores, relevance & mask, mask, num_relevant.sum())
            if num_relevant.sum()
            else 0.0
        )
        np.testing.assert_allclose(out.micro_average_precision, expected_micro, rtol=1e-5)


def test_chunked_hand_built_ties_nan_negative_zero_and_infinities():
    scores = np.array(
        [
            [np.nan, -0.0, 0.0, 1.0, 0.0, -np.inf, np.inf, 0.0],
            [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],  # all tied: database order
            [np.nan, np.nan, 2.0, -1.0, -1.0, np.nan, -2.0, -0.0],
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],  # no relevant item
        ],
        np.float32,
    )
    relevance = np.array(
        [[1, 0, 1, 0, 1, 1, 0, 1], [0, 1, 0, 0, 1, 0, 0, 1], [1, 0, 0, 1, 1, 1, 0, 0], [0] * 8],
        bool,
    )
    mask = np.ones_like(relevance)
    mask[0, 4] = mask[2, 0] = mask[1, 0] = False  # a masked-out relevant item never counts
    chunked_against_references(scores, relevance, mask)
    chunked_against_references(scores, relevance, mask, (relevance & mask).sum(-1) + 2)


@pytest.mark.parametrize("levels", [None, 2, 5])
def test_chunked_random_and_dense_relevance(levels):
    scores, relevance, mask = random_problem(6, num_queries=6, size=50, levels=levels)
    chunked_against_references(scores, relevance, mask, k=7)
    dense = np.ones_like(relevance)  # every item relevant
    chunked_against_references(scores, dense, mask, k=50)
    chunked_against_references(scores, dense, None, k=1)


@pytest.mark.parametrize("k", [1, 4, 5, 6, 10])
def test_chunked_ap_at_k_boundaries(k):
    scores = -np.arange(10, dtype=np.float32)[None].repeat(2, 0)  # item i at rank i + 1
    relevance = np.zeros((2, 10), bool)
    relevance[0, [0, 4, 5]] = True  # ranks 1, 5, 6
    relevance[1, 9] = True  # rank 10
    chunked_against_references(scores, relevance, k=k)


def test_chunked_wide_score_range_and_crowded_buckets():
    """Scores spanning many magnitudes (coarse lookup buckets) and runs of equal relevant scores."""
    rng = np.random.default_rng(7)
    scores = (rng.standard_normal((5, 300)) * 10.0 ** rng.integers(-30, 30, (5, 300))).astype(
        np.float32
    )
    scores[:, :40] = 1e-3  # a long run of ties, many relevant
    scores[2, 100:110] = np.finfo(np.float32).max
    relevance = rng.random((5, 300)) < 0.3
    chunked_against_references(scores, relevance, rng.random((5, 300)) < 0.9, k=20)


def test_chunked_without_relevant_items():
    scores, relevance, mask = random_problem(8, num_queries=3, size=10)
    out = metrics.chunked_query_metrics(scores, np.zeros_like(relevance), mask, k=2)
    assert not out.average_precision.any() and not out.interpolated_precision.any()
    assert out.micro_average_precision == 0.0
    # Relevant items exist but none is ranked: every AP is 0.
    out = metrics.chunked_query_metrics(scores, relevance, np.zeros_like(mask), np.full(3, 2))
    assert not out.average_precision.any() and out.micro_average_precision == 0.0


@pytest.mark.parametrize("max_width", [0, 1024])
def test_chunked_search_and_direct_count_agree(monkeypatch, max_width):
    """Both ways of placing pairs among the keys, each forced everywhere: binary search in every
    bucket (0), and the direct count even in buckets crowded with ties (1024)."""
    monkeypatch.setattr(metrics, "MAX_BUCKET_WIDTH", max_width)
    rng = np.random.default_rng(11)
    scores = rng.standard_normal((6, 400)).astype(np.float32)
    scores[:, :60] = 0.25  # a long run of tied relevant scores
    scores[1, 200:230] = np.round(scores[1, 200:230], 1)  # ties with non-relevant pairs
    relevance = rng.random((6, 400)) < 0.3
    chunked_against_references(scores, relevance, rng.random((6, 400)) < 0.95, k=25)
    levels, relevance, mask = random_problem(12, num_queries=5, size=80, levels=4)
    chunked_against_references(levels, relevance, mask, k=5)


def test_auto_blocks_bound_pairs_in_multiples_of_eight_rows():
    rows, starts = metrics._query_blocks(100, 225_960, "auto")  # FIVR-200K size
    assert rows == 16 and rows * 225_960 <= metrics.PAIRS_PER_BLOCK and len(starts) == 7
    assert metrics._query_blocks(24, 13_129, "auto")[0] == 24  # CC_WEB_VIDEO: one block
    assert metrics._query_blocks(5, 10**8, "auto")[0] == 5  # never fewer than 8 rows but Q
