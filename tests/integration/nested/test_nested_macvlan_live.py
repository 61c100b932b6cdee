"""Nested MACVLAN and IPVLAN on the real stack: container addresses as allowed address pairs of the VM port.

MACVLAN end to end: macvlan devices made by Courier on the VM's eth0, moved into container namespaces, ping a
port on the VM's network. IPVLAN: this kernel may lack the module; the OVN side (container IP with the VM's
MAC) is proven anyway.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from courier.binding.manager import Binder
from tests.integration.nested.flows import endpoint, ip, join, network, remove
from tests.integration.nested.live import (
    HOST,
    Lab,
    in_ns,
    kernel_lacks,
    max_address_pairs,
    move_into,
    needs_root,
    ping,
    real_neutron,
)
from tests.unit.dockerd import Dockerd

pytestmark = [pytest.mark.integration, needs_root]

VM_CIDR = "10.253.0.0/24"


def setup(lab: Lab, driver: str, **overrides):
    vm = lab.vm(VM_CIDR, trunk=False)
    peer = lab.create("port", network_id=vm.net["id"], name=f"cnest-{lab.tag}-peer", **{"binding:host_id": HOST})
    lab.plugged("peer", peer, 24)
    assert lab.wait_status(peer["id"], "ACTIVE") == "ACTIVE"
    conf = vm.conf(driver, **overrides)
    d = lab.track(Dockerd(real_neutron(), Binder(conf), conf))  # type: ignore[arg-type]
    net = network(d, VM_CIDR, options={"neutron.net.uuid": vm.net["id"]})
    return vm, peer, d, net


def pairs(vm) -> set[tuple[str, str]]:
    return {(p["ip_address"], p["mac_address"]) for p in vm.fresh_port()["allowed_address_pairs"]}


def test_macvlan_containers_in_the_vm_ping_a_port_on_the_network(lab: Lab):
    vm, peer, d, net = setup(lab, "macvlan")
    peer_ip = peer["fixed_ips"][0]["ip_address"]
    containers = [endpoint(d, net, with_mac=False) for _ in range(2)]
    for c in containers:
        assert c.mac.startswith("00:00:5e:00:01:")  # the VRRP MAC CreateEndpoint gave Docker
    assert pairs(vm) == {(ip(c), c.mac) for c in containers}

    namespaces = []
    for i, c in enumerate(containers):
        src = join(d, c)
        link = in_ns(vm.ns, "ip", "-d", "-o", "link", "show", src)
        assert "macvlan mode bridge" in link and c.mac in link
        ns = lab.namespace(f"c{i}")
        move_into(vm.ns, src, ns, c.address)
        namespaces.append(ns)
    for ns in namespaces:
        assert ping(ns, peer_ip), f"{ns} cannot reach the peer {peer_ip}"
    assert ping(namespaces[0], ip(containers[1]))

    for ns in namespaces:
        in_ns(ns, "ip", "link", "del", "eth0")  # Docker destroys the sandbox's interface
    for c in containers:
        remove(d, c, joined=True)
    assert pairs(vm) == set()
    assert {p["id"] for p in lab.ports(vm.net["id"])} == {vm.port["id"], peer["id"]}


def test_twenty_parallel_macvlan_containers_get_their_pairs_up_to_neutrons_limit(lab: Lab):
    vm, _, d, net = setup(lab, "macvlan")
    d.settles = False
    limit = max_address_pairs()
    before = vm.fresh_port()

    def start(_: int):
        try:
            return endpoint(d, net, with_mac=False), None
        except AssertionError as exc:
            return None, str(exc)

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(start, range(20)))
    made = [c for c, _ in results if c is not None]
    refused = [err for _, err in results if err is not None]
    assert len(made) == min(20, limit)
    assert pairs(vm) == {(ip(c), c.mac) for c in made}
    assert all("allowed address pair" in err.lower() and "maximum" in err for err in refused), refused
    # Docker releases the address of a refused endpoint; then everything goes
    d.settle()
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda c: remove(d, c), made))
    leftover = [p for p in lab.ports(vm.net["id"]) if p["device_owner"] == "compute:kuryr"]
    for p in leftover:  # the refused ones: what Docker's ReleaseAddress does
        d.ok("IpamDriver.ReleaseAddress", {"PoolID": net.v4[0].pool_id, "Address": p["fixed_ips"][0]["ip_address"]})
    d.settle()
    after = vm.fresh_port()
    assert after["allowed_address_pairs"] == before["allowed_address_pairs"] == []
    assert [p for p in lab.ports(vm.net["id"]) if p["device_owner"] == "compute:kuryr"] == []


def test_ipvlan_pairs_carry_the_vm_mac_and_ovn_forwards_the_container_ip(lab: Lab):
    vm, peer, d, net = setup(lab, "ipvlan")
    peer_ip = peer["fixed_ips"][0]["ip_address"]
    c = endpoint(d, net, with_mac=False)
    assert c.mac == ""  # no MAC for Docker to set: the ipvlan device keeps the VM's
    assert pairs(vm) == {(ip(c), vm.port["mac_address"])}
    # What an L2 ipvlan device puts on the wire: the container's IP with the VM's MAC.
    in_ns(vm.ns, "ip", "addr", "add", f"{ip(c)}/32", "dev", "eth0")
    out = in_ns(vm.ns, "ping", "-c", "2", "-W", "2", "-I", ip(c), peer_ip, check=False)
    assert " 0% packet loss" in out, out
    neigh = in_ns(f"cn{lab.tag}peer", "ip", "neigh", "show", ip(c))
    assert vm.port["mac_address"] in neigh
    in_ns(vm.ns, "ip", "addr", "del", f"{ip(c)}/32", "dev", "eth0")
    remove(d, c)
    assert pairs(vm) == set()


def test_ipvlan_device_end_to_end(lab: Lab):
    reason = kernel_lacks("ipvlan", "ipvlan")
    if reason is not None:
        pytest.skip(reason)
    vm, peer, d, net = setup(lab, "ipvlan")
    c = endpoint(d, net, with_mac=False)
    src = join(d, c)
    ns = lab.namespace("c0")
    move_into(vm.ns, src, ns, c.address)
    assert ping(ns, peer["fixed_ips"][0]["ip_address"])
    in_ns(ns, "ip", "link", "del", "eth0")
    remove(d, c, joined=True)
    assert pairs(vm) == set()
