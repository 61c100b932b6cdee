"""Nested VLAN: each container port becomes a subport of the VM port's trunk, on a VLAN id of its own.

VLAN ids: Neutron's trunk (``sub_ports``) is the source of truth. In this process a lock and an in-memory
map seeded from the trunk keep concurrent requests from picking the same id; between processes Neutron does
(``DuplicateSubPort`` on a taken id): Courier then re-reads the trunk and tries another id, a bounded number
of times. Ids are picked at random among the free ones so that two processes rarely collide at all.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from oslo_config import cfg

from courier.binding.vif import VIF
from courier.driver.nested.base import Nesting, VmPort
from courier.driver.nested.batching import GroupCommit
from courier.exceptions import Conflict, InvalidRequest, NeutronUnavailable, NotFound, PoolExhausted
from courier.neutron import models as nm
from courier.neutron import tags
from courier.neutron.api import Neutron

LOG = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # add_subports tries per container before giving up on a trunk other processes keep filling
MAX_BATCH = 5  # subports per trunk call: Neutron takes up to about a second per subport


class SegmentationIds:
    """The VLAN ids of one trunk: confirmed ones (as in Neutron) and ones being added right now."""

    def __init__(self, neutron: Neutron, trunk_id: str, low: int, high: int,
                 sub_ports: Iterable[Mapping[str, Any]], rng: random.Random | None = None):
        self.trunk_id, self.low, self.high = trunk_id, low, high
        self._neutron = neutron
        self._lock = threading.Lock()
        self._known = _segments(sub_ports)
        self._pending: dict[str, int] = {}
        self._uncertain: set[str] = set()  # an add whose answer was lost: it may have landed
        self._rng = rng or random.Random()
        self._adds: GroupCommit[dict[str, Any]] = GroupCommit(self._write_adds, MAX_BATCH)
        self._removes: GroupCommit[str] = GroupCommit(self._write_removes, MAX_BATCH)

    def segment_of(self, port_id: str) -> int | None:
        with self._lock:
            return self._known.get(port_id)

    def in_use(self) -> dict[str, int]:
        with self._lock:
            return dict(self._known)

    def refresh(self) -> None:
        """Re-read the trunk. The lock is held across the read, so no local add or remove is lost."""
        with self._lock:
            self._known = _segments(self._neutron.get_trunk(self.trunk_id).get("sub_ports") or ())
            self._uncertain -= set(self._known)

    def _reserve(self, port_id: str) -> int | None:
        taken = set(self._known.values()) | set(self._pending.values())
        free = [i for i in range(self.low, self.high + 1) if i not in taken]
        if not free:
            return None
        seg = self._rng.choice(free)
        self._pending[port_id] = seg
        return seg

    def _write_adds(self, subports: list[dict[str, Any]]) -> list[BaseException | None]:
        try:
            self._neutron.add_subports(self.trunk_id, subports)
            return [None] * len(subports)
        except Conflict as exc:
            if len(subports) == 1:
                return [exc]
        # one refused subport fails the whole call: the others go one by one
        errors: list[BaseException | None] = []
        for sub in subports:
            try:
                self._neutron.add_subports(self.trunk_id, [sub])
                errors.append(None)
            except Exception as exc:
                errors.append(exc)
        return errors

    def _write_removes(self, port_ids: list[str]) -> list[BaseException | None]:
        try:
            self._neutron.remove_subports(self.trunk_id, port_ids)
            return [None] * len(port_ids)
        except NotFound:
            if len(port_ids) == 1:
                return [None]  # SubPortNotFound: already gone
        errors: list[BaseException | None] = []
        for port_id in port_ids:
            try:
                self._neutron.remove_subports(self.trunk_id, [port_id])
                errors.append(None)
            except NotFound:
                errors.append(None)
            except Exception as exc:
                errors.append(exc)
        return errors

    def add(self, port_id: str) -> int:
        """Make ``port_id`` a subport on a free VLAN id; return the id (the existing one if it already is)."""
        refreshed_when_full = False
        last: Exception | None = None
        for _ in range(MAX_ATTEMPTS):
            with self._lock:
                current = self._known.get(port_id)
                if current is not None:
                    return current
                if port_id in self._pending:
                    raise Conflict(f"nested: Neutron port {port_id} is being added to trunk {self.trunk_id} "
                                   "by another request")
                seg = self._reserve(port_id)
            if seg is None:
                if refreshed_when_full:
                    raise PoolExhausted(
                        f"nested: no free VLAN id in {self.low}..{self.high} on trunk {self.trunk_id} "
                        f"({len(self.in_use())} subports): remove containers, or widen [courier] "
                        "nested_vlan_min/nested_vlan_max")
                self.refresh()  # ids other processes released may be free again
                refreshed_when_full = True
                continue
            try:
                self._adds.submit({"port_id": port_id, "segmentation_type": "vlan", "segmentation_id": seg})
            except Conflict as exc:
                last = exc
                with self._lock:
                    self._pending.pop(port_id, None)
                kind = getattr(exc, "neutron_type", "")
                LOG.info("nested: adding port %s on VLAN %d to trunk %s failed (%s); re-reading the trunk",
                         port_id, seg, self.trunk_id, kind or exc)
                self.refresh()
                if kind == "TrunkPortInUse" and self.segment_of(port_id) is None:
                    raise Conflict(f"nested: Neutron port {port_id} is already a subport of another trunk") from exc
                continue  # DuplicateSubPort: another process took that id (or added this very port)
            except NeutronUnavailable:
                with self._lock:  # the add may still land: detach removes the port whatever happened
                    self._pending.pop(port_id, None)
                    self._uncertain.add(port_id)
                raise
            except BaseException:
                with self._lock:
                    self._pending.pop(port_id, None)
                raise
            with self._lock:
                self._pending.pop(port_id, None)
                self._known[port_id] = seg
            return seg
        raise Conflict(f"nested: no VLAN id could be taken on trunk {self.trunk_id} in {MAX_ATTEMPTS} attempts "
                       f"(other Courier processes keep taking the same ids?); last refusal: {last}")

    def remove(self, port_id: str) -> bool:
        """Remove the subport; False if it was not one. The id is free again once Neutron confirmed."""
        with self._lock:
            if port_id not in self._known and port_id not in self._uncertain:
                return False
        self._removes.submit(port_id)
        with self._lock:
            self._known.pop(port_id, None)
            self._uncertain.discard(port_id)
        return True


def _segments(sub_ports: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    return {str(s["port_id"]): int(s["segmentation_id"]) for s in sub_ports if s.get("segmentation_type", "vlan")
            == "vlan"}


class VlanNesting(Nesting):
    name = "vlan"
    requires_mac = True  # the VLAN device gets the port's MAC, which may as well be the one Docker chose

    def __init__(self, conf: cfg.ConfigOpts, neutron: Neutron, vm_port: VmPort | None = None,
                 rng: random.Random | None = None):
        super().__init__(conf, neutron, vm_port)
        self.low, self.high = int(conf.courier.nested_vlan_min), int(conf.courier.nested_vlan_max)
        if self.low > self.high:
            raise InvalidRequest(f"[courier] nested_vlan_min ({self.low}) is above nested_vlan_max ({self.high})")
        self._lock = threading.Lock()
        self._ids: SegmentationIds | None = None
        self._rng = rng

    def segmentation_ids(self) -> SegmentationIds:
        """The VM port's trunk, found once (its sub_ports seed the VLAN ids)."""
        with self._lock:
            if self._ids is None:
                vm = self.vm_port.get()
                trunks = self._neutron.list_trunks(port_id=vm.id)
                if not trunks:
                    raise NotFound(f"nested: the VM port {vm.id} is not the parent of a trunk, which [binding] "
                                   f"driver = vlan needs (openstack network trunk create --parent-port {vm.id} "
                                   "NAME)")
                trunk = trunks[0]
                self._ids = SegmentationIds(self._neutron, str(trunk["id"]), self.low, self.high,
                                            trunk.get("sub_ports") or (), self._rng)
                LOG.info("nested: trunk %s with %d subports", trunk["id"], len(trunk.get("sub_ports") or ()))
            return self._ids

    def port_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Neutron refuses a subport with a device_id ("Port already has an attached device"); the endpoint
        # tags identify the port anyway.
        return {k: v for k, v in super().port_attrs(attrs).items() if k != "device_id"}

    def check(self, port: nm.Port) -> None:
        if self.segmentation_ids().segment_of(port.id) is None:
            self.require_unbound(port)

    def attach(self, port: nm.Port, docker_mac: str | None) -> nm.Port:
        ids = self.segmentation_ids()
        if ids.segment_of(port.id) is not None:
            return port
        self.require_unbound(port)
        try:
            seg = ids.add(port.id)
        except NotFound as exc:
            if getattr(exc, "neutron_type", "") == "TrunkNotFound":
                with self._lock:
                    self._ids = None  # found again on the next call
                raise NotFound(f"nested: trunk {ids.trunk_id} of the VM port no longer exists") from exc
            raise
        LOG.info("nested: port %s is subport VLAN %d of trunk %s", port.id, seg, ids.trunk_id)
        return port

    def detach(self, port: nm.Port) -> nm.Port:
        try:
            ids = self.segmentation_ids()
        except NotFound:
            return port  # the VM port has no trunk: nothing can be attached to it
        except InvalidRequest as exc:  # no VM port (configuration): nothing this process attached
            LOG.warning("nested: not detaching port %s: %s", port.id, exc)
            return port
        if not ids.remove(port.id):
            return port
        LOG.info("nested: port %s removed from trunk %s", port.id, ids.trunk_id)
        # The trunk plugin took the port's device_owner (trunk:subport, then ""): give Courier's back, so the
        # port is still recognised as Courier's when its address is released.
        try:
            return self._neutron.update_port(port.id, device_owner=tags.DEVICE_OWNER)
        except NotFound:
            return port

    def vif(self, vif: VIF, port: nm.Port) -> VIF:
        seg = self.segmentation_ids().segment_of(port.id)
        if seg is None:
            raise NotFound(f"nested: Neutron port {port.id} is not a subport of this VM's trunk "
                           f"{self.segmentation_ids().trunk_id}")
        return dataclasses.replace(vif, segmentation_id=seg)
