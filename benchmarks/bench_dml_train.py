"""DML training throughput (triplets/s): the toolkit's training loop vs the same model and loss in
PyTorch (CPU), in one run.

    python benchmarks/bench_dml_train.py [--dim 4096 --batch 1000 --steps 5 --warmup 2]

Both train the paper's network (dim → 2000 → 1000 → 500, tanh, L2) with the original's loss
`max(0, ‖a−p‖² − ‖a−n‖² + 1)` and Adam (lr 1e-6) on `--batch` triplets a step, gathered from a
feature matrix by triplet rows as the original does. Ours is the real path:
`ndvr_jax.dml_training.OfflineTripletTask` through `ndvr_jax.train_lib.train` (host gather,
sharded batch, jitted step with donated state, metrics fetched every step); PyTorch is the
original's loop written in torch (gather, forward, backward, Adam step). The first `--warmup`
steps (compilation, allocation) are not timed. Prints triplets/s of both and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import ml_collections
import numpy as np

from ndvr_jax import dml_training, train_lib

HIDDEN = (2000, 1000)
EMBEDDING = 500


def make_data(dim: int, rows: int, triplets: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((rows, dim), dtype=np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return features, rng.integers(0, rows, size=(triplets, 3))


def config_for(batch: int, steps: int) -> ml_collections.ConfigDict:
    config = train_lib.default_train_config()
    config.update(num_steps=steps, batch_size=batch, num_devices=0, log_every=1)
    config.update(checkpoint_every=10**9, keep_checkpoints=1, seed=0, mode="offline", epochs=0)
    config.optimizer.update(name="adam", learning_rate=1e-6)
    config.model = ml_collections.ConfigDict(
        dict(hidden_sizes=HIDDEN, embedding_dim=EMBEDDING, activation="tanh")
    )
    config.loss = ml_collections.ConfigDict(dict(margin=1.0, l2_regularization=0.0))
    return config


def jax_triplets_per_second(features, triplets, batch: int, steps: int, warmup: int) -> float:
    """Steady-state rate of the toolkit's loop, from the time each step's metrics arrive."""
    config = config_for(batch, warmup + steps)
    task = dml_training.OfflineTripletTask(features, triplets, config)
    stamps: list[float] = []

    def clock(model, step):
        del model, step
        stamps.append(time.perf_counter())
        return {}

    config.eval_every = 1  # the callback runs after each step's metrics were fetched
    with tempfile.TemporaryDirectory() as workdir:
        train_lib.train(task, config, workdir, evaluate=clock)
    return batch * steps / (stamps[-1] - stamps[warmup - 1])


def torch_triplets_per_second(features, triplets, batch: int, steps: int, warmup: int) -> float:
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

    def step(i: int) -> None:
        rows = triplets[(i * batch + np.arange(batch)) % len(triplets)]
        x = torch.from_numpy(features[rows.T.reshape(-1)])
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
    parser.add_argument("--batch", type=int, default=1000, help="triplets a step")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    args = parser.parse_args()
    import jax
    import torch

    features, triplets = make_data(args.dim, args.rows, args.batch * (args.steps + args.warmup))
    print(
        f"DML {args.dim}-{'-'.join(map(str, HIDDEN))}-{EMBEDDING}, {args.batch} triplets a step, "
        f"{args.steps} timed steps after {args.warmup}; jax {jax.__version__} on "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), torch {torch.__version__} "
        f"with {torch.get_num_threads()} threads",
        flush=True,
    )
    ours = jax_triplets_per_second(features, triplets, args.batch, args.steps, args.warmup)
    print(f"ndvr_jax (train_lib): {ours:10.1f} triplets/s", flush=True)
    theirs = torch_triplets_per_second(features, triplets, args.batch, args.steps, args.warmup)
    print(f"PyTorch (CPU)       : {theirs:10.1f} triplets/s", flush=True)
    print(f"ratio ndvr_jax / PyTorch: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
