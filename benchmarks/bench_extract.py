"""Extraction throughput: this project's jitted `mac(model(images))` against PyTorch CPU.

    python benchmarks/bench_extract.py [--backbone vgg16] [--batch 16] [--size 224] [--rounds 5]

Builds the backbone with random weights (`nnx.Rngs(0)`), copies them into a plain `torch.nn`
mirror of the same architecture (same preprocessing, same MAC), and times, in one process and
interleaved round by round (the best round of each path is reported):

  ours  float32, bfloat16  `BatchEncoder`: one jit of `mac(model(images))`, uint8 NHWC in;
                           bfloat16 with the default conv (bf16 matmuls on CPU, see
                           `ndvr_jax.backbones.layers`) and with XLA's conv (`xla-conv`);
                           `--micro-batch M` adds the encoder with `micro_batch=M` (the
                           backbone as a `lax.map` over chunks of M images inside the jit:
                           smaller buffers, same numbers up to rounding).
  torch float32 (NCHW), float32 channels-last, bfloat16 channels-last (weights and activations
        in bfloat16, MAC in float32), under `torch.inference_mode()`.

Prints frames/s, the ratio ours/torch-path, the conv GFLOP/s achieved (conv FLOPs counted
analytically from the layer shapes: 2 * output elements * input channels per group * kernel
area) as a share of the float32 and bfloat16 matmul peaks measured by `benchmarks/peak.py`, and
the smallest cosine between each path's MAC features and torch float32's (the numerics check that
makes the comparison fair). Timings are noisy when other work shares the cores: the load average
is printed, run it more than once. Needs torch (the `test` extra).

Memory: glibc serves big buffers with fresh mmaps that are page-faulted in again on every call;
`MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 python benchmarks/bench_extract.py`
keeps them in the heap instead (it helps PyTorch far more than XLA here).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx
from torch import nn

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `ndvr_jax` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peak import jax_peak, measured_peak  # noqa: E402
from ndvr_jax import sharding  # noqa: E402
from ndvr_jax.backbones import BACKBONES, create_backbone, mac  # noqa: E402
from ndvr_jax.backbones.layers import set_conv_impl  # noqa: E402
from ndvr_jax.features.encoder import BatchEncoder  # noqa: E402

# ------------------------------------------------------------------ torch mirror of our models

_IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])
_IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])
_CAFFE_BGR_MEAN = torch.tensor([103.939, 116.779, 123.68])


def torch_preprocess(images: torch.Tensor, recipe: str) -> torch.Tensor:
    """uint8 NHWC RGB -> float32 NCHW, normalised as `ndvr_jax.backbones.layers.preprocess`."""
    x = images.float()
    if recipe == "torchvision":
        x = (x / 255.0 - _IMAGENET_MEAN) / _IMAGENET_STD
    elif recipe == "caffe":
        x = x.flip(-1) - _CAFFE_BGR_MEAN
    elif recipe == "efficientnet_lite":
        x = (x - 127.0) / 128.0
    else:
        raise ValueError(recipe)
    return x.permute(0, 3, 1, 2)


def torch_mac(maps: list[torch.Tensor]) -> torch.Tensor:
    """Multi-layer MAC in float32, as `ndvr_jax.backbones.mac`."""
    vectors = []
    for a in maps:
        a = F.normalize(a.float(), dim=1)
        vectors.append(F.normalize(a.amax(dim=(2, 3)), dim=1))
    return torch.cat(vectors, dim=1)


class TorchConv(nn.Conv2d):
    """An `nnx.Conv` (HWIO kernel, bias, int or TensorFlow 'SAME' padding) as a torch conv."""

    def __init__(self, conv: nnx.Conv) -> None:
        kernel = np.asarray(conv.kernel.get_value())  # H, W, I / groups, O
        kh, kw, _, cout = kernel.shape
        stride = conv.strides if isinstance(conv.strides, int) else conv.strides[0]
        self.same = conv.padding == "SAME"
        pad = 0 if self.same else int(conv.padding)
        super().__init__(
            conv.in_features, cout, (kh, kw), stride, pad, groups=conv.feature_group_count
        )
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            self.bias.copy_(torch.from_numpy(np.array(conv.bias.get_value())))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:  # extra row / column at the bottom / right, as TensorFlow and XLA
            (kh, kw), (s, _) = self.kernel_size, self.stride
            ph = max((math.ceil(x.shape[-2] / s) - 1) * s + kh - x.shape[-2], 0)
            pw = max((math.ceil(x.shape[-1] / s) - 1) * s + kw - x.shape[-1], 0)
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


class TorchVGG16(nn.Module):
    def __init__(self, model: nnx.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList(TorchConv(c) for c in block) for block in model.blocks
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for b, block in enumerate(self.blocks):
            if b:
                x = F.max_pool2d(x, 2, 2)
            for conv in block:
                x = F.relu(conv(x))
                if b:
                    outputs.append(x)
        return outputs


class TorchBottleneck(nn.Module):
    def __init__(self, block: nnx.Module) -> None:
        super().__init__()
        self.conv1, self.conv2, self.conv3 = (
            TorchConv(c) for c in (block.conv1, block.conv2, block.conv3)
        )
        self.downsample = None if block.downsample is None else TorchConv(block.downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet50(nn.Module):
    def __init__(self, model: nnx.Module) -> None:
        super().__init__()
        self.stem = TorchConv(model.stem)
        self.stages = nn.ModuleList(
            nn.Sequential(*(TorchBottleneck(b) for b in stage)) for stage in model.layers
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2, 1)
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


class TorchMBConv(nn.Module):
    def __init__(self, block: nnx.Module) -> None:
        super().__init__()
        self.expand = None if block.expand is None else TorchConv(block.expand)
        self.depthwise, self.project = TorchConv(block.depthwise), TorchConv(block.project)
        self.residual = block.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else F.relu6(self.expand(x))
        y = self.project(F.relu6(self.depthwise(y)))
        return x + y if self.residual else y


class TorchEfficientNetLite0(nn.Module):
    def __init__(self, model: nnx.Module) -> None:
        super().__init__()
        self.stem, self.head = TorchConv(model.stem), TorchConv(model.head)
        self.stages = nn.ModuleList(
            nn.Sequential(*(TorchMBConv(b) for b in stage)) for stage in model.stages
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self.stem(x))
        outputs = []
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s:
                outputs.append(x)
        outputs.append(F.relu6(self.head(x)))
        return outputs


TORCH_MIRRORS = {
    "vgg16": TorchVGG16,
    "resnet50": TorchResNet50,
    "efficientnet_lite0": TorchEfficientNetLite0,
}


def conv_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of every conv of `model` on `x`: 2 * output elements * (C_in / groups) * kh * kw."""
    total = 0

    def hook(conv: nn.Conv2d, _: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = conv.kernel_size
        total += 2 * out.numel() * (conv.in_channels // conv.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    return total


# ------------------------------------------------------------------ the paths timed


def ours_path(name: str, dtype, batch: int, impl: str = "auto", micro_batch: int = 0) -> Callable:
    """uint8 NHWC batch -> MAC features (numpy), through this project's jitted encoder."""
    model = create_backbone(name, weights=None, dtype=dtype, rngs=nnx.Rngs(0))
    set_conv_impl(model, impl)
    encoder = BatchEncoder(model, mac, sharding.make_mesh(), batch, micro_batch)
    return lambda images: np.asarray(encoder.encode_batch(images))


def torch_path(model: nn.Module, recipe: str, dtype: torch.dtype, channels_last: bool) -> Callable:
    """uint8 NHWC batch -> MAC features (numpy) through the torch mirror."""
    model = copy.deepcopy(model).to(dtype)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)

    def run(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch_preprocess(torch.from_numpy(images), recipe).to(dtype)
            return torch_mac(model(x.contiguous(memory_format=fmt))).numpy()

    return run


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-30)
    return float(cos.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16", choices=sorted(BACKBONES))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per path (best kept)")
    parser.add_argument("--micro-batch", type=int, default=0, help="also time ours as lax.map")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    parser.add_argument(
        "--paths", default="", help="comma-separated subset of the path names printed (default all)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    images = np.random.default_rng(0).integers(
        0, 256, (args.batch, args.size, args.size, 3), dtype=np.uint8
    )
    reference = create_backbone(args.backbone, weights=None, rngs=nnx.Rngs(0))
    mirror = TORCH_MIRRORS[args.backbone](reference).eval()
    recipe = reference.preprocessing
    flops = conv_flops(mirror, torch_preprocess(torch.from_numpy(images[:1]), recipe))

    paths: dict[str, Callable] = {
        "ours float32": ours_path(args.backbone, jnp.float32, args.batch),
        "ours bfloat16 xla-conv": ours_path(args.backbone, jnp.bfloat16, args.batch, "xla"),
        "ours bfloat16": ours_path(args.backbone, jnp.bfloat16, args.batch),
    }
    if args.micro_batch:
        for label, dtype in (("float32", jnp.float32), ("bfloat16", jnp.bfloat16)):
            paths[f"ours {label} map{args.micro_batch}"] = ours_path(
                args.backbone, dtype, args.batch, micro_batch=args.micro_batch
            )
    paths |= {
        "torch float32": torch_path(mirror, recipe, torch.float32, False),
        "torch float32 channels-last": torch_path(mirror, recipe, torch.float32, True),
        "torch bfloat16 channels-last": torch_path(mirror, recipe, torch.bfloat16, True),
    }
    if args.paths:
        wanted = {p.strip() for p in args.paths.split(",")} | {"torch float32"}
        paths = {k: v for k, v in paths.items() if k in wanted}

    print(
        f"backbone {args.backbone}, batch {args.batch} at {args.size}x{args.size}, "
        f"{flops / 1e9:.2f} conv GFLOP per frame; jax {jax.__version__} on "
        f"{jax.default_backend()} ({len(jax.devices())} device(s)), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    peak32 = measured_peak()
    peak16 = jax_peak(2048, jnp.bfloat16)
    print(
        f"matmul peak: float32 {peak32:.0f} GFLOP/s, bfloat16 {peak16:.0f} GFLOP/s "
        f"(load average {os.getloadavg()[0]:.2f})"
    )

    features, compile_s = {}, {}
    for label, run in paths.items():  # first call: compile / warm up, and the numerics check
        start = time.perf_counter()
        features[label] = run(images)
        compile_s[label] = time.perf_counter() - start
    times: dict[str, list[float]] = {label: [] for label in paths}
    loads = []
    for _ in range(args.rounds):
        loads.append(os.getloadavg()[0])
        for label, run in paths.items():
            start = time.perf_counter()
            run(images)
            times[label].append(time.perf_counter() - start)

    fps = {label: args.batch / min(t) for label, t in times.items()}
    torch_labels = [k for k in paths if k.startswith("torch")]
    short = {k: k[6:].replace("float32", "fp32").replace("bfloat16", "bf16") for k in torch_labels}
    short = {k: "x " + v.replace(" channels-last", " CL") for k, v in short.items()}
    header = f"{'path':30s} {'frames/s':>9s} {'median':>7s} {'GFLOP/s':>8s} {'%fp32pk':>8s} "
    header += f"{'%bf16pk':>8s} {'cos':>8s}" + "".join(f"{short[k]:>11s}" for k in torch_labels)
    print(header)
    for label, t in times.items():
        gflops = flops * fps[label] / 1e9
        ratios = "".join(f"{fps[label] / fps[k]:11.2f}" for k in torch_labels)
        print(
            f"{label:30s} {fps[label]:9.2f} {args.batch / np.median(t):7.2f} {gflops:8.1f} "
            f"{100 * gflops / peak32:7.0f}% {100 * gflops / peak16:7.0f}% "
            f"{min_cosine(features[label], features['torch float32']):8.5f}{ratios}"
        )
    print(
        f"load average during the rounds: {min(loads):.2f} - {max(loads):.2f}; "
        f"first call (compile + run) s: " + ", ".join(f"{k} {v:.1f}" for k, v in compile_s.items())
    )


if __name__ == "__main__":
    main()
