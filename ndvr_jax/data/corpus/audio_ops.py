"""Audio copy operations for the test set's queries, as JSON specs applied to a copied span.

Each spec is `{"name": ..., **params}`; `apply` runs a list of them in order on a `[C, N]` track
at `AUDIO_RATE` (channel by channel, with the same seed), using the waveform operations of
`ndvr_jax.ausil.augment`. `mix` takes other sounds of the pool (words, strung together, or music).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ndvr_jax.ausil import augment
from ndvr_jax.data.demo.media import AUDIO_RATE

Spec = dict[str, Any]
R = AUDIO_RATE


def _rng(spec: Spec) -> np.random.Generator:
    return np.random.default_rng(spec.get("seed", 0))


def _joined(names: Sequence[str], sound: Callable[[str], np.ndarray]) -> np.ndarray:
    """Pool sounds one after another with 0.2 s pauses (spoken words become a sentence)."""
    pause = np.zeros(int(0.2 * R), np.float32)
    return np.concatenate([part for name in names for part in (sound(name), pause)])


_OPS: dict[str, Callable[[np.ndarray, Spec, Callable[[str], np.ndarray]], np.ndarray]] = {
    "pitch": lambda x, p, _: augment.pitch_shift(x, R, p["semitones"]),
    "band": lambda x, p, _: augment.band_limit(x, R, p["low_hz"], p["high_hz"]),
    "mono8k": lambda x, p, _: augment.telephone(x, R, p["rate"]),
    "codec": lambda x, p, _: augment.reencode(x, R, p["codec"], p["bit_rate"]),
    "compress": lambda x, p, _: augment.compress_dynamics(x, R, p["threshold_db"], p["ratio"]),
    "eq": lambda x, p, _: augment.equalize(x, R, [tuple(b) for b in p["bands"]]),
    "echo": lambda x, p, _: augment.echo(x, R, p["delay_s"], p["decay"], p["reverb_s"], _rng(p)),
    "noise": lambda x, p, _: augment.add_noise(x, p["snr_db"], _rng(p)),
    "mix": lambda x, p, sound: augment.mix(x, _joined(p["others"], sound), p["snr_db"], _rng(p)),
    "volume": lambda x, p, _: augment.change_volume(x, p["gain_db"]),
}
NAMES = tuple(_OPS)


def tempo(track: np.ndarray, rate: float, n: int) -> np.ndarray:
    """Time stretch by `rate` keeping the pitch, to exactly `n` samples."""
    out = [augment.change_tempo(ch, rate) for ch in track]
    return np.stack([np.pad(ch[:n], (0, max(0, n - ch.size))) for ch in out])


def apply(
    specs: Sequence[Spec], track: np.ndarray, sound: Callable[[str], np.ndarray]
) -> np.ndarray:
    """`track` `[C, N]` after every operation of `specs`; `sound(name)` gives pool sounds."""
    mono = any(spec["name"] == "mono8k" for spec in specs)
    channels = track.mean(axis=0, keepdims=True) if mono else track
    out = []
    for x in channels:
        for spec in specs:
            x = _OPS[spec["name"]](np.asarray(x, np.float32), spec, sound)
        out.append(np.pad(x[: track.shape[1]], (0, max(0, track.shape[1] - x.size))))
    out = np.stack(out)
    if mono:
        out = np.repeat(out, track.shape[0], axis=0)
    return np.clip(out, -1.0, 1.0).astype(np.float32)
