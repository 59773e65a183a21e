"""The "no copy" decision of localisation: span Chamfer against a plain loop, segments kept or
dropped by their calibrated probability, and the whole pipeline on a no-copy query."""

import numpy as np
import pytest

from ndvr_jax.collection.fusion import Calibration, save_calibrations
from ndvr_jax.config_files import load_config_file
from ndvr_jax.pdvr.localize import localize
from ndvr_jax.pdvr.segments import Segment
from ndvr_jax.pdvr.verify import Verifier, span_chamfer
from tests.test_pdvr_localize import CONFIG, benchmark  # noqa: F401 (fixture)


def test_span_chamfer_matches_a_loop():
    rng = np.random.default_rng(0)
    query, source = rng.normal(size=(20, 8)), rng.normal(size=(30, 8))
    segment = Segment(3.0, 11.0, 0, 4.5, 17.2, 1.0)  # fractional source span: frames 4..17
    expected = np.mean(
        [
            max(
                query[t] @ source[r] / np.linalg.norm(query[t]) / np.linalg.norm(source[r])
                for r in range(4, 18)
            )
            for t in range(3, 11)
        ]
    )
    assert span_chamfer(query, source, segment) == pytest.approx(expected, abs=1e-5)
    # a span past the end still holds one frame
    assert np.isfinite(span_chamfer(query, source, Segment(19.0, 25.0, 0, 40.0, 45.0, 1.0)))


def test_verifier_keeps_copies_and_drops_look_alikes():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(30, 16))
    copy = source[5:20] + 0.1 * rng.normal(size=(15, 16))
    query = np.concatenate([copy, rng.normal(size=(15, 16))])
    verifier = Verifier(Calibration(slope=20.0, intercept=-16.0), threshold=0.5)  # p=0.5 at 0.8
    real = Segment(0.0, 15.0, 0, 5.0, 20.0, 1.0)
    false = Segment(15.0, 30.0, 0, 0.0, 30.0, 1.0)
    assert span_chamfer(query, source, real) > 0.9 > 0.6 > span_chamfer(query, source, false)
    assert verifier.keep([real, false], query, [source]) == [real]
    assert verifier.keep([], query, [source]) == []
    assert Verifier.from_config("", 0.5) is None
    assert Verifier.from_config("shipped", 0.7).threshold == 0.7


def test_no_copy_query_gets_no_segment_once_verified(benchmark, tmp_path):  # noqa: F811
    """With the default weights the aligners mark a segment on the synthetic no-copy query;
    the calibrated decision removes it and keeps every copied source."""
    root, queries, database = benchmark
    calibration = tmp_path / "calibration.json"
    save_calibrations(
        calibration, {"visual": Calibration(20.0, -16.0), "audio": Calibration(1.0, 0.0)}
    )
    config = load_config_file(CONFIG, "runlocal")
    config.update(output_dir=str(tmp_path / "out"), ground_truth=str(root / "segments.json"))
    config.timelines = False
    unverified = localize(config, queries, database)["scores"]["all"]
    config.verify.calibration = str(calibration)
    config.output_dir = str(tmp_path / "verified")
    verified = localize(config, queries, database)["scores"]["all"]
    assert max(unverified[m]["negative_queries_with_segments"] for m in config.methods) > 0
    for method in config.methods:
        assert verified[method]["negative_queries_with_segments"] == 0, method
        assert verified[method]["sources"]["sources_found"] == 3, method
