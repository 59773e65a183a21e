"""Exact dense top-k of the collection search against faiss `IndexFlatIP`, in one run.

    python benchmarks/bench_search.py [--n 1000000 --dim 512 --queries 1000 --k 100 \\
        --dtypes float32,bfloat16 --repeats 2 --latency 10000,100000,1000000]

Random unit vectors. Timed on the same data: `ndvr_jax.search.DenseIndex.search` (the database
prepared once and resident, as the query binary keeps it; the first call compiles and is
reported apart) and faiss `IndexFlatIP.search` (BLAS GEMM + heap, after `add`). Prints
queries/s, the ratio, preparation times, and the recall@k of each dtype against faiss's result;
then the approximate first stage (`--first_stage=faiss`: `--approximate` spec, `--nprobe`)
with its recall against the exact result, then the latency of one query's first stage (global
vector, k = `--k`) against `--latency` indexed videos (the index's 2,048-d EfficientNet-Lite0
global vectors: 8 KiB a video).
Needs `pip install faiss-cpu` (the `bench` extra).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `ndvr_jax` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peak import best_seconds  # noqa: E402
from ndvr_jax import search  # noqa: E402
from ndvr_jax.collection.approximate import FaissIndex  # noqa: E402


def recall_at_k(found: np.ndarray, reference: np.ndarray) -> float:
    """Mean share of each reference row's k indices that `found` has too."""
    k = reference.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, reference, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--latency", default="10000,100000,1000000")
    parser.add_argument("--latency_dtype", default="float32", help="or bfloat16 (half the memory)")
    parser.add_argument("--approximate", default="IVF1000,Flat", help="faiss spec ('' = skip)")
    parser.add_argument("--nprobe", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    database = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    database /= np.linalg.norm(database, axis=1, keepdims=True)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    start = time.perf_counter()
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(database)
    print(f"faiss IndexFlatIP: add {time.perf_counter() - start:.2f} s")
    reference = flat.search(queries, args.k)[1]
    faiss_s = best_seconds(lambda: flat.search(queries, args.k), args.repeats, warmup=False)
    print(f"faiss IndexFlatIP: {args.queries / faiss_s:8.1f} queries/s ({faiss_s:.2f} s)")
    for dtype in args.dtypes.split(","):
        start = time.perf_counter()
        index = search.DenseIndex(database, dtype=dtype, chunk_size=args.chunk)
        prepare = time.perf_counter() - start
        start = time.perf_counter()
        found = index.search(queries, args.k).index
        first = time.perf_counter() - start
        ours = best_seconds(
            lambda index=index: index.search(queries, args.k), args.repeats, warmup=False
        )
        recall = recall_at_k(found, reference)
        print(
            f"ndvr_jax DenseIndex {dtype:8s}: {args.queries / ours:8.1f} queries/s ({ours:.2f} s; "
            f"prepare {prepare:.2f} s, first call {first:.2f} s) = {faiss_s / ours:.2f}x faiss, "
            f"recall@{args.k} vs faiss {recall:.4f}"
        )

    if args.approximate:
        start = time.perf_counter()
        ids = [str(i) for i in range(args.n)]
        approximate = FaissIndex.open_or_build(
            tempfile.mkdtemp(), ids, database, args.approximate, args.nprobe
        )
        build = time.perf_counter() - start
        found = approximate.search(queries, args.k).index
        seconds = best_seconds(lambda: approximate.search(queries, args.k), args.repeats)
        recall = recall_at_k(found, reference)
        print(
            f"first_stage=faiss {args.approximate} nprobe {args.nprobe}: "
            f"{args.queries / seconds:8.1f} queries/s ({seconds:.2f} s; build {build:.1f} s) = "
            f"{faiss_s / seconds:.2f}x exact faiss, recall@{args.k} {recall:.4f}"
        )

    for size in [int(n) for n in args.latency.split(",") if n]:
        vectors = np.empty((size, 2048), np.float16)  # half the input memory: 4 GiB at 1 M
        for start in range(0, size, 65536):
            rows = min(65536, size - start)
            vectors[start : start + rows] = rng.standard_normal((rows, 2048), dtype=np.float32)
        index = search.DenseIndex(vectors, chunk_size=args.chunk, dtype=args.latency_dtype)
        del vectors
        query = rng.standard_normal((1, 2048), dtype=np.float32)
        k = min(args.k, size)
        index.search(query, k)
        seconds = best_seconds(
            lambda index=index, q=query, k=k: index.search(q, k), 5, warmup=False
        )
        print(
            f"one query's first stage against {size:9,d} videos ({args.latency_dtype}): "
            f"{1000 * seconds:8.2f} ms"
        )
        del index


if __name__ == "__main__":
    main()
