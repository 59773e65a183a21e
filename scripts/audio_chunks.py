"""Cuts long audio files into evenly spaced chunks (16 kHz mono WAV) and writes their list, so
self-supervised AuSiL training (`configs/ausil_selfsup.py`) sees many distinct "videos" in a few
long recordings (for example a soundtrack album).

    python scripts/audio_chunks.py --out chunks/ --seconds 40 --per_file 4 'music/**/*.opus'

Each file gives up to `per_file` chunks of `seconds`, spread evenly over it (none overlap);
`<out>/videos.txt` lists `<stem>_<k>\\t<path>` lines.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np

from ndvr_jax.io.audio import decode_audio, encode_audio
from ndvr_jax.io.store import write_id_path_list

RATE = 16000


def chunk_starts(total: int, length: int, count: int) -> list[int]:
    """Up to `count` non-overlapping starts of `length` samples spread evenly over `total`."""
    count = min(count, total // length)
    if count <= 0:
        return []
    gap = (total - count * length) / count
    return [int(gap / 2 + i * (length + gap)) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="+", help="glob patterns of audio files")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--per_file", type=int, default=4)
    args = parser.parse_args()
    out = Path(args.out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    files = sorted({f for p in args.patterns for f in glob.glob(p, recursive=True)})
    entries, used = [], set()
    length = int(args.seconds * RATE)
    for path in files:
        samples = decode_audio(path, RATE).samples
        stem = Path(path).stem
        while stem in used:  # same names in different folders
            stem += "x"
        used.add(stem)
        for k, start in enumerate(chunk_starts(samples.size, length, args.per_file)):
            target = out / "audio" / f"{stem}_{k}.wav"
            chunk = samples[start : start + length]
            encode_audio(target, np.clip(chunk / max(np.abs(chunk).max(), 1e-6), -1, 1), RATE)
            entries.append((f"{stem}_{k}", str(target.resolve())))
    write_id_path_list(out / "videos.txt", entries)
    print(f"{len(entries)} chunks of {len(files)} files in {out / 'videos.txt'}")


if __name__ == "__main__":
    main()
