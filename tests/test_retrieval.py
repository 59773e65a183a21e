"""`evaluate` against a plain FIVR-style evaluation loop, and the comparison table."""

import numpy as np
import pytest

from ndvr_jax import search
from ndvr_jax.evaluation import metrics, retrieval

LABELS = {"DSVR": ("ND", "DS"), "ISVR": ("ND", "DS", "CS", "IS")}


def fivr_reference(similarities, annotation, labels, db_ids):
    """Per-query AP as in the FIVR-200K evaluation script, written as a plain loop; µAP pools the
    pairs of every annotated query (those without relevant videos add negatives only)."""
    database, aps, pooled, total = set(db_ids), {}, [], 0
    for query, results in similarities.items():
        if query not in annotation:
            continue
        truth = {v for label in labels for v in annotation[query].get(label, [])}
        truth = (truth & database) - {query}
        found = rank = total_precision = 0
        for video in sorted(results, key=lambda v: results[v], reverse=True):
            if video != query and video in database:
                rank += 1
                pooled.append((-results[video], query, db_ids.index(video), video in truth))
                if video in truth:
                    found += 1
                    total_precision += found / rank
        if truth:
            aps[query] = total_precision / len(truth)
            total += len(truth)
    pooled.sort(key=lambda p: (p[0], list(similarities).index(p[1]), p[2]))
    hits = np.cumsum([p[3] for p in pooled])
    micro = sum(hits[i] / (i + 1) for i, p in enumerate(pooled) if p[3]) / total
    return aps, micro


def make_problem(seed=0, num_db=40):
    rng = np.random.default_rng(seed)
    db_ids = [f"v{i:02d}" for i in range(num_db)]
    queries = ["v00", "v01", "v02", "v03", "v04"]
    annotation = {
        q: {label: list(rng.choice(db_ids, 4, replace=False)) for label in ("ND", "DS", "CS", "IS")}
        for q in queries
    }
    annotation["v04"] = {"IS": ["v10"]}  # no DSVR relevant video
    annotation["q_missing"] = {"ND": ["v05"]}  # annotated, but without results
    annotation["v00"]["ND"].append("v00")  # the query itself is skipped
    scores = rng.random((len(queries) + 1, num_db)).astype(np.float32)
    similarities = {
        q: {v: float(s) for v, s in zip(db_ids, row, strict=True)}
        for q, row in zip([*queries, "v39"], scores, strict=True)  # v39 is not annotated
    }
    return similarities, annotation, db_ids


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("protocol", ["DSVR", "ISVR"])
def test_evaluate_matches_fivr_loop(protocol):
    similarities, annotation, db_ids = make_problem()
    result = retrieval.evaluate(similarities, annotation, protocol, k=5)
    aps, micro = fivr_reference(similarities, annotation, LABELS[protocol], db_ids)
    assert result["AP"].keys() == aps.keys()
    for query, ap in aps.items():
        assert result["AP"][query] == pytest.approx(ap, rel=1e-5)
    assert result["mAP"] == pytest.approx(np.mean(list(aps.values())), rel=1e-5)
    assert result["uAP"] == pytest.approx(micro, rel=1e-5)
    assert result["num_queries"] == len(aps)
    assert result["missing_queries"] == ["q_missing"]
    assert 0 <= result["mAP@5"] <= 1
    recall, precision = (np.array(result["pr_curve"][key]) for key in ("recall", "precision"))
    np.testing.assert_allclose(recall, metrics.RECALL_LEVELS)
    assert np.all(np.diff(precision) <= 1e-7) and 0 < precision[0] <= 1


