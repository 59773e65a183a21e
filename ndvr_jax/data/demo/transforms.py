"""Visual copy transformations.

Each transformation is `apply(image, t, params) -> image` on float32 `[H, W, 3]` frames in [0, 1]
(`t` is the copy's own time in seconds, for time-varying ones) plus a sampler that draws its
parameters from a seeded generator. Parameters are plain JSON values, rounded, so the manifest
records exactly what was applied. Some change the frame size (crop, border, picture-in-picture);
the copy is resized to its output size afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import gaussian_filter, rotate

from .media import load_logo
from .shots import Procedural, resize

Params = dict[str, Any]
_CAPTIONS = ("BREAKING NEWS", "EXCLUSIVE", "LIVE", "www.example-tv.test", "REPLAY", "viral clip")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _r(x: float) -> float:
    return round(float(x), 3)


def _crop(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    h, w = image.shape[:2]
    ch, cw = round(h * p["keep_h"]), round(w * p["keep_w"])
    y0, x0 = round((h - ch) * p["v"]), round((w - cw) * p["u"])
    return image[y0 : y0 + ch, x0 : x0 + cw]


def _hflip(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    return image[:, ::-1]


def _color(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    gray = (image @ _LUMA)[..., None]
    image = gray + (image - gray) * p["saturation"]
    # hue rotation about the gray axis (Rodrigues' formula)
    angle = np.deg2rad(p["hue_deg"])
    k = np.ones((3, 3), np.float32) / 3
    cross = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], np.float32) / np.sqrt(3)
    rot = np.cos(angle) * np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * k
    image = image @ rot.T.astype(np.float32)
    image = (image - 0.5) * p["contrast"] + 0.5 + p["brightness"]
    return np.clip(image, 0.0, 1.0)


def _rotate(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    """Turned by `degrees` about the centre (same frame size, black corners)."""
    return np.clip(rotate(image, p["degrees"], axes=(1, 0), reshape=False, order=1), 0.0, 1.0)


def _gamma(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    return np.clip(image, 0.0, 1.0) ** np.float32(p["gamma"])


def _grayscale(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    return np.repeat((image @ _LUMA)[..., None], 3, axis=2)


def _blur(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    sigma = p["sigma"] * image.shape[0] / 240  # relative to a 240-line frame
    return gaussian_filter(image, (sigma, sigma, 0), mode="nearest")


def _noise(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    rng = np.random.default_rng([p["seed"], int(round(t * 1000))])
    noise = rng.standard_normal(image.shape, np.float32) * np.float32(p["std"])
    return np.clip(image + noise, 0.0, 1.0)


def _border(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    """Letterbox or pillarbox to the other common aspect ratio, inside a coloured frame."""
    h, w = image.shape[:2]
    aspect = 4 / 3 if w / h > 1.55 else 16 / 9
    canvas_h, canvas_w = (round(w / aspect), w) if w / h > aspect else (h, round(h * aspect))
    pad = round(p["frame"] * canvas_h)
    canvas = np.empty((canvas_h + 2 * pad, canvas_w + 2 * pad, 3), np.float32)
    canvas[:] = p["colour"]
    inner = canvas[pad : pad + canvas_h, pad : pad + canvas_w]
    inner[:] = 0.0
    y0, x0 = (canvas_h - h) // 2, (canvas_w - w) // 2
    inner[y0 : y0 + h, x0 : x0 + w] = image
    return canvas


def border_aspect(height: int, width: int) -> float:
    """Aspect ratio (width / height, frame excluded) that `border` gives a frame of this size."""
    return 4 / 3 if width / height > 1.55 else 16 / 9


def _pip(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    """The copy shrunk inside another (procedural) video, with a thin white edge."""
    h, w = image.shape[:2]
    canvas = Procedural(p["background_seed"]).frame(t, h, w)
    ph, pw = max(2, round(h * p["scale"])), max(2, round(w * p["scale"]))
    y0, x0 = round((h - ph) * p["v"]), round((w - pw) * p["u"])
    edge = max(1, h // 120)
    canvas[max(0, y0 - edge) : y0 + ph + edge, max(0, x0 - edge) : x0 + pw + edge] = 1.0
    canvas[y0 : y0 + ph, x0 : x0 + pw] = resize(image, ph, pw)
    return canvas


def _logo(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    h, w = image.shape[:2]
    size = max(4, round(w * p["width"]))
    logo = resize(load_logo(), size, size)
    margin = round(0.03 * w)
    y0 = margin if p["corner"] < 2 else h - size - margin
    x0 = margin if p["corner"] % 2 == 0 else w - size - margin
    alpha = logo[..., 3:] * np.float32(p["opacity"])
    out = image.copy()
    region = out[y0 : y0 + size, x0 : x0 + size]
    region[:] = region * (1 - alpha) + logo[..., :3] * alpha
    return out


@functools.cache
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def _text(image: np.ndarray, t: float, p: Params) -> np.ndarray:
    """A caption band at the bottom with a running clock, like a news channel's ticker."""
    h, w = image.shape[:2]
    band = max(8, round(h * 0.12))
    out = image.copy()
    out[h - band :] *= 0.35
    canvas = Image.fromarray((out[h - band :] * 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    seconds = int(t) + p["clock_offset"]
    label = f"{p['caption']}  {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    draw.text((round(0.03 * w), band // 8), label, fill=(255, 255, 90), font=_font(band * 3 // 4))
    out[h - band :] = np.asarray(canvas, np.float32) / 255
    return out


def _sample(rng: np.random.Generator, name: str) -> Params:
    u = lambda lo, hi: _r(rng.uniform(lo, hi))
    match name:
        case "crop":
            return {"keep_h": u(0.6, 0.85), "keep_w": u(0.6, 0.85), "u": u(0, 1), "v": u(0, 1)}
        case "color":
            return {
                "brightness": u(-0.12, 0.12),
                "contrast": u(0.7, 1.3),
                "saturation": u(0.4, 1.6),
                "hue_deg": u(-40, 40),
            }
        case "gamma":
            return {"gamma": _r(rng.choice([rng.uniform(0.55, 0.8), rng.uniform(1.25, 1.7)]))}
        case "blur":
            return {"sigma": u(1.2, 2.5)}
        case "rotate":
            return {"degrees": u(-8, 8)}
        case "noise":
            return {"std": u(0.03, 0.08), "seed": int(rng.integers(2**31))}
        case "border":
            return {"frame": u(0.02, 0.08), "colour": [u(0, 1), u(0, 1), u(0, 1)]}
        case "pip":
            return {
                "scale": u(0.35, 0.55),
                "u": u(0, 1),
                "v": u(0, 1),
                "background_seed": int(rng.integers(2**31)),
            }
        case "logo":
            return {"width": u(0.12, 0.22), "corner": int(rng.integers(4)), "opacity": u(0.5, 0.9)}
        case "text":
            return {
                "caption": str(rng.choice(_CAPTIONS)),
                "clock_offset": int(rng.integers(0, 86400)),
            }
        case _:
            return {}


TRANSFORMS: dict[str, Callable[[np.ndarray, float, Params], np.ndarray]] = {
    "crop": _crop,
    "hflip": _hflip,
    "rotate": _rotate,
    "color": _color,
    "gamma": _gamma,
    "grayscale": _grayscale,
    "blur": _blur,
    "noise": _noise,
    "border": _border,
    "pip": _pip,
    "logo": _logo,
    "text": _text,
}


def sample(name: str, rng: np.random.Generator) -> Params:
    """Draws the parameters of transformation `name`: `{"name": name, **params}`."""
    if name not in TRANSFORMS:
        raise KeyError(f"unknown transformation {name!r}; known: {sorted(TRANSFORMS)}")
    return {"name": name, **_sample(rng, name)}


def apply(spec: Params, image: np.ndarray, t: float) -> np.ndarray:
    """Applies one sampled transformation (`spec` from `sample`) to a frame at copy time `t`."""
    return TRANSFORMS[spec["name"]](image, t, spec)
