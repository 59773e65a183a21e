"""Every config file builds, with and without its `runlocal` variant, and names its command."""

import importlib.util
from pathlib import Path

import ml_collections
import pytest

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.py"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("arg", ["", "runlocal"])
def test_config_builds(path, arg):
    spec = importlib.util.spec_from_file_location(f"config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "python -m ndvr_jax." in module.__doc__
    config = module.get_config(arg)
    assert isinstance(config, ml_collections.ConfigDict)
    assert config.to_dict()
