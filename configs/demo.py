"""The main job on the embedded demo benchmark: build it, extract features, retrieve, evaluate.

    python -m ndvr_jax.demo --config=configs/demo.py --workdir=demo_run

Visual baselines (global vectors, frame Chamfer), DML trained on the benchmark with
cross-validation (`configs/dml_demo.py`), audio retrieval with AuSiL (`configs/ausil_demo.py`) and
the collection search (`configs/index.py`: index, all-pairs query, calibration, duplicates
report), in one report. `--config=configs/demo.py:runlocal` uses the tiny benchmark, small frames
and few steps (a quick check); `--config.run_dml=False`, `--config.run_audio=False` and
`--config.run_collection=False` skip those parts.
"""

import ml_collections

from ndvr_jax.config_files import sibling_config


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    runlocal = arg == "runlocal"
    config = ml_collections.ConfigDict()
    config.data_dir = "demo_data"
    config.seed = 0
    config.size = "tiny" if runlocal else "small"
    config.extract = sibling_config(__file__, "extract", arg)
    config.protocols = ("DSVR", "CSVR", "ISVR", "DAVR")
    config.run_dml = True
    config.dml = sibling_config(__file__, "dml_demo", arg)
    config.dml.demo.protocols = config.protocols
    config.run_audio = True
    # The benchmark, its seed and size are the demo's own (`data_dir`, `seed`, `size`).
    config.ausil = sibling_config(__file__, "ausil_demo", arg)
    config.run_collection = True  # index, all-pairs query, calibration, duplicates report
    config.index = sibling_config(__file__, "index", arg)
    return config
