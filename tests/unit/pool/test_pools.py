"""The warm pools through the Docker driver, with the calls dockerd sends when RequiresMACAddress is false."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from courier.neutron import tags
from courier.pool import POOL_OWNER, PortPools
from tests.fakes import FakeBinder, FakeNeutron
from tests.unit.dockerd import Container, Dockerd, Network, docker_id, make_conf


def settle(pools: PortPools, timeout: float = 10.0) -> None:
    """Until no batch is being made and no port is on its way back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with pools._lock:
            busy = any(p.building for p in pools._pools.values()) or any(p.returning for p in pools._ports.values())
        if not busy:
            return
        time.sleep(0.01)
    raise AssertionError("the pools did not settle")


def fill(docker: Dockerd) -> PortPools:
    pools = docker.plugin.pools
    pools._check()
    settle(pools)
    return pools


@pytest.fixture
def binder() -> FakeBinder:
    return FakeBinder()


@pytest.fixture
def docker(neutron: FakeNeutron, binder: FakeBinder) -> Iterator[Dockerd]:
    conf = make_conf(vif_pool__enabled=True, vif_pool__ports_pool_min=3, vif_pool__ports_pool_batch=2,
                     vif_pool__describe_delay=0.0, vif_pool__ports_pool_max=4)
    d = Dockerd(neutron, binder, conf)
    d.plugin.pools.active_timeout = 0  # FakeNeutron's ports never go ACTIVE
    yield d
    d.close()


@pytest.fixture
def neutron() -> FakeNeutron:
    return FakeNeutron()


@pytest.fixture
def net(docker: Dockerd) -> Network:
    return docker.network_create("10.96.0.0/24")


def request(pool_id: str, address: str = "") -> dict[str, Any]:
    return {"PoolID": pool_id, "Address": address, "Options": {}}


def start(docker: Dockerd, net: Network, address: str = "", mac: str = "") -> Container:
    """`docker run` as dockerd does it when the IPAM driver does not require a MAC."""
    reply = docker.ok("IpamDriver.RequestAddress", request(net.v4[0].pool_id, address))
    c = Container(net, docker_id(), mac, reply["Address"], "")
    created = docker.ok("NetworkDriver.CreateEndpoint", docker.create_endpoint_request(c))
    c.mac = mac or created["Interface"]["MacAddress"]
    c.join = docker.ok("NetworkDriver.Join", docker.join_request(c))
    return c


def pool_ports(neutron: FakeNeutron) -> list:
    return [p for p in neutron.ports.values() if "courier.pool:testhost" in p.tags]


def test_ipam_lets_the_port_choose_the_mac(docker: Dockerd) -> None:
    assert docker.ok("IpamDriver.GetCapabilities")["RequiresMACAddress"] is False


def test_pool_is_filled_in_bulk_bound_and_plugged(docker: Dockerd, neutron: FakeNeutron, binder: FakeBinder,
                                                  net: Network) -> None:
    pools = fill(docker)
    assert sum(pools.counts().values()) == 3
    assert neutron.calls["create_ports"] == 2  # batches of 2 up to 3
    ports = pool_ports(neutron)
    assert len(ports) == 3
    for port in ports:
        assert pools.tag in port.tags and port.host_id == "testhost" and port.name == tags.IPAM_PORT_NAME
        assert binder.plugged[port.id] == POOL_OWNER


def test_warm_container_lifecycle_makes_no_neutron_call(docker: Dockerd, neutron: FakeNeutron, binder: FakeBinder,
                                                        net: Network) -> None:
    pools = fill(docker)
    docker.plugin.pools._opts.describe_delay = 60.0  # gone before its identity would be written
    neutron.reset_calls()
    binds = len(binder.bind_calls)
    c = start(docker, net)
    assert c.join["InterfaceName"]["SrcName"].startswith("t_c")
    port = next(p for p in neutron.ports.values() if f"{p.fixed_ips[0].ip_address}/24" == c.address)
    assert c.mac == port.mac_address and c.join["InterfaceName"]["SrcName"] == f"t_c{port.id}"[:14]
    assert binder.plugged[port.id] == c.endpoint_id, "the endpoint is recorded on the host at once"
    assert binder.announced[-1] == port.id, "Join announces the pooled port's address, as a bind does"
    docker.rm(c)
    settle(pools)
    assert neutron.total_calls == 0, dict(neutron.calls)
    assert len(binder.bind_calls) == binds, "no plugging on the way either"
    assert binder.plugged[port.id] == POOL_OWNER and port.id in binder.resets


