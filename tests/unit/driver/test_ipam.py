"""IpamDriver through the Dispatcher, with the requests dockerd sends: pools, addresses, pre-created ports."""

from __future__ import annotations

import ipaddress

import pytest

from courier.driver.state import Claims
from courier.neutron import models as nm
from courier.neutron import tags
from tests.fakes import FakeNeutron
from tests.unit.dockerd import Dockerd, Network, docker_id, docker_mac


def ports_on(neutron: FakeNeutron, network_id: str) -> list[nm.Port]:
    return [p for p in neutron.ports.values() if p.network_id == network_id]


def neutron_network(neutron: FakeNeutron, net: Network) -> nm.Network:
    found = [n for n in neutron.networks.values() if tags.docker_id_tags(net.network_id)[0] in n.tags]
    assert len(found) == 1
    return found[0]


def subnet_of(neutron: FakeNeutron, cidr: str) -> nm.Subnet:
    found = [s for s in neutron.subnets.values() if str(s.cidr) == cidr]
    assert len(found) == 1, found
    return found[0]


# --- pools -----------------------------------------------------------------------------------------------------


def test_subnet_gets_a_subnetpool_of_its_own(docker: Dockerd, neutron: FakeNeutron) -> None:
    reply = docker.ok("IpamDriver.RequestPool", docker.request_pool("10.99.0.0/24"))
    pool = neutron.subnetpools[reply["PoolID"]]
    assert reply == {"PoolID": pool.id, "Pool": "10.99.0.0/24", "Data": {}}
    assert pool.name == "kuryrPool-10.99.0.0/24"
    assert pool.prefixes == (ipaddress.ip_network("10.99.0.0/24"),)


def test_gateway_defaults_to_the_first_address_and_follows_gateway_option(docker: Dockerd,
                                                                         neutron: FakeNeutron) -> None:
    assert docker.allocate_pool("10.99.0.0/24").gateway == "10.99.0.1"
    docker.network_create("10.98.0.0/24", gateway="10.98.0.254")
    assert str(subnet_of(neutron, "10.98.0.0/24").gateway_ip) == "10.98.0.254"


def test_no_subnet_takes_a_prefix_of_the_default_pool(docker: Dockerd, neutron: FakeNeutron, kuryr_pool) -> None:
    net = docker.network_create()
    assert net.v4[0].cidr == "10.200.0.0/24"
    assert net.v4[0].pool_id == f"{kuryr_pool.id}/10.200.0.0/24"
    assert net.v4[0].gateway == "10.200.0.1"
    subnet = subnet_of(neutron, "10.200.0.0/24")
    assert subnet.subnetpool_id == kuryr_pool.id
    c = docker.run(net)
    assert c.address == "10.200.0.2/24"


def test_two_networks_from_the_default_pool_get_different_prefixes(docker: Dockerd, neutron: FakeNeutron,
                                                                   kuryr_pool) -> None:
    first, second = docker.network_create(), docker.network_create()
    assert first.v4[0].cidr != second.v4[0].cidr
    assert {str(s.cidr) for s in neutron.subnets.values()} == {first.v4[0].cidr, second.v4[0].cidr}
    for net in (first, second):
        docker.rm(docker.run(net))
        docker.network_rm(net)
    assert set(neutron.subnetpools) == {kuryr_pool.id}
    assert neutron.subnets == {}


def test_default_pool_prefixes_stay_apart_while_networks_are_being_created(docker: Dockerd,
                                                                           kuryr_pool) -> None:
    """Two `network create` running at once: both RequestPools come before either CreateNetwork."""
    a, b = docker.allocate_pool(), docker.allocate_pool()
    assert a.cidr != b.cidr
    for pool in (a, b):
        docker.ok("NetworkDriver.CreateNetwork", Dockerd.create_network_request(Network(docker_id(), [pool], [])))


def test_default_v6_pool(docker: Dockerd, neutron: FakeNeutron) -> None:
    v6pool = neutron.add_subnetpool("kuryr6", ["fd00:aa::/48"], 64)
    net = docker.network_create("10.99.0.0/24", default_v6_pool=True)
    assert net.v6[0].pool_id == f"{v6pool.id}/fd00:aa::/64"
    c = docker.run(net)
    assert c.address6 == "fd00:aa::2/64"


def test_missing_default_pool_is_a_clear_error(docker: Dockerd, neutron: FakeNeutron) -> None:
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestPool", docker.request_pool(""))
    assert status == 400
    assert "no subnetpool named 'kuryr'" in message and "default_subnetpool_v4" in message
    assert neutron.snapshot() == before


