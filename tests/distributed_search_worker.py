"""One process of the two-process search test: `python -m tests.distributed_search_worker
PROCESS_ID PORT OUT.npz`. Each process holds its own share of the database rows."""

import sys

import jax
import numpy as np

from ndvr_jax import search, sharding

SIZES = (20, 17)  # rows per process: uneven, so each block is padded differently


def database_and_queries() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(sum(SIZES), 8)).astype(np.float32), rng.normal(size=(5, 8))


def main(process_id: int, port: int, out: str) -> None:
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
    database, queries = database_and_queries()
    start = sum(SIZES[:process_id])
    rows = database[start : start + SIZES[process_id]]
    mesh = sharding.make_mesh()
    results = {}
    for metric in ("cosine", "distance"):
        top = search.DenseIndex(rows, metric=metric, chunk_size=4, mesh=mesh).search(queries, 6)
        results[f"{metric}_similarity"], results[f"{metric}_index"] = top
    np.savez(out, devices=jax.device_count(), **results)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