def test_warnings_for_missing_and_unannotated_queries():
    similarities, annotation, db_ids = make_problem()
    with pytest.warns(UserWarning) as record:
        result = retrieval.evaluate(similarities, annotation, "DSVR")
    messages = " | ".join(str(w.message) for w in record)
    assert "1 result queries are not annotated" in messages
    assert "1 annotated queries are missing" in messages
    assert "no DSVR relevant video" in messages
    assert result["queries_without_relevant"] == ["v04"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_top_k_results_count_unscored_relevant_as_misses():
    similarities, annotation, db_ids = make_problem(seed=1)
    top = {
        q: dict(sorted(row.items(), key=lambda item: -item[1])[:6])
        for q, row in similarities.items()
    }
    result = retrieval.evaluate(top, annotation, "ISVR", db_ids=db_ids)
    aps, micro = fivr_reference(top, annotation, LABELS["ISVR"], db_ids)
    for query, ap in aps.items():
        assert result["AP"][query] == pytest.approx(ap, rel=1e-5)
    assert result["uAP"] == pytest.approx(micro, rel=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_matrix_input_equals_dict_input():
    similarities, annotation, db_ids = make_problem(seed=2)
    query_ids = list(similarities)
    matrix = np.array([[similarities[q][v] for v in db_ids] for q in query_ids])
    from_dict = retrieval.evaluate(similarities, annotation, "DSVR", db_ids=db_ids)
    from_matrix = retrieval.evaluate((matrix, query_ids, db_ids), annotation, "DSVR")
    assert from_matrix == from_dict
    with pytest.raises(ValueError, match="db_ids"):
        retrieval.evaluate((matrix, query_ids, db_ids), annotation, db_ids=db_ids)
    with pytest.raises(ValueError, match="does not match"):
        retrieval.evaluate((matrix[:, 1:], query_ids, db_ids), annotation)


@pytest.mark.filterwarnings("ignore:.*queries")
def test_results_outside_the_database_are_ignored():
    similarities, annotation, db_ids = make_problem(seed=3)
    similarities["v01"]["stranger"] = 2.0
    with pytest.warns(UserWarning, match="1 results name videos outside the database"):
        result = retrieval.evaluate(similarities, annotation, "DSVR", db_ids=db_ids)
    del similarities["v01"]["stranger"]
    aps, _ = fivr_reference(similarities, annotation, LABELS["DSVR"], db_ids)
    assert result["AP"]["v01"] == pytest.approx(aps["v01"], rel=1e-5)
    with pytest.raises(ValueError, match="no annotated query"):
        retrieval.evaluate({"x": {"v01": 1.0}}, annotation)


def test_format_table():
    results = {
        "baseline": {"mAP": 0.81234, "uAP": 0.7, "DSVR": {"mAP": 0.5}},
        "DML": {"mAP": 0.9, "uAP": 0.85},
    }
    table = retrieval.format_table(results, ["mAP", "uAP", "DSVR/mAP"])
    lines = table.splitlines()
    assert lines[0].split() == ["system", "mAP", "uAP", "DSVR/mAP"]
    assert lines[2].split() == ["baseline", "0.8123", "0.7000", "0.5000"]
    assert lines[3].split() == ["DML", "0.9000", "0.8500", "-"]
    assert len({len(line) for line in lines}) == 1


def test_search_json_evaluate_end_to_end(tmp_path):
    db_ids = ["q0", "q1", "a", "b", "c", "d"]
    features = np.eye(6, dtype=np.float32) + 0.01
    features[2] = features[0] + 0.1  # a near-duplicate of q0
    features[5] = features[1] + 0.2  # d near-duplicate of q1
    result = search.search_top_k(features[:2], features, 3, metric="distance")
    path = tmp_path / "similarities.json"
    search.save_similarities(path, search.top_k_to_dict(result, db_ids[:2], db_ids))
    annotation = {"q0": {"ND": ["a"]}, "q1": {"ND": ["d"], "DS": ["b"]}}
    out = retrieval.evaluate(search.load_similarities(path), annotation, "DSVR", db_ids=db_ids)
    # q0 finds a first; q1 finds d first, and b is not in its top 3: AP = (1 + 0) / 2.
    assert out["AP"] == {"q0": 1.0, "q1": 0.5}
    assert out["mAP"] == pytest.approx(0.75)
