"""The veth link and the Linux-bridge/tap plugs in the real kernel (no OVS needed)."""

from __future__ import annotations

import pytest
from binding_live import link, link_exists, make_conf, needs_root, new_vif, sysctl
from pyroute2.ethtool import Ethtool

from courier.binding.links.veth import VethLink
from courier.binding.manager import Binder
from courier.binding.plugs.bridge import bridge_name

pytestmark = [pytest.mark.integration, needs_root]


def test_veth_pair_is_configured_as_the_container_and_the_host_need(cleanup):
    vif = cleanup.add(new_vif(mtu=1400))
    src = VethLink(make_conf()).create(vif)

    assert src == vif.container_ifname
    host, container = link(vif.host_ifname), link(vif.container_ifname)
    assert host["linkinfo"]["info_kind"] == "veth" and host["link"] == vif.container_ifname
    assert host["mtu"] == container["mtu"] == 1400
    assert container["address"] == vif.mac_address
    assert "UP" in host["flags"] and "UP" not in container["flags"]  # Docker brings the container end up
    assert sysctl(f"ipv6/conf/{vif.host_ifname}/disable_ipv6") == "1"
    assert sysctl(f"ipv4/conf/{vif.host_ifname}/arp_ignore") == "8"
    with Ethtool() as ethtool:
        assert ethtool.get_offload_flags(vif.container_ifname)["tx-checksumming"] is False


def test_create_again_gives_the_same_pair_and_delete_is_idempotent(cleanup):
    vif = cleanup.add(new_vif())
    driver = VethLink(make_conf())
    driver.create(vif)
    driver.create(vif)

    assert link(vif.container_ifname)["address"] == vif.mac_address
    driver.delete(vif)
    assert not link_exists(vif.host_ifname) and not link_exists(vif.container_ifname)
    driver.delete(vif)


def test_bridge_vif_goes_into_a_bridge_created_on_demand(cleanup):
    vif = cleanup.add(new_vif(vif_type="bridge"))
    bridge = bridge_name(vif)
    cleanup.bridges.append(bridge)
    binder = Binder(make_conf())

    binder.bind(vif)

    assert link(bridge)["linkinfo"]["info_kind"] == "bridge"
    assert link(vif.host_ifname)["master"] == bridge
    binder.unbind(vif)
    assert not link_exists(vif.host_ifname)
    assert link_exists(bridge)  # shared by the network's other ports: left alone
    binder.unbind(vif)


def test_bridge_named_in_vif_details(cleanup):
    vif = cleanup.add(new_vif(vif_type="bridge", vif_details={"bridge_name": "cbtestbr0"}))
    cleanup.bridges.append("cbtestbr0")

    Binder(make_conf()).bind(vif)

    assert link(vif.host_ifname)["master"] == "cbtestbr0"


def test_tap_vif_leaves_the_host_end_unbridged(cleanup):
    vif = cleanup.add(new_vif(vif_type="tap"))
    binder = Binder(make_conf())

    binder.bind(vif)

    assert "master" not in link(vif.host_ifname)
    binder.unbind(vif)
    assert not link_exists(vif.host_ifname)


def test_refused_vif_type_leaves_nothing_behind(cleanup):
    vif = cleanup.add(new_vif(vif_type="binding_failed"))
    with pytest.raises(Exception, match="not bound"):
        Binder(make_conf()).bind(vif)
    assert not link_exists(vif.host_ifname)
