"""The container's first packet goes through (issue 8): Join returns only once the port forwards.

dockerd's exact plugin calls are replayed (tests/dockerd_replay.py) against a real ``courier serve`` on the real
stack, for 40 containers one after the other, cold (``[vif_pool] enabled = false``) and warm (pools on, the pool
full before the first one). One peer container stays joined for the whole run, in a namespace of its own. Right
after each Join the new container's interface goes into a namespace of its own as dockerd does it (renamed eth0,
MAC, MTU, the address Courier answered, a default route via Join's gateway) and exactly one ``ping -c1 -W2`` is
sent each way (new -> peer, then peer -> new): no retry, no wait, no ARP or neighbour priming. All 80 must be
answered. The setup time (RequestAddress start to Join end) is reported; warm, its median must stay low.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import stack
from tests.dockerd_replay import Dockerd, PluginClient, Sandbox
from tests.e2e.reliability.conftest import RelCourier, no_leftovers, require_stack, unique
from tests.faultproxy import FaultProxy, _free_port
from tests.testkit import metric

pytestmark = pytest.mark.e2e

CONTAINERS = 40
POOL_MIN = 6
MODES = {
    "cold": "[vif_pool]\nenabled = false\n",
    "warm": f"[vif_pool]\nenabled = true\nports_pool_min = {POOL_MIN}\nports_pool_batch = {POOL_MIN}\n",
}
SUBNETS = {"cold": "10.226.1.0/24", "warm": "10.226.2.0/24"}  # 10.226/16: nothing else on the stack uses it
WARM_SETUP_P50 = 0.075  # s, issue 8's target (RequestAddress start to Join end)
WARM_SETUP_P50_CI = 0.25  # s, what this test enforces: a shared 2-core CI runner is noisy, the bench measures
POOL_READY_WAIT = 60.0  # s


@pytest.fixture(params=sorted(MODES))
def replay(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Dockerd, str, FaultProxy]]:
    require_stack()
    mode = str(request.param)
    listen = f"127.0.0.1:{_free_port('127.0.0.1')}"
    with FaultProxy(stack.NEUTRON_URL) as proxy:
        courier = RelCourier(tmp_path, unique("fp"), endpoint=proxy.url,
                             extra=f"metrics_listen = {listen}\n" + MODES[mode])
        courier.start()
        try:
            yield mode, Dockerd(PluginClient(courier.socket)), f"http://{listen}/metrics", proxy
        finally:
            courier.stop()
            left = no_leftovers(proxy)
        assert not left, f"left behind: {left}\n{courier.log_text()[-3000:]}"


def wait_pool_full(metrics_url: str, timeout: float = POOL_READY_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while metric(metrics_url, "courier_pool_ready_ports") < POOL_MIN:
        assert time.monotonic() < deadline, f"the warm pool did not fill up to {POOL_MIN} in {timeout:g} s"
        time.sleep(0.1)


def test_first_ping_each_way_right_after_join(replay: tuple[str, Dockerd, str, FaultProxy]) -> None:
    mode, dockerd, metrics_url, _ = replay
    net = dockerd.network_create(SUBNETS[mode])
    failures: list[str] = []
    setups: list[float] = []
    try:
        peer = dockerd.setup(net)
        with Sandbox(peer) as peer_box:
            if mode == "warm":
                wait_pool_full(metrics_url)
            hits_before = metric(metrics_url, "courier_pool_takes_total", 'result="hit"')
            for i in range(CONTAINERS):
                c = dockerd.setup(net)
                setups.append(c.setup_seconds)
                try:
                    with Sandbox(c) as box:
                        out = box.ping(peer.ips[0], wait=2)
                        back = peer_box.ping(c.ips[0], wait=2)
                finally:
                    dockerd.teardown(c)
                if not (out and back):
                    failures.append(f"#{i} {c.ips[0]} (port {c.oper_info.get('Value', {}).get('port_id')}): "
                                    f"to peer {'ok' if out else 'LOST'}, from peer {'ok' if back else 'LOST'}")
                if mode == "warm" and i % POOL_MIN == POOL_MIN - 1:
                    wait_pool_full(metrics_url)  # sequential starts: the background refill keeps up, never a miss
            hits = metric(metrics_url, "courier_pool_takes_total", 'result="hit"') - hits_before
        dockerd.teardown(peer)
    finally:
        with contextlib.suppress(Exception):
            dockerd.network_rm(net)
    p50 = statistics.median(setups)
    print(f"\n{mode}: {CONTAINERS - len(failures)}/{CONTAINERS} first pings answered both ways; setup p50 "
          f"{p50 * 1000:.0f} ms, p90 {statistics.quantiles(setups, n=10)[-1] * 1000:.0f} ms, "
          f"max {max(setups) * 1000:.0f} ms")
    assert not failures, f"{len(failures)}/{CONTAINERS} first pings unanswered ({mode}):\n" + "\n".join(failures)
    if mode == "warm":
        assert hits == CONTAINERS, f"only {hits:g} of {CONTAINERS} containers took a warm port"
        assert p50 <= WARM_SETUP_P50_CI, f"warm setup p50 {p50 * 1000:.0f} ms (target {WARM_SETUP_P50 * 1000:.0f})"
