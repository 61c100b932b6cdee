"""Group commit: concurrent callers' changes of one Neutron object written together, one write at a time."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclasses.dataclass
class _Entry(Generic[T]):
    item: T
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Concurrent callers' items go to Neutron together, one write at a time, at most ``max_batch`` per write.

    Neutron serialises changes of one trunk (or one port) anyway: parallel calls only queue up there and time
    out. Here the first caller that finds no write in progress writes everything waiting; the others wait for
    their result. ``write(items)`` returns one error (or None) per item.
    """

    def __init__(self, write: Callable[[list[T]], list[BaseException | None]], max_batch: int):
        self._write, self._max = write, max_batch
        self._cond = threading.Condition()
        self._queue: list[_Entry[T]] = []
        self._busy = False

    def submit(self, item: T) -> None:
        entry = _Entry(item)
        with self._cond:
            self._queue.append(entry)
        while True:
            with self._cond:
                while not entry.done and self._busy:
                    self._cond.wait()
                if entry.done:
                    break
                batch, self._queue = self._queue[:self._max], self._queue[self._max:]
                self._busy = True
            try:
                errors = self._write([e.item for e in batch])
            except BaseException as exc:
                errors = [exc] * len(batch)
            with self._cond:
                for each, error in zip(batch, errors, strict=True):
                    each.done, each.error = True, error
                self._busy = False
                self._cond.notify_all()
        if entry.error is not None:
            raise entry.error
