"""The main job on the embedded demo benchmark: build it, extract features, retrieve, evaluate.

    python -m ndvr_jax.demo --config=configs/demo.py --workdir=demo_run

`--config=configs/demo.py:runlocal` uses the tiny benchmark and small frames (a quick check).
"""

import importlib.util
import os

import ml_collections


def _sibling_config(name: str, arg: str) -> ml_collections.ConfigDict:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    runlocal = arg == "runlocal"
    config = ml_collections.ConfigDict()
    config.data_dir = "demo_data"
    config.seed = 0
    config.size = "tiny" if runlocal else "small"
    config.extract = _sibling_config("extract", arg)
    config.protocols = ("DSVR", "CSVR", "ISVR")
    return config
