"""What Courier leaves on this host, read and removed: OVS interfaces (local OVSDB) and veth pairs (netlink)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from courier.binding.vif import VETH_NAME, device_names

if TYPE_CHECKING:
    from courier.binding.ovsdb import InterfaceState, Ovsdb

# pyroute2, ovsdbapp and the binding drivers load on first use: `courier --help` stays fast.

OWNER = "courier"  # external_ids:owner of the OVS interfaces Courier plugs (courier/binding/plugs/ovs.py)


@dataclasses.dataclass(frozen=True)
class OvsInterface:
    name: str
    bridge: str
    external_ids: Mapping[str, str]
    ofport: int | None
    error: str = ""

    @classmethod
    def from_state(cls, state: InterfaceState) -> OvsInterface:
        return cls(name=state.name, bridge=state.bridge, external_ids=state.external_ids, ofport=state.ofport,
                   error=state.error)

    @property
    def ovn_installed(self) -> bool:
        from courier.binding.ovsdb import OVN_INSTALLED

        return self.external_ids.get(OVN_INSTALLED) == "true"

    @property
    def owner(self) -> str:
        return self.external_ids.get("owner", "")

    @property
    def port_id(self) -> str:
        return self.external_ids.get("iface-id", "")

    @property
    def endpoint_id(self) -> str:
        return self.external_ids.get("vm-uuid", "")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bridge": self.bridge, "ofport": self.ofport, "error": self.error,
                "ovn_installed": self.ovn_installed, "owner": self.owner}


@dataclasses.dataclass(frozen=True)
class VethPair:
    """A Courier-named veth whose both ends are still in this namespace (Docker never took the container end)."""

    name: str  # the tap (host) end, or the t_c end when that is the one found
    peer: str
    suffix: str  # the 11 id characters both names end with
    has_master: bool  # enslaved to a Linux bridge (bridge or hybrid plug)


class LocalHost:
    """This host's OVSDB and network devices. Connects to OVSDB on first use; ``close()`` disconnects."""

    def __init__(self, conf: cfg.ConfigOpts):
        from courier.binding.plugs.ovs import OvsPlug

        OvsPlug.register_opts(conf)  # ovsdb_connection and ovsdb_timeout are the OVS plug's options
        self.ovsdb_remote: str = conf.courier.ovsdb_connection
        self._timeout: float = conf.courier.ovsdb_timeout
        self._db: Ovsdb | None = None

    def db(self) -> Ovsdb:
        if self._db is None:
            from courier.binding import ovsdb

            self._db = ovsdb.Ovsdb(self.ovsdb_remote, self._timeout)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.stop()
            self._db = None

    # --- reading -----------------------------------------------------------------------------------------

    def bridges(self) -> list[str]:
        return self.db().bridges()

    @staticmethod
    def namespace_exists(name: str) -> bool:
        """A named network namespace (``ip netns``, CNI runtimes) of this host."""
        return any(os.path.exists(os.path.join(d, name)) for d in ("/run/netns", "/var/run/netns"))

    def ovs_interfaces(self) -> list[OvsInterface]:
        return [OvsInterface.from_state(state) for state in self.db().interfaces()]

    def switch_external_ids(self) -> dict[str, str]:
        return self.db().switch_external_ids()

    def veth_pairs(self) -> list[VethPair]:
        """Courier-named veth pairs with both ends here; each pair once, by its host end when it has one."""
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            links = list(ipr.get_links())
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in links}
        found: dict[str, VethPair] = {}
        for link in links:
            name = link.get_attr("IFLA_IFNAME")
            match = VETH_NAME.fullmatch(name or "")
            info = link.get_attr("IFLA_LINKINFO")
            if not match or info is None or info.get_attr("IFLA_INFO_KIND") != "veth":
                continue
            if link.get_attr("IFLA_LINK_NETNSID") is not None:
                continue  # the other end is in a container: in use
            peer = names.get(link.get_attr("IFLA_LINK"), "")
            suffix = match.group(2)
            pair = VethPair(name=name, peer=peer, suffix=suffix, has_master=bool(link.get_attr("IFLA_MASTER")))
            if suffix not in found or match.group(1) == "tap":
                master = pair.has_master or (suffix in found and found[suffix].has_master)
                found[suffix] = dataclasses.replace(pair, has_master=master)
            elif pair.has_master:
                found[suffix] = dataclasses.replace(found[suffix], has_master=True)
        return list(found.values())

    # --- removing -----------------------------------------------------------------------------------------

    def remove_interface(self, iface: OvsInterface) -> None:
        """The OVS port and the devices plugged through it (veth, or the hybrid qbr/qvb/qvo set)."""
        from pyroute2 import IPRoute

        from courier.binding import netdev

        self.db().del_ports(iface.name)
        devices = [iface.name]
        if iface.port_id:
            names = device_names(iface.port_id)
            devices += [names.qvb, names.qbr, names.tap, names.container]
        with IPRoute() as ipr:
            for name in devices:
                netdev.delete(ipr, name)  # absent ones are skipped; a veth's peer goes with it

    def remove_veth(self, pair: VethPair) -> None:
        from pyroute2 import IPRoute

        from courier.binding import netdev

        with IPRoute() as ipr:
            for name in (pair.name, pair.peer):
                if name:
                    netdev.delete(ipr, name)

