"""The dev set (`configs/devset.py`): built like the test set from the `train` sources only."""

from __future__ import annotations

import dataclasses

import pytest

from ndvr_jax.config_files import load_config_file
from ndvr_jax.data.corpus.collect import collect
from ndvr_jax.data.corpus.pool import MediaPool
from ndvr_jax.data.corpus.sources import SOURCES, for_role, is_reserved
from ndvr_jax.data.corpus.testset import make_plan
from tests.test_corpus import make_fake_cache, no_network  # noqa: F401 (fixture)
from tests.test_testset import TINY


def _media_of_plan(cache, sources, role: str, seed: int) -> tuple[set[str], set[str]]:
    """(media names the plan's videos use, media names of `role`'s packages)."""
    media = collect(role, cache, sources, verbose=False)
    videos = make_plan(MediaPool(media), dataclasses.replace(TINY, role=role), seed)
    used = {name for v in videos.values() for name in v.get("media", ())}
    used |= {
        piece["name"]
        for v in videos.values()
        for track in v["audio"] or ()
        for piece in track.get("pieces", ())
    }
    files = {f["name"] for f in media["files"]}
    return {name.split("#")[0] for name in used}, {name.split("#")[0] for name in files}


def test_dev_plan_uses_train_media_only_and_is_disjoint_from_test(tmp_path, no_network):  # noqa: F811
    cache = tmp_path / "cache"
    sources = make_fake_cache(cache)
    dev_used, train_media = _media_of_plan(cache, sources, "train", seed=14)
    test_used, test_media = _media_of_plan(cache, sources, "test", seed=0)
    assert dev_used and test_used
    assert dev_used <= train_media
    assert test_used <= test_media
    assert not dev_used & test_used
    assert not train_media & test_media
    packages = {s.package for s in sources if s.role == "train"}
    assert {name.split("/")[0] for name in dev_used} <= packages


def test_devset_config_draws_from_train_with_its_own_settings():
    dev = load_config_file("configs/devset.py")
    test = load_config_file("configs/testset.py")
    assert (dev.role, test.role) == ("train", "test")
    assert dev.seed != test.seed
    for key in ("seconds", "frame_sizes", "fps", "copy_fps", "part_seconds"):
        assert tuple(dev[key]) != tuple(test[key]), key
    packages = {s.package for s in for_role(dev.role)}
    assert packages.isdisjoint({s.package for s in for_role(test.role)})
    assert not any(is_reserved(p) for p in packages)
    assert packages == {s.package for s in SOURCES if s.role == "train"}
    assert load_config_file("configs/devset.py", "runlocal").role == "train"


def test_unknown_role_is_refused(tmp_path, no_network):  # noqa: F811
    with pytest.raises(ValueError, match="role"):
        collect("demo", tmp_path, make_fake_cache(tmp_path), verbose=False)
