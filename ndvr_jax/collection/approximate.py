"""FAISS as an approximate first stage, for collections whose exact scan is too slow.

Optional: `pip install 'ndvr-jax[faiss]'` (faiss-cpu). The FAISS index is built from an opened
index's global vectors (L2-normalised, inner product = cosine) with a `faiss.index_factory`
spec, saved in `<index>/faiss/` next to a key naming the rows it holds, and read back with
memory mapping while the key still matches the catalogue's usable rows; any `add` or `remove`
changes the key, and the next query rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np
from absl import logging

from ndvr_jax import search
from ndvr_jax.io.atomic import atomic_write, save_json_atomic

FOLDER = "faiss"


def _faiss():
    try:
        import faiss  # noqa: PLC0415 - optional dependency, imported only when asked for
    except ImportError:
        raise ImportError(
            "--first_stage=faiss needs faiss: pip install 'ndvr-jax[faiss]' (faiss-cpu)"
        ) from None
    return faiss


def resolve_spec(spec: str, num_vectors: int) -> str:
    """`spec` as given, or for "auto": exact `Flat` under 10,000 vectors, else an inverted file
    with about 4·√N lists (FAISS's rule of thumb; each list trained on ≥ 39 vectors)."""
    if spec != "auto":
        return spec
    if num_vectors < 10_000:
        return "Flat"
    return f"IVF{min(int(4 * math.sqrt(num_vectors)), num_vectors // 39)},Flat"


def rows_key(ids: list[str], vectors: np.ndarray, spec: str) -> str:
    """A digest of the rows (ids in order, their vectors) and the spec a FAISS index holds."""
    digest = hashlib.sha256(spec.encode())
    digest.update("\0".join(ids).encode("utf-8", "surrogateescape"))
    digest.update(np.ascontiguousarray(vectors, np.float32).tobytes())
    return digest.hexdigest()


class FaissIndex:
    """An approximate cosine top-k over an index's global vectors (see the module docstring)."""

    def __init__(self, index, spec: str, nprobe: int):
        self._index, self.spec = index, spec
        if hasattr(index, "nprobe"):
            index.nprobe = nprobe

    @classmethod
    def open_or_build(
        cls, folder: str | os.PathLike, ids: list[str], vectors: np.ndarray, spec: str = "auto",
        nprobe: int = 16,
    ) -> FaissIndex:  # fmt: skip
        """The saved FAISS index of these rows, or a new one built and saved (atomically)."""
        faiss = _faiss()
        spec = resolve_spec(spec, len(vectors))
        vectors = np.asarray(search.l2_normalize(np.asarray(vectors, np.float32)))
        root = Path(folder) / FOLDER
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", spec)
        path, key_path = root / f"{name}.faiss", root / f"{name}.json"
        key = rows_key(ids, vectors, spec)
        if path.is_file() and key_path.is_file() and json.loads(key_path.read_text()) == key:
            return cls(faiss.read_index(str(path), faiss.IO_FLAG_MMAP), spec, nprobe)
        logging.info("building the FAISS index %s over %d vectors", spec, len(vectors))
        index = faiss.index_factory(vectors.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            index.train(vectors)
        index.add(vectors)
        root.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as f:
            f.write(faiss.serialize_index(index).tobytes())
        save_json_atomic(key_path, key)
        return cls(index, spec, nprobe)

    def search(self, queries: np.ndarray, k: int) -> search.TopK:
        """The (approximately) k most similar rows per query, best first; missing ones are -1."""
        queries = np.asarray(search.l2_normalize(np.asarray(queries, np.float32)))
        similarity, index = self._index.search(queries, k)
        return search.TopK(similarity.astype(np.float32), index.astype(np.int32))
