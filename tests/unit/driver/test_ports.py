"""driver.ports over FakeNeutron: one Neutron call per address, retries after a crash, adopted ports given back."""

from __future__ import annotations

import ipaddress

import pytest

from courier.driver.lookup import Lookup
from courier.driver.ports import ENDPOINT_OWNED, Ports, address_only
from courier.driver.state import PoolRecord, State
from courier.exceptions import AddressInUse, InvalidRequest, NotFound
from courier.neutron import tags
from tests.fakes import FakeNeutron

HOST = "testhost"
MAC = "02:42:0a:00:00:07"


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def pool(neutron: FakeNeutron) -> PoolRecord:
    net = neutron.add_network("n")
    subnet = neutron.add_subnet(net.id, "10.7.0.0/24")
    return PoolRecord(pool_id="sp/10.7.0.0/24", subnetpool_id="sp", cidr=ipaddress.ip_network("10.7.0.0/24"),
                      dedicated=False, subnet=subnet)


def _ports(neutron: FakeNeutron, state: State) -> Ports:
    return Ports(neutron, state, Lookup(neutron, state), HOST)  # type: ignore[arg-type]


def test_an_address_is_one_port_bound_to_this_host_in_one_call(neutron: FakeNeutron, state: State,
                                                               pool: PoolRecord) -> None:
    neutron.reset_calls()
    port = _ports(neutron, state).allocate(pool, "10.7.0.9", MAC)

    assert neutron.total_calls == 1
    assert port.host_id == HOST and port.mac_address == MAC and port.device_owner == tags.DEVICE_OWNER
    assert [str(f.ip_address) for f in port.fixed_ips] == ["10.7.0.9"]
    assert state.ports_by_mac[(port.network_id, MAC)] == port


def test_a_request_retried_after_a_crash_gets_the_port_the_first_attempt_made(neutron: FakeNeutron,
                                                                             pool: PoolRecord) -> None:
    first = _ports(neutron, State()).allocate(pool, None, MAC)  # its reply never reached Docker
    again = _ports(neutron, State()).allocate(pool, None, MAC)  # a new process, the same request

    assert again.id == first.id and len(neutron.ports) == 1


def test_a_mac_of_another_containers_port_is_refused(neutron: FakeNeutron, pool: PoolRecord) -> None:
    taken = _ports(neutron, State()).allocate(pool, None, MAC)
    neutron.set_port_tags(taken.id, tags.docker_id_tags("e" * 64))  # claimed by an endpoint meanwhile

    with pytest.raises(AddressInUse, match=f"MAC address {MAC} is already used"):
        _ports(neutron, State()).allocate(pool, None, MAC)
    assert len(neutron.ports) == 1


def test_the_second_family_of_a_container_joins_its_port(neutron: FakeNeutron, state: State,
                                                          pool: PoolRecord) -> None:
    assert pool.subnet is not None
    v6 = neutron.add_subnet(pool.subnet.network_id, "fd07::/64")
    pool6 = PoolRecord(pool_id="sp6/fd07::/64", subnetpool_id="sp6", cidr=ipaddress.ip_network("fd07::/64"),
                       dedicated=False, subnet=v6)
    ports = _ports(neutron, state)

    v4_port = ports.allocate(pool, None, MAC)
    v6_port = ports.allocate(pool6, None, MAC)

    assert v6_port.id == v4_port.id and len(neutron.ports) == 1
    assert {f.subnet_id for f in v6_port.fixed_ips} == {pool.subnet.id, v6.id}


def test_a_free_precreated_port_is_adopted_and_given_back_as_it_was(neutron: FakeNeutron, state: State,
                                                                    pool: PoolRecord) -> None:
    assert pool.subnet is not None
    user = neutron.add_port(pool.subnet.network_id, [{"subnet_id": pool.subnet.id, "ip_address": "10.7.0.20"}],
                            tags=["mine"])
    ports = _ports(neutron, state)

    adopted = ports.allocate(pool, "10.7.0.20", MAC)
    assert adopted.id == user.id and adopted.mac_address == MAC and adopted.host_id == HOST
    ports.release(neutron.get_port(user.id))

    back = neutron.get_port(user.id)
    assert (back.mac_address, back.host_id, back.device_owner, back.tags) == (user.mac_address, "", "",
                                                                              frozenset({"mine"}))


def test_a_bound_precreated_port_is_not_taken(neutron: FakeNeutron, state: State, pool: PoolRecord) -> None:
    assert pool.subnet is not None
    neutron.add_port(pool.subnet.network_id, [{"subnet_id": pool.subnet.id, "ip_address": "10.7.0.21"}],
                     device_owner="compute:nova", device_id="vm-1")

    with pytest.raises(AddressInUse, match="only a free, unbound Neutron port can be adopted"):
        _ports(neutron, state).allocate(pool, "10.7.0.21", None)


def test_release_deletes_only_courier_ports(neutron: FakeNeutron, state: State, pool: PoolRecord) -> None:
    assert pool.subnet is not None
    ports = _ports(neutron, state)
    ours = ports.allocate(pool, None, None)
    theirs = neutron.add_port(pool.subnet.network_id, [{"subnet_id": pool.subnet.id}], device_owner="network:dhcp")

    ports.release(ours)
    ports.release(theirs)

    assert set(neutron.ports) == {theirs.id}


def test_a_pool_without_subnet_gives_no_address(neutron: FakeNeutron, state: State) -> None:
    empty = PoolRecord(pool_id="sp", subnetpool_id="sp", cidr=ipaddress.ip_network("10.8.0.0/24"), dedicated=True)
    with pytest.raises(NotFound, match="has no Neutron subnet yet"):
        _ports(neutron, state).allocate(empty, None, None)
    assert not neutron.ports


def test_an_endpoint_port_for_foreign_ipam_is_tagged_or_not_left(neutron: FakeNeutron, state: State,
                                                                  pool: PoolRecord) -> None:
    assert pool.subnet is not None
    ports = _ports(neutron, state)
    fixed = [{"subnet_id": pool.subnet.id, "ip_address": "10.7.0.30"}]
    port = ports.create_for_endpoint(pool.subnet.network_id, fixed, None, "a" * 64)
    assert ENDPOINT_OWNED in port.tags and set(tags.docker_id_tags("a" * 64)) <= port.tags

    neutron.fail("set_port_tags")
    with pytest.raises(Exception):  # noqa: B017 - whatever Neutron raised
        ports.create_for_endpoint(pool.subnet.network_id, [{"subnet_id": pool.subnet.id}], None, "b" * 64)
    assert set(neutron.ports) == {port.id}  # the untagged port did not stay


def test_address_only_takes_plain_or_cidr_and_names_the_field() -> None:
    assert address_only("10.0.0.5/24", "Address") == "10.0.0.5"
    assert address_only("fd00::5", "Address") == "fd00::5"
    with pytest.raises(InvalidRequest, match="Address: 'nope' is not an IP address"):
        address_only("nope", "Address")
