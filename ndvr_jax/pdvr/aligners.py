"""Aligners by name, all with one call on a query × reference similarity map:
`align(sim_map [Q, R]) -> list[Box]` in frame units (as VCSL's `vta.py` has one class per method).

`tn` and `dp` are VCSL's baselines; `vfrm` runs the VFRM recurrence with this one reference as
its only candidate (database-wide localisation runs it over many candidates at once, see
`ndvr_jax.pdvr.localize`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from ndvr_jax.pdvr.boxes import Box
from ndvr_jax.pdvr.dp import DynamicProgramming
from ndvr_jax.pdvr.segments import MergeRule, merge_segments
from ndvr_jax.pdvr.tn import TemporalNetwork
from ndvr_jax.pdvr.vfrm import DEFAULT_SHIFT_COSTS, VFRMParams, default_params, run_vfrm


class Aligner(Protocol):
    def align(self, sim_map: np.ndarray) -> list[Box]:
        """Copied boxes of one [Q, R] similarity map."""


@dataclasses.dataclass(frozen=True)
class VFRMAligner:
    """VFRM on one pair; `cut_prob` [Q] may give the query's transition probabilities."""

    params: VFRMParams = dataclasses.field(default_factory=default_params)
    shift_costs: tuple[float, ...] = DEFAULT_SHIFT_COSTS
    rule: MergeRule = MergeRule()

    def align(self, sim_map: np.ndarray, cut_prob: np.ndarray | None = None) -> list[Box]:
        sim_map = np.asarray(sim_map, np.float32)
        cut = np.zeros(len(sim_map), np.float32) if cut_prob is None else np.asarray(cut_prob)
        score, position = run_vfrm(
            self.params,
            sim_map[None, :, None, :],
            np.ones((1, 1, sim_map.shape[1]), bool),
            cut[None],
            self.shift_costs,
        )
        segments = merge_segments(score[0], position[0], self.rule)
        return [
            Box(s.query_start, s.query_end, s.source_start, s.source_end, s.score) for s in segments
        ]


ALIGNERS = {"tn": TemporalNetwork, "dp": DynamicProgramming, "vfrm": VFRMAligner}


def make_aligner(name: str, **options: Any) -> Aligner:
    """The aligner `name` (tn, dp, vfrm) with its dataclass fields overridden by `options`."""
    if name not in ALIGNERS:
        raise ValueError(f"unknown aligner {name!r}; choose from {sorted(ALIGNERS)}")
    return ALIGNERS[name](**options)