def test_default_pool_exhausted(docker: Dockerd, neutron: FakeNeutron) -> None:
    neutron.add_subnetpool("kuryr", ["10.200.0.0/23"], 24)
    docker.network_create()
    docker.network_create()
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestPool", docker.request_pool(""))
    assert status == 409
    assert "no free /24" in message
    assert neutron.snapshot() == before


@pytest.mark.parametrize(("cidr", "v6", "words"), [
    ("10.0.0.300/24", False, "not a valid CIDR"),
    ("10.0.0.1/24", False, "not a valid CIDR"),  # host bits set
    ("banana", False, "not a valid CIDR"),
    ("10.0.0.0/33", False, "not a valid CIDR"),
    ("fd00::/64", False, "not an IPv4 prefix"),
    ("10.0.0.0/24", True, "not an IPv6 prefix"),
])
def test_invalid_subnet_is_refused_without_touching_neutron(docker: Dockerd, neutron: FakeNeutron, cidr: str,
                                                            v6: bool, words: str) -> None:
    status, message = docker.fails("IpamDriver.RequestPool", docker.request_pool(cidr, v6=v6))
    assert status == 400
    assert words in message and cidr in message
    assert neutron.total_calls == 0


def test_ip_range_needs_a_subnet_inside_it(docker: Dockerd, neutron: FakeNeutron) -> None:
    assert docker.fails("IpamDriver.RequestPool", docker.request_pool("", sub_pool="10.0.0.0/25")) == (
        400, "an --ip-range needs a --subnet")
    status, message = docker.fails("IpamDriver.RequestPool",
                                   docker.request_pool("10.0.0.0/24", sub_pool="10.0.1.0/25"))
    assert status == 400 and "is not inside --subnet" in message
    assert neutron.total_calls == 0


def test_ip_range_bounds_container_addresses(docker: Dockerd) -> None:
    net = docker.network_create("10.99.0.0/24", ip_range="10.99.0.128/25")
    addresses = [ipaddress.ip_interface(docker.run(net).address).ip for _ in range(3)]
    assert all(a in ipaddress.ip_network("10.99.0.128/25") for a in addresses)
    assert len(set(addresses)) == 3


def test_pending_subnet_makes_a_second_request_wait_then_fail(docker: Dockerd, neutron: FakeNeutron) -> None:
    """A RequestPool with no CreateNetwork yet holds its CIDR: another one for it waits (bounded), then 409."""
    docker.plugin.state.claims = Claims(wait_seconds=0.05)
    docker.allocate_pool("10.99.0.0/24")
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestPool", docker.request_pool("10.99.0.0/24"))
    assert status == 409 and "being created" in message
    assert neutron.snapshot() == before


def test_neutron_failure_in_request_pool_frees_the_subnet(docker: Dockerd, neutron: FakeNeutron) -> None:
    neutron.unavailable = True
    status, message = docker.fails("IpamDriver.RequestPool", docker.request_pool("10.99.0.0/24"))
    assert status == 503 and "unreachable" in message
    assert neutron.snapshot()["subnetpools"] == {}
    assert docker.plugin.state.claims.pending_cidrs() == set()
    neutron.unavailable = False
    docker.ok("IpamDriver.RequestPool", docker.request_pool("10.99.0.0/24"))


def test_existing_subnetpool_by_ipam_option(docker: Dockerd, neutron: FakeNeutron) -> None:
    shared = neutron.add_subnetpool("site-pool", ["10.60.0.0/16"], 24, tags=["site"])
    before = neutron.snapshot()
    opts = {"neutron.pool.uuid": shared.id}
    net = docker.network_create("10.60.1.0/24", ipam_options=opts, options=opts)
    assert net.v4[0].pool_id == f"{shared.id}/10.60.1.0/24"
    assert subnet_of(neutron, "10.60.1.0/24").subnetpool_id == shared.id
    docker.rm(docker.run(net))
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_subnet_outside_the_chosen_pool(docker: Dockerd, neutron: FakeNeutron) -> None:
    shared = neutron.add_subnetpool("site-pool", ["10.60.0.0/16"], 24)
    status, message = docker.fails("IpamDriver.RequestPool",
                                   docker.request_pool("10.61.0.0/24", options={"neutron.pool.uuid": shared.id}))
    assert status == 400 and "is not inside subnetpool site-pool" in message


