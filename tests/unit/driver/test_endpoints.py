"""`docker run` / `docker rm` through the Dispatcher: endpoints, Join/Leave and the binder, Neutron call budget."""

from __future__ import annotations

import ipaddress

import pytest

from courier.binding.errors import PortNotBound
from courier.neutron import tags
from tests.fakes import FakeNeutron
from tests.unit.dockerd import HOST, Container, Dockerd, Network, docker_id, docker_mac


@pytest.fixture
def net(docker: Dockerd) -> Network:
    return docker.network_create("10.99.0.0/24")


def test_container_lifecycle_costs_at_most_four_neutron_calls(docker: Dockerd, neutron: FakeNeutron,
                                                              net: Network) -> None:
    neutron.reset_calls()
    docker.rm(docker.run(net))
    assert neutron.total_calls <= 4, dict(neutron.calls)
    assert not {"list_ports", "list_networks", "list_subnets", "get_port"} & set(neutron.calls)


def test_run_then_rm(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    c = docker.run(net)
    assert c.address == "10.99.0.2/24"
    (port,) = neutron.ports.values()
    assert port.mac_address == c.mac
    assert (port.device_owner, port.device_id, port.host_id, port.vif_type) == (
        "compute:kuryr", c.endpoint_id, HOST, "ovs")
    assert port.name == f"{c.endpoint_id}-port"
    assert set(tags.docker_id_tags(c.endpoint_id)) <= port.tags
    docker.rm(c)
    assert neutron.ports == {}


def test_join_reply(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    c = docker.run(net)
    (vif,) = docker.binder.bind_calls
    assert c.join == {"InterfaceName": {"SrcName": vif.container_ifname, "DstPrefix": "eth"},
                      "Gateway": "10.99.0.1", "GatewayIPv6": "", "StaticRoutes": [], "DisableGatewayService": True}


def test_binder_gets_the_port_and_unbinds_it_on_leave(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    c = docker.run(net)
    (port,) = neutron.ports.values()
    (vif,) = docker.binder.bind_calls
    assert (vif.endpoint_id, vif.port_id, vif.network_id, vif.mac_address) == (
        c.endpoint_id, port.id, port.network_id, c.mac)
    assert (vif.vif_type, vif.mtu, dict(vif.vif_details)) == ("ovs", 1442, dict(port.vif_details))
    assert [(str(f.address), str(f.gateway)) for f in vif.fixed_ips] == [("10.99.0.2/24", "10.99.0.1")]
    assert set(docker.binder.bound) == {c.endpoint_id}
    docker.ok("NetworkDriver.Leave", Dockerd.endpoint_request(net, c.endpoint_id))
    assert docker.binder.bound == {}
    assert docker.binder.unbind_calls[0].port_id == port.id


def test_endpoint_oper_info(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    c = docker.run(net)
    (port,) = neutron.ports.values()
    assert c.oper_info == {"Value": {
        "port_id": port.id, "network_id": port.network_id, "mac_address": c.mac, "vif_type": "ovs",
        "host_if": docker.binder.bind_calls[0].host_ifname, "binding_host": HOST, "fixed_ips": ["10.99.0.2"]}}


def test_oper_info_of_an_unknown_endpoint_is_empty(docker: Dockerd, net: Network) -> None:
    assert docker.ok("NetworkDriver.EndpointOperInfo", Dockerd.endpoint_request(net, docker_id())) == {"Value": {}}


def test_veth_prefix_comes_from_the_config(neutron: FakeNeutron) -> None:
    from tests.unit.dockerd import make_conf

    docker = Dockerd(neutron, conf=make_conf(binding__veth_dst_prefix="ens"))
    c = docker.run(docker.network_create("10.99.0.0/24"))
    assert c.join["InterfaceName"]["DstPrefix"] == "ens"
    docker.close()


def test_create_endpoint_twice(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    c = docker.run(net)
    snapshot = neutron.snapshot()
    neutron.reset_calls()
    assert docker.ok("NetworkDriver.CreateEndpoint", Dockerd.create_endpoint_request(c)) == {"Interface": {}}
    assert neutron.snapshot() == snapshot and neutron.total_calls == 0
    docker = docker.restart()
    assert docker.ok("NetworkDriver.CreateEndpoint", Dockerd.create_endpoint_request(c)) == {"Interface": {}}
    assert neutron.snapshot(revisions=False) == snapshot | {"ports": neutron.snapshot(revisions=False)["ports"]}
    (port,) = neutron.ports.values()
    assert port.device_id == c.endpoint_id


def test_delete_endpoint_twice(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    c = docker.run(net)
    ep = Dockerd.endpoint_request(net, c.endpoint_id)
    docker.ok("NetworkDriver.Leave", ep)
    docker.ok("NetworkDriver.DeleteEndpoint", ep)
    docker.ok("NetworkDriver.DeleteEndpoint", ep)
    assert len(neutron.ports) == 1  # the address is still Docker's until ReleaseAddress
    docker.release_addresses(c)
    docker.ok("NetworkDriver.DeleteEndpoint", ep)
    assert neutron.ports == {}


def test_leave_and_delete_of_unknown_endpoints_succeed(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    before = neutron.snapshot()
    for network_id in (net.network_id, docker_id()):
        ep = {"NetworkID": network_id, "EndpointID": docker_id()}
        docker.ok("NetworkDriver.Leave", ep)
        docker.ok("NetworkDriver.DeleteEndpoint", ep)
        assert docker.binder.unbind_endpoint_calls[-1] == ep["EndpointID"]
    assert neutron.snapshot() == before


def test_port_deleted_behind_courier_s_back(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    """After a restart, an endpoint whose port an operator deleted: the host side is still cleared."""
    c = docker.run(net)
    (port,) = neutron.ports.values()
    neutron.delete_port(port.id)
    docker = docker.restart()
    status, message = docker.fails("NetworkDriver.Join", Dockerd.join_request(c))
    assert status == 400 and "has no Neutron port" in message
    docker.rm(c)
    assert docker.binder.unbind_endpoint_calls[:1] == [c.endpoint_id]


def test_create_endpoint_reply_gives_the_mac_only_when_docker_left_it_out(docker: Dockerd, neutron: FakeNeutron,
                                                                          net: Network) -> None:
    mac = docker_mac()
    address, _ = docker.request_addresses(net, mac)
    c = Container(net, docker_id(), "", address, "")
    reply = docker.ok("NetworkDriver.CreateEndpoint", Dockerd.create_endpoint_request(c))
    assert reply == {"Interface": {"MacAddress": mac}}


def test_user_mac_address_option(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    """`docker run --mac-address 02:aa:bb:cc:dd:ee`: the endpoint option is base64 (the sample's "Aqq7zN3u")."""
    address, _ = docker.request_addresses(net, "02:aa:bb:cc:dd:ee")
    c = Container(net, docker_id(), "02:aa:bb:cc:dd:ee", address, "")
    request = Dockerd.create_endpoint_request(c)
    request["Options"] = {**request["Options"], "com.docker.network.endpoint.macaddress": "Aqq7zN3u"}
    assert docker.ok("NetworkDriver.CreateEndpoint", request) == {"Interface": {}}
    (port,) = neutron.ports.values()
    assert port.mac_address == "02:aa:bb:cc:dd:ee"


def test_rm_right_after_run_while_neutron_is_slow(neutron: FakeNeutron) -> None:
    """Nothing waits between Docker's calls: what Courier finishes in the background must not get in the way."""
    docker = Dockerd(neutron, settle=False)
    net = docker.network_create("10.99.0.0/24")
    before = neutron.snapshot()
    neutron.latency["update_port"] = 0.2
    docker.rm(docker.run(net))
    assert neutron.ports == {}
    docker.settle()
    assert neutron.snapshot() == before
    docker.network_rm(net)
    assert neutron.networks == {}
    docker.close()


def test_restart_right_after_run_while_neutron_is_slow(neutron: FakeNeutron) -> None:
    docker = Dockerd(neutron, settle=False)
    net = docker.network_create("10.99.0.0/24")
    before = neutron.snapshot()
    neutron.latency["update_port"] = 0.1
    c = docker.run(net)
    docker = docker.restart()
    docker.rm(c)
    docker.settle()
    assert neutron.snapshot() == before
    docker.close()


# --- Courier restarts ------------------------------------------------------------------------------------------


def test_restart_between_network_create_and_run(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    before = neutron.snapshot()
    docker = docker.restart()
    c = docker.run(net)
    assert c.address == "10.99.0.2/24"
    assert c.join["Gateway"] == "10.99.0.1"
    (port,) = [p for p in neutron.ports.values()]
    assert docker.binder.bind_calls[0].port_id == port.id
    docker.rm(c)
    assert docker.binder.unbind_calls[0].port_id == port.id
    assert neutron.snapshot() == before
    docker.network_rm(net)
    assert neutron.networks == {} and neutron.subnetpools == {}


def test_restart_between_join_and_leave(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    before = neutron.snapshot()
    c = docker.run(net)
    (port,) = neutron.ports.values()
    docker = docker.restart()
    ep = Dockerd.endpoint_request(net, c.endpoint_id)
    assert docker.ok("NetworkDriver.EndpointOperInfo", ep)["Value"]["port_id"] == port.id
    assert docker.ok("NetworkDriver.Join", Dockerd.join_request(c)) == c.join
    docker.rm(c)
    assert [v.port_id for v in docker.binder.unbind_calls][:1] == [port.id]
    assert docker.binder.bound == {}
    assert neutron.snapshot() == before


def test_dual_stack_restart_between_join_and_leave(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.97.0.0/24", v6=("fd00:97::/64",))
    before = neutron.snapshot()
    c = docker.run(net)
    docker = docker.restart()
    assert docker.ok("NetworkDriver.Join", Dockerd.join_request(c)) == c.join
    docker.rm(c)
    assert neutron.snapshot() == before


# --- errors ----------------------------------------------------------------------------------------------------


def test_join_of_an_unknown_endpoint(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    c = Container(net, docker_id(), docker_mac(), "10.99.0.9/24", "")
    before = neutron.snapshot()
    status, message = docker.fails("NetworkDriver.Join", Dockerd.join_request(c))
    assert status == 400 and c.endpoint_id[:12] in message and "has no Neutron port" in message
    assert neutron.snapshot() == before


def test_create_endpoint_on_an_unknown_network(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    c = Container(Network(docker_id(), [], []), docker_id(), docker_mac(), "10.99.0.9/24", "")
    before = neutron.snapshot()
    status, message = docker.fails("NetworkDriver.CreateEndpoint", Dockerd.create_endpoint_request(c))
    assert status == 400 and c.network.network_id[:12] in message and "no Neutron network" in message
    assert neutron.snapshot() == before


@pytest.mark.parametrize(("address", "address6", "mac", "words"), [
    ("", "", "02:42:00:00:00:01", "has no IP address"),
    ("10.98.0.5/24", "", "02:42:00:00:00:01", "is in no subnet"),
    ("10.99.0.x/24", "", "02:42:00:00:00:01", "is not an IP address"),
    ("10.99.0.5/24", "", "02:42:00:00:00", "is not a MAC address"),
])
def test_create_endpoint_bad_interface(docker: Dockerd, neutron: FakeNeutron, net: Network, address: str,
                                       address6: str, mac: str, words: str) -> None:
    c = Container(net, docker_id(), mac, address, address6)
    before = neutron.snapshot()
    status, message = docker.fails("NetworkDriver.CreateEndpoint", Dockerd.create_endpoint_request(c))
    assert status == 400 and words in message
    assert neutron.snapshot() == before


ATTACH_TAKES_OVER = ("BUG: Endpoints.create attaches whatever port holds the address (courier/driver/endpoints.py:"
                     "56-64), even one already attached to another endpoint, and Endpoints._attach (endpoints.py:"
                     "98-112) sets the new endpoint's tags before the update that may fail, without undoing them")


def test_create_endpoint_refuses_the_port_of_another_endpoint(docker: Dockerd, neutron: FakeNeutron,
                                                             net: Network) -> None:
    """Reachable when another IPAM driver hands out an address a leftover port still holds."""
    a = docker.run(net)
    before = neutron.snapshot()
    b = Container(net, docker_id(), a.mac, a.address, "")
    status, message = docker.fails("NetworkDriver.CreateEndpoint", Dockerd.create_endpoint_request(b))
    assert status == 409 and a.ips[0] in message
    assert neutron.snapshot() == before


def test_failed_create_endpoint_leaves_the_port_as_it_was(docker: Dockerd, neutron: FakeNeutron,
                                                         net: Network) -> None:
    a = docker.run(net)
    before = neutron.snapshot()
    b = Container(net, docker_id(), docker_mac(), a.address, "")  # another MAC: the bound port refuses it
    status, _ = docker.fails("NetworkDriver.CreateEndpoint", Dockerd.create_endpoint_request(b))
    assert status == 409
    assert neutron.snapshot() == before


def test_addresses_of_two_different_ports_are_refused(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker.network_create("10.97.0.0/24", v6=("fd00:97::/64",))
    a, _ = docker.request_addresses(Network(net.network_id, net.v4, []), docker_mac())
    _, b6 = docker.request_addresses(Network(net.network_id, [], net.v6), docker_mac())
    c = Container(net, docker_id(), docker_mac(), a, b6)
    before = neutron.snapshot()
    status, message = docker.fails("NetworkDriver.CreateEndpoint", Dockerd.create_endpoint_request(c))
    assert status == 400 and "belong to different ports" in message
    assert neutron.snapshot() == before


def test_failed_bind_is_rolled_back_by_docker(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    before = neutron.snapshot()
    mac = docker_mac()
    address, _ = docker.request_addresses(net, mac)
    c = Container(net, docker_id(), mac, address, "")
    docker.ok("NetworkDriver.CreateEndpoint", Dockerd.create_endpoint_request(c))
    docker.binder.bind_error = PortNotBound("Neutron port is not bound (binding:vif_type=binding_failed)")
    status, _ = docker.fails("NetworkDriver.Join", Dockerd.join_request(c))
    assert status == 500
    docker.ok("NetworkDriver.DeleteEndpoint", Dockerd.endpoint_request(net, c.endpoint_id))
    docker.release_addresses(c)
    assert neutron.snapshot() == before


@pytest.mark.parametrize("step", ["IpamDriver.RequestAddress", "NetworkDriver.CreateEndpoint"])
def test_neutron_unavailable_during_run(docker: Dockerd, neutron: FakeNeutron, net: Network, step: str) -> None:
    mac = docker_mac()
    c = Container(net, docker_id(), mac, "", "")
    if step == "NetworkDriver.CreateEndpoint":
        c.address, _ = docker.request_addresses(net, mac)
    before = neutron.snapshot()
    neutron.unavailable = True
    payload = (docker.address_request(net.v4[0].pool_id, mac) if step == "IpamDriver.RequestAddress"
               else Dockerd.create_endpoint_request(c))
    status, message = docker.fails(step, payload)
    assert status == 503 and "unreachable" in message
    assert neutron.snapshot() == before


def test_rm_while_neutron_is_down_finishes_when_it_is_back(docker: Dockerd, neutron: FakeNeutron, net: Network,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker forgets an address whatever ReleaseAddress answers: the port goes once Neutron is back."""
    from courier.driver import deferred

    monkeypatch.setattr(deferred, "FIRST_DELAY", 0.01)
    before = neutron.snapshot()
    c = docker.run(net)
    docker.settles = False
    neutron.unavailable = True
    docker.rm(c)
    assert len(neutron.ports) == 1
    neutron.unavailable = False
    docker.settle()
    assert neutron.snapshot() == before


def test_neutron_unavailable_after_a_restart(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    c = docker.run(net)
    docker = docker.restart()
    neutron.unavailable = True
    before = neutron.snapshot()
    for method in ("NetworkDriver.Join", "IpamDriver.ReleaseAddress"):
        payload = (Dockerd.join_request(c) if method == "NetworkDriver.Join"
                   else {"PoolID": net.v4[0].pool_id, "Address": c.ips[0]})
        status, message = docker.fails(method, payload)
        assert status == 503 and "unreachable" in message
    assert neutron.snapshot() == before
    neutron.unavailable = False
    docker.rm(c)
    assert neutron.ports == {}


# --- networks whose addresses come from another IPAM driver -------------------------------------------------------


def docker_ipam_network(docker: Dockerd) -> Network:
    """`--ipam-driver default`: no IPAM call reaches Courier; CreateNetwork brings Docker's own pool."""
    net = Network(docker_id(), [], [])
    request = Dockerd.create_network_request(net)
    request["IPv4Data"] = [{"AddressSpace": "LocalDefault", "Gateway": "172.18.0.1/16", "Pool": "172.18.0.0/16"}]
    docker.ok("NetworkDriver.CreateNetwork", request)
    return net


def test_endpoint_on_a_network_with_docker_ipam(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker_ipam_network(docker)
    (subnet,) = neutron.subnets.values()
    assert subnet.subnetpool_id is None and str(subnet.gateway_ip) == "172.18.0.1"
    c = Container(net, docker_id(), docker_mac(), "172.18.0.2/16", "")
    docker.start(c)
    (port,) = neutron.ports.values()
    assert [str(f.ip_address) for f in port.fixed_ips] == ["172.18.0.2"]
    assert (port.device_id, port.mac_address, port.host_id) == (c.endpoint_id, c.mac, HOST)
    assert set(tags.docker_id_tags(c.endpoint_id)) <= port.tags
    assert c.join["Gateway"] == "172.18.0.1"
    ep = Dockerd.endpoint_request(net, c.endpoint_id)
    docker.ok("NetworkDriver.Leave", ep)
    docker.ok("NetworkDriver.DeleteEndpoint", ep)
    docker.ok("NetworkDriver.DeleteNetwork", {"NetworkID": net.network_id})
    assert neutron.networks == {} and neutron.subnets == {} and neutron.ports == {}


ENDPOINT_PORT_LEAK = ("BUG: Ports.create_for_endpoint returns the create_port record, without the tags "
                      "(courier.endpoint-port, lh/uh) it sets right after (courier/driver/ports.py:134-141); "
                      "Endpoints.create caches that record, so Endpoints.delete never sees ENDPOINT_OWNED and "
                      "the port stays in Neutron")


def test_delete_endpoint_deletes_the_port_it_made(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker_ipam_network(docker)
    c = Container(net, docker_id(), docker_mac(), "172.18.0.2/16", "")
    docker.start(c)
    ep = Dockerd.endpoint_request(net, c.endpoint_id)
    docker.ok("NetworkDriver.Leave", ep)
    docker.ok("NetworkDriver.DeleteEndpoint", ep)
    assert neutron.ports == {}


def test_address_is_reusable_after_the_container_is_gone(docker: Dockerd, neutron: FakeNeutron) -> None:
    """Docker's IPAM gives the address out again: a port left behind would refuse the new MAC (PortBound)."""
    net = docker_ipam_network(docker)
    for _ in range(2):
        c = Container(net, docker_id(), docker_mac(), "172.18.0.2/16", "")
        docker.start(c)
        ep = Dockerd.endpoint_request(net, c.endpoint_id)
        docker.ok("NetworkDriver.Leave", ep)
        docker.ok("NetworkDriver.DeleteEndpoint", ep)
        assert not [p for p in neutron.ports.values() if p.device_owner == tags.DEVICE_OWNER]


def test_endpoint_port_is_deleted_after_a_restart(docker: Dockerd, neutron: FakeNeutron) -> None:
    net = docker_ipam_network(docker)
    c = Container(net, docker_id(), docker_mac(), "172.18.0.2/16", "")
    docker.start(c)
    docker = docker.restart()
    ep = Dockerd.endpoint_request(net, c.endpoint_id)
    docker.ok("NetworkDriver.Leave", ep)
    docker.ok("NetworkDriver.DeleteEndpoint", ep)
    assert neutron.ports == {}


def test_many_containers_get_distinct_addresses(docker: Dockerd, neutron: FakeNeutron, net: Network) -> None:
    containers = [docker.run(net) for _ in range(20)]
    addresses = {ipaddress.ip_interface(c.address).ip for c in containers}
    assert len(addresses) == 20 and len(neutron.ports) == 20
    for c in containers:
        docker.rm(c)
    assert neutron.ports == {}
