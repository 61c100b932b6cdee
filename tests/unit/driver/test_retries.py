"""A call dockerd retries after Courier died in it (the first attempt reached Neutron, its reply never reached
Docker) answers as if the first attempt had succeeded, and leaves one resource, not two (issue 14)."""

from __future__ import annotations

import pytest

from courier.neutron import tags
from tests.fakes import FakeNeutron
from tests.unit.dockerd import Container, Dockerd, Network, docker_id, docker_mac


def crashed_after(docker: Dockerd, method: str, payload: dict) -> tuple[Dockerd, dict]:
    """``method`` ran to its end in Courier, then Courier died before Docker read the reply; a new Courier."""
    first = docker.ok(method, payload)
    return docker.restart(), first


def test_request_address_retried_with_the_same_mac_gets_the_first_port(docker: Dockerd,
                                                                       neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    mac = docker_mac()
    request = docker.address_request(net.v4[0].pool_id, mac)
    docker, first = crashed_after(docker, "IpamDriver.RequestAddress", request)
    assert docker.ok("IpamDriver.RequestAddress", request) == first
    mine = [p for p in neutron.ports.values() if p.mac_address == mac]
    assert len(mine) == 1
    c = Container(net, docker_id(), mac, first["Address"], "")
    docker.start(c)  # and the container starts on it
    docker.rm(c)
    assert not [p for p in neutron.ports.values() if p.mac_address == mac]


def test_request_address_retried_with_the_same_address_and_no_mac(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    request = {"PoolID": net.v4[0].pool_id, "Address": "10.99.0.77", "Options": {}}
    docker, first = crashed_after(docker, "IpamDriver.RequestAddress", request)
    assert docker.ok("IpamDriver.RequestAddress", request) == first == {"Address": "10.99.0.77/24", "Data": {}}
    assert len([p for p in neutron.ports.values() if p.ip_in(next(iter(neutron.subnets))) is not None
                and p.device_owner == tags.DEVICE_OWNER]) == 1


def test_the_same_mac_twice_in_one_process_is_still_refused(docker: Dockerd) -> None:
    """Without a crash in between, a second request for a MAC in use is another endpoint: never the same port."""
    net = docker.network_create("10.99.0.0/24")
    mac = docker_mac()
    docker.ok("IpamDriver.RequestAddress", docker.address_request(net.v4[0].pool_id, mac))
    _, error = docker.fails("IpamDriver.RequestAddress", docker.address_request(net.v4[0].pool_id, mac))
    assert mac in error


def test_the_same_address_twice_in_one_process_is_still_refused(docker: Dockerd) -> None:
    net = docker.network_create("10.99.0.0/24")
    docker.ok("IpamDriver.RequestAddress", docker.address_request(net.v4[0].pool_id, docker_mac(), "10.99.0.9"))
    _, error = docker.fails("IpamDriver.RequestAddress",
                            docker.address_request(net.v4[0].pool_id, docker_mac(), "10.99.0.9"))
    assert "10.99.0.9" in error and "in use" in error


def test_a_claimed_port_is_never_taken_by_a_retry(docker: Dockerd) -> None:
    """After a restart, a port an endpoint holds is not 'left by a crash' even with the same address."""
    net = docker.network_create("10.99.0.0/24")
    docker.run(net, ip="10.99.0.9")
    docker = docker.restart()
    _, error = docker.fails("IpamDriver.RequestAddress",
                            docker.address_request(net.v4[0].pool_id, docker_mac(), "10.99.0.9"))
    assert "in use" in error


def test_request_pool_retried_takes_the_subnetpool_made_the_first_time(docker: Dockerd,
                                                                        neutron: FakeNeutron) -> None:
    request = docker.request_pool("10.99.0.0/24")
    docker, first = crashed_after(docker, "IpamDriver.RequestPool", request)
    assert docker.ok("IpamDriver.RequestPool", request) == first
    assert len(neutron.subnetpools) == 1


def test_request_pool_for_a_cidr_in_use_elsewhere_makes_a_new_pool(docker: Dockerd, neutron: FakeNeutron) -> None:
    """Two Docker networks may share a CIDR: a pool whose subnet exists is never taken for a 'retry'."""
    docker.network_create("10.99.0.0/24")
    docker = docker.restart()
    docker.network_create("10.99.0.0/24")
    assert len(neutron.subnetpools) == 2


def test_create_network_retried_after_a_crash_before_its_subnet(docker: Dockerd, neutron: FakeNeutron) -> None:
    pool = docker.allocate_pool("10.99.0.0/24")
    net = Network(docker_id(), [pool], [])
    docker = docker.restart()
    # what the first attempt left when it died between the network and its subnet (SIGKILL: no rollback)
    neutron.add_network(tags.network_name(net.network_id),
                        tags=[*tags.docker_id_tags(net.network_id), tags.host_tag("testhost")])
    docker.ok("NetworkDriver.CreateNetwork", docker.create_network_request(net))
    assert len(neutron.networks) == 1
    (subnet,) = neutron.subnets.values()
    assert subnet.subnetpool_id == pool.pool_id, "the retried create links the pool RequestPool made"
    assert subnet.name == "kuryr-subnet-10.99.0.0/24"
    c = docker.run(net)
    assert c.address.startswith("10.99.0.")
    docker.rm(c)
    docker.network_rm(net)
    assert not neutron.networks and not neutron.subnets and not neutron.subnetpools


def test_create_endpoint_and_join_retried_after_a_crash(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    mac = docker_mac()
    address, _ = docker.request_addresses(net, mac)
    c = Container(net, docker_id(), mac, address, "")
    docker, first = crashed_after(docker, "NetworkDriver.CreateEndpoint", docker.create_endpoint_request(c))
    assert docker.ok("NetworkDriver.CreateEndpoint", docker.create_endpoint_request(c)) == first
    docker, join = crashed_after(docker, "NetworkDriver.Join", docker.join_request(c))
    assert docker.ok("NetworkDriver.Join", docker.join_request(c)) == join
    assert len(neutron.ports) == 1
    docker.rm(c)
    assert not neutron.ports


# --- a pre-created dual-stack port (issue 13) ------------------------------------------------------------------


@pytest.mark.parametrize("with_mac", [True, False])
def test_precreated_dual_stack_port_is_adopted_for_both_families(docker: Dockerd, neutron: FakeNeutron,
                                                                 with_mac: bool) -> None:
    user_net = neutron.add_network("users")
    v4 = neutron.add_subnet(user_net.id, "10.97.0.0/24")
    v6 = neutron.add_subnet(user_net.id, "fd00:97::/64")
    port = neutron.add_port(user_net.id, [{"subnet_id": v4.id, "ip_address": "10.97.0.40"},
                                          {"subnet_id": v6.id, "ip_address": "fd00:97::40"}], name="dual")
    before = neutron.snapshot(revisions=False)
    net = docker.network_create("10.97.0.0/24", v6=("fd00:97::/64",), options={"neutron.net.uuid": user_net.id})
    mac = docker_mac()
    if with_mac:
        address, address6 = docker.request_addresses(net, mac, "10.97.0.40", "fd00:97::40")
    else:
        address = docker.ok("IpamDriver.RequestAddress", {"PoolID": net.v4[0].pool_id, "Address": "10.97.0.40",
                                                          "Options": {}})["Address"]
        address6 = docker.ok("IpamDriver.RequestAddress", {"PoolID": net.v6[0].pool_id, "Address": "fd00:97::40",
                                                           "Options": {}})["Address"]
    assert (address, address6) == ("10.97.0.40/24", "fd00:97::40/64")
    assert list(neutron.ports) == [port.id], "no second port"
    c = Container(net, docker_id(), mac if with_mac else "", address, address6)
    docker.start(c)
    docker.rm(c)
    docker.network_rm(net)
    assert neutron.snapshot(revisions=False)["ports"] == before["ports"], "given back untouched"


def test_create_network_after_a_restart_between_request_pool_and_it(docker: Dockerd, neutron: FakeNeutron) -> None:
    """dockerd's gateway request after the restart loads the pool first: CreateNetwork must still link it."""
    reply = docker.ok("IpamDriver.RequestPool", docker.request_pool("10.99.0.0/24"))
    docker = docker.restart()
    gw = docker.ok("IpamDriver.RequestAddress", docker.gateway_request(reply["PoolID"]))["Address"]
    from tests.unit.dockerd import Pool

    net = Network(docker_id(), [Pool(reply["PoolID"], reply["Pool"], gw.split("/")[0])], [])
    docker.ok("NetworkDriver.CreateNetwork", docker.create_network_request(net))
    (subnet,) = neutron.subnets.values()
    assert subnet.subnetpool_id == reply["PoolID"]
    c = docker.run(net)
    docker.rm(c)
    docker.network_rm(net)
    assert not neutron.subnetpools and not neutron.networks


def test_delete_network_retried_after_a_crash_before_its_subnetpool(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    (pool_id,) = neutron.subnetpools
    for pool in net.pools:
        docker.ok("IpamDriver.ReleaseAddress", {"PoolID": pool.pool_id, "Address": pool.gateway})
        docker.ok("IpamDriver.ReleasePool", {"PoolID": pool.pool_id})
    # the first DeleteNetwork removed the network (and its subnet), then Courier died before the subnetpool
    docker = docker.restart()
    neutron.delete_network(next(iter(neutron.networks)))
    assert pool_id in neutron.subnetpools
    docker.ok("NetworkDriver.DeleteNetwork", {"NetworkID": net.network_id})
    assert not neutron.subnetpools
