"""The machine's measured float32 (and bfloat16) matmul peak, numpy and JAX.

    python benchmarks/peak.py [--n 2048]

Other benchmarks report achieved GFLOP/s as a share of the peak measured here.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np


def best_seconds(fn, repeats: int = 5, warmup: bool = True) -> float:
    """The fastest of `repeats` timed calls of `fn` (after one untimed call if `warmup`)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def numpy_peak(n: int) -> float:
    """GFLOP/s of an n×n float32 matmul in numpy (BLAS)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / best_seconds(lambda: a @ a) / 1e9


def jax_peak(n: int, dtype=jnp.float32) -> float:
    """GFLOP/s of an n×n matmul under jax.jit in `dtype` (float32 accumulation)."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)), dtype)
    matmul = jax.jit(lambda x: jnp.dot(x, x, preferred_element_type=jnp.float32))
    return 2 * n**3 / best_seconds(lambda: matmul(a).block_until_ready()) / 1e9


def measured_peak(n: int = 2048) -> float:
    """The best float32 matmul rate on this machine (numpy or JAX), GFLOP/s."""
    return max(numpy_peak(n), jax_peak(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048)
    args = parser.parse_args()
    print(f"numpy float32 matmul: {numpy_peak(args.n):7.1f} GFLOP/s")
    print(f"jax   float32 matmul: {jax_peak(args.n):7.1f} GFLOP/s")
    print(f"jax   bf16    matmul: {jax_peak(args.n, jnp.bfloat16):7.1f} GFLOP/s")


if __name__ == "__main__":
    main()