def test_a_kept_container_gets_kuryrs_identity_and_it_is_scrubbed_on_return(docker: Dockerd, neutron: FakeNeutron,
                                                                             net: Network) -> None:
    pools = fill(docker)
    c = start(docker, net)
    deadline = time.monotonic() + 5
    while not any(p.device_id == c.endpoint_id for p in neutron.ports.values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    port = next(p for p in neutron.ports.values() if p.device_id == c.endpoint_id)
    assert port.name == f"{c.endpoint_id}-port"
    assert set(tags.docker_id_tags(c.endpoint_id)) <= port.tags and pools.tag not in port.tags
    docker.rm(c)
    settle(pools)
    back = neutron.ports[port.id]
    assert back.device_id == "" and back.name == tags.IPAM_PORT_NAME
    assert back.tags == {pools.tag}


def test_parallel_takes_never_share_a_port_and_a_drained_pool_goes_cold(docker: Dockerd, neutron: FakeNeutron,
                                                                        net: Network) -> None:
    fill(docker)
    with ThreadPoolExecutor(8) as run:
        replies = list(run.map(lambda _: docker.ok("IpamDriver.RequestAddress", request(net.v4[0].pool_id)),
                               range(8)))
    addresses = [r["Address"] for r in replies]
    assert len(set(addresses)) == 8
    assert neutron.calls["create_port"] >= 5, "beyond the pool: the cold path, not a failure"


def test_ip_of_a_removed_container_can_be_used_again_at_once(docker: Dockerd, net: Network) -> None:
    pools = fill(docker)
    c = start(docker, net)
    ip = c.address.split("/")[0]
    docker.rm(c)  # its port is on its way back
    again = start(docker, net, address=ip)
    assert again.address == c.address
    docker.rm(again)
    settle(pools)


def test_mac_address_option_takes_the_port_out_of_the_pool(docker: Dockerd, neutron: FakeNeutron,
                                                           binder: FakeBinder, net: Network) -> None:
    pools = fill(docker)
    c = start(docker, net, mac="02:aa:bb:cc:dd:ee")
    port = next(p for p in neutron.ports.values() if p.mac_address == "02:aa:bb:cc:dd:ee")
    assert port.host_id == "testhost" and not pools.holds(port.id)
    assert c.join["InterfaceName"]["SrcName"] == f"t_c{port.id}"[:14]
    docker.rm(c)
    assert port.id not in neutron.ports


def test_network_rm_deletes_its_pool(docker: Dockerd, neutron: FakeNeutron, binder: FakeBinder,
                                     net: Network) -> None:
    pools = fill(docker)
    c = start(docker, net)
    docker.rm(c)
    settle(pools)
    docker.network_rm(net)
    assert not neutron.ports and not neutron.networks and not neutron.subnets
    assert not binder.plugged and pools.counts() == {}


def test_restart_finds_idle_ports_again(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    fill(docker)
    idle = {p.id for p in pool_ports(neutron)}
    binder = docker.binder
    docker.settle()
    docker.plugin.close()
    again = Dockerd(neutron, binder, docker.conf)
    again.plugin.pools.active_timeout = 0
    try:
        again.plugin.pools._recover()
        settle(again.plugin.pools)
        assert sum(again.plugin.pools.counts().values()) == len(idle)
        neutron.reset_calls()
        c = start(again, net)
        assert neutron.calls.get("create_port", 0) == 0
        again.rm(c)
    finally:
        again.close()


def test_a_restart_leaves_running_containers_ports_alone(neutron: FakeNeutron, binder: FakeBinder) -> None:
    """A running container's interface is in its sandbox, not on the host: OVSDB's label, not the link's
    presence, says the port is in use (else a restart would recycle it under the container and hand its
    address out again). Killed before the port was described in Neutron: it still has the pool's tag."""
    conf = make_conf(vif_pool__enabled=True, vif_pool__ports_pool_min=3, vif_pool__ports_pool_batch=2,
                     vif_pool__describe_delay=60.0, vif_pool__ports_pool_max=4)
    docker = Dockerd(neutron, binder, conf)
    docker.plugin.pools.active_timeout = 0
    net = docker.network_create("10.96.0.0/24")
    fill(docker)
    running = start(docker, net)
    port_id = next(pid for pid, p in docker.plugin.pools._ports.items() if p.address == running.address.split("/")[0])
    binder.present.discard(port_id)  # Docker moved the container end into the sandbox
    again = restarted(docker, neutron)
    try:
        again.plugin.pools._recover()
        settle(again.plugin.pools)
        assert again.plugin.pools.taken(port_id) and port_id not in binder.unbind_calls
        others = [start(again, net) for _ in range(3)]
        assert running.address not in {c.address for c in others}
        assert not [v for v in binder.unbind_calls if v.port_id == port_id]
    finally:
        again.close()


def test_a_stale_reservation_claimed_meanwhile_is_not_given_back(docker: Dockerd, net: Network) -> None:
    pools = fill(docker)
    address = docker.ok("IpamDriver.RequestAddress", request(net.v4[0].pool_id))["Address"].split("/")[0]
    pooled = next(p for p in pools._ports.values() if p.address == address)
    pools.claim(pooled.port.id, docker_id())  # CreateEndpoint won the race with the stale-reservation sweep
    assert not pools.give_back(pooled.port.id, only_from="courier-reserved")
    assert pools.taken(pooled.port.id)


def test_dual_stack_networks_take_the_cold_path_and_get_one_port(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.95.0.0/24", v6=("fd00:95::/64",))
    fill(docker)
    assert not pool_ports(neutron)
    a = docker.ok("IpamDriver.RequestAddress", request(net.v4[0].pool_id))["Address"]
    b = docker.ok("IpamDriver.RequestAddress", request(net.v6[0].pool_id))["Address"]
    c = Container(net, docker_id(), "", a, b)
    docker.ok("NetworkDriver.CreateEndpoint", docker.create_endpoint_request(c))
    (port,) = [p for p in neutron.ports.values() if p.device_owner == tags.DEVICE_OWNER]
    assert len(port.fixed_ips) == 2
    docker.ok("NetworkDriver.Join", docker.join_request(c))
    docker.rm(c)
    assert not neutron.ports


def restarted(docker: Dockerd, neutron: FakeNeutron) -> Dockerd:
    docker.settle()
    docker.plugin.close()
    again = Dockerd(neutron, docker.binder, docker.conf)
    again.plugin.pools.active_timeout = 0
    return again


def test_after_a_restart_calls_wait_until_the_previous_runs_ports_are_known(docker: Dockerd, neutron: FakeNeutron,
                                                                          net: Network) -> None:
    pools = fill(docker)
    c = Container(net, docker_id(), "", docker.ok("IpamDriver.RequestAddress", request(net.v4[0].pool_id))["Address"],
                  "")
    reserved = next(pid for pid, p in pools._ports.items() if p.address == c.address.split("/")[0])
    again = restarted(docker, neutron)  # Courier died after RequestAddress; dockerd sends CreateEndpoint next
    try:
        again.plugin.pools.start()
        again.ok("NetworkDriver.CreateEndpoint", again.create_endpoint_request(c))
        assert again.plugin.pools._ports[reserved].owner == c.endpoint_id  # claimed, not taken over as a cold port
        now = neutron.ports[reserved].tags  # never both idle-pooled and an endpoint's in Neutron
        assert not (again.plugin.pools.tag in now and tags.docker_id_from_tags(now))
    finally:
        again.close()


def test_an_idle_port_still_naming_a_container_is_scrubbed_before_reuse(docker: Dockerd, neutron: FakeNeutron,
                                                                        net: Network) -> None:
    pools = fill(docker)
    port_id = next(iter(pools._ports))
    stale = docker_id()  # Courier died between a container's removal and the scrub of its port's identity
    neutron.set_port_tags(port_id, {pools.tag, *tags.docker_id_tags(stale)})
    neutron.update_port(port_id, device_id=stale, name=tags.endpoint_port_name(stale))
    again = restarted(docker, neutron)
    try:
        again.plugin.pools._recover()
        settle(again.plugin.pools)
        back = neutron.ports[port_id]
        assert back.tags == {pools.tag} and back.device_id == "" and back.name == tags.IPAM_PORT_NAME
        started = [start(again, net) for _ in range(3)]
        for c in started:
            again.rm(c)
    finally:
        again.close()
