"""courier.driver.deferred: deletes Docker will not ask for again, finished once Neutron is back."""

from __future__ import annotations

import threading
import time

import pytest

from courier.driver import deferred as d
from courier.exceptions import Conflict, InvalidRequest, NeutronTimeout, NeutronUnavailable, NotFound


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(d, "FIRST_DELAY", 0.01)
    monkeypatch.setattr(d, "MAX_DELAY", 0.05)


class Flaky:
    """Fails with ``error`` ``times`` times, then succeeds; records each call."""

    def __init__(self, name: str, log: list[str], times: int = 0, error: Exception | None = None):
        self.name, self.log, self.times, self.error = name, log, times, error

    def __call__(self) -> None:
        self.log.append(self.name)
        if self.times > 0:
            self.times -= 1
            assert self.error is not None
            raise self.error


def test_runs_at_once_when_neutron_answers() -> None:
    q, log = d.Deferred(), []
    assert q.delete("a", Flaky("a", log)) is None
    assert q.delete("gone", Flaky("gone", log, 1, NotFound("gone"))) is None
    assert log == ["a", "gone"] and q.pending() == []


def test_unavailable_is_retried_in_order_until_done() -> None:
    q, log = d.Deferred(), []
    err = q.delete("subnet", Flaky("subnet", log, 3, NeutronUnavailable("down")))
    assert isinstance(err, NeutronUnavailable)
    # tried at once, refused as in use by the queued subnet: queued behind it, not reported
    assert isinstance(q.delete("pool", Flaky("pool", log, 1, Conflict("in use"))), Conflict)
    assert q.wait_idle(5)
    assert log.count("subnet") == 4 and log.count("pool") == 2 and log[-1] == "pool"


def test_conflict_with_nothing_queued_is_the_callers() -> None:
    with pytest.raises(Conflict):
        d.Deferred().delete("x", Flaky("x", [], 1, Conflict("in use")))


def test_other_errors_are_given_up() -> None:
    q, log = d.Deferred(), []
    q.defer("bad", Flaky("bad", log, 5, InvalidRequest("no")))
    assert q.wait_idle(5) and log == ["bad"]


def test_a_hanging_neutron_is_not_waited_for_again() -> None:
    q, log = d.Deferred(), []
    release = threading.Event()

    def hung() -> None:
        log.append("hung")
        if not release.is_set():
            raise NeutronTimeout("no answer")

    q.defer("hung", hung, cause=NeutronTimeout("no answer"))
    started = time.monotonic()
    err = q.delete("next", Flaky("next", log))
    assert isinstance(err, NeutronTimeout) and time.monotonic() - started < 0.5
    assert "next" not in log  # queued without being tried
    release.set()
    assert q.wait_idle(5) and log[-1] == "next"


def test_close_stops_the_worker() -> None:
    q, log = d.Deferred(), []
    q.defer("never", Flaky("never", log, 1000, NeutronUnavailable("down")))
    q.close()
    q.defer("after", Flaky("after", log))
    assert "after" not in q.pending()
