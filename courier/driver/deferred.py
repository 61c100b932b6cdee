"""Neutron deletes that Docker will not ask for again, finished in the background once Neutron is back.

Docker ignores a failed ReleaseAddress or ReleasePool (it logs a warning and forgets the address or pool), and a
failed CreateNetwork is rolled back by Courier alone. Were such a delete simply dropped while Neutron is
unavailable, the port, subnet, subnetpool or network would stay in Neutron for good. Here it is retried with
capped backoff until it succeeds or Neutron says it is gone.

While deletes are pending, a new one goes straight to the back of the queue instead of being tried first:
Neutron has just failed, and waiting for it again (up to ``[courier] neutron_timeout`` when it hangs) would
only delay Docker's reply; it also keeps deletes in order (a subnet before its subnetpool).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from courier.exceptions import Conflict, CourierError, NeutronUnavailable, NotFound

LOG = logging.getLogger(__name__)

FIRST_DELAY = 0.5
MAX_DELAY = 30.0
CONFLICT_ATTEMPTS = 20  # "in use": something else must go first (queued before, or Docker's next call)


class Deferred:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[tuple[str, Callable[[], None]]] = collections.deque()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def delete(self, what: str, call: Callable[[], None]) -> bool:
        """Run ``call`` now, or queue it if Neutron is unavailable. True when it ran now (or was already gone)."""
        with self._cond:
            queue_first = bool(self._queue) or self._busy
        if not queue_first:
            try:
                call()
                return True
            except NotFound:
                return True
            except NeutronUnavailable as exc:
                LOG.warning("%s: %s; will retry in the background", what, exc)
        self.defer(what, call)
        return False

    def defer(self, what: str, call: Callable[[], None]) -> None:
        with self._cond:
            if self._closed:
                LOG.error("not retrying %s: shutting down", what)
                return
            self._queue.append((what, call))
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deferred-deletes", daemon=True)
                self._thread.start()

    def pending(self) -> list[str]:
        with self._cond:
            return [what for what, _ in self._queue]

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            if self._queue:
                LOG.warning("stopping with %d Neutron deletes not done: %s", len(self._queue),
                            "; ".join(what for what, _ in self._queue))
            self._cond.notify_all()

    def _run(self) -> None:
        delay, conflicts = FIRST_DELAY, 0
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                what, call = self._queue[0]
                self._busy = True
            done = True
            try:
                call()
                LOG.info("%s: done", what)
            except NotFound:
                pass
            except NeutronUnavailable as exc:
                LOG.info("%s: still failing (%s); next try in %.1fs", what, exc, delay)
                done = False
            except Conflict as exc:
                conflicts += 1
                done = conflicts >= CONFLICT_ATTEMPTS
                (LOG.error if done else LOG.info)("%s: %s%s", what, exc, "; giving up" if done else "")
            except CourierError as exc:
                LOG.error("%s: %s; giving up", what, exc)
            except Exception:
                LOG.exception("%s failed; giving up", what)
            with self._cond:
                if done:
                    self._queue.popleft()
                    delay, conflicts = FIRST_DELAY, 0
                self._busy = False
                self._cond.notify_all()
                if not done:
                    self._cond.wait(delay)
                    delay = min(delay * 2, MAX_DELAY)
