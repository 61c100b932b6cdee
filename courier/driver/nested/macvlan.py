"""Nested MACVLAN and IPVLAN: the container's addresses become allowed address pairs of the VM port.

The VM port's pairs are changed read-modify-write with Neutron's revision check (``If-Match:
revision_number=N``): a 412 means someone else changed the port in between, so Courier re-reads it and tries
again (bounded). Concurrent requests in this process are grouped: one thread writes the changes of all that
are waiting, in one update.

Which MAC goes in the pair (docs/nested.md): ML2/OVN refuses a pair whose MAC is neither the VM port's own nor
an RFC 5798 VRRP MAC, and OVN drops frames whose source MAC is not in the VM port's port security.
- IPVLAN: the container shares the VM port's MAC, so the pair is (container IP, VM MAC).
- MACVLAN, ``[courier] nested_macvlan_mac = vrrp`` (default): the container port takes a free VRRP MAC
  (00:00:5e:00:01:XX for IPv4, :02:XX for IPv6); Neutron's MAC uniqueness per network keeps two containers
  (in any VM) from sharing one. The macvlan device gets that MAC and the pair is (container IP, that MAC).
- MACVLAN, ``nested_macvlan_mac = port``: kuryr's pair (container IP, container port MAC), for ML2/OVS.
In every case the container port is only a reservation of the address (and MAC): it is kept
``admin_state_up = false`` so that OVN neither answers ARP for it nor delivers frames to it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import random
import threading
import time
from typing import Any

from oslo_config import cfg

from courier.driver.nested.base import Nesting, VmPort
from courier.exceptions import AddressInUse, Conflict, CourierError, InvalidRequest, PoolExhausted
from courier.neutron import models as nm
from courier.neutron import tags
from courier.neutron.api import Neutron

LOG = logging.getLogger(__name__)

REVISION_RETRIES = 10  # 412s in a row before giving up
MAC_ATTEMPTS = 8
VRRP_PREFIX = {4: "00:00:5e:00:01:", 6: "00:00:5e:00:02:"}
VRRP_IDS = range(1, 256)  # VRID 1..255

Pair = tuple[str, str]  # (ip_address, mac_address)


def _ip(text: str) -> str:
    """A pair's IP as Neutron may hold it ("10.0.0.5", "10.0.0.5/32") in one form."""
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        return text
    if iface.network.prefixlen == iface.max_prefixlen:
        return str(iface.ip)
    return str(iface.network)


def _pair(ip: str, mac: str) -> Pair:
    return _ip(ip), mac.lower()


@dataclasses.dataclass
class _Change:
    add: set[Pair]
    remove: set[Pair]
    done: bool = False
    error: BaseException | None = None


