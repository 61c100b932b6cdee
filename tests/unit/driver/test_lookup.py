"""driver.lookup over FakeNeutron: how a Docker id or pool id leads to Neutron resources, and what is refused."""

from __future__ import annotations

import ipaddress

import pytest

from courier.driver.lookup import Lookup, parse_pool_id
from courier.driver.state import State
from courier.exceptions import InvalidRequest, NotFound
from courier.neutron import tags
from tests.fakes import FakeNeutron
from tests.unit.dockerd import docker_id


def test_pool_ids_of_both_shapes():
    assert parse_pool_id("sp-1") == ("sp-1", None)
    assert parse_pool_id("sp-1/10.1.0.0/24") == ("sp-1", ipaddress.ip_network("10.1.0.0/24"))
    with pytest.raises(InvalidRequest, match="not a Courier or kuryr pool id"):
        parse_pool_id("sp-1/not-a-cidr")


def test_network_is_found_by_its_docker_id_tags_then_remembered(neutron: FakeNeutron):
    did = docker_id()
    net = neutron.add_network("n", tags=tags.docker_id_tags(did))
    neutron.add_subnet(net.id, "10.9.0.0/24")
    lookup = Lookup(neutron, State())

    record = lookup.network(did)
    calls = sum(neutron.calls.values())
    again = lookup.network(did)

    assert record is not None and record.network.id == net.id and not record.existing
    assert [str(s.cidr) for s in record.subnets] == ["10.9.0.0/24"]
    assert again is record and sum(neutron.calls.values()) == calls  # no second Neutron call


def test_unknown_network_is_none_or_a_clear_not_found(neutron: FakeNeutron):
    lookup = Lookup(neutron, State())
    did = docker_id()

    assert lookup.network(did) is None
    with pytest.raises(NotFound, match=f"Docker network {did[:12]} has no Neutron network"):
        lookup.require_network(did)


def test_two_networks_with_the_same_docker_id_are_refused(neutron: FakeNeutron):
    did = docker_id()
    for name in ("a", "b"):
        neutron.add_network(name, tags=tags.docker_id_tags(did))

    with pytest.raises(InvalidRequest, match="2 Neutron networks carry Docker network"):
        Lookup(neutron, State()).network(did)
