"""Tiny synthetic videos for tests, written with PyAV."""

from __future__ import annotations

import av
import numpy as np


def write_test_video(
    path,
    seconds: float = 3.0,
    fps: int = 10,
    width: int = 96,
    height: int = 64,
    codec: str = "mpeg4",
) -> np.ndarray:
    """Writes a clip whose frame i is filled with value 10*i (mod 250); returns the frames."""
    frames = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * fps)):
            image = np.full((height, width, 3), (10 * i) % 250, np.uint8)
            image[:, : width // 4] = 255  # a bright left band to check orientation
            frames.append(image)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return np.stack(frames)
