"""AuSiL speed: comparator + Chamfer pairs/s and audio CNN segments/s, ndvr_jax vs PyTorch CPU.

    python benchmarks/bench_ausil.py [--cases 64x64x512 128x32x256 --repeats 20 --windows 32
                                      --cnn_repeats 5]

Both sides run the same network with the same weights (copied from the Flax model into a plain
PyTorch implementation written here; the outputs are checked to agree before timing):
  * comparator: embedded query/database segments → similarity matrix → comparator CNN (symmetric
    width-1 padding) → clip → Chamfer, for each `--cases` entry PAIRSxSEGMENTSxK: a batch of
    PAIRS pairs of SEGMENTS segments each, K-d embeddings; ndvr_jax runs its masked (any-length)
    batched path, PyTorch the plain unpadded one; all float32;
  * audio CNN: Kumar et al. 2018 on `--windows` Mel windows (174 × 128) → MAC of 12 layers.
The machine is shared, so the contenders run interleaved (one call of each per round, after a
warm-up) and the best of `--repeats` rounds is compared; medians are printed beside them.
PyTorch uses as many threads as JAX's CPU client (all cores), NCHW and channels-last, and the
faster layout is compared. Needs torch (test extra).
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from flax import nnx

from ndvr_jax.ausil.model import AuSiL
from ndvr_jax.backbones.audio_cnn import LAYERS, AudioCNN, assign_torch_state_dict, mac_extractor


def interleaved_seconds(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list]:
    """Per contender, the seconds of `repeats` calls made in turn (one of each per round)."""
    for fn in fns.values():
        fn()  # warm-up (compilation)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def rates(times: dict[str, list], items: int) -> dict[str, tuple[float, float]]:
    """Items/s of each contender: (best round, median round)."""
    return {k: (items / min(t), items / float(np.median(t))) for k, t in times.items()}


# ---------------------------------------------------------------------------------------------
# Comparator + Chamfer


def torch_comparator(
    params: dict, memory_format: torch.memory_format = torch.contiguous_format
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The AuSiL comparator + Chamfer in PyTorch, weights from the Flax model."""
    c = params["comparator"]
    w = {
        name: (
            torch.from_numpy(np.transpose(c[name]["kernel"], (3, 2, 0, 1)).copy()),
            torch.from_numpy(np.array(c[name]["bias"])),
        )
        for name in ("conv1", "conv2", "conv3", "fconv")
    }

    def pad(x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (1, 1, 1, 1), mode="replicate")  # = symmetric padding of width 1

    def similarity(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        x = torch.bmm(q, p.transpose(1, 2))[:, None].contiguous(memory_format=memory_format)
        x = F.max_pool2d(F.relu(F.conv2d(pad(x), *w["conv1"])), 2)
        x = F.max_pool2d(F.relu(F.conv2d(pad(x), *w["conv2"])), 2)
        x = F.relu(F.conv2d(pad(x), *w["conv3"]))
        x = torch.clamp(F.conv2d(x, *w["fconv"])[:, 0], -1.0, 1.0)
        return x.max(dim=2).values.mean(dim=1)

    return similarity


def bench_comparator(pairs: int, segments: int, pca_dims: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    model = AuSiL(pca_dims, pca_dims, rngs=nnx.Rngs(0))
    shape = (pairs, segments, pca_dims)
    scale = 1.0 / np.sqrt(pca_dims)
    q = (scale * rng.standard_normal(shape)).astype(np.float32)
    p = (q + 0.5 * scale * rng.standard_normal(shape)).astype(np.float32)
    lengths = jnp.full((pairs,), segments, jnp.int32)
    graphdef, state = nnx.split(model)

    @jax.jit
    def ours(state, q, q_len, p, p_len):
        return nnx.merge(graphdef, state).compare(q, q_len, p, p_len).similarity

    q_j, p_j = jnp.asarray(q), jnp.asarray(p)
    fns = {"ndvr_jax": lambda: ours(state, q_j, lengths, p_j, lengths).block_until_ready()}
    params = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model)))
    q_t, p_t = torch.from_numpy(q), torch.from_numpy(p)
    for name, memory_format in (("NCHW", torch.contiguous_format), ("NHWC", torch.channels_last)):
        theirs = torch_comparator(params, memory_format)

        def run_theirs(theirs=theirs):
            with torch.inference_mode():
                return theirs(q_t, p_t)

        np.testing.assert_allclose(fns["ndvr_jax"](), run_theirs().numpy(), rtol=1e-4, atol=1e-5)
        fns[f"PyTorch {name}"] = run_theirs
    r = rates(interleaved_seconds(fns, repeats), pairs)
    best = max(r["PyTorch NCHW"][0], r["PyTorch NHWC"][0])
    print(
        f"comparator+Chamfer, {pairs} pairs of {segments}x{segments} segments, K={pca_dims}:\n"
        f"  ndvr_jax {r['ndvr_jax'][0]:9.1f} pairs/s   PyTorch {best:9.1f} pairs/s   ratio "
        f"{r['ndvr_jax'][0] / best:.2f}x   (best of {repeats}; medians: ndvr_jax "
        f"{r['ndvr_jax'][1]:.1f}, PyTorch NCHW {r['PyTorch NCHW'][1]:.1f}, channels-last "
        f"{r['PyTorch NHWC'][1]:.1f}; best PyTorch NCHW {r['PyTorch NCHW'][0]:.1f}, "
        f"channels-last {r['PyTorch NHWC'][0]:.1f})"
    )


