"""Deep hashing speed: training videos/s against the same model in PyTorch, and Hamming top-k over
1 M codes against faiss `IndexBinaryFlat`, in one run.

    python benchmarks/bench_hashing.py [--dim 1024 --frames 32 --batch 64 --bits 64 \
        --steps 40 --codes 1000000 --code_bits 256 --queries 256 --k 100 --repeats 3]

Training: both sides train the hashing network (attention pooling over `--frames` frames of
`--dim` features, FC + sigmoid to `--bits` bits, FC to 20 classes) with α·CE + β·semi-hard
triplet + γ·quantisation and AdamW, on the same grain batches of synthetic class-structured
videos. Ours is the real path: `ndvr_jax.hashing.training.HashingTask` through
`ndvr_jax.training.loop.train`, timed from the arrival of each step's metrics after 3 warm-up
steps; PyTorch (3 warm-up steps too) starts from our initial weights and its first loss is
checked against ours. Hamming: `--codes` random `--code_bits`-bit codes,
`--queries` of them as queries, `--k` nearest; both results are checked to agree. faiss and
PyTorch use as many threads as the machine has cores. Every measurement is repeated
`--repeats` times, interleaved, and the best is kept (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import faiss
import numpy as np
import torch
from flax import nnx

from ndvr_jax.config_files import load_config_file
from ndvr_jax.hashing import codes
from ndvr_jax.hashing.synthetic import synthetic_videos
from ndvr_jax.hashing.training import HashingTask
from ndvr_jax.training import loop

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "hashing_base.py")


def make_task(args, steps: int) -> HashingTask:
    config = load_config_file(CONFIG, str(args.bits))
    config.update(num_steps=steps, batch_size=args.batch, max_frames=args.frames, num_devices=1)
    config.hidden_sizes = ()  # the seed's network, as the PyTorch one
    config.update(log_every=steps, checkpoint_every=10**9)
    videos = synthetic_videos(20, 30, args.dim, (args.frames // 2, args.frames), seed=0)["train"]
    return HashingTask(config, videos)


def jax_videos_per_second(args, warmup: int = 3) -> float:
    """Steady-state videos/s of the loop, from the time each step's metrics arrive (logged
    every step; the last step, which writes the final checkpoint, is not timed)."""
    task = make_task(args, warmup + args.steps + 1)
    task.config.update(log_every=1, eval_every=1)
    stamps = []

    def stamp(model, step):
        stamps.append(time.perf_counter())
        return {}

    with tempfile.TemporaryDirectory() as workdir:
        loop.train(task, task.config, workdir, evaluate=stamp)
    return args.batch * args.steps / (stamps[warmup + args.steps - 1] - stamps[warmup - 1])


class TorchHashingNet(torch.nn.Module):
    """The same network in PyTorch."""

    def __init__(self, dim: int, bits: int, classes: int):
        super().__init__()
        self.attention = torch.nn.Linear(dim, 1)
        self.hash = torch.nn.Linear(dim, bits)
        self.classifier = torch.nn.Linear(bits, classes)

    def forward(self, frames, mask):
        frames = frames * mask[..., None]
        scores = self.attention(frames)[..., 0].masked_fill(~mask, -torch.inf)
        weights = torch.softmax(scores, dim=-1)
        bits = torch.sigmoid(self.hash(torch.einsum("bt,btd->bd", weights, frames)))
        return bits, self.classifier(bits)

    def load_from(self, model) -> None:
        """Copies the weights of our NNX model (kernels are [in, out])."""
        with torch.no_grad():
            for name in ("attention", "hash", "classifier"):
                ours, theirs = getattr(model, name), getattr(self, name)
                theirs.weight.copy_(torch.from_numpy(np.asarray(ours.kernel[...]).T.copy()))
                theirs.bias.copy_(torch.from_numpy(np.asarray(ours.bias[...]).copy()))


def torch_semi_hard(x, labels, margin):
    """Semi-hard triplet loss with the toolkit's rules (`ndvr_jax.training.losses`)."""
    d = torch.cdist(x, x).square()
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(x), dtype=torch.bool)
    pos = same & (labels >= 0)[:, None] & ~eye
    neg = ~(same & (labels >= 0)[:, None]) & ~eye
    neg_d = d[:, None, :].expand(-1, len(x), -1)  # [anchor, positive, negative]
    farther = neg[:, None, :] & (neg_d > d[:, :, None])
    semi = torch.where(farther, neg_d, torch.inf).amin(-1)
    fallback = torch.where(neg, d, -torch.inf).amax(-1)[:, None].expand_as(semi)
    chosen = torch.where(torch.isfinite(semi), semi, fallback)
    pairs = pos & neg.any(1)[:, None]
    losses = torch.relu(d - chosen + margin)[pairs]
    return losses.mean() if len(losses) else d.sum() * 0


