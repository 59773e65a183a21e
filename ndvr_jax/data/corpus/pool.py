"""The media of a `media.json` as the renderer's source pictures and sounds.

A picture with transparency (a cut-out) is cropped to its opaque part and put on white. A
picture with `tiles > 1` is cut into that many disjoint vertical strips, each its own unit
(`<name>#<k>`), so a large wallpaper gives several distinct shots. Pictures are float32 RGB in
[0, 1], downscaled to a long side <= `max_side`; sounds are mono float32 at `AUDIO_RATE`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ndvr_jax.data.demo.media import AUDIO_RATE
from ndvr_jax.io.audio import decode_audio

from .debian import package_root
from .sources import PICTURE_KINDS


class MediaPool:
    """Pictures and sounds by name, from the files a `media.json` describes."""

    def __init__(self, media: dict[str, Any], cache: str | Path | None = None):
        self.cache = Path(cache or media["cache"]).expanduser()
        self.files = {f["name"]: f for f in media["files"]}
        self.units: dict[str, tuple[str, int]] = {}  # picture unit -> (file name, tile)
        for f in media["files"]:
            if f["kind"] in PICTURE_KINDS:
                tiles = f.get("tiles", 1)
                for k in range(tiles):
                    self.units[f["name"] if tiles == 1 else f"{f['name']}#{k}"] = (f["name"], k)

    def __contains__(self, name: str) -> bool:
        return name in self.units or name in self.files

    def path(self, name: str) -> Path:
        f = self.files[name]
        return package_root(self.cache, f["package"]) / f["path"]

    def pictures(self) -> list[str]:
        return sorted(self.units)

    def sounds(self, kind: str) -> list[str]:
        return sorted(n for n, f in self.files.items() if f["kind"] == kind)

    def duration(self, name: str) -> float:
        return float(self.files[name]["duration"])

    def group(self, name: str) -> str:
        return self.files[self.units[name][0] if name in self.units else name]["group"]

    @functools.lru_cache(maxsize=512)  # noqa: B019 (one pool per build)
    def picture(self, name: str, max_side: int) -> np.ndarray:
        """A picture unit as float32 RGB `[H, W, 3]` with a long side <= `max_side`."""
        file_name, k = self.units[name]
        tiles = self.files[file_name].get("tiles", 1)
        with Image.open(self.path(file_name)) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "P"):  # a cut-out: its bounding box, over white
                image = image.convert("RGBA")
                box = image.getchannel("A").point(lambda a: 255 * (a > 25)).getbbox()
                if box:
                    pad = round(0.04 * max(box[2] - box[0], box[3] - box[1]))
                    image = image.crop((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad))
                white = Image.new("RGBA", image.size, (255, 255, 255, 255))
                image = Image.alpha_composite(white, image)
            image = image.convert("RGB")
            width = image.width // tiles
            image = image.crop((k * width, 0, (k + 1) * width, image.height))
            factor = min(1.0, max_side / max(image.size))
            size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
            image = image.resize(size, Image.Resampling.BOX) if factor < 1 else image
            return np.asarray(image, np.float32) / 255.0

    @functools.lru_cache(maxsize=8)  # noqa: B019 (music tracks are big)
    def sound(self, name: str) -> np.ndarray:
        """A sound file, mono float32 at `AUDIO_RATE`."""
        return decode_audio(self.path(name), AUDIO_RATE).samples.astype(np.float32)
