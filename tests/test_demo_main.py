"""The main job on the tiny demo benchmark, end to end."""

import importlib.util
import json
from pathlib import Path

from ndvr_jax import demo

REPO = Path(__file__).resolve().parents[1]


def load_config(name: str, arg: str = ""):
    spec = importlib.util.spec_from_file_location(name, REPO / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_demo_runs_end_to_end_and_retrieves_copies(tmp_path):
    config = load_config("demo", "runlocal")
    config.data_dir = str(tmp_path / "data")
    results = demo.run(config, str(tmp_path / "run"))
    for system in ("global", "chamfer"):
        assert 0.5 < results[system]["DSVR"]["mAP"] <= 1.0
    run = tmp_path / "run"
    assert "DSVR/mAP" in (run / "results.md").read_text()
    assert (run / "pr_curves.png").stat().st_size > 1000
    similarities = json.loads((run / "similarities_chamfer.json").read_text())
    queries = [line.split()[0] for line in (tmp_path / "data/queries.txt").read_text().splitlines()]
    assert sorted(similarities) == sorted(queries)
    rerun = demo.run(config, str(tmp_path / "run"))  # resumes: nothing to rebuild or extract
    assert rerun["chamfer"]["DSVR"]["mAP"] == results["chamfer"]["DSVR"]["mAP"]
