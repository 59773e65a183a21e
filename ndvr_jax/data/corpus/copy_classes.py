"""The test set's copy transformations: visual and audio classes, with parameters drawn from
ranges that differ from the demo benchmark's (`ndvr_jax.data.demo.transforms`) and from AuSiL's
training augmentations (`ndvr_jax.ausil.augment.AudioAugmentConfig`), so that nothing here was
seen while training or tuning.

A visual class is a recipe (transformations, speed, frame rate, sub-clip, size, profile,
picture-in-picture mode); an audio class is a list of `audio_ops` specs (and a speed change).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Params = dict[str, Any]
CAPTIONS = ("ULTIMAS NOTICIAS", "EN DIRECT", "watch.example.org", "MUST SEE", "SPORT 24", "HD")

VISUAL_CLASSES: dict[str, dict[str, Any]] = {
    "crop": {"transforms": ("crop",)},
    "hflip": {"transforms": ("hflip",)},
    "rotate": {"transforms": ("rotate",)},
    "letterbox": {"transforms": ("border",)},
    "text": {"transforms": ("text",)},
    "logo": {"transforms": ("logo",)},
    "blur": {"transforms": ("blur",)},
    "noise": {"transforms": ("noise",)},
    "gamma": {"transforms": ("gamma",)},
    "saturation": {"transforms": ("color",)},
    "grayscale": {"transforms": ("grayscale",)},
    "low_bitrate": {"profile": "mp4_low"},
    "frame_rate": {"fps": True},
    "speed": {"speed": True},
    "pip_inset": {"pip": "inset"},  # the source small inside foreign footage
    "pip_host": {"pip": "host"},  # foreign footage inset on the source
    "subclip": {"subclip": True},
    "mobile": {"size": (144, 176), "profile": "3gp"},
    "combo_geometric": {"transforms": ("crop", "rotate", "hflip")},
    "combo_photometric": {"transforms": ("gamma", "blur", "noise"), "profile": "mp4_low"},
    "combo_overlay": {"transforms": ("border", "logo", "text")},
    "combo_pip_speed": {"pip": "inset", "speed": True, "subclip": True},
}
AUDIO_CLASSES = (
    "speed_pitch",
    "tempo",
    "pitch",
    "band_300_3400",
    "mono_8k",
    "mp3_low",
    "aac_low",
    "opus_low",
    "compression",
    "eq",
    "echo",
    "noise",
    "mix_speech",
    "mix_music",
    "volume",
    "combo_radio",
    "combo_phone",
)


def _r(x: float) -> float:
    return round(float(x), 3)


def _either(rng: np.random.Generator, low: tuple[float, float], high: tuple[float, float]):
    return _r(rng.uniform(*(low if rng.random() < 0.5 else high)))


def visual_params(name: str, rng: np.random.Generator) -> Params:
    """`{"name": name, **params}` for the demo's transformation `name`, test-set ranges."""
    u = lambda lo, hi: _r(rng.uniform(lo, hi))
    seed = lambda: int(rng.integers(2**31))
    params = {
        "crop": lambda: {
            "keep_h": u(0.45, 0.6),
            "keep_w": u(0.45, 0.6),
            "u": u(0, 1),
            "v": u(0, 1),
        },
        "rotate": lambda: {"degrees": _either(rng, (-15, -9), (9, 15))},
        "border": lambda: {"frame": u(0.09, 0.15), "colour": [u(0, 1), u(0, 1), u(0, 1)]},
        "text": lambda: {
            "caption": str(rng.choice(CAPTIONS)),
            "clock_offset": int(rng.integers(0, 86400)),
        },
        "logo": lambda: {
            "width": u(0.23, 0.33),
            "corner": int(rng.integers(4)),
            "opacity": u(0.9, 1),
        },
        "blur": lambda: {"sigma": u(2.6, 4.0)},
        "noise": lambda: {"std": u(0.09, 0.13), "seed": seed()},
        "gamma": lambda: {"gamma": _either(rng, (0.4, 0.55), (1.75, 2.2))},
        "color": lambda: {
            "brightness": 0.0,
            "contrast": 1.0,
            "saturation": _either(rng, (0.05, 0.35), (1.7, 2.2)),
            "hue_deg": _either(rng, (-70, -45), (45, 70)),
        },
    }
    return {"name": name, **params.get(name, dict)()}


