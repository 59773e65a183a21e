"""Stream the chunks of many items from background threads, in order, with bounded memory.

Decoding (PyAV) and file reading release the GIL, so a few threads keep the accelerator fed.
Each item's chunks (a video's frames, a chunk at a time) are produced in a worker thread at most
`depth` chunks ahead of the reader, and at most `buffer_size` items are open ahead, so memory is
bounded by chunks, not by how long an item is. A failing item raises its exception to the
reader of its chunks, where it happened, and the stream goes on with the next item.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")
Chunk = TypeVar("Chunk")

_END = object()
_POLL_S = 0.1


@dataclasses.dataclass(frozen=True)
class _Raised:
    error: Exception


def prefetch_chunks(
    chunks: Callable[[Item], Iterable[Chunk]],
    items: Iterable[Item],
    num_workers: int = 2,
    buffer_size: int = 4,
    depth: int = 2,
) -> Iterator[tuple[Item, Iterator[Chunk]]]:
    """Yields `(item, iterator over chunks(item))` in input order (module docstring).

    Read each item's iterator before asking for the next item, or its producer holds a worker.
    """
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
        pending: collections.deque = collections.deque()
        try:
            for item in items:
                out: queue.Queue = queue.Queue(max(1, depth))
                pool.submit(_produce, chunks, item, out, stop)
                pending.append((item, out))
                if len(pending) > buffer_size:
                    first, first_out = pending.popleft()
                    yield first, _consume(first_out)
            while pending:
                first, first_out = pending.popleft()
                yield first, _consume(first_out)
        finally:
            stop.set()  # a reader that stopped early: producers give up instead of blocking
            pool.shutdown(wait=True, cancel_futures=True)


def _produce(chunks, item, out: queue.Queue, stop: threading.Event) -> None:
    try:
        for chunk in chunks(item):
            if not _put(out, chunk, stop):
                return
        _put(out, _END, stop)
    except Exception as e:  # noqa: BLE001 - handed to the reader, who logs and goes on
        _put(out, _Raised(e), stop)


def _put(out: queue.Queue, value, stop: threading.Event) -> bool:
    """Puts `value` when there is room; False if the reader went away first."""
    while not stop.is_set():
        try:
            out.put(value, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _consume(out: queue.Queue) -> Iterator:
    while (value := out.get()) is not _END:
        if isinstance(value, _Raised):
            raise value.error
        yield value
