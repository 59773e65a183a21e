"""Builds the demo near-duplicate video benchmark (and, optionally, the broken-media set).

    python scripts/make_demo.py --out demo_data --seed 0 --size small
    python scripts/make_demo.py --out demo_tiny --size tiny --broken demo_tiny/broken

Same seed and size, same benchmark: a rebuild of a complete output is skipped, an interrupted
one resumes. See `ndvr_jax.data.demo` for the layout of the output.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    import ndvr_jax  # noqa: F401
except ImportError:  # running from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ndvr_jax.data.broken_media import make_broken_media  # noqa: E402
from ndvr_jax.data.demo import SIZES, build_demo_benchmark  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_data", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--broken", help="also write the broken-media set into this folder")
    parser.add_argument("--quiet", action="store_true", help="no line per video")
    args = parser.parse_args(argv)
    start = time.monotonic()
    manifest = build_demo_benchmark(
        args.out, seed=args.seed, size=args.size, verbose=not args.quiet
    )
    files = [p for p in manifest.parent.rglob("*") if p.is_file()]
    megabytes = sum(p.stat().st_size for p in files) / 2**20
    print(f"{manifest} ({len(files)} files, {megabytes:.1f} MiB, {time.monotonic() - start:.1f} s)")
    if args.broken:
        broken = make_broken_media(args.broken)
        print(f"{len(broken)} broken media files in {Path(args.broken).resolve()}")


if __name__ == "__main__":
    main()