def torch_loss(net, batch, loss):
    bits, logits = net(batch["frames"], batch["mask"])
    labels = batch["label"]
    ce = torch.nn.functional.cross_entropy(logits, labels)
    triplet = torch_semi_hard(bits, labels, loss.margin)
    quant = (4 * bits * (1 - bits)).mean()
    return loss.alpha * ce + loss.beta * triplet + loss.quantization * quant


def torch_batch(task: HashingTask, step: int) -> dict[str, torch.Tensor]:
    batch = task.batch(step)
    return {
        "frames": torch.from_numpy(batch["frames"]),
        "mask": torch.from_numpy(batch["mask"]),
        "label": torch.from_numpy(batch["label"].astype(np.int64)),
    }


def torch_videos_per_second(args) -> tuple[float, float, float]:
    """PyTorch videos/s, and its first loss next to ours from the same weights."""
    task = make_task(args, 1)
    model = task.create_model(nnx.Rngs(0))
    ours = float(task.loss(model, task.batch(0), None)[0])
    net = TorchHashingNet(args.dim, args.bits, task.num_classes)
    net.load_from(model)
    with torch.no_grad():
        first = float(torch_loss(net, torch_batch(task, 0), task.config.loss))
    opt = torch.optim.AdamW(
        net.parameters(),
        lr=task.config.optimizer.learning_rate,
        weight_decay=task.config.optimizer.weight_decay,
    )

    def step(i):
        opt.zero_grad()
        torch_loss(net, torch_batch(task, i), task.config.loss).backward()
        opt.step()

    for i in range(3):
        step(i)
    start = time.perf_counter()
    for i in range(args.steps):
        step(3 + i)
    return args.batch * args.steps / (time.perf_counter() - start), first, ours


def hamming_queries_per_second(args) -> tuple[float, float, float]:
    """Queries/s of ours and faiss, and the fraction of identical result indices."""
    rng = np.random.default_rng(0)
    database = rng.integers(0, 2**32, (args.codes, codes.num_words(args.code_bits)), np.uint32)
    queries = database[rng.choice(args.codes, args.queries, replace=False)]
    index = faiss.IndexBinaryFlat(args.code_bits)
    index.add(database.view(np.uint8))
    codes.hamming_top_k(queries, database, args.k)  # compile
    best_ours, best_faiss = np.inf, np.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = codes.hamming_top_k(queries, database, args.k)
        best_ours = min(best_ours, time.perf_counter() - start)
        start = time.perf_counter()
        distance, faiss_index = index.search(queries.view(np.uint8), args.k)
        best_faiss = min(best_faiss, time.perf_counter() - start)
    np.testing.assert_array_equal(ours.distance, distance)
    same = float(np.mean(ours.index == faiss_index))
    return args.queries / best_ours, args.queries / best_faiss, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, default in [
        ("dim", 1024),
        ("frames", 32),
        ("batch", 64),
        ("bits", 64),
        ("steps", 40),
        ("codes", 1_000_000),
        ("code_bits", 256),
        ("queries", 256),
        ("k", 100),
        ("repeats", 3),
    ]:
        parser.add_argument(f"--{name}", type=int, default=default)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    faiss.omp_set_num_threads(os.cpu_count())
    ours_rate = torch_rate = 0.0
    for _ in range(args.repeats):
        ours_rate = max(ours_rate, jax_videos_per_second(args))
        rate, first, ours_first = torch_videos_per_second(args)
        torch_rate = max(torch_rate, rate)
    print(f"first loss from the same weights: ndvr_jax {ours_first:.5f}  PyTorch {first:.5f}")
    print(
        f"training ({args.batch} videos x {args.frames} frames x {args.dim}, {args.bits} bits): "
        f"ndvr_jax {ours_rate:,.0f} videos/s  PyTorch {torch_rate:,.0f} videos/s  "
        f"ratio {ours_rate / torch_rate:.2f}x"
    )
    ours_qps, faiss_qps, same = hamming_queries_per_second(args)
    print(
        f"Hamming top-{args.k} over {args.codes:,} x {args.code_bits}-bit codes, "
        f"{args.queries} queries: ndvr_jax {ours_qps:,.1f} queries/s  faiss IndexBinaryFlat "
        f"{faiss_qps:,.1f} queries/s  ratio {ours_qps / faiss_qps:.2f}x  "
        f"(same distances; {same:.1%} identical indices)"
    )


if __name__ == "__main__":
    main()