def test_unknown_pool_option(docker: Dockerd, neutron: FakeNeutron) -> None:
    status, message = docker.fails("IpamDriver.RequestPool",
                                   docker.request_pool("10.60.0.0/24", options={"neutron.pool.uuid": "nope"}))
    assert status == 400 and "subnetpool nope (neutron.pool.uuid) does not exist" in message
    assert neutron.snapshot()["subnetpools"] == {}


# --- addresses -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pool_id", ["00000000-0000-0000-0000-00000000dead", "spk-spklocal-10.99.0.0/24", "x"])
def test_unknown_pool_id(docker: Dockerd, neutron: FakeNeutron, pool_id: str) -> None:
    docker.network_create("10.99.0.0/24")
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestAddress", docker.address_request(pool_id, docker_mac()))
    assert status == 400
    assert pool_id in message
    assert neutron.snapshot() == before


def test_release_calls_for_an_unknown_pool_succeed(docker: Dockerd) -> None:
    pool_id = "00000000-0000-0000-0000-00000000dead"
    before = docker.neutron.snapshot()
    docker.ok("IpamDriver.ReleaseAddress", {"PoolID": pool_id, "Address": "10.0.0.2"})
    docker.ok("IpamDriver.ReleasePool", {"PoolID": pool_id})
    assert docker.neutron.snapshot() == before  # nothing of anybody else's was touched


def test_address_request_before_the_network_exists(docker: Dockerd, neutron: FakeNeutron) -> None:
    pool = docker.allocate_pool("10.99.0.0/24")
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestAddress", docker.address_request(pool.pool_id, docker_mac()))
    assert status == 400 and "has no Neutron subnet yet" in message
    assert neutron.snapshot() == before


@pytest.mark.parametrize(("address", "words"), [
    ("10.100.0.5", "outside pool 10.99.0.0/24"),
    ("fd00::5", "outside pool 10.99.0.0/24"),
    ("10.99.0", "is not an IP address"),
    ("10.99.0.256", "is not an IP address"),
])
def test_bad_address(docker: Dockerd, neutron: FakeNeutron, address: str, words: str) -> None:
    net = docker.network_create("10.99.0.0/24")
    before = neutron.snapshot()
    neutron.reset_calls()
    status, message = docker.fails("IpamDriver.RequestAddress",
                                   docker.address_request(net.v4[0].pool_id, docker_mac(), address))
    assert status == 400 and words in message
    assert neutron.snapshot() == before
    assert neutron.total_calls == 0


def test_requested_address(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    c = docker.run(net, ip="10.99.0.77")
    assert c.address == "10.99.0.77/24"
    (port,) = ports_on(neutron, neutron_network(neutron, net).id)
    assert [str(f.ip_address) for f in port.fixed_ips] == ["10.99.0.77"]


def test_the_gateway_address_is_not_given_to_a_container(docker: Dockerd, neutron: FakeNeutron) -> None:
    """`docker run --ip <gateway>`: Docker's own IPAM answers "address already in use"."""
    net = docker.network_create("10.99.0.0/24")
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestAddress",
                                   docker.address_request(net.v4[0].pool_id, docker_mac(), net.v4[0].gateway))
    assert status == 409 and net.v4[0].gateway in message
    assert neutron.snapshot() == before


def test_address_of_another_container_is_refused(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    first = docker.run(net)
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestAddress",
                                   docker.address_request(net.v4[0].pool_id, docker_mac(), first.ips[0]))
    assert status == 409
    (port,) = neutron.ports.values()
    assert first.ips[0] in message and "in use" in message and port.id in message
    assert neutron.snapshot() == before
    docker.rm(first)  # the first container is unaffected


def test_exhausted_pool(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/29")  # .1 is the gateway: .2 to .6 for containers
    assert [docker.run(net).address for _ in range(5)] == [f"10.99.0.{i}/29" for i in range(2, 7)]
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestAddress",
                                   docker.address_request(net.v4[0].pool_id, docker_mac()))
    assert status == 409 and "No more IP addresses available" in message
    assert neutron.snapshot() == before


def test_released_address_is_given_out_again(docker: Dockerd) -> None:
    net = docker.network_create("10.99.0.0/24")
    first = docker.run(net)
    docker.rm(first)
    assert docker.run(net).address == first.address


