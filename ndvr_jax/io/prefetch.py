"""Run a loader over a list of items in background threads, yielding results in order.

Decoding (PyAV) and file reading release the GIL, so a few threads keep the accelerator fed.
A failing item yields its exception instead of stopping the stream.
"""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def prefetch_map(
    fn: Callable[[Item], Result],
    items: Iterable[Item],
    num_workers: int = 2,
    buffer_size: int = 4,
) -> Iterator[tuple[Item, Result | Exception]]:
    """Yields `(item, fn(item))`, or `(item, exception)`, in input order, `buffer_size` ahead."""
    with concurrent.futures.ThreadPoolExecutor(max(1, num_workers)) as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) > buffer_size:
                yield _resolve(*pending.popleft())
        while pending:
            yield _resolve(*pending.popleft())


def _resolve(item, future: concurrent.futures.Future):
    try:
        return item, future.result()
    except Exception as e:  # noqa: BLE001 - handed to the caller, who logs and goes on
        return item, e
