"""Frame-feature extraction (MAC of intermediate CNN layers, 1 frame per second).

    python -m ndvr_jax.extract --config=configs/extract.py \
        --video_list=videos.txt --output_dir=features/ \
        [--config.backbone=vgg16 --config.weights=vgg16.pth]

`--config=configs/extract.py:runlocal` shrinks frames and batches for a quick check.
"""

import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.backbone = "efficientnet_lite0"  # vgg16 | resnet50 | efficientnet_lite0
    config.weights = "default"  # "default", None (random), or a .pth/.h5/.npz path
    config.fps = 1.0
    config.size = 224
    config.resize = "pad"  # pad (ndvr-dml) | crop (ViSiL)
    config.batch_size = 32  # frames per compiled batch; a multiple of the device count
    config.dtype = "float32"  # float32 | bfloat16 (compute dtype)
    config.num_devices = 0  # 0: all local devices
    config.num_workers = 2  # decoding threads
    config.layout = "ndvr-dml"  # ndvr-dml (<id>.npy) | ausil (<id>/wlaf.npz)
    config.distributed = False  # call jax.distributed.initialize(); each host takes its share
    if arg == "runlocal":
        config.size = 64
        config.batch_size = 8
    return config
