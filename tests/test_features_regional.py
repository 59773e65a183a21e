"""Regional extraction: `[T, R, D]` features, region 0 the whole frame, settings in the sidecar."""

from __future__ import annotations

import json

import numpy as np

from configs.extract import get_config
from ndvr_jax.features.visual import extract_visual
from tests.media import write_test_video


def test_regions_store_whole_frame_first_and_a_changed_setting_re_extracts(tmp_path) -> None:
    write_test_video(tmp_path / "v.mp4", seconds=2)
    video_list = tmp_path / "videos.txt"
    video_list.write_text(f"v\t{tmp_path / 'v.mp4'}\n")
    config = get_config("runlocal")
    config.num_workers = 1
    out = tmp_path / "features"

    config.regions, config.zoom = 2, 1  # whole frame, 2x2 cells, one crop (the frame itself)
    extract_visual(config, str(video_list), str(out))
    regional = np.load(out / "v.npy")
    assert regional.shape == (2, 1 + 4 + 1, 2048)
    meta = json.loads((out / "v.json").read_text())
    assert meta["regions"] == 2 and meta["zoom"] == 1
    np.testing.assert_allclose(regional[:, -1], regional[:, 0], atol=2e-3)  # zoom 1: no crop

    config.regions, config.zoom = 0, 0
    summary = extract_visual(config, str(video_list), str(out))
    assert "v" in summary.stale and "regions" in summary.stale["v"]
    whole = np.load(out / "v.npy")
    assert whole.shape == (2, 2048)
    assert json.loads((out / "v.json").read_text())["regions"] is None
    np.testing.assert_allclose(whole, regional[:, 0], atol=1e-4)
    again = extract_visual(config, str(video_list), str(out))
    assert again.skipped == ["v"]
