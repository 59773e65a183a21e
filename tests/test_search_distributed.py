"""Search over two `jax.distributed` CPU processes returns what one process returns."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

from ndvr_jax import search
from tests.distributed_search_worker import database_and_queries

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_each_holding_part_of_the_database_agree_with_one(tmp_path):
    port = _free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}  # fmt: skip
    outs = [tmp_path / f"process{i}.npz" for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.distributed_search_worker", str(i), str(port), str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for i, out in enumerate(outs)
    ]
    for worker in workers:
        log, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, log[-3000:]
    database, queries = database_and_queries()
    for metric in ("cosine", "distance"):
        alone = search.search_top_k(queries, database, 6, metric=metric, chunk_size=4)
        for out in outs:
            got = np.load(out)
            assert int(got["devices"]) == 4
            np.testing.assert_array_equal(got[f"{metric}_index"], alone.index)
            np.testing.assert_allclose(got[f"{metric}_similarity"], alone.similarity, atol=1e-6)
    cosine = queries @ database.T / np.linalg.norm(queries, axis=1)[:, None]
    cosine /= np.linalg.norm(database, axis=1)[None]
    expected = np.argsort(-cosine, axis=1, kind="stable")[:, :6]
    np.testing.assert_array_equal(np.load(outs[0])["cosine_index"], expected)
