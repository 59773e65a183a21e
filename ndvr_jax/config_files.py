"""Config files (`configs/*.py` modules with `get_config(arg)`) by path, and flat job configs
whose keys are also flags (`define_flags`, `config_from_flags`)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import ml_collections
from absl import flags


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


def define_flags(defaults: ml_collections.ConfigDict, help_source: str) -> None:
    """One absl flag per key of `defaults` (a flat config of strings, ints, floats and bools)."""
    kinds = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float}
    for name, value in defaults.items():
        kinds.get(type(value), flags.DEFINE_string)(name, value, f"See `{help_source}`.")


def config_from_flags(
    defaults: ml_collections.ConfigDict, values: flags.FlagValues, section: str
) -> ml_collections.ConfigDict:
    """`defaults`, then the `--config` file's `section` (or the whole file), then explicit flags."""
    config = ml_collections.ConfigDict(defaults.to_dict())
    if values["config"].value is not None:
        given = values["config"].value
        config.update(given.get(section, given).to_dict())
    for name in config:
        if values[name].present:
            config[name] = values[name].value
    return config
