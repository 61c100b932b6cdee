"""Netlink and sysctl helpers for host devices, over short-lived pyroute2 ``IPRoute`` handles (no IPDB)."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from courier.binding.errors import BindingError

LOG = logging.getLogger(__name__)

# In a container /proc/sys is read-only: the image and the managed plugin mount the host's /proc/sys/net at
# another path and name it here (deploy/README.md).
PROC_SYS_NET = Path(os.environ.get("COURIER_PROC_SYS_NET") or "/proc/sys/net")
ETHTOOL_TIMEOUT = 10.0
# 8: never answer ARP for any local address; the host end is a pure L2 port.
ARP_IGNORE_NEVER = 8


def _absent(exc: NetlinkError) -> bool:
    """The kernel's answer when a name-addressed call finds no such device."""
    return exc.code == errno.ENODEV


def get(ipr: IPRoute, ifname: str) -> Any | None:
    """The link message of ``ifname``, or None if there is no such device."""
    try:
        return ipr.link("get", ifname=ifname)[0]
    except NetlinkError as exc:
        if _absent(exc):
            return None
        raise


def exists(ipr: IPRoute, ifname: str) -> bool:
    return get(ipr, ifname) is not None


def delete(ipr: IPRoute, ifname: str) -> bool:
    """Delete ``ifname``; False if it was not there (deleting one end of a veth also removes the other)."""
    try:
        ipr.link("del", ifname=ifname)
    except NetlinkError as exc:
        if _absent(exc):
            return False
        raise
    return True


def link_kind(ipr: IPRoute, ifname: str) -> str | None:
    link = get(ipr, ifname)
    info = link.get("IFLA_LINKINFO") if link is not None else None
    return info.get("IFLA_INFO_KIND") if info else None


def create_veth(ipr: IPRoute, name: str, peer: str, mtu: int, peer_mac: str | None = None) -> None:
    """Create a veth pair, both ends down, replacing any device already holding either name."""
    for stale in (name, peer):
        if delete(ipr, stale):
            LOG.warning("Replaced existing device %s", stale)
    peer_attrs: dict[str, Any] = {"ifname": peer, "mtu": mtu}
    if peer_mac:
        peer_attrs["address"] = peer_mac.lower()
    ipr.link("add", ifname=name, kind="veth", mtu=mtu, peer=peer_attrs)


def ensure_bridge(ipr: IPRoute, name: str) -> None:
    """Linux bridge ``name``, created if missing: no STP and no forward delay, so ports forward at once.

    A bridge that already exists (another bind's, or the agent's brq) is used as it is.
    """
    created = not exists(ipr, name)
    # ensure() copes with a concurrent bind creating it between the check and the add (EEXIST).
    ipr.ensure(ipr.link, present=True, ifname=name, kind="bridge", br_forward_delay=0, br_stp_state=0)
    if created:
        isolate_host_port(name)
    set_up(ipr, name)


def set_master(ipr: IPRoute, ifname: str, bridge: str | None) -> None:
    """Enslave ``ifname`` to ``bridge`` (None: release it)."""
    master = 0
    if bridge is not None:
        link = get(ipr, bridge)
        if link is None:
            raise BindingError(f"Bridge {bridge} does not exist")
        master = link["index"]  # IFLA_MASTER takes an index, not a name
    _set(ipr, ifname, master=master)


def set_up(ipr: IPRoute, ifname: str) -> None:
    _set(ipr, ifname, state="up")


def _set(ipr: IPRoute, ifname: str, **attrs: Any) -> None:
    try:
        ipr.link("set", ifname=ifname, **attrs)
    except NetlinkError as exc:
        if _absent(exc):
            raise BindingError(f"Device {ifname} does not exist") from exc
        raise


def write_sysctl(relative: str, value: str) -> bool:
    """Write /proc/sys/net/<relative>; False if it does not exist (e.g. IPv6 disabled on the host)."""
    path = PROC_SYS_NET / relative
    try:
        path.write_text(value)
    except FileNotFoundError:
        if not PROC_SYS_NET.is_dir():
            raise BindingError(f"{PROC_SYS_NET} (COURIER_PROC_SYS_NET) does not exist: mount the host's "
                               "/proc/sys/net there (deploy/README.md)") from None
        return False
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        raise BindingError(f"Cannot write {path}: read-only (Courier in a container?). Mount the host's "
                           "/proc/sys/net elsewhere and set COURIER_PROC_SYS_NET to it (deploy/README.md)") from exc
    return True


def isolate_host_port(ifname: str) -> None:
    """A host-side L2 port must stay silent: no IPv6 (link-local, RS, DAD), no ARP replies for host addresses.

    Call before the device goes up, so it never sends anything of its own.
    """
    write_sysctl(f"ipv6/conf/{ifname}/disable_ipv6", "1")
    if not write_sysctl(f"ipv4/conf/{ifname}/arp_ignore", str(ARP_IGNORE_NEVER)):
        raise BindingError(f"Cannot set arp_ignore on {ifname}: /proc/sys/net/ipv4/conf/{ifname} is missing")


def disable_tx_checksum(ifname: str) -> None:
    """``ethtool -K <ifname> tx off``: the userspace OVS datapath passes TCP with bad checksums otherwise."""
    try:
        from pyroute2.ethtool import Ethtool

        with Ethtool() as ethtool:
            ethtool.set_offload_flag(ifname, "tx-checksumming", 0)
        return
    except Exception as exc:  # any pyroute2 ethtool failure: the ethtool command may still work
        LOG.debug("pyroute2 ethtool could not turn TX checksum offload off on %s (%s); trying ethtool(8)",
                  ifname, exc)
    try:
        result = subprocess.run(["ethtool", "-K", ifname, "tx", "off"], capture_output=True, text=True,
                                timeout=ETHTOOL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BindingError(f"Cannot turn TX checksum offload off on {ifname} (needed for TCP on the "
                           f"userspace OVS datapath): pyroute2's ethtool failed and running ethtool(8) "
                           f"failed: {exc}") from exc
    if result.returncode != 0:
        raise BindingError(f"Cannot turn TX checksum offload off on {ifname}: 'ethtool -K {ifname} tx off' "
                           f"exited with status {result.returncode}: {result.stderr.strip()}")