def test_release_address_twice(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    c = docker.run(net)
    docker.rm(c)
    before = neutron.snapshot()
    docker.release_addresses(c)
    assert neutron.snapshot() == before


def test_release_address_of_a_port_courier_did_not_make_leaves_it(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    subnet = subnet_of(neutron, "10.99.0.0/24")
    router_port = neutron.add_port(subnet.network_id, [{"subnet_id": subnet.id, "ip_address": "10.99.0.9"}],
                                   device_owner="network:router_interface")
    docker.ok("IpamDriver.ReleaseAddress", {"PoolID": net.v4[0].pool_id, "Address": "10.99.0.9"})
    assert neutron.ports[router_port.id] == router_port


def test_release_pool_twice(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    pool_id = net.v4[0].pool_id
    docker.ok("IpamDriver.ReleasePool", {"PoolID": pool_id})
    docker.ok("IpamDriver.ReleasePool", {"PoolID": pool_id})
    docker.network_rm(net)
    docker.ok("IpamDriver.ReleasePool", {"PoolID": pool_id})
    assert neutron.snapshot()["subnetpools"] == {}


def test_release_pool_of_a_network_never_created(docker: Dockerd, neutron: FakeNeutron) -> None:
    pool = docker.allocate_pool("10.99.0.0/24")
    docker.ok("IpamDriver.ReleaseAddress", {"PoolID": pool.pool_id, "Address": pool.gateway})
    docker.ok("IpamDriver.ReleasePool", {"PoolID": pool.pool_id})
    assert neutron.subnetpools == {}
    docker.network_create("10.99.0.0/24")  # the subnet is free again at once


# --- dual stack ----------------------------------------------------------------------------------------------


def test_dual_stack_container_gets_one_port_with_two_addresses(docker: Dockerd, neutron: FakeNeutron) -> None:
    before = neutron.snapshot()
    net = docker.network_create("10.97.0.0/24", v6=("fd00:97::/64",))
    c = docker.run(net)
    assert (c.address, c.address6) == ("10.97.0.2/24", "fd00:97::2/64")
    (port,) = ports_on(neutron, neutron_network(neutron, net).id)
    assert sorted(str(f.ip_address) for f in port.fixed_ips) == ["10.97.0.2", "fd00:97::2"]
    assert port.mac_address == c.mac
    assert (c.join["Gateway"], c.join["GatewayIPv6"]) == ("10.97.0.1", "fd00:97::1")
    (vif,) = docker.binder.bind_calls
    assert sorted(str(f.address) for f in vif.fixed_ips) == ["10.97.0.2/24", "fd00:97::2/64"]
    docker.rm(c)
    assert ports_on(neutron, port.network_id) == []
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_dual_stack_survives_a_restart_between_the_two_address_requests(docker: Dockerd,
                                                                        neutron: FakeNeutron) -> None:
    net = docker.network_create("10.97.0.0/24", v6=("fd00:97::/64",))
    mac = docker_mac()
    v4 = docker.ok("IpamDriver.RequestAddress", docker.address_request(net.v4[0].pool_id, mac))["Address"]
    docker = docker.restart()
    v6 = docker.ok("IpamDriver.RequestAddress", docker.address_request(net.v6[0].pool_id, mac))["Address"]
    (port,) = ports_on(neutron, neutron_network(neutron, net).id)
    assert sorted(str(f.ip_address) for f in port.fixed_ips) == sorted(
        str(ipaddress.ip_interface(a).ip) for a in (v4, v6))


def test_mac_of_a_foreign_port_is_refused(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    subnet = subnet_of(neutron, "10.99.0.0/24")
    vm = neutron.add_port(subnet.network_id, [{"subnet_id": subnet.id}], mac_address="02:42:0a:0b:0c:0d",
                          device_owner="compute:nova")
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestAddress",
                                   docker.address_request(net.v4[0].pool_id, vm.mac_address))
    assert status == 409 and vm.mac_address in message
    assert neutron.snapshot() == before


# --- pre-created ports (--ip) ---------------------------------------------------------------------------------


@pytest.fixture
def user_network(neutron: FakeNeutron) -> tuple[nm.Network, nm.Subnet, nm.Port]:
    """A Neutron network the user made, with a port reserved for a container (`openstack port create`)."""
    net = neutron.add_network("user-net", tags=["user"])
    subnet = neutron.add_subnet(net.id, "10.50.0.0/24", name="user-subnet", tags=["user-subnet"])
    port = neutron.add_port(net.id, [{"subnet_id": subnet.id, "ip_address": "10.50.0.50"}], name="reserved",
                            tags=["user-port"])
    return net, subnet, port


def test_ip_of_a_pre_created_port_adopts_it_and_gives_it_back(docker: Dockerd, neutron: FakeNeutron,
                                                              user_network) -> None:
    user_net, _, reserved = user_network
    before = neutron.snapshot(revisions=False)
    net = docker.network_create("10.50.0.0/24", options={"neutron.net.uuid": user_net.id})
    c = docker.run(net, ip="10.50.0.50")

    assert c.address == "10.50.0.50/24"
    assert [p.id for p in ports_on(neutron, user_net.id)] == [reserved.id]  # no second port
    adopted = neutron.ports[reserved.id]
    assert (adopted.device_owner, adopted.device_id, adopted.host_id) == ("compute:kuryr", c.endpoint_id, "testhost")
    assert adopted.mac_address == c.mac
    assert adopted.name == "reserved"
    assert {tags.EXISTING_PORT, "user-port"} <= adopted.tags
    assert docker.binder.bind_calls[0].port_id == reserved.id

    docker.rm(c)
    returned = neutron.ports[reserved.id]
    assert (returned.device_owner, returned.device_id, returned.host_id) == ("", "", "")
    assert returned.mac_address == reserved.mac_address
    assert returned.tags == reserved.tags
    assert returned.fixed_ips == reserved.fixed_ips and returned.name == reserved.name

    docker.network_rm(net)
    assert neutron.snapshot(revisions=False) == before


def test_adopted_port_is_given_back_after_a_restart(docker: Dockerd, neutron: FakeNeutron, user_network) -> None:
    user_net, _, reserved = user_network
    before = neutron.snapshot(revisions=False)
    net = docker.network_create("10.50.0.0/24", options={"neutron.net.uuid": user_net.id})
    c = docker.run(net, ip="10.50.0.50")
    docker = docker.restart()
    docker.rm(c)
    docker.network_rm(net)
    assert neutron.snapshot(revisions=False) == before
    assert reserved.id in neutron.ports


@pytest.mark.parametrize("owner", [{"device_owner": "compute:nova"}, {"device_id": "some-vm"},
                                   {"binding:host_id": "otherhost"}])
def test_ip_of_a_port_in_use_is_refused(docker: Dockerd, neutron: FakeNeutron, user_network, owner) -> None:
    user_net, subnet, _ = user_network
    busy = neutron.add_port(user_net.id, [{"subnet_id": subnet.id, "ip_address": "10.50.0.60"}], **owner)
    net = docker.network_create("10.50.0.0/24", options={"neutron.net.uuid": user_net.id})
    before = neutron.snapshot()
    status, message = docker.fails("IpamDriver.RequestAddress",
                                   docker.address_request(net.v4[0].pool_id, docker_mac(), "10.50.0.60"))
    assert status == 409 and busy.id in message
    assert neutron.snapshot() == before


def test_failed_adoption_leaves_the_port_as_it_was(docker: Dockerd, neutron: FakeNeutron, user_network) -> None:
    user_net, _, reserved = user_network
    net = docker.network_create("10.50.0.0/24", options={"neutron.net.uuid": user_net.id})
    before = neutron.snapshot(revisions=False)
    neutron.fail("update_port")
    status, _ = docker.fails("IpamDriver.RequestAddress",
                             docker.address_request(net.v4[0].pool_id, docker_mac(), "10.50.0.50"))
    assert status == 503
    assert neutron.ports[reserved.id].tags == reserved.tags
    assert neutron.snapshot(revisions=False) == before


def test_adoption_works_once_neutron_is_back(docker: Dockerd, neutron: FakeNeutron, user_network) -> None:
    user_net, _, reserved = user_network
    before = neutron.snapshot(revisions=False)
    net = docker.network_create("10.50.0.0/24", options={"neutron.net.uuid": user_net.id})
    neutron.fail("update_port")
    docker.fails("IpamDriver.RequestAddress", docker.address_request(net.v4[0].pool_id, docker_mac(), "10.50.0.50"))
    c = docker.run(net, ip="10.50.0.50")
    assert neutron.ports[reserved.id].device_id == c.endpoint_id
    docker.rm(c)
    docker.network_rm(net)
    assert neutron.ports[reserved.id].mac_address == reserved.mac_address
    assert neutron.snapshot(revisions=False)["networks"] == before["networks"]


def test_neutron_unavailable_during_request_address(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    before = neutron.snapshot()
    neutron.unavailable = True
    status, message = docker.fails("IpamDriver.RequestAddress",
                                   docker.address_request(net.v4[0].pool_id, docker_mac()))
    assert status == 503 and "unreachable" in message
    assert neutron.snapshot() == before
