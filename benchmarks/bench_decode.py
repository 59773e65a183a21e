"""Decoding throughput: ndvr_jax (PyAV) vs OpenCV vs the ffmpeg CLI, one frame per second.

    python benchmarks/bench_decode.py [--seconds 60 --height 720 --repeats 3]

Writes a synthetic H.264 test clip (moving texture), then times each decoder sampling 1 frame/s
and scaling to 224 (ndvr-dml pad recipe for ours; plain resize for the others) and prints the
times and ratios. Needs the `bench` extra (opencv-python-headless, imageio-ffmpeg).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from ndvr_jax.io.video import decode_video


def write_clip(path: Path, seconds: int, height: int, fps: int = 25) -> None:
    """A moving random texture, H.264, so decoding does real work."""
    width = height * 16 // 9
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (height, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(seconds * fps):
            shift = (4 * i) % width
            frame = av.VideoFrame.from_ndarray(texture[:, shift : shift + width], format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def decode_pyav(path: Path) -> int:
    return len(decode_video(path, fps=1.0, size=224).frames)


def decode_opencv(path: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    rate = capture.get(cv2.CAP_PROP_FPS) or 25.0
    kept, index = 0, 0
    while True:
        ok = capture.grab()
        if not ok:
            break
        if index % round(rate) == 0:
            _, frame = capture.retrieve()
            cv2.resize(frame, (224, 126))
            kept += 1
        index += 1
    capture.release()
    return kept


def decode_ffmpeg_cli(path: Path) -> int:
    import imageio_ffmpeg

    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
        "-vf", "fps=1,scale=224:-2", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    ]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True).stdout
    return len(out) // (224 * 126 * 3)


def best_time(fn, path: Path, repeats: int) -> tuple[float, int]:
    times, frames = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        frames = fn(path)
        times.append(time.perf_counter() - start)
    return min(times), frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        write_clip(clip, args.seconds, args.height)
        print(f"clip: {args.seconds}s {args.height}p H.264 at 25 fps, 1 frame/s sampled")
        results = {
            name: best_time(fn, clip, args.repeats)
            for name, fn in [
                ("ndvr_jax (PyAV)", decode_pyav),
                ("OpenCV", decode_opencv),
                ("ffmpeg CLI", decode_ffmpeg_cli),
            ]
        }
    ours = results["ndvr_jax (PyAV)"][0]
    for name, (seconds, frames) in results.items():
        speedup = seconds / ours
        print(f"{name:18s} {seconds:6.2f} s  {frames:3d} frames  ndvr_jax speed-up {speedup:.2f}x")


if __name__ == "__main__":
    main()
