"""Localisation speed: the jitted VFRM scan vs a plain Python/numpy loop of the same recurrence,
and the cost of database-wide localisation as the database grows.

    python benchmarks/bench_localize.py [--sizes 10,100,1000 --repeats 3]

1. VFRM: `--queries` queries of `--frames` frames against `--candidates` candidates of
   `--ref_frames` frames (random similarities). `ndvr_jax.pdvr.vfrm.run_vfrm` (jitted
   `lax.scan`, best of `--repeats` after a compiling call) against `vfrm_reference` (loops over
   queries, frames and candidates, numpy over reference positions); outputs checked to agree.
   Rates are query frames per second (each against every candidate).
2. Database size: synthetic databases of N videos × 60 frames (256-d); `--queries` compilations
   of three spans of database videos (noise added). Timed separately: the candidate stage
   (k-NN of every query frame over all database frames with `search_top_k`, votes) and the
   localisation stage (VFRM on the top 5 candidates of every query), best of `--repeats`.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import ml_collections
import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` and `ndvr_jax` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peak import best_seconds  # noqa: E402
from ndvr_jax.config_files import load_config_file  # noqa: E402
from ndvr_jax.pdvr.candidates import vote_candidates  # noqa: E402
from ndvr_jax.pdvr.localize import Localizer, Video, normalise  # noqa: E402
from ndvr_jax.pdvr.stitching import synthetic_videos  # noqa: E402
from ndvr_jax.pdvr.vfrm import MISSING, default_params, run_vfrm, vfrm_reference  # noqa: E402


def bench_vfrm(args) -> None:
    rng = np.random.default_rng(0)
    shape = (args.queries, args.frames, args.candidates, args.ref_frames)
    sims = rng.uniform(-0.2, 1.0, shape).astype(np.float32)
    mask = np.ones((args.queries, args.candidates, args.ref_frames), bool)
    cut = rng.uniform(0, 0.2, (args.queries, args.frames)).astype(np.float32)
    params = default_params()
    start = time.perf_counter()
    score, position = run_vfrm(params, sims, mask, cut)
    compile_s = time.perf_counter() - start
    jax_s = best_seconds(lambda: run_vfrm(params, sims, mask, cut), args.repeats, warmup=False)
    start = time.perf_counter()
    want_score, want_position = vfrm_reference(params, sims, mask, cut)
    loop_s = time.perf_counter() - start
    real = want_score > MISSING / 2
    assert np.allclose(score[real], want_score[real], rtol=1e-4, atol=1e-3)
    assert np.mean(position == want_position) > 0.999
    frames = args.queries * args.frames
    print(f"VFRM {shape} (queries, frames, candidates, reference frames)")
    print(
        f"  jitted scan : {frames / jax_s:12,.0f} frames/s  ({jax_s * 1e3:.1f} ms; first call "
        f"with compile {compile_s:.2f} s)"
    )
    print(f"  numpy loop  : {frames / loop_s:12,.0f} frames/s  ({loop_s:.2f} s)")
    print(f"  ratio       : {loop_s / jax_s:12,.0f}x")


def _config() -> ml_collections.ConfigDict:
    here = os.path.dirname(os.path.abspath(__file__))
    config = load_config_file(os.path.join(here, "..", "configs", "localize_demo.py"))
    config.vfrm.fit_steps = 0
    return config


def bench_database(args) -> None:
    config = _config()
    rng = np.random.default_rng(1)
    print("database size (videos × 60 frames)  candidate stage  localisation  total  found")
    for size in [int(s) for s in args.sizes.split(",")]:
        db = synthetic_videos(size, 60, 256, seed=size)
        picks = [rng.choice(size, 3, replace=size < 3) for _ in range(args.queries)]
        queries = []
        for pick in picks:
            parts = [db[i][s : s + 20] for i, s in zip(pick, rng.integers(0, 40, 3), strict=True)]
            x = np.concatenate(parts)
            x = x + rng.normal(scale=0.3 / 16, size=x.shape)
            queries.append(x / np.linalg.norm(x, axis=1, keepdims=True))
        times = np.arange(60, dtype=float)
        localizer = Localizer(config, [Video(f"v{i}", v, times) for i, v in enumerate(db)])
        frames = [normalise(q, localizer.mean) for q in queries]
        c = config.candidates
        vote = functools.partial(
            vote_candidates,
            frames,
            localizer.database,
            k=c.k,
            num_candidates=c.num_candidates,
            min_votes=c.min_votes,
            mesh=localizer.mesh,
        )
        candidates = vote()
        localizer.vfrm(queries, candidates)  # compile
        vote_s = best_seconds(vote, args.repeats, warmup=False)
        align_s = best_seconds(
            functools.partial(localizer.vfrm, queries, candidates), args.repeats, warmup=False
        )
        found = localizer.vfrm(queries, candidates)
        hits = sum(
            len({s.source for s in f} & set(p.tolist())) for f, p in zip(found, picks, strict=True)
        )
        print(
            f"{size:>10,}  {vote_s * 1e3:13.1f} ms  {align_s * 1e3:9.1f} ms  "
            f"{(vote_s + align_s) * 1e3:7.1f} ms  {hits}/{3 * args.queries}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--candidates", type=int, default=5)
    parser.add_argument("--ref_frames", type=int, default=60)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bench_vfrm(args)
    bench_database(args)


if __name__ == "__main__":
    main()
