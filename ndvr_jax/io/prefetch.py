"""Stream the chunks of many items from background threads, in order, with bounded memory.

Decoding (PyAV) and file reading release the GIL, so a few threads keep the accelerator fed.
Each item's chunks (a video's frames, a chunk at a time) are produced in a thread of its own at
most `depth` chunks ahead of the reader; at most `num_workers` producers run at once, started in
input order, and at most `buffer_size` items are open ahead, so memory is bounded by chunks, not
by how long an item is. A failing item raises its exception to the reader of its chunks, where it
happened, and the stream goes on with the next item.

No read can hold the stream forever: with `stall_timeout`, an item whose next chunk takes longer
than that while the reader waits for it (a hung network mount, a decoder that never returns)
raises `StalledRead` to its reader and is abandoned: its slot goes to the next item and its
thread, a daemon, is left to finish or to die with the process.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

Item = TypeVar("Item")
Chunk = TypeVar("Chunk")

_END = object()
_POLL_S = 0.1


class StalledRead(TimeoutError):
    """An item produced no chunk within the time limit; `reason` names it in failure lists."""

    reason = "timeout"


@dataclasses.dataclass(frozen=True)
class _Raised:
    error: Exception


@dataclasses.dataclass
class _Job:
    """One item's producer: its output queue and its claim on a worker slot."""

    item: Any
    out: queue.Queue
    slots: threading.Semaphore
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    _holds_slot: bool = False
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def take_slot(self) -> None:
        with self._lock:
            self._holds_slot = True

    def release(self) -> None:
        """Gives the worker slot back (once, whoever calls first: the producer or the reader)."""
        with self._lock:
            if self._holds_slot:
                self._holds_slot = False
                self.slots.release()

    def abandon(self) -> None:
        self.cancelled.set()
        self.release()


def prefetch_chunks(
    chunks: Callable[[Item], Iterable[Chunk]],
    items: Iterable[Item],
    num_workers: int = 2,
    buffer_size: int = 4,
    depth: int = 2,
    stall_timeout: float | None = None,
) -> Iterator[tuple[Item, Iterator[Chunk]]]:
    """Yields `(item, iterator over chunks(item))` in input order (module docstring).

    Read each item's iterator before asking for the next item, or its producer holds a worker.
    """
    stop = threading.Event()
    slots = threading.Semaphore(max(1, num_workers))
    jobs: queue.Queue = queue.Queue()
    dispatcher = threading.Thread(target=_dispatch, args=(chunks, jobs, stop), daemon=True)
    dispatcher.start()
    started: list[_Job] = []
    pending: collections.deque[_Job] = collections.deque()
    try:
        for item in items:
            job = _Job(item, queue.Queue(max(1, depth)), slots)
            jobs.put(job)
            started.append(job)
            pending.append(job)
            if len(pending) > buffer_size:
                first = pending.popleft()
                yield first.item, _consume(first, stall_timeout)
        while pending:
            first = pending.popleft()
            yield first.item, _consume(first, stall_timeout)
    finally:
        stop.set()  # a reader that stopped early: producers give up instead of blocking
        jobs.put(None)
        dispatcher.join()
        for job in started:  # wait for the live ones; an abandoned read may never return
            if job.thread is not None and not job.cancelled.is_set():
                job.thread.join()


def _dispatch(chunks, jobs: queue.Queue, stop: threading.Event) -> None:
    """Starts the jobs' producers in order, each once a worker slot is free."""
    while (job := jobs.get()) is not None:
        while not job.slots.acquire(timeout=_POLL_S):
            if stop.is_set():
                return
        if stop.is_set():
            job.slots.release()
            return
        job.take_slot()
        job.thread = threading.Thread(target=_produce, args=(chunks, job, stop), daemon=True)
        job.thread.start()


def _produce(chunks, job: _Job, stop: threading.Event) -> None:
    try:
        for chunk in chunks(job.item):
            if not _put(job, chunk, stop):
                return
        _put(job, _END, stop)
    except Exception as e:  # noqa: BLE001 - handed to the reader, who logs and goes on
        _put(job, _Raised(e), stop)
    finally:
        job.release()


def _put(job: _Job, value, stop: threading.Event) -> bool:
    """Puts `value` when there is room; False if the reader went away or gave up first."""
    while not (stop.is_set() or job.cancelled.is_set()):
        try:
            job.out.put(value, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _consume(job: _Job, stall_timeout: float | None) -> Iterator:
    while True:
        try:
            value = job.out.get(timeout=stall_timeout)
        except queue.Empty:
            job.abandon()
            raise StalledRead(f"no data for {stall_timeout:g} s: the read was abandoned") from None
        if value is _END:
            return
        if isinstance(value, _Raised):
            raise value.error
        yield value
