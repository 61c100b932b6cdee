"""Courier killed with SIGKILL at random points of container create and delete (issue 5.2).

A seeded loop of container lifecycles (``docker run -d`` then ``docker rm -f``) runs on a few parallel workers
while a background thread SIGKILLs Courier after a random delay and starts it again; Docker retries the plugin
calls that hit a dead or restarting Courier, as it always does. Afterwards every surviving container can reach
the others, and every removed one left nothing behind once Courier's reconcile (``courier.ops.gc``, limited to
what this test's Courier created: the stack is shared) has run: no Neutron port, no OVS interface, no veth.

``COURIER_RELIABILITY_LIFECYCLES`` sets the number of lifecycles (default 200; CI runs 30),
``COURIER_RELIABILITY_SEED`` the seed.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from oslo_config import cfg

from tests import stack
from tests.e2e.reliability.conftest import (
    Docker,
    RelCourier,
    device_names,
    leftovers,
    network_ids,
    no_leftovers,
    ovs_interfaces,
    unique,
)
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e

LIFECYCLES = int(os.environ.get("COURIER_RELIABILITY_LIFECYCLES", "200"))
SEED = int(os.environ.get("COURIER_RELIABILITY_SEED", "20261126"))
WORKERS = 5
SURVIVORS = 8  # lifecycles whose container stays (some fail: see DOCKER_GAVE_UP)
KILL_DELAY = (3.0, 12.0)  # seconds between Courier being ready and the next SIGKILL
SUBNET = "10.242.0.0/22"
DOCKER_GAVE_UP = ("moby/moby#39331", "connect: connection refused")


class Killer(threading.Thread):
    """SIGKILLs Courier after a random delay, starts it again, waits until it answers; until stopped."""

    def __init__(self, courier: RelCourier, rng: random.Random):
        super().__init__(name="courier-killer", daemon=True)
        self.courier, self.rng = courier, rng
        self.stop_event = threading.Event()
        self.kills = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_event.wait(self.rng.uniform(*KILL_DELAY)):
                self.courier.stop("kill")
                self.kills += 1
                self.courier.start()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def finish(self) -> None:
        self.stop_event.set()
        self.join(timeout=90)


POOL_MODES = {
    "pool-off": "[vif_pool]\nenabled = false\n",
    # the warm path (on by default): kills land while ports are taken, given back, recycled and refilled
    "pool-on": "[vif_pool]\nenabled = true\nports_pool_min = 4\nports_pool_batch = 4\ndescribe_delay = 0.2\n",
}


@pytest.fixture(params=list(POOL_MODES))
def chaos(recording_proxy: FaultProxy, tmp_path: Path,
          request: pytest.FixtureRequest) -> Iterator[tuple[RelCourier, FaultProxy]]:
    # the warm path's calls one by one after a SIGKILL: test_crash_retry.py (pool-on)
    server = RelCourier(tmp_path, unique("relk"), endpoint=recording_proxy.url, neutron_timeout=None,
                        extra=POOL_MODES[request.param])
    server.start()
    try:
        yield server, recording_proxy
    finally:
        server.stop()


def _lifecycle(dk: Docker, network: str, keep: bool, hold: float) -> tuple[str, str, bool]:
    """One container: run it, and unless it is kept, remove it. Returns (name, outcome, running)."""
    result = dk.run(network, check=False, command=("sleep", "3600"))
    name: str = result.name  # type: ignore[attr-defined]
    if result.returncode != 0:
        dk.rm(name, check=False)  # Docker gave up on it: it must still go away without a trace
        return name, "run failed: " + result.stderr.strip(), False
    if keep:
        return name, "kept", True
    time.sleep(hold)
    removed = dk.rm(name, check=False)
    return name, "removed" if removed.returncode == 0 else "rm failed: " + removed.stderr.strip()[-200:], False


def _gc_mine(server: RelCourier, proxy: FaultProxy) -> list[str]:
    """Courier's reconcile (courier gc), restricted to what this test's Courier created, then carried out."""
    from courier.config import options
    from courier.neutron.api import Neutron
    from courier.neutron.connection import connect
    from courier.ops import gc
    from courier.ops.docker import DockerClient, snapshot
    from courier.ops.host import LocalHost

    conf = cfg.ConfigOpts()
    options.register_opts(conf)
    options.load(["--config-file", str(server.config)], conf)
    neutron, host = Neutron(connect(conf)), LocalHost(conf)
    try:
        plan = gc.find_leftovers(neutron, snapshot(DockerClient(stack.DOCKER_HOST)), host,
                                 options.binding_host_id(conf), min_age=0)
        ports = proxy.created["ports"]
        names = device_names(ports)

        def mine(item: gc.Leftover) -> bool:
            if item.kind == "port":
                return item.id in ports
            if item.kind == "ovs-interface":
                return bool(item.target.port_id in ports)
            if item.kind == "veth":
                return item.id in names or item.name in names
            return item.id in proxy.created.get(item.kind + "s", set())

        plan.leftovers = [item for item in plan.leftovers if mine(item)]
        outcomes = gc.remove(plan, neutron, host)
    finally:
        host.close()
    failed = [o for o in outcomes if not o.done]
    assert not failed, f"gc could not remove: {failed}"
    return [f"{o.leftover.kind} {o.leftover.id}: {o.leftover.reason}" for o in outcomes]


def idle_pool_ports(ids: set[str]) -> set[str]:
    """The warm pool's ready ports on the test's network: in use (by the pool), not leftovers; `docker network
    rm` deletes them."""
    found = set()
    for net_id in ids:
        for port in stack.neutron("GET", f"/ports?network_id={net_id}")["ports"]:
            if any(t.startswith("courier.pool:") for t in port.get("tags", [])) and not port["device_id"]:
                found.add(port["id"])
    return found


def test_sigkill_during_container_lifecycles(chaos: tuple[RelCourier, FaultProxy]) -> None:
    server, proxy = chaos
    rng = random.Random(SEED)
    dk = Docker(server.driver_name)
    killer = Killer(server, random.Random(rng.random()))
    started = time.monotonic()
    try:
        network = dk.network("--subnet", SUBNET).name
        every = max(1, LIFECYCLES // SURVIVORS)
        plan = [(i % every == every - 1, rng.uniform(0, 1)) for i in range(LIFECYCLES)]
        killer.start()
        with ThreadPoolExecutor(WORKERS) as pool:
            results = list(pool.map(lambda p: _lifecycle(dk, network, *p), plan))
        killer.finish()
        assert killer.error is None, f"restarting Courier failed: {killer.error}"
        loop_seconds = time.monotonic() - started
        outcomes: dict[str, int] = {}
        for _, outcome, _ in results:
            key = outcome.split(":")[0]
            outcomes[key] = outcomes.get(key, 0) + 1
        failures = [o for _, o, _ in results if o not in ("kept", "removed")]
        # Expected failures, from dockerd: it re-sends an interrupted call with an empty body (moby/moby#39331),
        # and gives up on a plugin it could not reach for ~15 s (retries after 1, 2, 4, 8 s). Such a start
        # fails, and must fail cleanly.
        unexpected = [o for o in failures if not any(known in o for known in DOCKER_GAVE_UP)]
        print(f"\n{LIFECYCLES} lifecycles, {killer.kills} SIGKILLs, {loop_seconds:.0f} s, seed {SEED}: {outcomes}; "
              + ", ".join(f"{sum(known in o for o in failures)} failed with {known!r}" for known in DOCKER_GAVE_UP))
        for failure in sorted(set(unexpected))[:10]:
            print("  " + failure)
        assert killer.kills >= 1, "the loop ended before Courier was killed even once"
        assert not unexpected, f"lifecycles failed for other reasons than dockerd's: {unexpected}"

        # the survivors, and one container started after the chaos: each with its own address, all reachable
        survivors = [name for name, _, running in results if running]
        print(f"  survivors: {len(survivors)}")
        survivors.append(dk.run(network).name)
        ips = {name: dk.ip(name, network) for name in survivors}
        assert len(set(ips.values())) == len(ips), f"duplicate addresses: {ips}"
        for a, b in zip(survivors, survivors[1:] + survivors[:1], strict=True):
            assert dk.ping(a, ips[b]), f"{a} cannot reach {b} ({ips[b]})"
        keep = {p["id"] for ip in ips.values()
                for p in stack.neutron("GET", f"/ports?fixed_ips=ip_address%3D{ip}")["ports"]
                if p["id"] in proxy.created["ports"]}
        assert len(keep) == len(survivors), f"survivors and their ports do not match: {ips} {keep}"
        keep_ports = set(keep)
        keep |= network_ids(dk, network) | idle_pool_ports(network_ids(dk, network))

        # everything else Courier made is gone once it has reconciled
        before = leftovers(proxy, keep)
        print(f"  left over before reconcile: {before or 'nothing'}")
        removed = _gc_mine(server, proxy)
        print(f"  reconcile removed: {removed or 'nothing'}")
        after = leftovers(proxy, keep)
        assert not after, f"left behind after reconcile: {after}"
        still = {name for name, ids in ovs_interfaces().items() if ids.get("iface-id") in keep_ports}
        assert len(still) == len(survivors), "reconcile must leave the survivors' OVS interfaces alone"
    finally:
        killer.finish()
        if server.proc is None:
            server.start()
        dk.cleanup()
    left = no_leftovers(proxy)
    assert not left, f"left behind after removing the survivors and the network: {left}"
    print(f"  total {time.monotonic() - started:.0f} s")
