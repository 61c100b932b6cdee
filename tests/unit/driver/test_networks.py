"""`docker network create` / `docker network rm` through the Dispatcher: what exists in Neutron before and after."""

from __future__ import annotations

import pytest

from courier.neutron import models as nm
from courier.neutron import tags
from tests.fakes import FakeNeutron
from tests.unit.dockerd import HOST, Dockerd, Network, docker_id


def backing(neutron: FakeNeutron, net: Network) -> nm.Network:
    found = [n for n in neutron.networks.values() if set(tags.docker_id_tags(net.network_id)) <= n.tags]
    assert len(found) == 1, found
    return found[0]


def subnets_of(neutron: FakeNeutron, network_id: str) -> list[nm.Subnet]:
    return [s for s in neutron.subnets.values() if s.network_id == network_id]


def rollback(docker: Dockerd, net: Network) -> None:
    """What dockerd does when CreateNetwork fails: give the gateways and pools back."""
    for pool in net.pools:
        docker.ok("IpamDriver.ReleaseAddress", {"PoolID": pool.pool_id, "Address": pool.gateway})
        docker.ok("IpamDriver.ReleasePool", {"PoolID": pool.pool_id})


def test_network_create_makes_a_tagged_network_and_subnet(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    network = backing(neutron, net)
    assert network.name == f"kuryr-net-{net.network_id[:8]}"
    assert network.tags == {f"kuryr.net.uuid.lh:{net.network_id[:32]}", f"kuryr.net.uuid.uh:{net.network_id[32:]}",
                            f"courier.host:{HOST}"}  # the host mark: courier gc's scope
    (subnet,) = subnets_of(neutron, network.id)
    assert subnet.name == "kuryr-subnet-10.99.0.0/24"
    assert str(subnet.cidr) == "10.99.0.0/24" and str(subnet.gateway_ip) == "10.99.0.1"
    assert subnet.subnetpool_id == net.v4[0].pool_id


def test_network_create_and_rm_call_budgets(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    # 7: the look-up for a subnetpool a crashed RequestPool made keeps a retried one from making a second, and
    # the Docker network's tags on its subnetpool let a DeleteNetwork retried after a crash find it
    assert neutron.total_calls <= 7, dict(neutron.calls)
    neutron.reset_calls()
    docker.network_rm(net)
    assert neutron.total_calls <= 2, dict(neutron.calls)


def test_network_rm_leaves_nothing_behind(docker: Dockerd, neutron: FakeNeutron) -> None:
    before = neutron.snapshot()
    net = docker.network_create("10.99.0.0/24", v6=("fd00:99::/64",))
    docker.rm(docker.run(net))
    docker.rm(docker.run(net))
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_network_rm_keeps_the_default_pool(docker: Dockerd, neutron: FakeNeutron, kuryr_pool) -> None:
    before = neutron.snapshot()
    net = docker.network_create()
    docker.rm(docker.run(net))
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_networks_with_the_same_subnet_are_separate(docker: Dockerd, neutron: FakeNeutron) -> None:
    before = neutron.snapshot()
    a = docker.network_create("10.99.0.0/24")
    b = docker.network_create("10.99.0.0/24")
    assert backing(neutron, a).id != backing(neutron, b).id
    assert a.v4[0].pool_id != b.v4[0].pool_id
    ca, cb = docker.run(a), docker.run(b)
    assert ca.address == cb.address == "10.99.0.2/24"
    assert {p.network_id for p in neutron.ports.values()} == {backing(neutron, a).id, backing(neutron, b).id}
    docker.rm(ca)
    docker.network_rm(a)
    docker.rm(docker.run(b))  # b is unaffected by a's removal
    docker.rm(cb)
    docker.network_rm(b)
    assert neutron.snapshot() == before


def test_ipv6_only_network(docker: Dockerd, neutron: FakeNeutron) -> None:
    before = neutron.snapshot()
    net = docker.network_create(v6=("fd00:66::/64",), ipv4=False)
    request = Dockerd.create_network_request(net, ipv4=False)
    assert request["Options"]["com.docker.network.enable_ipv4"] is False and request["IPv4Data"] == []
    network = backing(neutron, net)
    assert [str(s.cidr) for s in subnets_of(neutron, network.id)] == ["fd00:66::/64"]
    c = docker.run(net)
    assert (c.address, c.address6) == ("", "fd00:66::2/64")
    assert (c.join["Gateway"], c.join["GatewayIPv6"]) == ("", "fd00:66::1")
    (port,) = neutron.ports.values()
    assert [str(f.ip_address) for f in port.fixed_ips] == ["fd00:66::2"]
    docker.rm(c)
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_ipv4_data_is_ignored_when_ipv4_is_disabled(docker: Dockerd, neutron: FakeNeutron) -> None:
    v6 = docker.allocate_pool("fd00:66::/64", v6=True)
    net = Network(docker_id(), [], [v6])
    request = Dockerd.create_network_request(net, ipv4=False)
    request["IPv4Data"] = [{"AddressSpace": "no_address_space", "Pool": "0.0.0.0/0", "Gateway": ""}]
    docker.ok("NetworkDriver.CreateNetwork", request)
    assert [str(s.cidr) for s in neutron.subnets.values()] == ["fd00:66::/64"]


def test_create_network_twice(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    snapshot = neutron.snapshot()
    docker.ok("NetworkDriver.CreateNetwork", Dockerd.create_network_request(net))
    assert neutron.snapshot() == snapshot
    docker = docker.restart()
    docker.ok("NetworkDriver.CreateNetwork", Dockerd.create_network_request(net))
    assert neutron.snapshot() == snapshot


def test_delete_network_twice(docker: Dockerd, neutron: FakeNeutron) -> None:
    before = neutron.snapshot()
    net = docker.network_create("10.99.0.0/24")
    docker.network_rm(net)
    docker.ok("NetworkDriver.DeleteNetwork", {"NetworkID": net.network_id})
    docker.restart().ok("NetworkDriver.DeleteNetwork", {"NetworkID": net.network_id})
    assert neutron.snapshot() == before


def test_network_rm_after_a_restart(docker: Dockerd, neutron: FakeNeutron) -> None:
    before = neutron.snapshot()
    net = docker.network_create("10.99.0.0/24", v6=("fd00:99::/64",))
    docker = docker.restart()
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_network_rm_removes_ports_docker_never_released(docker: Dockerd, neutron: FakeNeutron) -> None:
    before = neutron.snapshot()
    net = docker.network_create("10.99.0.0/24")
    docker.run(net)
    docker.run(net)
    docker = docker.restart()  # dockerd died with its containers; nothing was released
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_network_rm_with_a_foreign_port_on_it_is_a_clear_error(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    network = backing(neutron, net)
    (subnet,) = subnets_of(neutron, network.id)
    neutron.add_port(network.id, [{"subnet_id": subnet.id}], device_owner="compute:nova", device_id="vm-1")
    for pool in net.pools:
        docker.ok("IpamDriver.ReleaseAddress", {"PoolID": pool.pool_id, "Address": pool.gateway})
        docker.ok("IpamDriver.ReleasePool", {"PoolID": pool.pool_id})
    status, message = docker.fails("NetworkDriver.DeleteNetwork", {"NetworkID": net.network_id})
    assert status == 409 and "ports still in use" in message and network.id in message
    assert network.id in neutron.networks


def test_generic_options_are_read(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24", options={"neutron.net.shared": "true", "com.example.mtu": "1400"})
    assert backing(neutron, net).shared is True


@pytest.mark.parametrize(("options", "words"), [
    ({"neutron.net.shared": "maybe"}, "is not a boolean"),
    ({"neutron.net.uuid": "a", "neutron.net.name": "b"}, "not both"),
])
def test_bad_network_options(docker: Dockerd, neutron: FakeNeutron, options: dict, words: str) -> None:
    pool = docker.allocate_pool("10.99.0.0/24")
    net = Network(docker_id(), [pool], [])
    before = neutron.snapshot()
    status, message = docker.fails("NetworkDriver.CreateNetwork", Dockerd.create_network_request(net, options))
    assert status == 400 and words in message
    assert neutron.snapshot() == before


def test_generic_options_that_are_not_an_object(docker: Dockerd, neutron: FakeNeutron) -> None:
    pool = docker.allocate_pool("10.99.0.0/24")
    request = Dockerd.create_network_request(Network(docker_id(), [pool], []))
    request["Options"]["com.docker.network.generic"] = ["neutron.net.uuid=x"]
    status, message = docker.fails("NetworkDriver.CreateNetwork", request)
    assert status == 400 and "com.docker.network.generic" in message


# --- existing Neutron networks (-o neutron.net.uuid / neutron.net.name) ----------------------------------------


@pytest.fixture
def user_net(neutron: FakeNeutron) -> tuple[nm.Network, nm.Subnet]:
    net = neutron.add_network("user-net", tags=["user"])
    subnet = neutron.add_subnet(net.id, "10.50.0.0/24", name="user-subnet", tags=["user-subnet"],
                                host_routes=[("10.60.0.0/16", "10.50.0.254")])
    return net, subnet


def test_existing_network_is_used_and_left_in_place(docker: Dockerd, neutron: FakeNeutron, user_net) -> None:
    network, subnet = user_net
    before = neutron.snapshot()
    net = docker.network_create("10.50.0.0/24", options={"neutron.net.uuid": network.id})
    assert set(neutron.networks) == {network.id}
    assert set(neutron.subnets) == {subnet.id}
    marks = {t for t in neutron.networks[network.id].tags if t.startswith(tags.HOST)}
    assert len(marks) == 1, "this host uses it (another host's Docker network may share it)"
    assert {"user", tags.existing_network_tag(net.network_id), *tags.docker_id_tags(net.network_id)} == \
        neutron.networks[network.id].tags - marks
    c = docker.run(net)
    assert c.address == "10.50.0.2/24"
    assert c.join["StaticRoutes"] == [{"Destination": "10.60.0.0/16", "RouteType": 0, "NextHop": "10.50.0.254"}]
    assert [p.network_id for p in neutron.ports.values()] == [network.id]
    docker.rm(c)
    docker.network_rm(net)
    assert neutron.networks[network.id].tags == {"user"}
    assert neutron.subnets[subnet.id].tags == {"user-subnet"}
    assert neutron.snapshot() == before


def test_existing_network_by_name(docker: Dockerd, neutron: FakeNeutron, user_net) -> None:
    network, _ = user_net
    before = neutron.snapshot()
    net = docker.network_create("10.50.0.0/24", options={"neutron.net.name": "user-net"})
    assert backing(neutron, net).id == network.id
    docker.rm(docker.run(net))
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_existing_network_survives_a_restart(docker: Dockerd, neutron: FakeNeutron, user_net) -> None:
    network, _ = user_net
    before = neutron.snapshot()
    net = docker.network_create("10.50.0.0/24", options={"neutron.net.uuid": network.id})
    docker = docker.restart()
    docker.rm(docker.run(net))
    docker = docker.restart()
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_subnet_added_to_an_existing_network_is_removed_with_it(docker: Dockerd, neutron: FakeNeutron,
                                                                user_net) -> None:
    network, subnet = user_net
    before = neutron.snapshot()
    net = docker.network_create("10.51.0.0/24", options={"neutron.net.uuid": network.id})
    added = [s for s in subnets_of(neutron, network.id) if s.id != subnet.id]
    assert [str(s.cidr) for s in added] == ["10.51.0.0/24"]
    docker.rm(docker.run(net))
    docker.network_rm(net)
    assert neutron.snapshot() == before


def test_existing_network_backing_another_docker_network_is_refused(docker: Dockerd, neutron: FakeNeutron,
                                                                    user_net) -> None:
    network, _ = user_net
    docker.network_create("10.50.0.0/24", options={"neutron.net.uuid": network.id})
    other = Network(docker_id(), [docker.allocate_pool("10.51.0.0/24")], [])
    before = neutron.snapshot()
    status, message = docker.fails("NetworkDriver.CreateNetwork",
                                   Dockerd.create_network_request(other, {"neutron.net.uuid": network.id}))
    assert status == 409 and "already backs Docker network" in message
    assert neutron.snapshot() == before


def _other_hosts_network(neutron: FakeNeutron) -> tuple[nm.Network, str]:
    """A network another host's Courier made for its Docker network (its tags and host mark), with a subnet."""
    theirs = docker_id()
    net = neutron.add_network("kuryr-net-theirs", tags=[*tags.docker_id_tags(theirs), tags.host_tag("host-b")])
    neutron.add_subnet(net.id, "10.52.0.0/24")
    return net, theirs


def test_network_of_another_hosts_docker_network_is_shared(docker: Dockerd, neutron: FakeNeutron) -> None:
    network, _ = _other_hosts_network(neutron)
    their_tags = neutron.networks[network.id].tags
    net = docker.network_create("10.52.0.0/24", options={"neutron.net.uuid": network.id})
    assert {*their_tags, *tags.docker_id_tags(net.network_id), tags.host_tag(HOST)} <= neutron.networks[network.id].tags
    theirs_port = neutron.add_port(network.id, [{"ip_address": "10.52.0.50"}], device_owner=tags.DEVICE_OWNER,
                                   device_id="their-endpoint", **{"binding:host_id": "host-b"})
    docker.rm(docker.run(net))
    docker.network_rm(net)
    assert neutron.networks[network.id].tags == their_tags, "only this host's marks go"
    assert theirs_port.id in neutron.ports, "another host's container keeps its port"


def test_second_docker_network_of_this_host_on_a_shared_network_is_refused(docker: Dockerd,
                                                                          neutron: FakeNeutron) -> None:
    network, _ = _other_hosts_network(neutron)
    docker.network_create("10.52.0.0/24", options={"neutron.net.uuid": network.id})
    other = Network(docker_id(), [docker.allocate_pool("10.53.0.0/24")], [])
    status, message = docker.fails("NetworkDriver.CreateNetwork",
                                   Dockerd.create_network_request(other, {"neutron.net.uuid": network.id}))
    assert status == 409 and "on this host" in message


def test_network_rm_never_deletes_another_hosts_ports(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    network = backing(neutron, net)
    theirs = neutron.add_port(network.id, [{"ip_address": "10.99.0.50"}], device_owner=tags.DEVICE_OWNER,
                              device_id="their-endpoint", **{"binding:host_id": "host-b"})
    docker.call("NetworkDriver.DeleteNetwork", {"NetworkID": net.network_id})  # in use on host B: Neutron refuses
    assert theirs.id in neutron.ports and network.id in neutron.networks


@pytest.mark.parametrize("options", [{"neutron.net.uuid": "00000000-0000-0000-0000-00000000beef"},
                                     {"neutron.net.name": "no-such-net"}])
def test_unknown_existing_network(docker: Dockerd, neutron: FakeNeutron, options: dict) -> None:
    before_create = neutron.snapshot()
    net = Network(docker_id(), [docker.allocate_pool("10.50.0.0/24")], [])
    before = neutron.snapshot()
    status, message = docker.fails("NetworkDriver.CreateNetwork", Dockerd.create_network_request(net, options))
    assert status == 400
    assert next(iter(options.values())) in message
    assert neutron.snapshot() == before
    rollback(docker, net)
    assert neutron.snapshot() == before_create


# --- failures: nothing half-created ----------------------------------------------------------------------------


def test_failed_create_network_is_rolled_back(docker: Dockerd, neutron: FakeNeutron) -> None:
    before_create = neutron.snapshot()
    net = Network(docker_id(), [docker.allocate_pool("10.99.0.0/24")], [])
    before = neutron.snapshot()
    neutron.fail("create_subnet")
    status, message = docker.fails("NetworkDriver.CreateNetwork", Dockerd.create_network_request(net))
    assert status == 503 and "unreachable" in message
    assert neutron.snapshot() == before
    rollback(docker, net)
    assert neutron.snapshot() == before_create


def test_failed_create_network_on_an_existing_network_restores_its_tags(docker: Dockerd, neutron: FakeNeutron,
                                                                        user_net) -> None:
    network, _ = user_net
    before_create = neutron.snapshot()
    net = Network(docker_id(), [docker.allocate_pool("10.51.0.0/24")], [])
    before = neutron.snapshot()
    neutron.fail("create_subnet")
    docker.fails("NetworkDriver.CreateNetwork", Dockerd.create_network_request(net, {"neutron.net.uuid": network.id}))
    assert neutron.snapshot() == before
    rollback(docker, net)
    assert neutron.snapshot() == before_create


def test_failed_create_network_on_an_existing_subnet_is_unlinked_by_docker_s_rollback(
        docker: Dockerd, neutron: FakeNeutron, user_net) -> None:
    network, _ = user_net
    before_create = neutron.snapshot()
    net = Network(docker_id(), [docker.allocate_pool("10.50.0.0/24")], [docker.allocate_pool("fd00:50::/64", v6=True)])
    neutron.fail("create_subnet")  # the v4 subnet is the user's (linked), the v6 one fails
    docker.fails("NetworkDriver.CreateNetwork", Dockerd.create_network_request(net, {"neutron.net.uuid": network.id}))
    rollback(docker, net)
    assert neutron.snapshot() == before_create


def test_failed_dual_stack_create_network_leaks_nothing(docker: Dockerd, neutron: FakeNeutron) -> None:
    """The v4 subnet was made and rolled back: its pool must not look "in use by a subnet" to ReleasePool."""
    before_create = neutron.snapshot()
    net = Network(docker_id(), [docker.allocate_pool("10.97.0.0/24")],
                  [docker.allocate_pool("fd00:97::/64", v6=True)])
    neutron.fail("create_subnet", after=1)  # the v4 subnet is made, the v6 one fails
    status, _ = docker.fails("NetworkDriver.CreateNetwork", Dockerd.create_network_request(net))
    assert status == 503
    rollback(docker, net)
    assert neutron.snapshot() == before_create


def test_failed_dual_stack_create_network_removes_network_and_subnets(docker: Dockerd,
                                                                      neutron: FakeNeutron) -> None:
    net = Network(docker_id(), [docker.allocate_pool("10.97.0.0/24")],
                  [docker.allocate_pool("fd00:97::/64", v6=True)])
    before = neutron.snapshot()
    neutron.fail("create_subnet", after=1)
    docker.fails("NetworkDriver.CreateNetwork", Dockerd.create_network_request(net))
    assert neutron.snapshot() == before


@pytest.mark.parametrize("step", ["IpamDriver.RequestPool", "NetworkDriver.CreateNetwork"])
def test_neutron_unavailable_during_network_create(docker: Dockerd, neutron: FakeNeutron, step: str) -> None:
    net = Network(docker_id(), [], [])
    before = neutron.snapshot()
    if step == "NetworkDriver.CreateNetwork":
        net.v4.append(docker.allocate_pool("10.99.0.0/24"))
        before = neutron.snapshot()
    neutron.unavailable = True
    payload = (docker.request_pool("10.99.0.0/24") if step == "IpamDriver.RequestPool"
               else Dockerd.create_network_request(net))
    status, message = docker.fails(step, payload)
    assert status == 503 and "Neutron is unreachable" in message
    assert neutron.snapshot() == before


def test_neutron_unavailable_during_network_rm(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.99.0.0/24")
    docker = docker.restart()  # nothing cached: every step needs Neutron
    neutron.unavailable = True
    before = neutron.snapshot()
    docker.settles = False  # the delete stays queued while Neutron is away
    status, message = docker.fails("NetworkDriver.DeleteNetwork", {"NetworkID": net.network_id})
    assert status == 503 and "unreachable" in message
    assert neutron.snapshot() == before
    neutron.unavailable = False
    docker.settles = True
    # dockerd ignores a failed DeleteNetwork and never sends it again: Courier finishes on its own...
    docker.settle()
    assert neutron.networks == {} and neutron.subnetpools == {}
    docker.network_rm(net)  # ...and a Docker that does retry is answered as well
