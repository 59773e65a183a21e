"""The independent test set from real media (`ndvr_jax.data.corpus.testset`).

    python -m ndvr_jax.testset build --out=testset
    python -m ndvr_jax.testset evaluate --data=testset --workdir=testset_run

Keys are `TestSetConfig`'s fields plus `seed`, and `evaluate` (the evaluation's settings):
~40 references, 12 distractors, 2 visual copies per visual class, 3 audio copies per audio
class and 8 compilations. `:runlocal` is tiny.
"""

import ml_collections

from ndvr_jax.config_files import sibling_config
from ndvr_jax.data.corpus import copy_classes


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.role = "test"  # whose sources' media: "test" (this set) or "train" (configs/devset.py)
    config.n_references = 40
    config.n_distractors = 12
    config.seconds = (12.0, 20.0)
    config.shot_seconds = (3.0, 6.0)
    config.frame_sizes = ((120, 160), (180, 240), (144, 256))
    config.fps = (15, 24, 25)
    config.copy_fps = (8, 10, 20)
    config.visual_per_class = 2
    config.audio_per_class = 3
    config.n_compilations = 8
    config.compilation_parts = 4
    config.part_seconds = (3.0, 6.0)
    config.speech_share = 0.4
    config.bed_share = 0.3
    config.dissolve_share = 0.3
    config.foreign_sound_share = 0.25  # music tracks and speakers only queries' foreign sound uses
    config.visual_classes = tuple(copy_classes.VISUAL_CLASSES)
    config.audio_classes = copy_classes.AUDIO_CLASSES
    config.profiles = ("mp4", "webm_vp9", "mkv", "mov", "avi_mpeg4", "ts")
    config.max_side = 400
    # `python -m ndvr_jax.testset evaluate`: features, systems (model dirs: "" = not run)
    config.evaluate = ml_collections.ConfigDict()
    config.evaluate.extract = sibling_config(__file__, "extract", arg)
    config.evaluate.audio_extract = sibling_config(__file__, "extract", arg)
    config.evaluate.audio_extract.mode = "audio"
    config.evaluate.dml_model_dir = ""  # a DML training workdir
    config.evaluate.ausil_model_dir = ""  # an AuSiL training workdir
    config.evaluate.regional = True  # also extract with detected insets: `regional (insets)`
    config.evaluate.landmarks = True  # also audio landmarks, alone and added to each AuSiL
    config.evaluate.pca_dims = 64  # AuSiL untrained: whitening dims (fitted on the database)
    config.evaluate.batch_size = 16  # AuSiL pairs per compiled step
    config.evaluate.num_devices = 0
    config.evaluate.run_collection = True  # index every video, all pairs, shipped calibration
    config.evaluate.index = sibling_config(__file__, "index", arg)
    if arg == "runlocal":
        config.n_references = 4
        config.n_distractors = 1
        config.seconds = (3.0, 4.0)
        config.shot_seconds = (1.0, 2.0)
        config.frame_sizes = ((96, 128),)
        config.visual_classes = ("crop", "pip_inset", "pip_host", "combo_overlay")
        config.audio_classes = ("tempo", "mono_8k", "mix_speech")
        config.visual_per_class = 1
        config.audio_per_class = 1
        config.n_compilations = 1
        config.compilation_parts = 2
        config.part_seconds = (1.0, 2.0)
        config.max_side = 256
    return config
