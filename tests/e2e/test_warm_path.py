"""The warm path with the real dockerd (issue 8): once the pool is warm, ``docker run`` makes no Neutron call.

Courier talks to Neutron through a recording proxy (tests/faultproxy.py); a call counts when the proxy saw it
between the start of ``docker run`` and its end.

Telling the pool's own background refill apart honestly: a take wakes the refill, which tops the pool up to
``max(ports_pool_min, 2 x takes since the last check)``. So the pool is filled with ``ports_pool_min = 6``, then
Courier is restarted with ``ports_pool_min = 0``: the restarted Courier finds the 6 idle ports (Neutron tags) and,
with one take per check, wants only 2 ready, so no refill can start while the test's containers run; every call
in the window would be the container's. ``describe_delay`` is long, so that the (deliberately deferred) naming of
the port in Neutron cannot land in the window on a slow runner either. The proxy must be quiet before each
window starts (the restart's recovery calls are over). The restarted Courier's first container (the peer) may
read the network's records once (lookup cache); the container after it must make no call at all.

Then the container pings its peer at once (one ``ping -c1``, no retry), and ``docker rm -f`` followed right away
by ``docker run --ip`` of the same address works (the port on its way back to the pool is waited for) and pings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import stack
from tests.e2e.reliability.conftest import Docker, RelCourier, no_leftovers, require_stack, unique
from tests.faultproxy import FaultProxy, Seen, _free_port
from tests.testkit import metric

pytestmark = pytest.mark.e2e

SUBNET = "10.226.3.0/24"  # 10.226/16: nothing else on the stack uses it (test_first_ping has 10.226.1-2)
FILLED = 6
WARM = "[vif_pool]\nenabled = true\nports_pool_min = {min}\nports_pool_batch = 6\ndescribe_delay = 60\n"
QUIET = 1.0  # s without a Neutron call before a window opens


class Warm:
    def __init__(self, courier: RelCourier, proxy: FaultProxy, metrics_url: str, dk: Docker):
        self.courier, self.proxy, self.metrics_url, self.dk = courier, proxy, metrics_url, dk

    def wait_quiet(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.proxy.requests()
            last = seen[-1].at if seen else 0.0
            if time.monotonic() - last >= QUIET:
                return
            assert time.monotonic() < deadline, f"Neutron calls never stopped: {seen[-5:]}"
            time.sleep(0.1)

    def timed_run(self, network: str, *args: str) -> tuple[str, list[Seen]]:
        """``docker run -d`` and the Neutron calls made while it ran."""
        self.wait_quiet()
        started = time.monotonic()
        result = self.dk.run(network, *args)
        ended = time.monotonic()
        calls = [s for s in self.proxy.requests() if started <= s.at <= ended]
        return str(result.name), calls  # type: ignore[attr-defined]

    def hits(self) -> float:
        return metric(self.metrics_url, "courier_pool_takes_total", 'result="hit"')


@pytest.fixture
def warm(tmp_path: Path) -> Iterator[Warm]:
    require_stack()
    listen = f"127.0.0.1:{_free_port('127.0.0.1')}"
    with FaultProxy(stack.NEUTRON_URL) as proxy:
        courier = RelCourier(tmp_path, unique("wp"), endpoint=proxy.url,
                             extra=f"metrics_listen = {listen}\n" + WARM.format(min=FILLED))
        courier.start()
        dk = Docker(courier.driver_name)
        try:
            yield Warm(courier, proxy, f"http://{listen}/metrics", dk)
        finally:
            dk.cleanup()  # network rm drains the pool: its ports go with it
            courier.stop()
            left = no_leftovers(proxy)
        assert not left, f"left behind: {left}\n{courier.log_text()[-3000:]}"


def test_warm_docker_run_makes_no_neutron_call_and_pings_at_once(warm: Warm) -> None:
    dk, courier = warm.dk, warm.courier
    net = str(dk.network("--subnet", SUBNET).name)  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while metric(warm.metrics_url, "courier_pool_ready_ports") < FILLED:
        assert time.monotonic() < deadline, f"the pool did not fill to {FILLED}:\n{courier.log_text()[-2000:]}"
        time.sleep(0.2)
    # Restarted with ports_pool_min = 0: the 6 idle ports are found again, and no take below tops the pool up.
    courier.config.write_text(courier.config.read_text().replace(f"ports_pool_min = {FILLED}",
                                                                 "ports_pool_min = 0"))
    courier.restart()
    deadline = time.monotonic() + 30
    while f"{FILLED} ports of a previous run found" not in courier.log_text():
        assert time.monotonic() < deadline, f"the restart did not find the pool:\n{courier.log_text()[-2000:]}"
        time.sleep(0.1)

    hits = warm.hits()
    peer, peer_calls = warm.timed_run(net)
    c, calls = warm.timed_run(net)
    assert warm.hits() - hits == 2, "both containers took a warm port"
    # The restarted Courier's first container on a network reads the network's records once (its lookup cache
    # is empty: pool -> subnet, Docker id -> network); nothing else, and no port call. From then on: nothing.
    assert all(s.method == "GET" and "/ports" not in s.path for s in peer_calls), peer_calls
    assert not calls, f"a warm docker run made Neutron calls: {calls}"
    peer_ip, ip = dk.ip(peer, net), dk.ip(c, net)
    for a, b in ((c, peer_ip), (peer, ip)):
        result = dk("exec", a, "ping", "-c1", "-W2", b, check=False, timeout=30)
        assert result.returncode == 0, f"{a} cannot reach {b} at once: {result.stdout}{result.stderr}"

    # docker rm -f, then at once docker run --ip of the same address: it gets it, and it forwards
    dk.rm(c)
    again, again_calls = warm.timed_run(net, "--ip", ip)
    assert dk.ip(again, net) == ip
    result = dk("exec", again, "ping", "-c1", "-W2", peer_ip, check=False, timeout=30)
    assert result.returncode == 0, f"{again} ({ip}) cannot reach {peer_ip}: {result.stdout}{result.stderr}"
    print(f"\nwarm docker run: {len(peer_calls)} + {len(calls)} Neutron calls; run --ip of a removed "
          f"container's address: {len(again_calls)} calls, {warm.hits() - hits:g} warm hits in all")
