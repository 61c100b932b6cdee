"""The fakes must stay true to what they stand in for, or every test built on them proves nothing."""

from __future__ import annotations

import inspect
import ipaddress

import pytest

from courier.binding.manager import Binder
from courier.exceptions import AddressInUse, Conflict, InvalidRequest, NeutronUnavailable, NotFound, PoolExhausted
from courier.neutron.api import Neutron
from tests.fakes import FakeBinder, FakeNeutron


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")}


def test_fake_has_every_neutron_method_with_the_same_signature() -> None:
    real = public_methods(Neutron)
    fake = public_methods(FakeNeutron)
    assert set(real) <= set(fake)
    for name, signature in real.items():
        assert fake[name] == signature, name


def test_fake_binder_has_every_binder_method_with_the_same_signature() -> None:
    real = public_methods(Binder)
    fake = public_methods(FakeBinder)
    real.pop("__init__", None)
    assert set(real) <= set(fake)
    for name, signature in real.items():
        assert fake[name] == signature, name


@pytest.fixture
def neutron() -> FakeNeutron:
    return FakeNeutron()


@pytest.fixture
def subnet(neutron: FakeNeutron):
    net = neutron.add_network()
    return neutron.add_subnet(net.id, "10.0.0.0/29")


def test_allocation_skips_network_gateway_and_broadcast(neutron: FakeNeutron, subnet) -> None:
    ips = [str(neutron.create_port(subnet.network_id, [{"subnet_id": subnet.id}]).fixed_ips[0].ip_address)
           for _ in range(5)]
    assert ips == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(PoolExhausted) as err:
        neutron.create_port(subnet.network_id, [{"subnet_id": subnet.id}])
    assert err.value.neutron_type == "IpAddressGenerationFailure"  # type: ignore[attr-defined]


def test_address_and_mac_conflicts(neutron: FakeNeutron, subnet) -> None:
    port = neutron.create_port(subnet.network_id, [{"subnet_id": subnet.id, "ip_address": "10.0.0.3"}],
                               mac_address="02:00:00:00:00:01")
    with pytest.raises(AddressInUse) as err:
        neutron.create_port(subnet.network_id, [{"subnet_id": subnet.id, "ip_address": "10.0.0.3"}])
    assert err.value.neutron_type == "IpAddressAlreadyAllocated"  # type: ignore[attr-defined]
    with pytest.raises(AddressInUse) as err:
        neutron.create_port(subnet.network_id, [{"subnet_id": subnet.id}], mac_address="02:00:00:00:00:01")
    assert err.value.neutron_type == "MacAddressInUse"  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequest):
        neutron.create_port(subnet.network_id, [{"subnet_id": subnet.id, "ip_address": "10.0.1.3"}])
    assert list(neutron.ports) == [port.id]


def test_binding(neutron: FakeNeutron, subnet) -> None:
    bound = neutron.create_port(subnet.network_id, [{"subnet_id": subnet.id}], **{"binding:host_id": "h1"})
    assert (bound.vif_type, bound.host_id) == ("ovs", "h1")
    with pytest.raises(Conflict) as err:
        neutron.update_port(bound.id, mac_address="02:00:00:00:00:09")
    assert err.value.neutron_type == "PortBound"  # type: ignore[attr-defined]
    unbound = neutron.update_port(bound.id, **{"binding:host_id": ""})
    assert unbound.vif_type == "unbound"
    assert neutron.update_port(bound.id, mac_address="02:00:00:00:00:09").mac_address == "02:00:00:00:00:09"
    strict = FakeNeutron(known_hosts=["h1"])
    assert strict.add_port(strict.add_network().id, [], **{"binding:host_id": "h2"}).vif_type == "binding_failed"


def test_deletes(neutron: FakeNeutron, subnet) -> None:
    pool = neutron.create_subnetpool("p", ipaddress.ip_network("10.1.0.0/24"))
    pooled = neutron.create_subnet(subnet.network_id, ipaddress.ip_network("10.1.0.0/24"), name="s", gateway_ip=None,
                                   subnetpool_id=pool.id, enable_dhcp=False)
    with pytest.raises(Conflict):
        neutron.delete_subnetpool(pool.id)
    port = neutron.create_port(subnet.network_id, [{"subnet_id": subnet.id}])
    neutron.add_port(subnet.network_id, [{"subnet_id": pooled.id}], device_owner="network:dhcp")
    with pytest.raises(Conflict):
        neutron.delete_network(subnet.network_id)
    with pytest.raises(Conflict):
        neutron.delete_subnet(subnet.id)
    neutron.delete_port(port.id)
    neutron.delete_port(port.id)  # missing: no error, like ignore_missing=True
    neutron.delete_network(subnet.network_id)
    assert (neutron.networks, neutron.subnets, neutron.ports) == ({}, {}, {})
    neutron.delete_subnetpool(pool.id)
    assert neutron.subnetpools == {}


def test_subnet_from_a_pool_must_fit(neutron: FakeNeutron) -> None:
    net = neutron.add_network()
    pool = neutron.add_subnetpool("kuryr", ["10.2.0.0/16"], 24)
    neutron.create_subnet(net.id, ipaddress.ip_network("10.2.0.0/24"), name="a", gateway_ip="10.2.0.1",
                          subnetpool_id=pool.id, enable_dhcp=True)
    other = neutron.add_network()
    for cidr in ("10.2.0.0/25", "10.3.0.0/24"):
        with pytest.raises(PoolExhausted):
            neutron.create_subnet(other.id, ipaddress.ip_network(cidr), name="b", gateway_ip=None,
                                  subnetpool_id=pool.id, enable_dhcp=True)


def test_filters(neutron: FakeNeutron, subnet) -> None:
    a = neutron.add_port(subnet.network_id, [{"subnet_id": subnet.id, "ip_address": "10.0.0.2"}], tags=["x", "y"],
                         device_owner="compute:kuryr", device_id="ep1")
    b = neutron.add_port(subnet.network_id, [{"subnet_id": subnet.id, "ip_address": "10.0.0.3"}], tags=["x"])
    ids = lambda ports: [p.id for p in ports]  # noqa: E731
    assert ids(neutron.list_ports(tags="x,y")) == [a.id]
    assert ids(neutron.list_ports(tags="x")) == [a.id, b.id]
    assert ids(neutron.list_ports(fixed_ips=[f"subnet_id={subnet.id}", "ip_address=10.0.0.3"])) == [b.id]
    assert ids(neutron.list_ports(network_id=subnet.network_id, device_owner="compute:kuryr")) == [a.id]
    assert ids(neutron.list_ports(device_id="ep1", mac_address=a.mac_address.upper())) == [a.id]
    assert neutron.list_subnets(cidr="10.0.0.0/29", network_id=subnet.network_id) == [subnet]
    with pytest.raises(Exception, match="Invalid query params"):
        neutron.list_ports(colour="red")


def test_call_counting_and_failure_switches(neutron: FakeNeutron) -> None:
    neutron.add_network()
    assert neutron.total_calls == 0  # seeding is not counted
    neutron.list_networks()
    neutron.list_networks()
    assert neutron.calls == {"list_networks": 2}
    neutron.fail("get_network", NotFound("nope"), after=1)
    with pytest.raises(NotFound):
        neutron.get_network("x")  # missing anyway
    with pytest.raises(NotFound, match="nope"):
        neutron.get_network(next(iter(neutron.networks)))
    neutron.unavailable = True
    with pytest.raises(NeutronUnavailable):
        neutron.list_subnets()
    neutron.unavailable = False
    neutron.reset_calls()
    assert neutron.total_calls == 0
