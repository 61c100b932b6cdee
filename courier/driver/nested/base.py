"""What the driver asks of a nesting strategy, and the VM port every strategy hangs containers off.

Courier runs inside a Nova VM whose NIC ([binding] link_iface) is a Neutron port, the *VM port*. Container
ports are made by IpamDriver.RequestAddress like on bare metal, but without ``binding:host_id``: no host binds
them. CreateEndpoint then *attaches* the port behind the VM port (trunk subport, or allowed address pair) and
DeleteEndpoint (or, as a safety net, ReleaseAddress) detaches it. Join only makes the kernel device, from what
attach left in memory (the VLAN id), so it makes no Neutron call.
"""

from __future__ import annotations

import abc
import logging
import threading
from typing import Any, ClassVar

from oslo_config import cfg

from courier.binding.errors import BindingError
from courier.binding.nested import vm_interface
from courier.binding.vif import VIF
from courier.exceptions import InvalidRequest, NotFound
from courier.neutron import models as nm
from courier.neutron import tags
from courier.neutron.api import Neutron

LOG = logging.getLogger(__name__)

UNBOUND_VIF_TYPES = ("", "unbound")


class VmPort:
    """The VM's own Neutron port: ``[courier] nested_vm_port``, or found once by the MAC of link_iface.

    Found on first use (Neutron may be down when Courier starts), then kept: no per-call re-discovery. A
    failed discovery is not kept, so the next call tries again.
    """

    def __init__(self, conf: cfg.ConfigOpts, neutron: Neutron):
        self._conf, self._neutron = conf, neutron
        self._lock = threading.Lock()
        self._port: nm.Port | None = None

    def get(self) -> nm.Port:
        with self._lock:
            if self._port is None:
                self._port = self._discover()
                LOG.info("nested: VM port %s (MAC %s, network %s)", self._port.id, self._port.mac_address,
                         self._port.network_id)
            return self._port

    def _discover(self) -> nm.Port:
        configured = str(self._conf.courier.nested_vm_port or "")
        if configured:
            try:
                return self._neutron.get_port(configured)
            except NotFound as exc:
                raise InvalidRequest(f"[courier] nested_vm_port = {configured}: Neutron has no such port") from exc
        try:
            ifname, mac = vm_interface(self._conf)
        except BindingError as exc:
            raise InvalidRequest(f"nested: cannot find this VM's Neutron port: {exc}") from exc
        found = [p for p in self._neutron.list_ports(mac_address=mac) if p.device_owner != tags.DEVICE_OWNER]
        if not found:
            raise InvalidRequest(f"nested: no Neutron port has the MAC {mac} of {ifname} ([binding] link_iface); "
                                 "is Courier running in a Nova VM on that interface? Set [courier] nested_vm_port "
                                 "to the VM port's id otherwise")
        if len(found) > 1:
            raise InvalidRequest(f"nested: {len(found)} Neutron ports have the MAC {mac} of {ifname} "
                                 f"({', '.join(p.id for p in found)}): set [courier] nested_vm_port")
        return found[0]


class Nesting(abc.ABC):
    """One strategy per [binding] driver: vlan (trunk subports) or macvlan/ipvlan (allowed address pairs)."""

    name: ClassVar[str]
    # IpamDriver capability: whether Docker picks the container's MAC (sent to RequestAddress).
    requires_mac: ClassVar[bool] = True

    def __init__(self, conf: cfg.ConfigOpts, neutron: Neutron, vm_port: VmPort | None = None):
        self._conf, self._neutron = conf, neutron
        self.vm_port = vm_port or VmPort(conf, neutron)

    def port_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Attributes of a new container port: no host binds it (it rides on the VM port)."""
        return {k: v for k, v in attrs.items() if k != "binding:host_id"}

    @abc.abstractmethod
    def check(self, port: nm.Port) -> None:
        """Raise if ``port`` cannot be attached (bound to a host, wrong network...); changes nothing."""

    @abc.abstractmethod
    def attach(self, port: nm.Port, docker_mac: str | None) -> nm.Port:
        """Put the container port behind the VM port (CreateEndpoint); idempotent. Returns the port as it is now.

        ``docker_mac``: the MAC Docker already gave the endpoint (it will set it on the device), if any.
        """

    @abc.abstractmethod
    def detach(self, port: nm.Port) -> nm.Port:
        """Undo ``attach``; idempotent and cheap when there is nothing to undo. Returns the port as it is now."""

    def vif(self, vif: VIF, port: nm.Port) -> VIF:
        """Complete the VIF the link driver gets at Join (e.g. the VLAN id)."""
        return vif

    def reply_mac(self, port: nm.Port) -> str | None:
        """The MAC CreateEndpoint gives Docker when Docker chose none (None: Docker leaves the device's MAC)."""
        return port.mac_address

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the strategy holds."""

    # --- shared checks --------------------------------------------------------------------------------------

    @staticmethod
    def require_unbound(port: nm.Port) -> None:
        """A container port must not be bound to any host: it reaches the network only through the VM port."""
        if port.host_id:
            raise InvalidRequest(
                f"nested: Neutron port {port.id} is bound to host {port.host_id} (binding:vif_type "
                f"{port.vif_type or 'unset'}); a container in this VM needs a port that no host is bound to "
                "(clear its binding:host_id, or use another address)")
        if port.vif_type not in UNBOUND_VIF_TYPES:
            raise InvalidRequest(
                f"nested: Neutron port {port.id} has binding:vif_type {port.vif_type}, which nested mode cannot "
                "use: a container in this VM needs an unbound port")
