"""Feature extraction: per-frame MAC features (visual) or AuSiL audio segment features (audio).

    python -m ndvr_jax.extract --config=configs/extract.py \
        --video_list=videos.txt --output_dir=features/ \
        [--config.backbone=vgg16 --config.weights=vgg16.pth]

    python -m ndvr_jax.extract --config=configs/extract.py --config.mode=audio \
        --video_list=videos.txt --output_dir=audio_features/ \
        [--config.audio.backbone=kumar2018 --config.audio.weights=mx-h64-1024_0d3-1.17.pkl]

`--config=configs/extract.py:runlocal` shrinks frames and batches for a quick check. The visual
keys are the top-level ones; audio mode reads `config.audio` (its layout defaults to `ausil`,
`<id>/wlaf.npz`) and shares `num_devices`, `num_workers` and `distributed`.
"""

import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.mode = "visual"  # visual | audio
    config.backbone = "efficientnet_lite0"  # vgg16 | resnet50 | efficientnet_lite0
    config.weights = "default"  # "default", None (random), or a .pth/.h5/.npz path
    config.fps = 1.0
    config.size = 224
    config.resize = "pad"  # pad (ndvr-dml) | crop (ViSiL)
    config.batch_size = 32  # frames per compiled batch; a multiple of the device count
    # 0: whole-frame MAC [T, D]; n: regional MAC [T, 1 + n*n, D] (whole frame, then an n x n grid;
    # ViSiL uses 3) for `--system=regional` similarities (picture-in-picture, small insets).
    config.regions = 0
    # 0: off; n: also the MAC of n x n overlapping zoomed crops (n = 3: half-size crops), appended
    # as regions; 1 + n*n backbone runs a frame. For picture-in-picture (a source shown small).
    config.zoom = 0
    # Also the MAC of each frame's picture-in-picture inset, found as a rectangle of fixed edges
    # over windows of `inset_window_s` seconds (`ndvr_jax.regional.insets`), appended as the last
    # region (the frame again where none is found); one more backbone run a frame.
    config.insets = False
    config.inset_window_s = 8.0
    config.inset_border_sides = 2  # up to this many of an inset's sides on the frame's border
    config.dtype = "float32"  # float32 | bfloat16 (compute dtype)
    # Images (or Mel windows) per device that the backbone runs on at a time, looped inside the
    # jitted batch: "auto" (CPU: 2, for cache locality; GPU/TPU: the whole batch), "0" (the whole
    # batch) or a count that divides the per-device batch. Both modes; same features up to rounding.
    config.micro_batch = "auto"
    config.num_devices = 0  # 0: all local devices
    config.num_workers = 2  # decoding threads
    # A file whose next frames take longer than this to read is skipped with reason `timeout`
    # (a hung mount or a decoder that never returns); 0 = no limit.
    config.read_timeout_s = 300.0
    config.layout = "ndvr-dml"  # ndvr-dml (<id>.npy) | ausil (<id>/wlaf.npz)
    config.distributed = False  # call jax.distributed.initialize(); each host takes its share
    config.audio = ml_collections.ConfigDict(
        dict(
            # musicnn_vgg: musicnn's VGG (640-d); "default" = its pretrained MTT_vgg weights from
            # the `musicnn` package (`pip install --no-deps musicnn`), read without TensorFlow.
            # kumar2018: AuSiL's own CNN (2,528-d); no registry ships its weights, so "default"
            # is a random init (the untrained baseline, with a warning) unless weights= the
            # original's PyTorch state dict. Each backbone fixes its own front-end.
            backbone="musicnn_vgg",
            weights="default",
            layout="ausil",
            batch_size=32,  # Mel windows per compiled batch; a multiple of the device count
        )
    )
    if arg == "runlocal":
        config.size = 64
        config.batch_size = 8
        config.audio.batch_size = 8
    return config
