"""DML training throughput (triplets/s): the toolkit's training loop vs the same model and loss in
PyTorch (CPU), in one run, in float32 and in bfloat16 mixed precision.

    python benchmarks/bench_dml_train.py [--dim 4096 --batch 1000 --steps 5 --warmup 2 \
        --repeats 3 --precisions float32,bfloat16]

Both train the paper's network (dim → 2000 → 1000 → 500, tanh, L2) with the original's loss
`max(0, ‖a−p‖² − ‖a−n‖² + 1)` and Adam (lr 1e-6) on `--batch` triplets a step, gathered from a
feature matrix by triplet rows as the original does. Ours is the real path:
`ndvr_jax.dml.training.OfflineTripletTask` through `ndvr_jax.training.loop.train` (host gather,
sharded batch, jitted step with donated state, metrics fetched every step; each video of a
batch's triplets is embedded once); PyTorch is the original's loop written in torch (gather,
forward, backward, Adam step). The triplets are uniform random rows of `--rows` videos, so few
rows repeat in a batch: the worst case for embedding each video once. Real triplet sets repeat
their anchors and positives: in VCDB every positive pair lies among the 528 core videos and the
negatives come from the 100k distractors; `--core 528` draws triplets that way.

Precisions: "float32" everywhere; "bfloat16" is mixed precision on both sides, float32
parameters and Adam state with bf16 matmuls: ours `config.model.compute_dtype = "bfloat16"`,
PyTorch the forward and loss under `torch.autocast("cpu", torch.bfloat16)`.

The first `--warmup` steps (compilation, allocation) are not timed, nor is our run's last
step (it writes the final checkpoint). Every (precision, framework)
run is repeated `--repeats` times, interleaved, and the best rate is kept (the machine is shared).
Prints triplets/s of both and the ratio for each precision.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import ml_collections
import numpy as np

from ndvr_jax.dml import training as dml_training
from ndvr_jax.training import loop

HIDDEN = (2000, 1000)
EMBEDDING = 500


def make_data(
    dim: int, rows: int, triplets: int, core: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit feature rows and uniform random triplets; with `core` > 0, anchors and positives are
    drawn from the first `core` rows only (negatives from all rows), as in VCDB."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((rows, dim), dtype=np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    chosen = rng.integers(0, rows, size=(triplets, 3))
    if core:
        chosen[:, :2] = rng.integers(0, core, size=(triplets, 2))
    return features, chosen


def config_for(batch: int, steps: int, precision: str = "float32") -> ml_collections.ConfigDict:
    config = loop.default_train_config()
    config.update(num_steps=steps, batch_size=batch, num_devices=0, log_every=1)
    config.update(checkpoint_every=10**9, keep_checkpoints=1, seed=0, mode="offline", epochs=0)
    config.optimizer.update(name="adam", learning_rate=1e-6)
    config.model = ml_collections.ConfigDict(
        dict(
            hidden_sizes=HIDDEN, embedding_dim=EMBEDDING, activation="tanh", compute_dtype=precision
        )
    )
    config.loss = ml_collections.ConfigDict(dict(margin=1.0, l2_regularization=0.0))
    return config


def jax_triplets_per_second(
    features, triplets, batch: int, steps: int, warmup: int, precision: str
) -> float:
    """Steady-state rate of the toolkit's loop, from the time each step's metrics arrive.

    One more step runs after the timed ones: the loop's last step also writes the final
    checkpoint, a once-a-run cost that the PyTorch loop does not have.
    """
    config = config_for(batch, warmup + steps + 1, precision)
    task = dml_training.OfflineTripletTask(features, triplets, config)
    stamps: list[float] = []

    def clock(model, step):
        del model, step
        stamps.append(time.perf_counter())
        return {}

    config.eval_every = 1  # the callback runs after each step's metrics were fetched
    with tempfile.TemporaryDirectory() as workdir:
        loop.train(task, config, workdir, evaluate=clock)
    return batch * steps / (stamps[warmup + steps - 1] - stamps[warmup - 1])


def torch_triplets_per_second(
    features, triplets, batch: int, steps: int, warmup: int, precision: str
) -> float:
    import contextlib

    import torch

    torch.manual_seed(0)
    sizes = [features.shape[1], *HIDDEN, EMBEDDING]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        linear = torch.nn.Linear(n_in, n_out)
        torch.nn.init.xavier_uniform_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
        layers += [linear, torch.nn.Tanh()]
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)
    if precision == "bfloat16":
        autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    else:
        autocast = contextlib.nullcontext

    def step(i: int) -> None:
        rows = triplets[(i * batch + np.arange(batch)) % len(triplets)]
        x = torch.from_numpy(features[rows.T.reshape(-1)])
        with autocast():
            e = torch.nn.functional.normalize(model(x), dim=1, eps=1e-15**0.5)
            a, p, n = e[:batch], e[batch : 2 * batch], e[2 * batch :]
            pos = ((a - p) ** 2).sum(1)
            neg = ((a - n) ** 2).sum(1)
            loss = torch.relu(pos - neg + 1.0).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss.detach())  # like ours, read the loss every step

    for i in range(warmup):
        step(i)
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=4096, help="input feature size (VGG16: 4096)")
    parser.add_argument("--rows", type=int, default=20000, help="videos in the feature matrix")
    parser.add_argument(
        "--core",
        type=int,
        default=0,
        help="anchors and positives from this many rows only (VCDB: 528 core videos); 0: all",
    )
    parser.add_argument("--batch", type=int, default=1000, help="triplets a step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs; best is kept")
    parser.add_argument("--precisions", default="float32,bfloat16", help="comma-separated")
    args = parser.parse_args()
    import jax
    import torch

    size = args.batch * (args.steps + args.warmup)
    features, triplets = make_data(args.dim, args.rows, size, args.core)
    print(
        f"DML {args.dim}-{'-'.join(map(str, HIDDEN))}-{EMBEDDING}, {args.batch} triplets a step, "
        f"{args.rows} rows, anchors/positives from {args.core or args.rows}, "
        f"{args.steps} timed steps after {args.warmup}, best of {args.repeats}; jax "
        f"{jax.__version__} on {jax.device_count()} {jax.devices()[0].platform} device(s), torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads",
        flush=True,
    )
    precisions = args.precisions.split(",")
    runners = {"ndvr_jax": jax_triplets_per_second, "PyTorch": torch_triplets_per_second}
    best = {(p, name): 0.0 for p in precisions for name in runners}
    for repeat in range(args.repeats):
        for precision in precisions:
            for name, run in runners.items():
                rate = run(features, triplets, args.batch, args.steps, args.warmup, precision)
                best[precision, name] = max(best[precision, name], rate)
                print(f"  run {repeat + 1} {precision:8s} {name:8s}: {rate:8.1f}", flush=True)
    for precision in precisions:
        ours, theirs = best[precision, "ndvr_jax"], best[precision, "PyTorch"]
        print(
            f"{precision:8s}: ndvr_jax (training loop) {ours:8.1f} triplets/s, PyTorch (CPU) "
            f"{theirs:8.1f} triplets/s, ratio {ours / theirs:.2f}x"
        )


if __name__ == "__main__":
    main()
