"""What Courier remembers between Docker calls. Only a cache: every entry can be rebuilt from Neutron.

Keeping it saves Neutron calls on the hot path (a container start makes none that look anything up).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from courier.driver.deferred import Deferred
from courier.exceptions import Conflict
from courier.neutron import models as nm


@dataclasses.dataclass
class PoolRecord:
    pool_id: str  # the PoolID Docker holds: "<subnetpool id>" or "<subnetpool id>/<cidr>"
    subnetpool_id: str
    cidr: nm.IPNetwork
    dedicated: bool  # a subnetpool Courier made for this Docker pool alone (deleted with it)
    ip_range: nm.IPNetwork | None = None  # --ip-range: where container addresses come from
    existing_subnet_id: str | None = None  # --ipam-opt neutron.subnet.uuid/name
    gateway: nm.IPAddress | None = None
    subnet: nm.Subnet | None = None  # set once CreateNetwork made or linked it
    requested: bool = False  # this process answered its RequestPool (a network is being made from it)
    subnetpool_tags: frozenset[str] = frozenset()  # as last read: a rolled-back CreateNetwork puts them back


@dataclasses.dataclass
class NetworkRecord:
    docker_id: str
    network: nm.Network
    subnets: list[nm.Subnet]
    existing: bool  # a Neutron network the user named (-o neutron.net.uuid/name): never deleted


@dataclasses.dataclass
class EndpointRecord:
    endpoint_id: str
    network: NetworkRecord
    port: nm.Port


class Claims:
    """One pending Docker pool per CIDR between RequestPool and CreateNetwork.

    CreateNetwork is told only the CIDR, not the PoolID: while two networks with the same CIDR are being
    created at once, their pools could be swapped. Serialising creates of the same CIDR rules that out.
    A claim that CreateNetwork never takes (Docker died) goes stale after ``stale_seconds``.
    """

    def __init__(self, wait_seconds: float = 30.0, stale_seconds: float = 60.0):
        self._cond = threading.Condition()
        self._pending: dict[str, tuple[PoolRecord | None, float]] = {}
        self._wait, self._stale = wait_seconds, stale_seconds

    def _busy(self, cidr: str) -> bool:
        entry = self._pending.get(cidr)
        return entry is not None and time.monotonic() - entry[1] < self._stale

    def claim(self, cidr: str) -> None:
        """Reserve ``cidr``, waiting (bounded) while another network with it is being created."""
        deadline = time.monotonic() + self._wait
        with self._cond:
            while self._busy(cidr):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Conflict(f"another Docker network with subnet {cidr} is being created; try again")
                self._cond.wait(remaining)
            self._pending[cidr] = (None, time.monotonic())

    def try_claim(self, cidr: str) -> bool:
        with self._cond:
            if self._busy(cidr):
                return False
            self._pending[cidr] = (None, time.monotonic())
            return True

    def hold(self, record: PoolRecord) -> None:
        with self._cond:
            self._pending[str(record.cidr)] = (record, time.monotonic())

    def abandon(self, cidr: str) -> None:
        with self._cond:
            self._pending.pop(cidr, None)
            self._cond.notify_all()

    def take(self, cidr: str) -> PoolRecord | None:
        with self._cond:
            entry = self._pending.pop(cidr, None)
            self._cond.notify_all()
            return entry[0] if entry else None

    def drop(self, pool_id: str) -> None:
        with self._cond:
            for cidr, (rec, _) in list(self._pending.items()):
                if rec is not None and rec.pool_id == pool_id:
                    del self._pending[cidr]
            self._cond.notify_all()

    def pending_subnetpools(self) -> set[str]:
        with self._cond:
            return {rec.subnetpool_id for rec, _ in self._pending.values() if rec is not None}

    def pending_cidrs(self) -> set[str]:
        with self._cond:
            return {c for c in self._pending if self._busy(c)}


class KeyedLocks:
    """A lock per key (network, pool, endpoint), so unrelated Docker calls run in parallel."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks[key]
        with lock:
            yield


class State:
    def __init__(self) -> None:
        self.pools: dict[str, PoolRecord] = {}
        self.networks: dict[str, NetworkRecord] = {}  # by Docker network id (or lookup.NEUTRON_KEY + Neutron id)
        self.network_names: dict[str, str] = {}  # Neutron network name -> id, as front ends named them
        self.endpoints: dict[str, EndpointRecord] = {}
        self.ports_by_ip: dict[tuple[str, str], nm.Port] = {}  # (Neutron network id, address)
        self.ports_by_mac: dict[tuple[str, str], nm.Port] = {}  # (Neutron network id, MAC): dual stack
        self.named_subnetpools: dict[str, nm.SubnetPool] = {}  # default pools: looked up once
        # (port id, subnet id) that RequestAddress gave out in this process and that were not released since
        self.allocated: set[tuple[str, str]] = set()
        self.port_updates: dict[str, Future[Any]] = {}  # descriptive updates still in flight, by port id
        self.claims = Claims()
        self.locks = KeyedLocks()
        self.deferred = Deferred()  # deletes Docker will not ask for again, retried while Neutron is away

    def settle(self, port_id: str, timeout: float = 15.0) -> None:
        """Let a port's in-flight update land before the port is deleted or given back."""
        future = self.port_updates.pop(port_id, None)
        if future is not None:
            with contextlib.suppress(Exception):
                future.result(timeout)

    def remember_port(self, port: nm.Port) -> None:
        for fixed in port.fixed_ips:
            self.ports_by_ip[(port.network_id, str(fixed.ip_address))] = port
        self.ports_by_mac[(port.network_id, port.mac_address.lower())] = port

    def forget_port(self, port: nm.Port) -> None:
        for fixed in port.fixed_ips:
            self.ports_by_ip.pop((port.network_id, str(fixed.ip_address)), None)
        self.ports_by_mac.pop((port.network_id, port.mac_address.lower()), None)
        self.allocated -= {key for key in self.allocated if key[0] == port.id}
        for eid, ep in list(self.endpoints.items()):
            if ep.port.id == port.id:
                del self.endpoints[eid]
