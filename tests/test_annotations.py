"""FIVR-style annotation loading, protocol presets and relevance matrices."""

import json

import numpy as np
import pytest

from ndvr_jax.data import annotations
from ndvr_jax.evaluation import retrieval

ANNOTATION = {
    "q1": {"ND": ["a", "q1"], "DS": ["b"], "CS": ["c"], "IS": ["d", "gone"]},
    "q2": {"DS": ["c"], "DA": ["a"]},
    "q3": {"IS": ["b"]},
}
DB = ["q1", "a", "b", "c", "d", "e", "q2"]


def test_load_annotation_round_trip_and_errors(tmp_path):
    path = tmp_path / "annotation.json"
    path.write_text(json.dumps(ANNOTATION))
    assert annotations.load_annotation(path) == ANNOTATION
    for bad in ([], {"q": ["a"]}, {"q": {"ND": "a"}}, {"q": {"ND": [1]}}):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            annotations.load_annotation(path)


def test_protocol_presets():
    assert annotations.get_protocol("DSVR").labels == ("ND", "DS")
    assert annotations.get_protocol("CSVR").labels == ("ND", "DS", "CS")
    assert annotations.get_protocol("ISVR").labels == ("ND", "DS", "CS", "IS")
    assert annotations.get_protocol("DAVR").labels == ("DA",)
    assert annotations.get_protocol("CC_WEB").restrict_to_annotated
    assert not annotations.get_protocol("CC_WEB*").restrict_to_annotated
    custom = annotations.get_protocol(["ND", "IS"])
    assert custom == annotations.Protocol("ND+IS", ("ND", "IS"))
    assert annotations.get_protocol(custom) is custom
    with pytest.raises(ValueError, match="unknown protocol"):
        annotations.get_protocol("XYZ")
    with pytest.raises(ValueError, match="non-empty"):
        annotations.get_protocol([])


def test_relevance_for_protocols():
    with pytest.warns(UserWarning, match="1 annotated videos are not in the database"):
        dsvr = annotations.build_relevance(ANNOTATION, ["q1", "q2"], DB, "DSVR")
    # q1: ND+DS = {a, q1, b}; the query itself is skipped. q2: DS = {c}.
    np.testing.assert_array_equal(dsvr.relevance[0], [0, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(dsvr.relevance[1], [0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(dsvr.mask[0], [0, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(dsvr.mask[1], [1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(dsvr.num_relevant, [2, 1])
    with pytest.warns(UserWarning):
        isvr = annotations.build_relevance(ANNOTATION, ["q1"], DB, "ISVR")
    np.testing.assert_array_equal(isvr.relevance[0], [0, 1, 1, 1, 1, 0, 0])


@pytest.mark.filterwarnings("ignore:.*not in the database", "ignore:.*relevant video")
def test_queries_without_relevant_and_unknown_ids_are_reported():
    with pytest.warns(UserWarning, match="2 queries have no DAVR relevant video"):
        davr = annotations.build_relevance(ANNOTATION, ["q2", "q3", "q1"], DB, "DAVR")
    np.testing.assert_array_equal(davr.num_relevant, [1, 0, 0])
    with pytest.raises(ValueError, match="no annotation"):
        annotations.build_relevance(ANNOTATION, ["q1", "zz"], DB, "DSVR")
    with pytest.raises(ValueError, match="not unique"):
        annotations.build_relevance(ANNOTATION, ["q2"], ["a", "a"], "DSVR")
    with pytest.warns(UserWarning, match="none of the labels"):
        annotations.build_relevance(ANNOTATION, ["q2"], DB, ["nd"])


def test_restricted_protocol_and_exclusions():
    cc_web = {"q": {"E": ["a"], "S": ["b"], "X": ["c"], "-1": ["d"]}}
    db = ["q", "a", "b", "c", "d", "e"]
    restricted = annotations.build_relevance(cc_web, ["q"], db, "CC_WEB")
    np.testing.assert_array_equal(restricted.mask[0], [0, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(restricted.relevance[0], [0, 1, 1, 0, 0, 0])
    whole = annotations.build_relevance(cc_web, ["q"], db, "CC_WEB*", exclude={"q": ["b", "e"]})
    # CC_WEB* ranks the query itself too (not labelled here, so not relevant).
    np.testing.assert_array_equal(whole.mask[0], [1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(whole.relevance[0], [0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(whole.num_relevant, [1])


def test_query_absent_from_the_database_ranks_everything():
    annotation = {"outside": {"ND": ["a", "c"], "DS": ["zz"]}}
    with pytest.warns(UserWarning, match="1 annotated videos are not in the database"):
        result = annotations.build_relevance(annotation, ["outside"], ["a", "b", "c"], "DSVR")
    np.testing.assert_array_equal(result.mask, [[1, 1, 1]])
    np.testing.assert_array_equal(result.relevance, [[1, 0, 1]])
    np.testing.assert_array_equal(result.num_relevant, [2])


def _original_cc_web_ap(similarity, labels, excluded=(), all_videos=False, positives="ESLMV"):
    """AP of one query set as the original CC_WEB_VIDEO evaluation loop computes it."""
    hits, ranked, total = 0, 0, 0.0
    for video in sorted(similarity, key=lambda v: -similarity[v]):
        if (all_videos or video in labels) and video not in excluded:
            ranked += 1
            if video in labels and labels[video] in positives:
                hits += 1
                total += hits / ranked
    n = sum(1 for v, label in labels.items() if label in positives and v not in excluded)
    return total / n


@pytest.mark.parametrize("protocol", ["CC_WEB", "CC_WEB*"])
@pytest.mark.parametrize("excluded", [(), ("b",)])
def test_cc_web_ranks_the_query_like_the_original(protocol, excluded):
    labels = {"q": "E", "a": "S", "b": "V", "c": "X", "d": "-1"}
    annotation = {"q": {}}
    for video, label in labels.items():
        annotation["q"].setdefault(label, []).append(video)
    similarity = {"q": 1.0, "c": 0.9, "a": 0.8, "e": 0.7, "b": 0.6, "d": 0.1}
    db = list(similarity)
    relevance = annotations.build_relevance(annotation, ["q"], db, protocol, {"q": excluded})
    assert relevance.mask[0, 0] and relevance.relevance[0, 0]  # the query is a hit at rank 1
    result = retrieval.evaluate({"q": similarity}, annotation, protocol, exclude={"q": excluded})
    want = _original_cc_web_ap(similarity, labels, excluded, all_videos=protocol == "CC_WEB*")
    assert result["mAP"] == pytest.approx(want)
    # FIVR-style protocols still skip the query.
    fivr = annotations.build_relevance(annotation, ["q"], db, ["E", "S", "V"])
    assert not fivr.mask[0, 0]
