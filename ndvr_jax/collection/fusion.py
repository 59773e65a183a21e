"""Scores that mean something, and one score per pair from pictures and sound.

Calibration: each modality's raw similarity s becomes the probability that the pair is a copy
in that modality, `p = sigmoid(a·s + b)` (Platt scaling), fitted by `fit_calibration` on
annotated pairs (visual: ND/DS relevance; audio: DA). A threshold of 0.5 on a calibrated score is
the decision with equal error costs.

Fusion rules (`fuse`), with p_v, p_a the calibrated visual and audio probabilities (a missing
modality, e.g. a silent video, counts as no evidence: p_a = 0):
  visual        p_v                         picture copies only
  audio         p_a                         sound copies only (a shared song is a match)
  any           1 − (1 − p_v)(1 − p_a)      copies by picture or by sound
  corroborate   p_v + (1 − p_v)·p_v·p_a     the default: sound raises the confidence of a
                                            picture match but never makes one alone, so two
                                            videos that share only a popular song are not
                                            duplicates
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from ndvr_jax.io.atomic import save_json_atomic

RULES = ("visual", "audio", "any", "corroborate")
DEFAULT_CALIBRATION = Path(__file__).with_name("calibration.json")


@dataclasses.dataclass(frozen=True)
class Calibration:
    """`p = sigmoid(slope · s + intercept)` of one modality's raw similarity."""

    slope: float
    intercept: float

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        z = self.slope * np.asarray(scores, np.float64) + self.intercept
        return (1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).astype(np.float32)

    def threshold(self, probability: float = 0.5) -> float:
        """The raw similarity at which the calibrated probability is `probability`."""
        return float((np.log(probability / (1 - probability)) - self.intercept) / self.slope)


def fit_calibration(
    scores: np.ndarray, labels: np.ndarray, l2: float = 1e-3, steps: int = 100
) -> Calibration:
    """Logistic regression of `labels` (0/1) on `scores` by Newton's method (a tiny ridge term
    keeps it finite on separable data)."""
    s = np.asarray(scores, np.float64).ravel()
    y = np.asarray(labels, np.float64).ravel()
    if s.shape != y.shape or not len(s) or y.min() == y.max():
        raise ValueError("calibration needs matching scores and labels with both classes")
    x = np.stack([s, np.ones_like(s)], axis=1)
    w = np.zeros(2)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -60, 60)))
        gradient = x.T @ (p - y) + l2 * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return Calibration(float(w[0]), float(w[1]))


def fuse(p_visual: np.ndarray, p_audio: np.ndarray | None, rule: str = "corroborate") -> np.ndarray:
    """One probability per pair from the calibrated per-modality ones (module docstring)."""
    if rule not in RULES:
        raise ValueError(f"fusion rule must be one of {RULES}, got {rule!r}")
    p_v = np.asarray(p_visual, np.float32)
    p_a = np.zeros_like(p_v) if p_audio is None else np.nan_to_num(np.asarray(p_audio, np.float32))
    if rule == "visual":
        return p_v
    if rule == "audio":
        return p_a
    if rule == "any":
        return 1 - (1 - p_v) * (1 - p_a)
    return p_v + (1 - p_v) * p_v * p_a


def save_calibrations(
    path: str | os.PathLike, calibrations: dict[str, Calibration], **meta
) -> None:
    save_json_atomic(path, {**meta, **{k: dataclasses.asdict(c) for k, c in calibrations.items()}})


def load_calibrations(path: str | os.PathLike = DEFAULT_CALIBRATION) -> dict[str, Calibration]:
    """`{"visual": Calibration, "audio": Calibration}` of a calibration JSON, plus
    `"audio+landmarks"` (AuSiL's score with the landmark score added) where it has one."""
    data = json.loads(Path(path).read_text())
    names = ("visual", "audio", "audio+landmarks")
    return {k: Calibration(**data[k]) for k in names if k in data or k != names[-1]}


def modality_calibrations(
    calibrations: dict[str, Calibration], landmarks: bool
) -> dict[str, Calibration]:
    """The `visual` and `audio` calibrations that apply: with `landmarks` (the audio score has
    the landmark score added), `audio+landmarks` as `audio` where there is one."""
    audio = calibrations.get("audio+landmarks") if landmarks else None
    return {"visual": calibrations["visual"], "audio": audio or calibrations["audio"]}
