"""Neutron deletes that Docker will not ask for again, finished in the background once Neutron is back.

Docker ignores a failed ReleaseAddress or ReleasePool (it logs a warning and forgets the address or pool), and a
failed CreateNetwork is rolled back by Courier alone. Were such a delete simply dropped while Neutron is
unavailable, the port, subnet, subnetpool or network would stay in Neutron for good. Here it is retried with
capped backoff until it succeeds or Neutron says it is gone.

A delete is tried at once (Neutron may well be back), except while Neutron is known to hang: then it goes
straight to the queue, as waiting ``[courier] neutron_timeout`` again would only delay Docker's reply. A delete
refused as "in use" while others are queued waits for them (a subnetpool for the subnet queued before it).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from courier.exceptions import Conflict, CourierError, NeutronTimeout, NeutronUnavailable, NotFound

LOG = logging.getLogger(__name__)

FIRST_DELAY = 0.5
MAX_DELAY = 30.0
HANG_MEMORY = 30.0  # seconds a timeout counts as "Neutron hangs" while deletes are queued
CONFLICT_ATTEMPTS = 20  # "in use": something else must go first (queued before, or Docker's next call)


class Deferred:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[tuple[str, Callable[[], None]]] = collections.deque()
        self._busy = False
        self._closed = False
        self._timed_out = -HANG_MEMORY  # when Neutron last timed out on a queued delete
        self._thread: threading.Thread | None = None

    def delete(self, what: str, call: Callable[[], None]) -> CourierError | None:
        """Run ``call`` now, or queue it while Neutron is unavailable. None when done (or already gone); else the
        error that made it wait, for the caller to report."""
        if self._hanging():
            self.defer(what, call)
            return NeutronTimeout(f"{what}: Neutron did not answer in time just now; retried in the background")
        try:
            call()
        except NotFound:
            pass
        except NeutronUnavailable as exc:
            LOG.warning("%s; will retry in the background", exc)
            self.defer(what, call, cause=exc)
            return exc
        except Conflict as exc:
            if not self.pending():
                raise
            LOG.info("%s; will retry after the deletes queued before it", exc)
            self.defer(what, call)
            return exc
        else:
            with self._cond:
                if self._queue:  # Neutron answers again: no need for the queue to wait out its backoff
                    self._cond.notify_all()
        return None

    def defer(self, what: str, call: Callable[[], None], cause: BaseException | None = None) -> None:
        with self._cond:
            if self._closed:
                LOG.error("not retrying %s: shutting down", what)
                return
            if isinstance(cause, NeutronTimeout):
                self._timed_out = time.monotonic()
            self._queue.append((what, call))
            self._cond.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deferred-deletes", daemon=True)
                self._thread.start()

    def _hanging(self) -> bool:
        with self._cond:
            return bool(self._queue) and time.monotonic() - self._timed_out < HANG_MEMORY

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
                if isinstance(exc, NeutronTimeout):
                    with self._cond:
                        self._timed_out = time.monotonic()
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