class AddressPairs:
    """The VM port's allowed_address_pairs, changed with If-Match and retried on 412; writes grouped."""

    def __init__(self, neutron: Neutron, vm_port: VmPort):
        self._neutron, self._vm_port = neutron, vm_port
        self._cond = threading.Condition()
        self._queue: list[_Change] = []
        self._busy = False
        self._current: nm.Port | None = None  # the VM port as last read or written

    def current(self) -> set[Pair]:
        with self._cond:
            port = self._current
        port = port or self._vm_port.get()
        return {_pair(ip, mac or port.mac_address) for ip, mac in port.allowed_address_pairs}

    def change(self, add: set[Pair] | None = None, remove: set[Pair] | None = None) -> None:
        op = _Change(set(add or ()), set(remove or ()))
        with self._cond:
            self._queue.append(op)
            while not op.done and self._busy:
                self._cond.wait()
            if op.done:
                if op.error is not None:
                    raise op.error
                return
            batch, self._queue, self._busy = self._queue, [], True
        try:
            self._write_batch(batch)
        finally:
            with self._cond:
                self._busy = False
                for each in batch:
                    each.done = True
                self._cond.notify_all()
        if op.error is not None:
            raise op.error

    def _write_batch(self, batch: list[_Change]) -> None:
        try:
            self._write(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            # One change Neutron refuses (e.g. too many pairs) must not fail the others: one by one.
            for each in batch:
                try:
                    self._write([each])
                except Exception as single:
                    each.error = single

    def _write(self, batch: list[_Change]) -> None:
        with self._cond:
            port = self._current
        port = port or self._vm_port.get()
        for attempt in range(REVISION_RETRIES):
            pairs = [_pair(ip, mac or port.mac_address) for ip, mac in port.allowed_address_pairs]
            wanted = list(pairs)
            for each in batch:
                wanted = [p for p in wanted if p not in each.remove]
                wanted += [p for p in sorted(each.add) if p not in wanted]
            if wanted == pairs:
                self._remember(port)
                return
            try:
                port = self._neutron.update_port(
                    port.id, if_revision=port.revision_number,
                    allowed_address_pairs=[{"ip_address": ip, "mac_address": mac} for ip, mac in wanted])
            except CourierError as exc:
                if getattr(exc, "neutron_status", 0) != 412:
                    if exc.status >= 500:
                        raise
                    raise InvalidRequest(f"nested: cannot update the allowed address pairs of the VM port "
                                         f"{port.id}: {exc}") from exc
                LOG.debug("nested: VM port %s changed meanwhile (revision %d); re-reading", port.id,
                          port.revision_number)
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
                port = self._neutron.get_port(port.id)
                continue
            self._remember(port)
            return
        raise Conflict(f"nested: the VM port {port.id} kept changing: its allowed address pairs could not be "
                       f"updated in {REVISION_RETRIES} attempts")

    def _remember(self, port: nm.Port) -> None:
        with self._cond:
            self._current = port


class VrrpMacs:
    """Free VRRP MACs per network; Neutron's per-network MAC uniqueness settles races between processes."""

    def __init__(self, neutron: Neutron):
        self._neutron = neutron
        self._lock = threading.Lock()
        self._taken: dict[str, set[str]] = {}

    def _seed(self, network_id: str) -> set[str]:
        taken = self._taken.get(network_id)
        if taken is None:
            taken = set()
            for p in self._neutron.list_ports(network_id=network_id):
                taken.add(p.mac_address.lower())
                taken.update(mac.lower() for _, mac in p.allowed_address_pairs if mac)
            self._taken[network_id] = taken
        return taken

    def assign(self, port: nm.Port, version: int) -> nm.Port:
        prefix = VRRP_PREFIX[version]
        for _ in range(MAC_ATTEMPTS):
            with self._lock:
                taken = self._seed(port.network_id)
                free = [f"{prefix}{i:02x}" for i in VRRP_IDS if f"{prefix}{i:02x}" not in taken]
                if not free:
                    raise PoolExhausted(f"nested: no free VRRP MAC ({prefix}XX) on network {port.network_id}: "
                                        "MACVLAN containers on ML2/OVN are limited to 255 per network and IP "
                                        "version; use [binding] driver = ipvlan or vlan")
                mac = random.choice(free)
                taken.add(mac)
            try:
                return self._neutron.update_port(port.id, mac_address=mac, admin_state_up=False)
            except AddressInUse as exc:
                if getattr(exc, "neutron_type", "") != "MacAddressInUse":
                    raise
                LOG.info("nested: VRRP MAC %s is taken on network %s; trying another", mac, port.network_id)
            except BaseException:
                self.release(port.network_id, mac)
                raise
        raise Conflict(f"nested: no free VRRP MAC could be taken on network {port.network_id} in {MAC_ATTEMPTS} "
                       "attempts; try again")

    def release(self, network_id: str, mac: str) -> None:
        with self._lock:
            self._taken.get(network_id, set()).discard(mac.lower())


class MacvlanNesting(Nesting):
    name = "macvlan"
    # Docker's random MAC would be set on the device after Join, and ML2/OVN refuses it in a pair: the MAC
    # comes from Courier, in CreateEndpoint's reply.
    requires_mac = False
    shares_vm_mac = False

    def __init__(self, conf: cfg.ConfigOpts, neutron: Neutron, vm_port: VmPort | None = None):
        super().__init__(conf, neutron, vm_port)
        self.pairs = AddressPairs(neutron, self.vm_port)
        self.mac_mode = "vm" if self.shares_vm_mac else str(conf.courier.nested_macvlan_mac)
        self._macs = VrrpMacs(neutron)

    def port_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The port only reserves the address: OVN must not answer ARP for it nor deliver frames to it.
        return {**super().port_attrs(attrs), "admin_state_up": False}

    def _pair_mac(self, port: nm.Port, vm: nm.Port) -> str:
        return vm.mac_address if self.shares_vm_mac else port.mac_address

    def _pairs_of(self, port: nm.Port, vm: nm.Port) -> set[Pair]:
        mac = self._pair_mac(port, vm)
        return {_pair(str(f.ip_address), mac) for f in port.fixed_ips}

    def check(self, port: nm.Port) -> None:
        vm = self.vm_port.get()
        if port.network_id != vm.network_id:
            raise InvalidRequest(f"nested: [binding] driver = {self.name} puts containers on the VM port's network "
                                 f"{vm.network_id}, but this Docker network is Neutron network {port.network_id} "
                                 f"(create it with -o neutron.net.uuid={vm.network_id}, or use driver = vlan)")
        if not port.fixed_ips:
            raise InvalidRequest(f"nested: Neutron port {port.id} has no IP address to allow on the VM port")
        if not self._pairs_of(port, vm) <= self.pairs.current():
            self.require_unbound(port)

    def attach(self, port: nm.Port, docker_mac: str | None) -> nm.Port:
        self.check(port)
        vm = self.vm_port.get()
        if self._pairs_of(port, vm) <= self.pairs.current():
            return port  # already attached (Docker retried)
        port = self._prepare(port, vm, docker_mac)
        try:
            self.pairs.change(add=self._pairs_of(port, vm))
        except BaseException:
            if self.mac_mode == "vrrp":
                self._macs.release(port.network_id, port.mac_address)
            raise
        LOG.info("nested: %s allowed on VM port %s", ", ".join(f"{ip}/{mac}" for ip, mac in
                                                              sorted(self._pairs_of(port, vm))), vm.id)
        return port

    def _prepare(self, port: nm.Port, vm: nm.Port, docker_mac: str | None) -> nm.Port:
        """Give the port the MAC its pair will carry, and make it a pure reservation (admin down)."""
        if self.mac_mode != "vrrp":
            if tags.EXISTING_PORT in port.tags:  # a pre-created port: made admin down here
                return self._neutron.update_port(port.id, admin_state_up=False)
            return port
        versions = {f.ip_address.version for f in port.fixed_ips}
        if len(versions) > 1:
            raise InvalidRequest("nested: a dual-stack container cannot use MACVLAN with VRRP MACs (ML2/OVN "
                                 "needs 00:00:5e:00:01:XX for IPv4 and 00:00:5e:00:02:XX for IPv6, a device has "
                                 "one MAC): use [binding] driver = ipvlan or vlan")
        version = versions.pop()
        prefix = VRRP_PREFIX[version]
        if port.mac_address.lower().startswith(prefix):
            return port if tags.EXISTING_PORT not in port.tags else \
                self._neutron.update_port(port.id, admin_state_up=False)
        if docker_mac:
            raise InvalidRequest(f"nested: MACVLAN containers get a VRRP MAC ({prefix}XX) on ML2/OVN; "
                                 f"--mac-address {docker_mac} cannot be used")
        return self._macs.assign(port, version)

    def detach(self, port: nm.Port) -> nm.Port:
        try:
            vm = self.vm_port.get()
        except InvalidRequest as exc:  # no VM port (configuration): nothing this process attached
            LOG.warning("nested: not detaching port %s: %s", port.id, exc)
            return port
        pairs = self._pairs_of(port, vm)
        if pairs & self.pairs.current():
            self.pairs.change(remove=pairs)
            LOG.info("nested: pairs of port %s removed from VM port %s", port.id, vm.id)
        if self.mac_mode == "vrrp":
            self._macs.release(port.network_id, port.mac_address)
        return port


class IpvlanNesting(MacvlanNesting):
    name = "ipvlan"
    shares_vm_mac = True

    def attach(self, port: nm.Port, docker_mac: str | None) -> nm.Port:
        if docker_mac:
            raise InvalidRequest(f"nested: IPVLAN containers share the VM's MAC; --mac-address {docker_mac} "
                                 "cannot be used")
        return super().attach(port, docker_mac)

    def reply_mac(self, port: nm.Port) -> str | None:
        return None  # the ipvlan device has the VM's MAC; Docker must leave it alone
