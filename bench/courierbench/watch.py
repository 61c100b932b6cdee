"""Shared-stack watcher: when was Neutron down or restarted (by someone else) during the run."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request

from .common import NEUTRON_PIDFILE, NEUTRON_URL


class NeutronWatch(threading.Thread):
    """The stack is shared: others restart it. Record when Neutron was down or restarted, so that
    lifecycles it disturbed are not mistaken for plugin behaviour (they are left out of the figures)."""

    def __init__(self) -> None:
        super().__init__(name="neutron-watch", daemon=True)
        self.windows: list[tuple[float, float]] = []      # (down from, up again), time.monotonic()
        self.down_since: float | None = None
        self.restarts = 0
        self._stop_evt = threading.Event()

    @staticmethod
    def _pid() -> str | None:
        try:
            return NEUTRON_PIDFILE.read_text().strip()
        except OSError:
            return None

    @staticmethod
    def _answers() -> bool | None:
        """True: answered; False: refused/reset (down); None: slow (busy, or workers still loading)."""
        try:
            with urllib.request.urlopen(NEUTRON_URL + "/", timeout=3) as r:
                return r.status == 200
        except TimeoutError:
            return None
        except urllib.error.URLError as exc:
            return None if isinstance(exc.reason, TimeoutError) else False
        except (OSError, http.client.HTTPException):
            return False

    def run(self) -> None:
        last = self._pid()
        while not self._stop_evt.is_set():
            t = time.monotonic()
            pid, ok = self._pid(), self._answers()
            changed = pid != last
            if changed:
                self.restarts += 1
                last = pid
            # a busy Neutron is slow, not down: only a refusal or a new API process opens a window, and only
            # a real answer closes it
            if (changed or ok is False) and self.down_since is None:
                self.down_since = t
            if ok is True and self.down_since is not None:
                self.windows.append((self.down_since, time.monotonic()))
                self.down_since = None
            self._stop_evt.wait(1.0)

    def stop(self) -> None:
        self._stop_evt.set()

    def disturbed(self, t0: float, t1: float) -> bool:
        """Was Neutron down or restarted at some moment in [t0, t1] (1 s polling: widened by 1 s)?"""
        if self.down_since is not None and self.down_since <= t1 + 1:
            return True
        return any(a <= t1 + 1 and b >= t0 - 1 for a, b in self.windows)
