"""The main job's localisation step on the tiny demo benchmark: its own denser features, the
three methods' outputs, the report table and a compilation's timeline."""

import json
from pathlib import Path

import numpy as np

from ndvr_jax.config_files import load_config_file
from ndvr_jax.data.demo import build_demo_benchmark
from ndvr_jax.pdvr.demo import localize_demo_run
from ndvr_jax.pdvr.evaluate import markdown_table

REPO = Path(__file__).resolve().parents[1]


def test_localisation_step_on_the_tiny_demo(tmp_path):
    data = Path(build_demo_benchmark(tmp_path / "data", seed=0, size="tiny", verbose=False)).parent
    config = load_config_file(REPO / "configs" / "demo.py", "runlocal")
    work = tmp_path / "localize"
    found = localize_demo_run(config.localize, config.extract, data, work)
    times = json.loads((work / "features" / "db00.json").read_text())["timestamps"]
    assert np.allclose(np.diff(times), 1.0 / config.localize.fps, atol=1e-3)  # a 12 fps video
    for method in ("vfrm", "tn", "dp"):
        assert (work / f"matches_{method}.csv").is_file()
        assert (work / f"boxes_{method}.json").is_file()
    rows = found["table"].splitlines()
    assert len(rows) == 2 + 3 * len(found["scores"]) and rows[2].startswith("| all | VFRM |")
    vfrm = found["scores"]["all"]["vfrm"]
    assert vfrm["sources"]["sources_found"] >= vfrm["sources"]["sources_annotated"] - 1
    assert 0.3 < vfrm["vcsl"]["f1"] <= 1.0
    timeline = Path(found["timeline"])
    assert timeline.parent == work / "timelines" and timeline.stat().st_size > 1000
    truth = json.loads((data / "segments.json").read_text())
    sources = {r["source"] for r in truth if r["query"] == timeline.stem}
    assert len(sources) >= 2  # the timeline shown is a compilation's


def test_markdown_table_rows():
    scores = {
        "all": {
            "tn": {
                "vcsl": {"f1": 0.5, "precision": 0.25, "recall": 1.0},
                "vsc_ap": 0.75,
                "sources": {"sources_found": 2, "sources_annotated": 3},
                "negative_queries_with_segments": 1,
                "negative_queries": 4,
            }
        }
    }
    assert markdown_table(scores).splitlines()[2] == (
        "| all | TN | 0.500 | 0.250 | 1.000 | 0.750 | 2/3 | 1/4 |"
    )
