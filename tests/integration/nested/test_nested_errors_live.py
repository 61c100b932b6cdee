"""Bad input in nested mode, on the real stack: each a clear error, and nothing left behind."""

from __future__ import annotations

import pytest

from courier.binding.errors import BindingError
from courier.binding.manager import Binder
from courier.driver import nested
from courier.exceptions import InvalidRequest
from tests.integration.nested.flows import docker_id, docker_mac, endpoint, ip, network, remove
from tests.integration.nested.live import HOST, Lab, in_ns, needs_root, real_neutron
from tests.unit.dockerd import Container, Dockerd

pytestmark = [pytest.mark.integration, needs_root]

VM_CIDR = "10.254.0.0/24"
C_CIDR = "10.255.0.0/24"


def courier(lab: Lab, vm, driver: str = "vlan", **overrides) -> Dockerd:
    conf = vm.conf(driver, **overrides)
    return lab.track(Dockerd(real_neutron(), Binder(conf), conf))  # type: ignore[arg-type]


def neutron_state(lab: Lab, vm, network_id: str) -> dict:
    port = vm.fresh_port()
    return {"vm": {k: port[k] for k in ("allowed_address_pairs", "mac_address", "device_owner", "status")},
            "trunk": vm.subports() if vm.trunk_id else None,
            "ports": sorted((p["id"], p["device_owner"], tuple(sorted(p["tags"]))) for p in lab.ports(network_id))}


def failed_endpoint(d: Dockerd, net, address: str = "") -> tuple[int, str, Container]:
    """RequestAddress then a CreateEndpoint expected to fail, and Docker's ReleaseAddress after it."""
    mac = docker_mac()
    got = d.ok("IpamDriver.RequestAddress", {"PoolID": net.v4[0].pool_id, "Address": address,
                                             "Options": {"com.docker.network.endpoint.macaddress": mac}})
    c = Container(net, docker_id(), mac, got["Address"], "")
    status, err = d.fails("NetworkDriver.CreateEndpoint", d.create_endpoint_request(c))
    d.release_addresses(c)
    return status, err, c


def test_vm_without_a_trunk(lab: Lab):
    vm = lab.vm(VM_CIDR, trunk=False)
    d = courier(lab, vm)
    net = network(d, C_CIDR)
    neutron_net = d.plugin.state.networks[net.network_id].network.id
    before = neutron_state(lab, vm, neutron_net)
    status, err, _ = failed_endpoint(d, net)
    assert status == 400 and f"the VM port {vm.port['id']} is not the parent of a trunk" in err
    assert neutron_state(lab, vm, neutron_net) == before


def test_vlan_range_exhausted(lab: Lab):
    vm = lab.vm(VM_CIDR, trunk=True)
    d = courier(lab, vm, courier__nested_vlan_min=7, courier__nested_vlan_max=7)
    net = network(d, C_CIDR)
    neutron_net = d.plugin.state.networks[net.network_id].network.id
    first = endpoint(d, net, with_mac=True)
    before = neutron_state(lab, vm, neutron_net)
    assert list(before["trunk"].values()) == [7]
    status, err, _ = failed_endpoint(d, net)
    assert status == 409 and "no free VLAN id in 7..7" in err
    assert neutron_state(lab, vm, neutron_net) == before
    remove(d, first)
    assert vm.subports() == {}


def test_missing_link_interface(lab: Lab):
    vm = lab.vm(VM_CIDR, trunk=True)
    d = courier(lab, vm, binding__link_iface="eth9")
    net = network(d, C_CIDR)
    neutron_net = d.plugin.state.networks[net.network_id].network.id
    before = neutron_state(lab, vm, neutron_net)
    status, err, _ = failed_endpoint(d, net)
    assert status == 400
    assert f"The VM interface eth9 ([binding] link_iface) does not exist in network namespace {vm.ns}" in err
    assert neutron_state(lab, vm, neutron_net) == before

    # With the VM port configured, the interface is first needed at Join: the binder says what is missing.
    d2 = courier(lab, vm, binding__link_iface="eth9", courier__nested_vm_port=vm.port["id"])
    c = endpoint(d2, net, with_mac=True)
    assert d2.plugin.nesting is not None
    ep = d2.plugin.endpoints.endpoint(net.network_id, c.endpoint_id)
    vif = d2.plugin.nesting.vif(d2.plugin.endpoints.vif(ep), ep.port)
    with pytest.raises(BindingError, match=f"eth9 .* does not exist in network namespace {vm.ns}"):
        Binder(vm.conf("vlan", binding__link_iface="eth9")).bind(vif)
    assert "t_c" not in in_ns(vm.ns, "ip", "-o", "link")
    remove(d2, c)
    assert neutron_state(lab, vm, neutron_net) == before


@pytest.mark.parametrize("host, shown", [
    ("cnest-elsewhere", "is bound to host cnest-elsewhere (binding:vif_type binding_failed)"),
    (HOST, f"is bound to host {HOST} (binding:vif_type ovs)"),
])
def test_a_port_bound_to_a_host_is_refused(lab: Lab, host: str, shown: str):
    """A port some host binds (another compute node, or this VM's own host like a bare-metal port) is not a
    container port of this VM: neither a subport nor an address pair is made of it."""
    vm = lab.vm(VM_CIDR, trunk=True)
    d = courier(lab, vm)
    net = network(d, C_CIDR)
    neutron_net = d.plugin.state.networks[net.network_id].network.id
    subnet = d.plugin.state.networks[net.network_id].subnets[0]
    bound = lab.create("port", network_id=neutron_net, name=f"cnest-{lab.tag}-bound",
                       fixed_ips=[{"subnet_id": subnet.id, "ip_address": "10.255.0.77"}],
                       **{"binding:host_id": host})
    before = neutron_state(lab, vm, neutron_net)
    c = Container(net, docker_id(), docker_mac(), "10.255.0.77/24", "")
    status, err = d.fails("NetworkDriver.CreateEndpoint", d.create_endpoint_request(c))
    assert status == 400 and f"Neutron port {bound['id']} {shown}" in err
    assert neutron_state(lab, vm, neutron_net) == before  # the port was not even tagged
    assert ip(c) == "10.255.0.77"


def test_unknown_binding_driver_is_refused_at_start(lab: Lab):
    vm = lab.vm(VM_CIDR, trunk=False)
    with pytest.raises(InvalidRequest, match="needs \\[binding\\] driver = vlan, macvlan or ipvlan"):
        nested.build(vm.conf("bogus"), real_neutron())
