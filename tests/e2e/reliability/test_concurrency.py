"""Concurrency (issue 5.4): many containers and networks created and removed at once through Docker.

No duplicate addresses, no lost updates (every container has exactly its own port, with its endpoint's
identity), no deadlock (every call returns, within bounds), and overlapping CIDRs on different Neutron
networks (legal in Neutron) created and deleted in parallel with different ones.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from tests import stack
from tests.e2e.reliability.conftest import Docker, RelCourier, no_leftovers, unique, wait_until
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e

WORKERS = 12
CALL_TIMEOUT = 240  # seconds one docker command may take under this load before it counts as a deadlock
T = TypeVar("T")


@pytest.fixture(scope="module")
def server(recording_proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelCourier]:
    courier = RelCourier(tmp_path_factory.mktemp("concurrency"), unique("relc"), endpoint=recording_proxy.url)
    courier.start()
    yield courier
    courier.stop()


@pytest.fixture
def dk(server: RelCourier, recording_proxy: FaultProxy) -> Iterator[Docker]:
    session = Docker(server.driver_name)
    try:
        yield session
    finally:
        session.cleanup()
    left = no_leftovers(recording_proxy)
    assert not left, f"left behind: {left}"


def parallel(calls: Sequence[Callable[[], T]]) -> tuple[list[T], float]:
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(call) for call in calls]
        results = [f.result(timeout=CALL_TIMEOUT * 2) for f in futures]
    return results, time.monotonic() - started


def _run(dk: Docker, network: str) -> Callable[[], str]:
    return lambda: dk.run(network, command=("sleep", "3600")).name  # type: ignore[no-any-return]


def _courier_ports(network: str, dk: Docker) -> list[dict[str, Any]]:
    docker_id = dk("network", "inspect", "-f", "{{.Id}}", network).stdout.strip()
    nets = stack.neutron("GET", f"/networks?tags=kuryr.net.uuid.lh:{docker_id[:32]},kuryr.net.uuid.uh:{docker_id[32:]}")
    assert len(nets["networks"]) == 1, nets
    ports = stack.neutron("GET", f"/ports?network_id={nets['networks'][0]['id']}&device_owner=compute:kuryr")
    # idle ports of the warm pool (tag courier.pool:<host>) serve no container yet
    return [p for p in ports["ports"] if not any(t.startswith("courier.pool:") for t in p["tags"])]


def _check_containers(dk: Docker, placement: dict[str, str]) -> None:
    """Each container: one address, unique on its network, held by exactly one port that carries its endpoint."""
    by_network: dict[str, dict[str, str]] = collections.defaultdict(dict)
    endpoints: dict[str, str] = {}
    for container, network in placement.items():
        by_network[network][container] = dk.ip(container, network)
        endpoints[container] = dk.endpoint_id(container, network)
    for network, ips in by_network.items():
        assert len(set(ips.values())) == len(ips), f"duplicate addresses on {network}: {ips}"

        def settled(network: str = network, ips: dict[str, str] = ips) -> list[dict[str, Any]] | None:
            ports = _courier_ports(network, dk)
            done = len(ports) == len(ips) and all(p["device_id"] for p in ports)
            return ports if done else None

        ports = wait_until(settled, 30) or _courier_ports(network, dk)
        assert len(ports) == len(ips), f"{len(ports)} ports for {len(ips)} containers on {network}"
        port_of_ip = {f["ip_address"]: p for p in ports for f in p["fixed_ips"]}
        for container, ip in ips.items():
            port = port_of_ip.get(ip)
            assert port is not None, f"no port holds {container}'s address {ip}"
            assert port["device_id"] == endpoints[container], f"port {port['id']} lost its endpoint update"
            assert port["binding:host_id"], port


def _ring_ping(dk: Docker, containers: list[str], network: str, count: int = 6) -> None:
    ring = containers[:count]
    for a, b in zip(ring, ring[1:] + ring[:1], strict=True):
        assert dk.ping(a, dk.ip(b, network), count=1), f"{a} cannot reach {b}"


def test_50_containers_in_parallel_on_one_network(dk: Docker) -> None:
    net = dk.network("--subnet", "10.244.0.0/24").name
    names, started = parallel([_run(dk, net) for _ in range(50)])
    placement = dict.fromkeys(names, net)
    _check_containers(dk, placement)
    _ring_ping(dk, names, net)
    _, removed = parallel([lambda c=c: dk.rm(c) for c in names])
    assert wait_until(lambda: not _courier_ports(net, dk), 30), "ports left after parallel removal"
    print(f"\n50 containers on one network: started in {started:.0f} s, removed in {removed:.0f} s")


def test_containers_in_parallel_across_networks(dk: Docker) -> None:
    nets = [dk.network("--subnet", f"10.244.{i}.0/24").name for i in (1, 2, 3)]
    plan = [nets[i % len(nets)] for i in range(12)]
    names, started = parallel([_run(dk, net) for net in plan])
    placement = dict(zip(names, plan, strict=True))
    _check_containers(dk, placement)
    for net in nets:
        _ring_ping(dk, [c for c, n in placement.items() if n == net], net, count=3)
    _, removed = parallel([lambda c=c: dk.rm(c) for c in names])
    print(f"\n12 containers on 3 networks: started in {started:.0f} s, removed in {removed:.0f} s")


def test_networks_with_same_and_different_subnets_in_parallel(dk: Docker) -> None:
    """Four networks on one CIDR (each its own Neutron network, subnet and subnetpool) and four on others."""
    same = "10.245.0.0/24"
    cidrs = [same] * 4 + [f"10.245.{i}.0/24" for i in range(1, 5)]
    created, first = parallel([lambda c=c: dk.network("--subnet", c).name for c in cidrs])
    neutron_nets: dict[str, str] = {}
    for name, cidr in zip(created, cidrs, strict=True):
        docker_id = dk("network", "inspect", "-f", "{{.Id}}", name).stdout.strip()
        nets = stack.neutron("GET", f"/networks?tags=kuryr.net.uuid.lh:{docker_id[:32]}")["networks"]
        assert len(nets) == 1, nets
        subnets = stack.neutron("GET", f"/subnets?network_id={nets[0]['id']}")["subnets"]
        assert [s["cidr"] for s in subnets] == [cidr], subnets
        neutron_nets[name] = nets[0]["id"]
    assert len(set(neutron_nets.values())) == len(created), "two Docker networks share a Neutron network"
    pools = {stack.neutron("GET", f"/subnets?network_id={n}")["subnets"][0]["subnetpool_id"]
             for n in neutron_nets.values()}
    assert len(pools) == len(created), "two Docker networks share a subnetpool"

    # delete those while creating four more on the same CIDR, all at once
    more = [same] * 4
    calls: list[Callable[[], object]] = [lambda n=n: dk("network", "rm", n) for n in created]
    calls += [lambda c=c: dk.network("--subnet", c).name for c in more]
    results, second = parallel(calls)
    for name in created:
        dk.networks.remove(name)
    new = [r for r in results if isinstance(r, str)]
    assert len(new) == len(more)
    a, b = dk.run(new[0]).name, dk.run(new[1]).name  # the same CIDR, isolated networks: both get addresses
    assert dk.ip(a, new[0]).startswith("10.245.0.") and dk.ip(b, new[1]).startswith("10.245.0.")
    dk.rm(a)
    dk.rm(b)
    _, third = parallel([lambda n=n: dk("network", "rm", n) for n in new])
    for name in new:
        dk.networks.remove(name)
    print(f"\n8 networks created in parallel in {first:.0f} s; 8 deleted while 4 more were created in "
          f"{second:.0f} s; those deleted in {third:.0f} s")
