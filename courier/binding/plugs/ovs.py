"""vif_type ``ovs``: the host end goes into an OVS bridge, natively through OVSDB (no ovs-vsctl).

With ``vif_details.ovs_hybrid_plug`` the host end goes into a per-port Linux bridge ``qbr<port>`` joined to
OVS by a ``qvb<port>``/``qvo<port>`` veth pair, as os-vif and kuryr's ovs script do (for iptables firewalls).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from oslo_config import cfg
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from courier.binding import announce, netdev, ovsdb
from courier.binding.base import PlugDriver, WaitReady
from courier.binding.errors import BindingError, PortNotReady
from courier.binding.ovsdb import OVN_INSTALLED, InterfaceState
from courier.binding.vif import VIF, device_names
from courier.config.options import binding_host_id

LOG = logging.getLogger(__name__)


def is_hybrid(vif: VIF) -> bool:
    return bool(vif.vif_details.get("ovs_hybrid_plug", False))


class OvsPlug(PlugDriver):
    vif_types = ("ovs",)
    CONFIG_OPTS = (
        cfg.StrOpt("ovsdb_connection", default="unix:/run/openvswitch/db.sock", help="Local OVSDB."),
        cfg.FloatOpt("ovsdb_timeout", default=10.0, help="Seconds an OVSDB transaction may take."),
        cfg.StrOpt("integration_bridge", default="br-int",
                   help="OVS bridge for vif_type=ovs when vif_details names none."),
    )

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self._db: ovsdb.Ovsdb | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            ovsdb.release(db)

    def _ovsdb(self) -> ovsdb.Ovsdb:
        with self._lock:
            if self._db is None:
                self._db = ovsdb.acquire(self.conf.courier.ovsdb_connection, self.conf.courier.ovsdb_timeout)
            return self._db

    def bridge(self, vif: VIF) -> str:
        return str(vif.vif_details.get("bridge_name") or self.conf.courier.integration_bridge)

    def ovs_ifname(self, vif: VIF) -> str:
        """The interface OVS sees: the host end, or qvo<port> with a hybrid plug."""
        return device_names(vif.port_id).qvo if is_hybrid(vif) else vif.host_ifname

    def plug(self, vif: VIF) -> None:
        bridge = self.bridge(vif)
        db = self._ovsdb()
        if not db.bridge_exists(bridge):
            raise BindingError(f"OVS bridge {bridge} does not exist (Neutron port {vif.port_id}); it comes "
                               "from vif_details.bridge_name or [courier] integration_bridge")
        if is_hybrid(vif):
            self._plug_linux_bridge(vif)
        ifname = self.ovs_ifname(vif)
        external_ids = {
            "iface-id": vif.port_id,
            "attached-mac": vif.mac_address,
            "iface-status": "active",
            "vm-uuid": vif.endpoint_id,
            "owner": "courier",
        }
        try:
            db.add_port(bridge, ifname, external_ids, vif.mtu)
            state = db.interface(ifname)
        except Exception as exc:
            raise BindingError(f"Cannot add {ifname} to OVS bridge {bridge} for Neutron port {vif.port_id}: "
                               f"{exc}") from exc
        if state is not None and (state.error or state.ofport == -1):
            raise BindingError(f"OVS could not attach {ifname} to bridge {bridge} (Neutron port "
                               f"{vif.port_id}): {state.error or 'ofport -1'}")
        LOG.debug("Plugged %s into OVS bridge %s for port %s", ifname, bridge, vif.port_id)

    def _plug_linux_bridge(self, vif: VIF) -> None:
        qbr, qvb, qvo = device_names(vif.port_id).hybrid
        try:
            with IPRoute() as ipr:
                netdev.ensure_bridge(ipr, qbr)
                if netdev.link_kind(ipr, qvb) != "veth" or not netdev.exists(ipr, qvo):
                    netdev.create_veth(ipr, qvb, qvo, vif.mtu)
            for name in (qvb, qvo):
                netdev.isolate_host_port(name)
            with IPRoute() as ipr:
                netdev.set_master(ipr, qvb, qbr)
                netdev.set_master(ipr, vif.host_ifname, qbr)
                for name in (qvb, qvo, vif.host_ifname):
                    netdev.set_up(ipr, name)
        except NetlinkError as exc:
            raise BindingError(f"Cannot build the hybrid plug {qbr}/{qvb}/{qvo} for Neutron port "
                               f"{vif.port_id}: {exc}") from exc

    def unplug(self, vif: VIF) -> None:
        # Both plug styles are undone: the vif_details seen at unbind may not be those seen at bind. The hybrid
        # devices are named after the port, so without a port id (Neutron lost it) only the host end is known.
        qbr, qvb, qvo = device_names(vif.port_id).hybrid if vif.port_id else ("", "", "")
        ports = [name for name in (vif.host_ifname, qvo) if name]
        problems = []
        try:
            self._ovsdb().del_ports(*ports)
        except Exception as exc:
            problems.append(f"cannot remove OVS ports {'/'.join(ports)}: {exc}")
        try:
            with IPRoute() as ipr:
                for name in (qvb, qbr):
                    if name:
                        netdev.delete(ipr, name)
        except NetlinkError as exc:
            problems.append(f"cannot delete {qvb}/{qbr}: {exc}")
        if problems:
            raise BindingError(f"Unplugging Neutron port {vif.port_id} from OVS: " + "; ".join(problems))

    def remove_orphans(self, endpoint_id: str) -> list[str]:
        """Remove the OVS ports (and host veths) Courier plugged for an endpoint whose Neutron port is gone,
        found by their external_ids; return their names."""
        db = self._ovsdb()
        names = db.interfaces_with(**{"vm-uuid": endpoint_id, "owner": "courier"})
        if names:
            db.del_ports(*names)
            with IPRoute() as ipr:
                for name in names:
                    netdev.delete(ipr, name)  # the veth peer goes with it
        return names

    def label(self, vif: VIF, owner: str) -> None:
        # vm-uuid carries the endpoint id (orphan clean-up and restarts find the endpoint's port by it)
        self._ovsdb().set_interface_external_ids(self.ovs_ifname(vif), **{"vm-uuid": owner})

    def mgmt_socket(self, vif: VIF) -> str | None:
        """The bridge's local OpenFlow management socket, next to a unix: OVSDB socket (ovs-vswitchd's rundir)."""
        remote = str(self.conf.courier.ovsdb_connection)
        if not remote.startswith("unix:"):
            return None
        return os.path.join(os.path.dirname(remote[len("unix:"):]), f"{self.bridge(vif)}.mgmt")

    def announce(self, vif: VIF) -> None:
        frames = announce.frames_for(vif.mac_address, [f.address.ip for f in vif.fixed_ips])
        path = self.mgmt_socket(vif)
        if not frames or path is None:
            return
        ifname = self.ovs_ifname(vif)
        state = self._ovsdb().interface(ifname)
        if state is None or not state.ofport or state.ofport < 0:
            raise BindingError(f"cannot announce the addresses of port {vif.port_id}: {ifname} has no OpenFlow port")
        try:
            announce.inject(path, state.ofport, frames, timeout=self.conf.courier.ovsdb_timeout)
        except (OSError, announce.OpenFlowError) as exc:
            raise BindingError(f"cannot announce the addresses of port {vif.port_id} through {path}: {exc}") from exc

    def recorded_owner(self, vif: VIF) -> str | None:
        state = self._ovsdb().interface(self.ovs_ifname(vif))
        return state.external_ids.get("vm-uuid") if state is not None else None

    def owner_of(self, vif: VIF) -> str | None:
        db = self._ovsdb()
        state = db.interface(self.ovs_ifname(vif))
        if state is None or state.error or not state.ofport or state.ofport < 0:
            return None
        if "ovn-remote" in db.switch_external_ids() and state.external_ids.get(OVN_INSTALLED) != "true":
            return None  # OVN has not (or no longer) installed its flows
        return state.external_ids.get("vm-uuid")

    def port_of_endpoint(self, endpoint_id: str) -> str | None:
        found = self._ovsdb().interface_states_with(**{"vm-uuid": endpoint_id, "owner": "courier"})
        return next((s.external_ids.get("iface-id") for s in found if s.external_ids.get("iface-id")), None)

    def watch_ready(self, vif: VIF) -> contextlib.AbstractContextManager[WaitReady]:
        return self._watch_ready(vif)

    @contextlib.contextmanager
    def _watch_ready(self, vif: VIF) -> Iterator[WaitReady]:
        db = self._ovsdb()
        ifname = self.ovs_ifname(vif)
        # ovn-controller marks an interface once its flows are in. Without OVN (e.g. the ML2/OVS agent)
        # nothing marks it, so the most we can tell is that vswitchd attached it.
        with_ovn = "ovn-remote" in db.switch_external_ids()

        def settled(state: InterfaceState) -> bool:
            if state.error or state.ofport == -1:
                return True
            if with_ovn:
                return state.ovn_installed
            return state.ofport is not None and state.ofport > 0

        with db.watch_interface(ifname, settled) as wait_for_interface:

            def wait(timeout: float) -> None:
                state = wait_for_interface(timeout)
                if state is None and with_ovn:
                    raise PortNotReady(
                        f"Neutron port {vif.port_id} is not ready: OVN did not mark OVS interface {ifname} "
                        f"external_ids:{OVN_INSTALLED}=true within {timeout:g} s. Check that ovn-controller "
                        f"runs on this host and that the port is bound to this chassis (binding:host_id="
                        f"{binding_host_id(self.conf)}); [courier] port_ready_timeout sets the wait.")
                if state is None:
                    raise PortNotReady(f"Neutron port {vif.port_id} is not ready: OVS did not attach "
                                       f"interface {ifname} within {timeout:g} s; is ovs-vswitchd running?")
                if state.error or state.ofport == -1:
                    raise PortNotReady(f"Neutron port {vif.port_id} is not ready: OVS reports an error on "
                                       f"{ifname}: {state.error or 'ofport -1'}")

            yield wait
