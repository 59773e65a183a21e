"""The "no copy" decision of localisation: Chamfer and contrast against plain loops, segments
kept or dropped by their calibrated probability, fitting on annotated segments, and the whole
pipeline on a no-copy query."""

import json

import numpy as np
import pytest

from ndvr_jax.collection.fusion import Calibration
from ndvr_jax.config_files import load_config_file
from ndvr_jax.pdvr.localize import localize
from ndvr_jax.pdvr.segments import Segment
from ndvr_jax.pdvr.verify import Verifier, chamfer, contrast, copies_of, overlaps_truth
from tests.test_pdvr_localize import CONFIG, benchmark  # noqa: F401 (fixture)


def _loop_chamfer(query, reference):
    cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    return np.mean([max(cos(q, r) for r in reference) for q in query])


def test_contrast_matches_loops():
    rng = np.random.default_rng(0)
    query, source = rng.normal(size=(20, 8)), rng.normal(size=(30, 8))
    others = [rng.normal(size=(n, 8)) for n in (12, 25, 7)]
    segment = Segment(3.0, 11.0, 0, 4.5, 17.2, 1.0)  # fractional source span: frames 4..17
    own = _loop_chamfer(query[3:11], source[4:18])
    assert chamfer(query[3:11], source[4:18]) == pytest.approx(own, abs=1e-5)
    rest = sorted((_loop_chamfer(query[3:11], o) for o in others), reverse=True)
    for background in (1, 2, 5):
        expected = own - np.mean(rest[:background])
        got = contrast(query, segment, source, others, background)
        assert got == pytest.approx(expected, abs=1e-5)
    assert contrast(query, segment, source, [], 5) == pytest.approx(own, abs=1e-5)
    # a span past the end still holds one frame
    assert np.isfinite(contrast(query, Segment(19.0, 25.0, 0, 40.0, 45.0, 1.0), source, others))


def test_verifier_keeps_copies_and_drops_look_alikes():
    rng = np.random.default_rng(1)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    source, other = unit(rng.normal(size=(30, 16))), unit(rng.normal(size=(30, 16)))
    copy = source[5:20] + 0.1 * rng.normal(size=(15, 16))
    alike = 0.5 * (source[:15] + other[:15])  # as close to the other candidate as to the source
    query = np.concatenate([copy, alike])
    database = [source, other]
    verifier = Verifier(Calibration(slope=50.0, intercept=-5.0), threshold=0.5)  # p=.5 at 0.1
    real, false = Segment(0.0, 15.0, 0, 5.0, 20.0, 1.0), Segment(15.0, 30.0, 0, 0.0, 15.0, 1.0)
    assert contrast(query, real, source, [other]) > 0.3
    assert abs(contrast(query, false, source, [other])) < 0.05
    (kept,) = verifier.keep([real, false], query, database, [0, 1])
    p = float(verifier.calibration(contrast(query, real, source, [other])))
    assert kept[:5] == real[:5] and kept.score == pytest.approx(p * real.score, abs=1e-6)
    assert verifier.keep([], query, database, [0, 1]) == []


def test_verifier_configs(tmp_path):
    assert Verifier.from_config({"calibration": ""}) is None
    shipped = Verifier.from_config({"calibration": "shipped", "threshold": 0.7})
    assert shipped.threshold == 0.7 and shipped.calibration.slope > 0
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"slope": 3.0, "intercept": -1.0, "background": 2}))
    own = Verifier.from_config({"calibration": str(path)})
    assert own.calibration == Calibration(3.0, -1.0) and own.background == 2


def test_overlaps_truth():
    truth = [Segment(2.0, 6.0, "a", 0.0, 4.0, 1.0)]
    assert overlaps_truth(Segment(5.0, 9.0, "a", 1.0, 5.0, 0.5), truth)
    assert not overlaps_truth(Segment(5.0, 9.0, "b", 1.0, 5.0, 0.5), truth)
    assert not overlaps_truth(Segment(6.0, 9.0, "a", 1.0, 5.0, 0.5), truth)


def test_fitted_decision_removes_the_no_copy_segment(benchmark, tmp_path):  # noqa: F811
    """With the default weights the aligners mark a segment on the synthetic no-copy query;
    a decision fitted on the run's own annotated segments removes it and keeps every source."""
    root, queries, database = benchmark
    config = load_config_file(CONFIG, "runlocal")
    config.update(output_dir=str(tmp_path / "out"), ground_truth=str(root / "segments.json"))
    config.timelines = False
    config.verify.calibration = ""
    unverified = localize(config, queries, database)["scores"]["all"]
    config.verify.fit_to = str(tmp_path / "fitted.json")
    config.output_dir = str(tmp_path / "verified")
    verified = localize(config, queries, database)["scores"]["all"]
    fitted = json.loads((tmp_path / "fitted.json").read_text())
    assert fitted["slope"] > 0 and fitted["copies"] >= 3 and fitted["segments"] > fitted["copies"]
    assert max(unverified[m]["negative_queries_with_segments"] for m in config.methods) > 0
    for method in config.methods:
        assert verified[method]["negative_queries_with_segments"] == 0, method
        assert verified[method]["sources"]["sources_found"] == 3, method