def speed_factor(rng: np.random.Generator) -> float:
    return _either(rng, (0.6, 0.7), (1.6, 1.8))


def pip_params(rng: np.random.Generator, mode: str) -> Params:
    scale = (0.25, 0.34) if mode == "inset" else (0.3, 0.45)
    return {
        "mode": mode,
        "scale": _r(rng.uniform(*scale)),
        "u": _r(rng.random()),
        "v": _r(rng.random()),
    }


def audio_effects(
    name: str, rng: np.random.Generator, speech: list[str], music: list[str]
) -> tuple[float, bool, list[Params]]:
    """(speed, keep_pitch, `audio_ops` specs) of audio class `name`; `speech` and `music` are
    pool sounds that may be mixed in (words are strung together)."""
    u = lambda lo, hi: _r(rng.uniform(lo, hi))
    seed = lambda: int(rng.integers(2**31))
    codec = lambda c, rates: {"name": "codec", "codec": c, "bit_rate": int(rng.choice(rates))}
    band = {"name": "band", "low_hz": 300.0, "high_hz": 3400.0}
    phone = {"name": "mono8k", "rate": 8000}
    noise = lambda lo, hi: {"name": "noise", "snr_db": u(lo, hi), "seed": seed()}
    speed, keep_pitch = 1.0, False
    match name:
        case "speed_pitch" | "tempo":
            speed, keep_pitch = _either(rng, (0.7, 0.8), (1.25, 1.35)), name == "tempo"
            effects = []
        case "pitch":
            effects = [{"name": "pitch", "semitones": _either(rng, (-5, -3), (3, 5))}]
        case "band_300_3400":
            effects = [band]
        case "mono_8k":
            effects = [phone]
        case "mp3_low":
            effects = [codec("mp3", (16000, 20000))]
        case "aac_low":
            effects = [codec("aac", (12000, 16000))]
        case "opus_low":
            effects = [codec("opus", (6000, 8000, 10000))]
        case "compression":
            effects = [{"name": "compress", "threshold_db": u(-48, -38), "ratio": u(14, 25)}]
        case "eq":
            g = lambda: _either(rng, (-18, -13), (13, 18))
            effects = [
                {
                    "name": "eq",
                    "bands": [
                        ["lowshelf", u(100, 300), g(), 0.707],
                        ["peak", u(600, 2500), g(), u(1, 3)],
                        ["highshelf", u(3000, 6000), g(), 0.707],
                    ],
                }
            ]
        case "echo":
            effects = [
                {
                    "name": "echo",
                    "delay_s": u(0.45, 0.8),
                    "decay": u(0.6, 0.8),
                    "reverb_s": u(1.2, 2.0),
                    "seed": seed(),
                }
            ]
        case "noise":
            effects = [noise(0, 5)]
        case "mix_speech" | "mix_music":
            pool = speech if name == "mix_speech" else music
            k = 12 if name == "mix_speech" else 1
            others = [pool[int(rng.integers(len(pool)))] for _ in range(k)]
            effects = [{"name": "mix", "others": others, "snr_db": u(0, 4), "seed": seed()}]
        case "volume":
            effects = [{"name": "volume", "gain_db": u(-26, -16)}]
        case "combo_radio":
            effects = [band, codec("mp3", (16000,)), noise(6, 10)]
        case "combo_phone":
            effects = [
                phone,
                codec("opus", (8000,)),
                {
                    "name": "echo",
                    "delay_s": u(0.45, 0.6),
                    "decay": u(0.5, 0.6),
                    "reverb_s": 0.0,
                    "seed": seed(),
                },
            ]
        case _:
            raise KeyError(f"unknown audio class {name!r}")
    return speed, keep_pitch, effects
