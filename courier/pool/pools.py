"""Per (network, host): ready ports, taken on a container's start and given back on its removal, refilled in bulk.

State lives where a restarted Courier finds it again, never only in memory:

* Neutron: an idle pooled port carries the tag ``courier.pool:<host>`` (and kuryr's ``compute:kuryr``), is bound to
  this host and named ``kuryr-unbound-port``. Once a container has kept it for ``describe_delay`` seconds it gets
  the endpoint's name, device_id and tags like any endpoint port (and loses the pool tag); a shorter-lived
  container costs no Neutron call at all.
* OVSDB: the port's OVS interface says whom it serves in ``external_ids:vm-uuid``: ``courier-pool`` (idle),
  ``courier-reserved`` (an address was given out, no endpoint yet) or the Docker endpoint id. It is written on the
  hot path (a local transaction) so that a crash can never make a port in use look idle.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import ipaddress
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from oslo_config import cfg

from courier import metrics
from courier.binding.manager import Binder
from courier.binding.vif import VIF
from courier.exceptions import AddressInUse, CourierError, InvalidRequest, NotFound
from courier.neutron import models as nm
from courier.neutron import tags
from courier.neutron.api import Neutron
from courier.neutron.vif import vif_for

LOG = logging.getLogger(__name__)

POOL_OWNER = "courier-pool"
RESERVED_OWNER = "courier-reserved"
RETURN_WAIT = 1.0  # seconds a start waits for a port being recycled rather than take the cold path
RESERVED_GRACE = 60.0  # seconds a reservation found at start may still be claimed (dockerd retries for 30 s)
READY_TIMEOUT = 20.0  # seconds a new batch may take to go ACTIVE in Neutron
RECOVERY_WAIT = 15.0  # seconds a call waits for the ports of a previous run to be known (then: as if none)
RECOVERY_RETRY = 1.0  # seconds between attempts to find them (Neutron may be down when Courier starts)


def _share(subnet: nm.Subnet) -> int:
    """At most a quarter of a subnet's addresses wait in a pool: small subnets stay usable by everyone."""
    return max(1, (subnet.cidr.num_addresses - 3) // 4)


def pool_tag(host_id: str) -> str:
    return ("courier.pool:" + host_id)[:tags.MAX_TAG_LEN]


@dataclasses.dataclass(eq=False)
class Pooled:
    port: nm.Port
    vif: VIF  # as plugged: endpoint_id is POOL_OWNER
    owner: str = POOL_OWNER  # POOL_OWNER (ready), RESERVED_OWNER, or the endpoint id
    described: bool = False  # the endpoint's identity is in Neutron (must be scrubbed before reuse)
    returning: bool = False
    since: float = dataclasses.field(default_factory=time.monotonic)
    timer: threading.Timer | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)  # describe vs. scrub

    @property
    def address(self) -> str:
        return str(self.port.fixed_ips[0].ip_address) if self.port.fixed_ips else ""


@dataclasses.dataclass(eq=False)
class NetworkPool:
    subnet: nm.Subnet
    network: nm.Network | None = None  # None until fetched (a pool first seen after a restart)
    ready: collections.deque[Pooled] = dataclasses.field(default_factory=collections.deque)
    building: int = 0
    takes: int = 0  # since the last check: demand
    last_take: float = dataclasses.field(default_factory=time.monotonic)
    closed: bool = False  # network deleted, or not poolable (several subnets)