# ---------------------------------------------------------------------------------------------
# Audio CNN


class TorchKumar(torch.nn.Module):
    """Kumar et al. 2018 conv stack in PyTorch with the original's module names; MAC output."""

    def __init__(self):
        super().__init__()
        in_channels, self.order = 1, []
        for layer in LAYERS:
            if layer == "pool":
                self.order.append("pool")
                continue
            name, out_channels, kernel = layer
            block = torch.nn.Sequential(
                torch.nn.Conv2d(in_channels, out_channels, kernel, padding=1 if kernel == 3 else 0),
                torch.nn.BatchNorm2d(out_channels),
                torch.nn.ReLU(),
            )
            self.add_module(name, block)
            self.order.append(name)
            in_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, vectors = x[:, None], []
        for name in self.order:
            if name == "pool":
                x = F.max_pool2d(x, 2)
                continue
            x = getattr(self, name)(x)
            a = F.normalize(x, dim=1, eps=1e-6)
            vectors.append(F.normalize(a.amax(dim=(2, 3)), dim=1, eps=1e-6))
        return torch.cat(vectors, dim=1)


def bench_audio_cnn(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    theirs = TorchKumar().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for module in theirs.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    state_dict = {k: v.numpy() for k, v in theirs.state_dict().items()}
    ours_model = nnx.eval_shape(lambda: AudioCNN(rngs=nnx.Rngs(0)))
    assign_torch_state_dict(ours_model, state_dict)
    extract = mac_extractor(ours_model)
    windows = np.random.default_rng(0).uniform(-80, 0, (args.windows, 174, 128)).astype(np.float32)
    windows_j, windows_t = jnp.asarray(windows), torch.from_numpy(windows)
    run_ours = lambda: extract(windows_j).block_until_ready()

    def run_theirs():
        with torch.inference_mode():
            return theirs(windows_t)

    np.testing.assert_allclose(np.asarray(run_ours()), run_theirs().numpy(), rtol=1e-3, atol=1e-4)
    theirs_nhwc = copy.deepcopy(theirs).to(memory_format=torch.channels_last)

    def run_nhwc():
        with torch.inference_mode():
            return theirs_nhwc(windows_t)

    fns = {"ndvr_jax": run_ours, "PyTorch NCHW": run_theirs, "PyTorch NHWC": run_nhwc}
    r = rates(interleaved_seconds(fns, args.cnn_repeats), args.windows)
    best = max(r["PyTorch NCHW"][0], r["PyTorch NHWC"][0])
    print(
        f"audio CNN + MAC, batch of {args.windows} windows 174x128:\n"
        f"  ndvr_jax {r['ndvr_jax'][0]:9.1f} seg/s     PyTorch {best:9.1f} seg/s     ratio "
        f"{r['ndvr_jax'][0] / best:.2f}x   (best of {args.cnn_repeats}; medians: ndvr_jax "
        f"{r['ndvr_jax'][1]:.1f}, PyTorch NCHW {r['PyTorch NCHW'][1]:.1f}, channels-last "
        f"{r['PyTorch NHWC'][1]:.1f}; best PyTorch NCHW {r['PyTorch NCHW'][0]:.1f}, "
        f"channels-last {r['PyTorch NHWC'][0]:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases",
        nargs="+",
        default=["64x64x512", "128x32x256"],
        help="comparator cases PAIRSxSEGMENTSxK",
    )
    parser.add_argument("--windows", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cnn_repeats", type=int, default=5, help="rounds for the audio CNN")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(
        f"jax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    for case in args.cases:
        bench_comparator(*(int(v) for v in case.split("x")), args.repeats)
    bench_audio_cnn(args)


if __name__ == "__main__":
    main()
