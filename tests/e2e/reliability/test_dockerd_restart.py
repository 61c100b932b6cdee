"""dockerd restarted with containers running (issue 5.3).

dockerd replays nothing to a plugin when it comes back (only Activate and capabilities): Courier must keep
serving from its own state. The shared test dockerd is never restarted; this test starts a dockerd of its own
(``--live-restore``, so containers outlive it) that finds the test's Courier like any other plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.reliability.conftest import (
    Docker,
    OwnDockerd,
    RelCourier,
    no_leftovers,
    timed,
    unique,
)
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e


@pytest.fixture
def own(recording_proxy: FaultProxy, tmp_path: Path) -> Iterator[tuple[RelCourier, OwnDockerd, Docker]]:
    server = RelCourier(tmp_path, unique("reld"), endpoint=recording_proxy.url)
    server.start()
    daemon = OwnDockerd(tmp_path)
    dk = Docker(server.driver_name, host=daemon.host)
    try:
        daemon.start()
        daemon.import_busybox()
        yield server, daemon, dk
    finally:
        if daemon.proc is not None:
            dk.cleanup()
        daemon.destroy()
        server.stop()
    left = no_leftovers(recording_proxy)
    assert not left, f"left behind: {left}"


def _running(dk: Docker, container: str) -> tuple[bool, int]:
    state = dk("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", container).stdout.split()
    return state[0] == "true", int(state[1])


def test_dockerd_restart_keeps_container_networking(own: tuple[RelCourier, OwnDockerd, Docker]) -> None:
    server, daemon, dk = own
    net = dk.network("--subnet", "10.243.0.0/24").name
    a, b = dk.run(net).name, dk.run(net).name
    ip_a, ip_b = dk.ip(a, net), dk.ip(b, net)
    assert dk.ping(a, ip_b)
    before = {c: _running(dk, c) for c in (a, b)}

    _, restart_seconds = timed(daemon.restart)
    after = {c: _running(dk, c) for c in (a, b)}
    assert after == before, f"containers did not survive the dockerd restart: {before} -> {after}"
    assert dk.ping(a, ip_b) and dk.ping(b, ip_a), "networking did not survive the dockerd restart"

    # Docker's later calls are served: a new container on the same network, removal of an old one
    c = dk.run(net).name
    assert dk.ping(c, ip_a)
    dk.rm(b)
    assert not dk.ping(a, ip_b, count=1, attempts=1)

    # and once more with Courier restarted too while dockerd was away: nothing is replayed, Courier rebuilds
    daemon.stop()
    server.restart()
    daemon.start()
    d = dk.run(net).name
    assert dk.ping(d, ip_a) and dk.ping(a, dk.ip(c, net))
    dk.rm(c)
    print(f"\ndockerd restart (live-restore) took {restart_seconds:.1f} s; {daemon.starts} dockerd starts")