class PortPools:
    """Thread-safe. ``take``/``claim``/``plugged_name``/``give_back`` never call Neutron."""

    def __init__(self, conf: cfg.ConfigOpts, neutron: Neutron, binder: Binder, host_id: str, *, nested: bool):
        self._opts = conf.vif_pool
        self.enabled = bool(self._opts.enabled) and not nested and binder.prepluggable
        self._neutron, self._binder, self._host = neutron, binder, host_id
        self.tag = pool_tag(host_id)
        self._lock = threading.RLock()
        self._back = threading.Condition(self._lock)  # a port came back to a pool
        self._pools: dict[str, NetworkPool] = {}  # by Neutron network id
        self._ports: dict[str, Pooled] = {}  # every port the pools hold: ready, taken, or on its way back
        self._jobs = ThreadPoolExecutor(max_workers=6, thread_name_prefix="pool")
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._tags_in_post = True
        self.active_timeout = READY_TIMEOUT
        # Set once the ports a previous run left are known: until then a pooled port found in Neutron (a call
        # retried after a crash) would look like an ordinary one, so the hot path waits for it.
        self._recovered = threading.Event()

    # --- lifecycle ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Find the idle ports a previous run left, then keep every pool filled (background)."""
        if not self.enabled or self._thread is not None:
            self._recovered.set()
            return
        self._thread = threading.Thread(target=self._run, name="pool-refill", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        with self._lock:
            for pooled in self._ports.values():
                if pooled.timer is not None:
                    pooled.timer.cancel()
        self._jobs.shutdown(wait=False, cancel_futures=True)

    def stand_down(self, why: str) -> None:
        """Stop pooling (e.g. dockerd keeps choosing MACs: it read our IPAM capabilities before the pools were on)
        and give the idle ports back to Neutron."""
        with self._lock:
            if not self.enabled:
                return
            self.enabled = False
            networks = list(self._pools)
        LOG.warning("warm pool off: %s", why)
        for network_id in networks:
            self._submit(self.drain, network_id)

    def register(self, network: nm.Network, subnets: list[nm.Subnet]) -> None:
        """A network Courier serves (CreateNetwork): fill its pool. Only single-subnet networks are pooled."""
        if not self.enabled:
            return
        with self._lock:
            pool = self._pools.get(network.id)
            if pool is None:
                pool = self._pools[network.id] = NetworkPool(subnet=subnets[0] if subnets else _NO_SUBNET)
            pool.network = network
            pool.closed = len(subnets) != 1
            if subnets and len(subnets) == 1:
                pool.subnet = subnets[0]
        self._wake.set()

    # --- the hot path -------------------------------------------------------------------------------------------

    def _known(self) -> bool:
        """Pooling is on and the previous run's ports are known (waits for them, briefly, after a start)."""
        if not self.enabled:
            return False
        if self._thread is not None and not self._recovered.wait(RECOVERY_WAIT):
            LOG.warning("warm pool: ports of a previous run still unknown after %.0f s", RECOVERY_WAIT)
        return True

    def take(self, subnet: nm.Subnet, address: str | None = None, wait: float = 10.0,
             patient: bool = False) -> nm.Port | None:
        """A ready port of ``subnet`` (with ``address``, if given); None: take the cold path.

        An address whose port is on its way back to the pool (``docker rm`` then ``run --ip`` of the same address)
        is waited for, up to ``wait`` seconds; so is any port being made when ``patient`` (the subnet is full).
        """
        if not self._known():
            return None
        with self._lock:
            pool = self._pools.get(subnet.network_id)
            if pool is None:  # first seen since this process started: fill it from now on
                self._pools[subnet.network_id] = pool = NetworkPool(subnet=subnet)
            pool.last_take, pool.takes = time.monotonic(), pool.takes + 1
            chosen = None
            if not pool.closed and pool.subnet.id == subnet.id:
                if address:
                    deadline = time.monotonic() + wait
                    while True:
                        chosen = next((p for p in pool.ready if p.address == address), None)
                        coming = any(p.returning and p.address == address for p in self._ports.values())
                        if chosen is not None or not coming or time.monotonic() >= deadline:
                            break
                        self._back.wait(deadline - time.monotonic())
                    if chosen is not None:
                        pool.ready.remove(chosen)
                else:
                    # a port on its way back (recycled in ~10 ms: a burst of starts and stops) is worth waiting
                    # for; a cold port costs a Neutron round trip and OVN's binding
                    deadline = time.monotonic() + (wait if patient else RETURN_WAIT)
                    while not pool.ready and time.monotonic() < deadline and (
                            (patient and pool.building) or self._returning_to(subnet.network_id)):
                        self._back.wait(deadline - time.monotonic())
                    chosen = pool.ready.popleft() if pool.ready else None
            if chosen is not None:
                chosen.owner, chosen.since = RESERVED_OWNER, time.monotonic()
            self._gauge(subnet.network_id, pool)
        self._wake.set()
        if chosen is None:
            metrics.POOL_TAKES.labels(result="miss").inc()
            return None
        self._label(chosen, RESERVED_OWNER)
        metrics.POOL_TAKES.labels(result="hit").inc()
        return chosen.port

    def _returning_to(self, network_id: str) -> bool:
        """A port of the network is being recycled (called with the lock held)."""
        return any(p.returning and p.port.network_id == network_id for p in self._ports.values())

    def holds(self, port_id: str) -> bool:
        """The port is the pools' (ready, taken or on its way back): never delete it elsewhere."""
        return self._known() and port_id in self._ports

    def taken(self, port_id: str) -> bool:
        if not self._known():
            return False
        pooled = self._ports.get(port_id)
        return pooled is not None and pooled.owner != POOL_OWNER and not pooled.returning

    def port_id_of(self, subnet_id: str, address: str) -> str | None:
        if not self._known():
            return None
        with self._lock:
            return next((pid for pid, p in self._ports.items()
                         if p.address == address and p.port.fixed_ips[0].subnet_id == subnet_id), None)

    def claim(self, port_id: str, endpoint_id: str, extra_tags: frozenset[str] = frozenset()) -> nm.Port:
        """CreateEndpoint: the port serves ``endpoint_id``; Neutron hears of it later (``describe_delay``), with
        the endpoint's tags and ``extra_tags`` (e.g. a CNI attachment's)."""
        pooled = self._ports[port_id]
        with self._lock:
            if pooled.owner not in (RESERVED_OWNER, endpoint_id):  # OVSDB, not Neutron, says whom it serves
                raise AddressInUse(f"address {pooled.address} is already in use by port {port_id} of endpoint "
                                   f"{pooled.owner[:12]}")
            pooled.owner = endpoint_id
            if pooled.timer is not None:
                pooled.timer.cancel()
            pooled.timer = threading.Timer(self._opts.describe_delay, self._describe,
                                           (pooled, endpoint_id, extra_tags))
            pooled.timer.daemon = True
        self._label(pooled, endpoint_id)
        pooled.timer.start()
        return pooled.port

    def plugged_name(self, port_id: str) -> str | None:
        """Join: the name of the plugged, ready interface Docker moves into the sandbox; None: bind it now."""
        pooled = self._ports.get(port_id)
        if pooled is None:
            return None
        try:
            if self._binder.plugged_for(pooled.vif) is None:
                return None
        except CourierError as exc:
            LOG.warning("pooled port %s: cannot check its interface (%s); binding it again", port_id, exc)
            return None
        self._binder.announce(pooled.vif)  # as a bind does: no neighbour keeps a previous holder's MAC
        return pooled.vif.container_ifname

    def give_back(self, port_id: str, only_from: str | None = None) -> bool:
        """DeleteEndpoint (or ReleaseAddress without an endpoint): recycled in the background. False: not ours
        (or, with ``only_from``, no longer held by that owner)."""
        if not self._known():
            return False
        with self._lock:
            pooled = self._ports.get(port_id)
            if pooled is None or (only_from is not None and pooled.owner != only_from):
                return False
            if pooled.owner == POOL_OWNER or pooled.returning:
                return True
            pooled.returning = True
            if pooled.timer is not None:
                pooled.timer.cancel()
        self._submit(self._recycle, pooled)
        return True

    def leave_pool(self, port_id: str) -> nm.Port | None:
        """The port becomes an ordinary endpoint port (e.g. the user wants another MAC): unplug its pre-plugged
        interface now, forget it here. Returns it without the pool's tag (None: not a pooled port)."""
        with self._lock:
            pooled = self._ports.pop(port_id, None)
        if pooled is None:
            return None
        if pooled.timer is not None:
            pooled.timer.cancel()
        self._binder.unbind(pooled.vif)
        plain = pooled.port.tags - {self.tag}
        self._neutron.set_port_tags(port_id, plain)
        return dataclasses.replace(pooled.port, tags=frozenset(plain))

    def drain(self, network_id: str, timeout: float = 60.0) -> None:
        """DeleteNetwork: delete the network's pooled ports (and wait for those on their way)."""
        with self._lock:
            pool = self._pools.pop(network_id, None)
            if pool is None:
                return
            pool.closed = True
            idle = list(pool.ready)
            pool.ready.clear()
        if idle:  # in parallel: DeleteNetwork waits for them, and each is a Neutron round trip
            with ThreadPoolExecutor(max_workers=min(8, len(idle)), thread_name_prefix="pool-drain") as deleting:
                list(deleting.map(self._delete, idle))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = pool.building or any(p.port.network_id == network_id and p.returning
                                            for p in self._ports.values())
            if not busy:
                break
            time.sleep(0.05)
        metrics.POOL_READY.labels(network=network_id).set(0)

    def counts(self) -> dict[str, int]:
        """Ready ports per Neutron network (for `courier status` and tests)."""
        with self._lock:
            return {net: len(pool.ready) for net, pool in self._pools.items()}

    # --- background -----------------------------------------------------------------------------------------------

    def _submit(self, fn: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # shutting down
            self._jobs.submit(self._logged, fn, *args)

    def _logged(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            if self._stop.is_set():  # shutting down: what was half made is tagged, the next start finds it
                LOG.info("warm pool: %s cut short by shutdown", getattr(fn, "__name__", fn))
                return
            LOG.exception("warm pool: %s failed", getattr(fn, "__name__", fn))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._recover()
                break
            except Exception as exc:
                LOG.warning("warm pool: finding the ports of a previous run failed (%s); trying again", exc)
                self._stop.wait(RECOVERY_RETRY)
        self._recovered.set()
        while not self._stop.is_set():
            try:
                self._check()
            except Exception:
                LOG.exception("warm pool: check failed")
            self._wake.wait(self._opts.ports_pool_update_frequency)
            self._wake.clear()

    def _check(self) -> None:
        now = time.monotonic()
        with self._lock:
            pools = list(self._pools.items())
            stale = [p for p in self._ports.values()
                     if p.owner == RESERVED_OWNER and not p.returning and now - p.since > RESERVED_GRACE]
        for pooled in stale:  # an address nobody claimed (a crash between RequestAddress and CreateEndpoint)
            self.give_back(pooled.port.id, only_from=RESERVED_OWNER)  # unless claimed since
        for network_id, pool in pools:
            if pool.network is None and not pool.closed:
                self._fetch_network(network_id, pool)
            if pool.closed or pool.network is None:
                continue
            idle = self._opts.idle_timeout and now - pool.last_take > self._opts.idle_timeout
            with self._lock:
                if pool.closed:  # drained meanwhile
                    continue
                target = 0 if idle else min(max(self._opts.ports_pool_min, 2 * pool.takes), _share(pool.subnet))
                pool.takes = 0
                if self._opts.ports_pool_max:
                    target = min(target, self._opts.ports_pool_max)
                surplus = [pool.ready.pop() for _ in range(max(0, len(pool.ready) - target))] if idle else []
                deficit = target - len(pool.ready) - pool.building
                batches = []
                while deficit > 0 and pool.building < 2 * self._opts.ports_pool_batch:  # two bulk calls at most
                    size = min(deficit, self._opts.ports_pool_batch)
                    batches.append(size)
                    pool.building += size
                    deficit -= size
            for pooled in surplus:
                self._delete(pooled)
            for size in batches:
                self._submit(self._refill, network_id, pool, size)

    def _fetch_network(self, network_id: str, pool: NetworkPool) -> None:
        network = self._neutron.get_network(network_id)
        with self._lock:
            pool.network = network
            pool.closed = len(network.subnet_ids) != 1

    def _refill(self, network_id: str, pool: NetworkPool, count: int) -> None:
        started = time.monotonic()
        made: list[Pooled] = []
        try:  # `building` counts this batch until its ports are ready or gone: drain() waits for it
            assert pool.network is not None
            for port in self._create(network_id, pool.subnet, count):
                pooled = Pooled(port=port, vif=vif_for(port, pool.network, [pool.subnet], POOL_OWNER))
                with self._lock:
                    self._ports[port.id] = pooled
                made.append(pooled)
            with ThreadPoolExecutor(max_workers=len(made) or 1, thread_name_prefix="pool-plug") as plug:
                plugged = list(plug.map(self._plug, made))
            usable = [p for p, ok in zip(made, plugged, strict=True) if ok]
            self._wait_active(usable)
            with self._lock:
                keep = not pool.closed and network_id in self._pools
                if keep:
                    pool.ready.extend(usable)
                    self._back.notify_all()
                self._gauge(network_id, pool)
            if not keep:
                for pooled in usable:
                    self._delete(pooled)
        except Exception:
            for pooled in made:
                if pooled.port.id in self._ports and pooled not in pool.ready:
                    self._delete(pooled)
            raise
        finally:
            with self._lock:
                pool.building -= count
        metrics.POOL_REFILL_SECONDS.observe(time.monotonic() - started)
        LOG.info("warm pool of network %s: %d ports ready in %.2f s", network_id, len(usable),
                 time.monotonic() - started)

    def _create(self, network_id: str, subnet: nm.Subnet, count: int) -> list[nm.Port]:
        attrs: dict[str, Any] = {"fixed_ips": [{"subnet_id": subnet.id}], "device_owner": tags.DEVICE_OWNER,
                                 "binding:host_id": self._host, "admin_state_up": True, "name": tags.IPAM_PORT_NAME}
        pool_tags = [self.tag]  # kuryr's compute:kuryr tag comes with a container (``_describe``), as on the cold path
        if self._tags_in_post:
            try:
                return self._neutron.create_ports(network_id, count, **attrs, tags=pool_tags)
            except InvalidRequest as exc:
                if "tags" not in str(exc):
                    raise
                self._tags_in_post = False  # Neutron without tags on POST: tag each port once made
        ports = self._neutron.create_ports(network_id, count, **attrs)
        for port in ports:
            self._neutron.set_port_tags(port.id, pool_tags)
        return [dataclasses.replace(p, tags=frozenset(pool_tags)) for p in ports]

    def _plug(self, pooled: Pooled) -> bool:
        try:
            self._binder.bind(pooled.vif)  # veth + OVS port; returns once OVN installed its flows
            return True
        except Exception as exc:
            LOG.warning("warm pool: port %s could not be plugged (%s); deleting it", pooled.port.id, exc)
            self._delete(pooled)
            return False

    def _wait_active(self, batch: list[Pooled]) -> None:
        """Neutron marks a port ACTIVE when OVN reports it up: only then is it handed out."""
        waiting = {p.port.id for p in batch}
        deadline = time.monotonic() + self.active_timeout
        while waiting and time.monotonic() < deadline and not self._stop.is_set():
            for port in self._neutron.list_ports(id=sorted(waiting)):
                if port.status == "ACTIVE":
                    waiting.discard(port.id)
            if waiting:
                time.sleep(0.3)
        if waiting:
            LOG.warning("warm pool: ports %s not ACTIVE after %.0f s; handed out anyway", sorted(waiting),
                        self.active_timeout)

    def _describe(self, pooled: Pooled, endpoint_id: str, extra_tags: frozenset[str] = frozenset()) -> None:
        """Give a port a container kept the endpoint's identity, as on the cold path (kuryr's name and tags)."""
        with pooled.lock:
            if pooled.owner != endpoint_id or pooled.returning or self._stop.is_set():
                return
            try:
                self._neutron.update_port(pooled.port.id, device_id=endpoint_id,
                                          name=tags.endpoint_port_name(endpoint_id))
                self._neutron.set_port_tags(pooled.port.id, (pooled.port.tags - {self.tag})
                                            | set(tags.docker_id_tags(endpoint_id)) | {tags.DEVICE_OWNER}
                                            | extra_tags)
                pooled.described = True
            except Exception as exc:
                pooled.described = True  # whatever landed is scrubbed on the way back
                LOG.warning("warm pool: could not describe port %s for endpoint %s: %s", pooled.port.id,
                            endpoint_id[:12], exc)

    def _recycle(self, pooled: Pooled) -> None:
        """Back to ready: Neutron identity scrubbed (if it was written), the interface as new; else deleted."""
        try:
            with pooled.lock:
                if pooled.described:
                    self._neutron.update_port(pooled.port.id, device_id="", name=tags.IPAM_PORT_NAME)
                    self._neutron.set_port_tags(pooled.port.id, pooled.port.tags)
                    pooled.described = False
            if self._binder.plugged_for(pooled.vif) is not None:
                self._binder.reset(pooled.vif)
                self._label(pooled, POOL_OWNER)
            else:  # the interface went with its sandbox (or never came back): plug a new one
                self._binder.unbind(pooled.vif)
                self._binder.bind(pooled.vif)
        except Exception as exc:
            LOG.warning("warm pool: port %s could not be recycled (%s); deleting it", pooled.port.id, exc)
            self._delete(pooled)
            return
        with self._lock:
            pool = self._pools.get(pooled.port.network_id)
            keep = (pool is not None and not pool.closed
                    and (not self._opts.ports_pool_max or len(pool.ready) < self._opts.ports_pool_max))
            if keep and pool is not None:
                pooled.owner, pooled.returning = POOL_OWNER, False
                pool.ready.append(pooled)
                self._gauge(pooled.port.network_id, pool)
                self._back.notify_all()
        if not keep:
            self._delete(pooled)

    def _delete(self, pooled: Pooled) -> None:
        try:
            self._binder.unbind(pooled.vif)
        except Exception as exc:
            LOG.warning("warm pool: unplugging port %s: %s", pooled.port.id, exc)
        try:
            self._neutron.delete_port(pooled.port.id)
        except NotFound:
            pass
        except Exception as exc:
            LOG.warning("warm pool: deleting port %s: %s (courier gc removes it later)", pooled.port.id, exc)
        with self._lock:
            self._ports.pop(pooled.port.id, None)
            self._back.notify_all()

    def _label(self, pooled: Pooled, owner: str) -> None:
        try:
            self._binder.label(pooled.vif, owner)
        except Exception as exc:  # the interface is checked again at Join (and re-plugged if need be)
            LOG.warning("warm pool: cannot label the interface of port %s %s: %s", pooled.port.id, owner, exc)

    def _gauge(self, network_id: str, pool: NetworkPool) -> None:
        metrics.POOL_READY.labels(network=network_id).set(len(pool.ready))

    def _recover(self) -> None:
        """Idle ports a previous run left (tagged in Neutron) go back to their pools; ports in use stay in use.

        Whom a port serves is read from its OVS interface (written first, on the hot path); a port whose Neutron
        side still names an endpoint (a crash between describing it and scrubbing it) is scrubbed before reuse.
        Safe to run again after a failure part way.
        """
        found = self._neutron.list_ports(tags=self.tag, **{"binding:host_id": self._host})
        networks: dict[str, tuple[nm.Network, list[nm.Subnet]] | None] = {}
        for port in found:
            if port.id in self._ports:  # an earlier attempt got this far
                continue
            if port.network_id not in networks:
                try:
                    network = self._neutron.get_network(port.network_id)
                    networks[port.network_id] = (network, self._neutron.list_subnets(network_id=network.id))
                except NotFound:
                    networks[port.network_id] = None
            known = networks[port.network_id]
            if known is None or len(known[1]) != 1 or not port.fixed_ips:
                self._submit(self._delete_port_only, port)
                continue
            network, subnets = known
            self.register(network, subnets)
            pooled = Pooled(port=dataclasses.replace(port, tags=frozenset({self.tag})),
                            vif=vif_for(port, network, subnets, POOL_OWNER))
            described = _describes_an_endpoint(port, self.tag)
            pooled.described = described is not None
            owner = self._binder.recorded_owner(pooled.vif)
            if owner in (None, POOL_OWNER, RESERVED_OWNER):
                # idle or reserved: only usable if its interface is still there and plugged
                owner = self._binder.plugged_for(pooled.vif)
            # else a container uses it: its interface is in the container, not on the host
            if owner == POOL_OWNER and described is not None:
                owner = None  # idle here, but Neutron still names a container: scrub it first (recycle)
            with self._lock:
                self._ports[port.id] = pooled
                pool = self._pools[port.network_id]
                if owner == POOL_OWNER:
                    pool.ready.append(pooled)
                elif owner is None:
                    pooled.returning = True
                elif owner == RESERVED_OWNER:
                    pooled.owner = RESERVED_OWNER  # claimed within RESERVED_GRACE, or recycled
                else:
                    pooled.owner = owner  # a container still uses it
            if owner is None:
                self._submit(self._recycle, pooled)
            elif owner not in (POOL_OWNER, RESERVED_OWNER) and described != owner:
                self._submit(self._describe, pooled, owner)
        if found:
            LOG.info("warm pool: %d ports of a previous run found", len(found))

    def remove(self, port: nm.Port) -> None:
        """A Courier port left on a network being deleted: this host's interface of it, then the port."""
        pooled = self._ports.get(port.id)
        if pooled is not None:
            self._delete(pooled)
        else:
            self._delete_port_only(port)

    def _delete_port_only(self, port: nm.Port) -> None:
        self._delete(Pooled(port=port, vif=vif_for(port, nm.Network(id=port.network_id, name="", mtu=1500), [],
                                                   POOL_OWNER)))


def _describes_an_endpoint(port: nm.Port, pool_tag: str) -> str | None:
    """The endpoint (or device) a pooled port's Neutron side names, if any: an idle one names none."""
    named = tags.docker_id_from_tags(port.tags) or port.device_id or None
    if named is None and (port.name != tags.IPAM_PORT_NAME or port.tags - {pool_tag}):
        return ""  # partly described: still to be scrubbed
    return named


_NO_SUBNET = nm.Subnet(id="", network_id="", cidr=ipaddress.ip_network("0.0.0.0/32"), gateway_ip=None)