def test_duplicates_of_the_source_leave_the_background():
    rng = np.random.default_rng(2)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    source = unit(rng.normal(size=(20, 32)))
    twin = unit(source + 0.05 * rng.normal(size=source.shape))  # the database's own copy
    unrelated = [unit(rng.normal(size=(20, 32))) for _ in range(4)]
    query = unit(source + 0.1 * rng.normal(size=source.shape))
    segment = Segment(0.0, 20.0, 0, 0.0, 20.0, 1.0)
    others = [twin, *unrelated]
    flags = copies_of(source, others, background=5, cutoff=0.3)
    assert flags == [True, False, False, False, False]
    plain = contrast(query, segment, source, others)
    deduplicated = contrast(query, segment, source, others, duplicate_cutoff=0.3)
    own = chamfer(query, source)
    expected = own - np.mean([chamfer(query, o) for o in unrelated])
    assert deduplicated == pytest.approx(expected, abs=1e-5) and deduplicated > plain + 0.1
    # Without duplicates among the others, nothing is left out.
    assert contrast(query, segment, source, unrelated, duplicate_cutoff=0.3) == pytest.approx(
        contrast(query, segment, source, unrelated), abs=1e-6
    )
    verifier = Verifier(Calibration(slope=50.0, intercept=-5.0), duplicates=True)
    assert verifier.duplicate_cutoff == pytest.approx(0.1)
    (kept,) = verifier.keep([segment], query, [source, *others], [0, 1, 2, 3, 4, 5])
    assert kept.score == pytest.approx(float(verifier.calibration(deduplicated)), abs=1e-5)


def test_fit_with_duplicates_records_it_and_keeps_the_sources(benchmark, tmp_path):  # noqa: F811
    root, queries, database = benchmark
    config = load_config_file(CONFIG, "runlocal")
    config.update(output_dir=str(tmp_path / "out"), ground_truth=str(root / "segments.json"))
    config.update(timelines=False, methods=("vfrm",))
    config.verify.update(fit_to=str(tmp_path / "fitted.json"), duplicates=True)
    verified = localize(config, queries, database)["scores"]["all"]["vfrm"]
    fitted = json.loads((tmp_path / "fitted.json").read_text())
    assert fitted["duplicates"] is True and fitted["slope"] > 0
    assert verified["sources"]["sources_found"] == 3
    assert verified["negative_queries_with_segments"] == 0


def test_inset_views_let_a_source_shown_small_stand_out():
    rng = np.random.default_rng(3)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    regional = lambda whole, inset: np.stack([whole, inset], axis=1)  # [T, 2, D]
    source, host = unit(rng.normal(size=(16, 32))), unit(rng.normal(size=(16, 32)))
    query = regional(unit(host + 0.3 * source), unit(source + 0.2 * rng.normal(size=source.shape)))
    # the database: the source, and near-copies of the footage the query shows the source inside
    look_alikes = [unit(query[:, 0] + 0.05 * rng.normal(size=host.shape)) for _ in range(5)]
    database = [regional(v, v) for v in (source, *look_alikes)]  # no inset: the frame again
    segment = Segment(0.0, 16.0, 0, 0.0, 16.0, 1.0)
    others = database[1:]
    plain = contrast(query, segment, database[0], others)
    with_views = contrast(query, segment, database[0], others, inset_views=True)
    best = lambda frames, ref: float((frames @ ref.T).max(axis=1).mean())  # whole-frame Chamfer
    inset = query[:, 1]
    expected = best(inset, source) - np.mean([best(inset, o) for o in look_alikes])
    assert with_views == pytest.approx(max(plain, expected), abs=1e-5)
    assert plain < 0.0 < 0.3 < with_views  # the whole query frame resembles the look-alikes
    # whole-frame features have no views: the option changes nothing
    flat = contrast(query[:, 0], segment, source, look_alikes, inset_views=True)
    assert flat == pytest.approx(contrast(query[:, 0], segment, source, look_alikes), abs=1e-6)
    verifier = Verifier(Calibration(slope=50.0, intercept=-2.5), inset_views=True)
    assert len(verifier.keep([segment], query, database, [0, 1, 2, 3, 4, 5])) == 1
    assert not Verifier(Calibration(slope=50.0, intercept=-2.5)).keep(
        [segment], query, database, [0, 1, 2, 3, 4, 5]
    )
