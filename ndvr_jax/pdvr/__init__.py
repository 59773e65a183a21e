"""PDVR: which source videos, and which time spans, each part of a long query copies.

Modules: `boxes` (the box every aligner returns), `tn` and `dp` (VCSL's temporal-network and
dynamic-programming baselines), `vfrm` (the VFRM recurrence as a `lax.scan`), `segments`
(per-frame decisions to segments), `aligners` (aligners by name), `metrics` (VCSL and VSC segment
metrics, source detection), `evaluate` (scores of methods against ground truth), `stitching`
(training data from any feature list), `model` and `training` (the transition DNN and its
`TrainTask`), `candidates` (the k-NN candidate stage), `localize` (database-wide localisation),
`formats` and `timeline` (outputs), `demo` (the main job's localisation step).
"""
