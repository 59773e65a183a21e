"""Loading `configs/*.py` files (ml_collections config modules with `get_config(arg)`) by path."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import ml_collections


def load_config_file(path: str | os.PathLike, arg: str = "") -> ml_collections.ConfigDict:
    """`get_config(arg)` of the config module at `path`, as `--config=path:arg` would give it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no config file {path}")
    spec = importlib.util.spec_from_file_location(f"config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def sibling_config(config_file: str, name: str, arg: str = "") -> ml_collections.ConfigDict:
    """The config `name`.py in the folder of `config_file` (a config module's `__file__`)."""
    return load_config_file(Path(config_file).resolve().parent / f"{name}.py", arg)
