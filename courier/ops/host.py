"""What Courier leaves on this host, read and removed: OVS interfaces (local OVSDB) and veth pairs (netlink)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from courier.binding import settings
from courier.binding.vif import IFNAMSIZ

# pyroute2, ovsdbapp and the binding drivers load on first use: `courier --help` stays fast.

OWNER = "courier"  # external_ids:owner of the OVS interfaces Courier plugs (courier/binding/plugs/ovs.py)
# Host ends (tap) and container ends (t_c) of Courier's veth pairs: prefix + 11 characters of a port
# (or, before port naming, an endpoint) id.
SUFFIX_LEN = IFNAMSIZ - 4
VETH_NAME = re.compile(rf"(tap|t_c)([0-9a-f-]{{{SUFFIX_LEN}}})")


@dataclasses.dataclass(frozen=True)
class OvsInterface:
    name: str
    bridge: str
    external_ids: Mapping[str, str]
    ofport: int | None
    error: str = ""

    @property
    def owner(self) -> str:
        return self.external_ids.get("owner", "")

    @property
    def port_id(self) -> str:
        return self.external_ids.get("iface-id", "")

    @property
    def endpoint_id(self) -> str:
        return self.external_ids.get("vm-uuid", "")

    @property
    def ovn_installed(self) -> bool:
        from courier.binding.plugs.ovs import OVN_INSTALLED

        return self.external_ids.get(OVN_INSTALLED) == "true"

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
        self.ovsdb_remote = settings.ovsdb_connection(conf)
        self._timeout = settings.ovsdb_timeout(conf)
        self._db: Any = None

    def db(self) -> Any:
        """The ``courier.binding.ovsdb.Ovsdb`` connection."""
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
        return sorted(self.db().api.list_br().execute(check_error=True))

    def ovs_interfaces(self) -> list[OvsInterface]:
        api = self.db().api
        bridge_of = {port: br for br in self.bridges() for port in api.list_ports(br).execute(check_error=True)}
        rows = api.db_list("Interface", columns=["name", "external_ids", "ofport", "error"]).execute(
            check_error=True)
        return [OvsInterface(name=r["name"], bridge=bridge_of.get(r["name"], ""), external_ids=dict(r["external_ids"]),
                             ofport=_single(r["ofport"]), error=_single(r["error"]) or "")
                for r in rows]

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
        from courier.binding.plugs.ovs import hybrid_names

        self.db().del_ports(iface.name)
        devices = [iface.name]
        if iface.port_id:
            qbr, qvb, _ = hybrid_names(iface.port_id)
            suffix = iface.port_id[:SUFFIX_LEN]
            devices += [qvb, qbr, "tap" + suffix, "t_c" + suffix]
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


def _single(value: Any) -> Any:
    """OVSDB optional columns: a list of zero or one element."""
    if isinstance(value, list):
        return value[0] if value else None
    return value
