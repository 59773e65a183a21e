"""The main job on the tiny demo benchmark, end to end: visual baselines, DML, AuSiL and the
collection search."""

import json
from pathlib import Path

from ndvr_jax.config_files import load_config_file
from ndvr_jax.jobs import demo

REPO = Path(__file__).resolve().parents[1]


def test_demo_runs_end_to_end_and_retrieves_copies(tmp_path):
    config = load_config_file(REPO / "configs" / "demo.py", "runlocal")
    config.data_dir = str(tmp_path / "data")
    run = tmp_path / "run"
    results = demo.run(config, str(run))
    for system in ("global", "chamfer", "DML shipped", "DML early", "DML late"):
        assert 0.5 < results[system]["DSVR"]["mAP"] <= 1.0
        assert set(results[system]) == set(config.protocols)
    for system in ("AuSiL untrained", "AuSiL trained", "AuSiL shipped + landmarks"):
        assert list(results[system]) == ["DAVR"]
        assert 0.0 < results[system]["DAVR"]["mAP"] <= 1.0
    report = (run / "results.md").read_text()
    assert "DSVR/mAP" in report and "DAVR/mAP" in report and "AuSiL trained" in report
    assert json.loads((run / "results.json").read_text()).keys() == results.keys()
    collection = json.loads((run / "collection" / "collection.json").read_text())
    assert 0.3 < collection["mAP"]["fused corroborate, DSVR"] <= 1.0
    assert set(collection["calibration_held_out"]) == {"visual", "audio"}
    assert (run / "collection" / "report.html").stat().st_size > 1000
    assert "Collection search" in report
    assert "| compilations | VFRM |" in report and (run / "localize" / "matches_vfrm.csv").is_file()
    assert "Audio copy localisation" in report and "| all | LANDMARKS |" in report
    assert (run / "localize_audio" / "matches_landmarks.csv").is_file()
    for plot in ("pr_curves.png", "pr_davr.png", "similarity_chamfer.png"):
        assert (run / plot).stat().st_size > 1000
    similarities = json.loads((run / "similarities_chamfer.json").read_text())
    queries = [line.split()[0] for line in (tmp_path / "data/queries.txt").read_text().splitlines()]
    assert sorted(similarities) == sorted(queries)
    shipped = json.loads((run / "similarities_DML_shipped.json").read_text())  # no space in names
    assert sorted(shipped) == sorted(queries)
    rerun = demo.run(config, str(run))  # resumes: nothing to rebuild, extract or train again
    for system, by_protocol in results.items():
        for protocol, result in by_protocol.items():
            assert rerun[system][protocol]["mAP"] == result["mAP"], (system, protocol)
