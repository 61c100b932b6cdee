"""Courier SIGKILLed in the middle of a call and the call retried as dockerd does (GitHub issue 14).

A seeded plan of container lifecycles is played against a real ``courier serve`` through
``tests/dockerd_replay.py`` (no dockerd: the replay sends dockerd 20.10's exact requests). Some lifecycles make a
network of their own first (RequestPool, gateway RequestAddress, CreateNetwork; some dual-stack) and remove it
after; the others use one shared network. Each lifecycle has exactly one victim call: mostly a creating one
(RequestPool, CreateNetwork, RequestAddress, CreateEndpoint, Join), less often a teardown one. The victim is sent
on a thread; after a seeded fraction of [0, 1.2 x the median duration of that step so far] (at least
``KILL_FLOOR`` s) Courier is SIGKILLed and started again, and the thread retries the same body the way dockerd's
plugin client does (transport errors only, backoff 1, 2, 4, 8 s within 30 s) until it gets an answer.

What must hold: every call of every lifecycle ends with a 200; after each setup the endpoint has exactly one
Neutron port, carrying the addresses and MAC Courier answered (a retry made no duplicate), each Docker network has
one Neutron network and each pool one subnetpool; at the end nothing this test made is left in Neutron (by the
ids the recording proxy saw, and by kuryr tags/names, MACs and CIDRs), in OVS or on the host.
Plus: every method with a request body answers an empty or non-JSON body with a 400 that says so.

Runs once with ``[vif_pool] enabled = false`` and once with ``enabled = true``.
``COURIER_CHAOS_LIFECYCLES`` (default 12, what CI runs; ``bench/chaos`` runs 100) and ``COURIER_CHAOS_SEED`` choose
the plan; the plan (networks, addressing, victim, kill point as a fraction of the window) depends on the seed only,
Docker ids and MACs are fresh per run. ``COURIER_CHAOS_SUMMARY``: a file to append one JSON line per run to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import json
import os
import random
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import stack
from tests.dockerd_replay import (
    RETRY_WINDOW,
    Call,
    Container,
    Dockerd,
    Network,
    PluginCallError,
    PluginClient,
    Reply,
    random_mac,
)
from tests.e2e.reliability.conftest import (
    RelCourier,
    device_names,
    existing_ids,
    leftovers,
    no_leftovers,
    ovs_interfaces,
    unique,
)
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e

LIFECYCLES = int(os.environ.get("COURIER_CHAOS_LIFECYCLES", "12"))
# 21: its 12-lifecycle plan has every creating call as a victim, 3 container RequestAddress kills mid-call, 3
# dual-stack networks, --ip and --mac-address (see make_plan). Another seed: COURIER_CHAOS_SEED or bench/chaos.
SEED = int(os.environ.get("COURIER_CHAOS_SEED", "21"))
SUMMARY = os.environ.get("COURIER_CHAOS_SUMMARY", "")
OWN_NETWORK_SHARE = 0.4  # of lifecycles that make (and remove) a network of their own
DUAL_STACK_SHARE = 0.5  # of those networks
TEARDOWN_VICTIM_SHARE = 0.2  # of lifecycles whose victim is a teardown call
ADDRESSING = (("auto", 0.7), ("ip", 0.15), ("mac", 0.15))  # nothing given, --ip, --mac-address
KILL_FACTOR = 1.2
KILL_FLOOR = 0.05  # s: the kill window is at least this long
# Before a step has been seen to succeed: what it typically takes here (s).
TYPICAL = {"IpamDriver.RequestPool": 0.1, "IpamDriver.RequestAddress": 0.3, "NetworkDriver.CreateNetwork": 0.5,
           "NetworkDriver.CreateEndpoint": 0.1, "NetworkDriver.Join": 0.3, "IpamDriver.ReleaseAddress": 0.05,
           "IpamDriver.ReleasePool": 0.05, "NetworkDriver.DeleteNetwork": 0.4, "NetworkDriver.Leave": 0.05,
           "NetworkDriver.DeleteEndpoint": 0.05, "NetworkDriver.RevokeExternalConnectivity": 0.01}
POOL_MODES = {"pool-off": "[vif_pool]\nenabled = false\n",
              "pool-on": "[vif_pool]\nenabled = true\ndescribe_delay = 0.2\n"}
DESCRIBE_WAIT = 5.0  # s: a pooled port hears of its endpoint describe_delay after CreateEndpoint
SECOND_OCTET = {"pool-off": 224, "pool-on": 225}  # 10.224/16 and 10.225/16: nothing else on the stack uses them
CREATING = ("IpamDriver.RequestPool", "NetworkDriver.CreateNetwork", "IpamDriver.RequestAddress",
            "NetworkDriver.CreateEndpoint", "NetworkDriver.Join")
TEARDOWN = ("NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.Leave", "NetworkDriver.DeleteEndpoint",
            "IpamDriver.ReleaseAddress", "IpamDriver.ReleasePool", "NetworkDriver.DeleteNetwork")
LOW, HIGH = "kuryr.net.uuid.lh:", "kuryr.net.uuid.uh:"
LOG_TAIL = 25


# --- the plan -----------------------------------------------------------------------------------------------------


def sequence(own_network: bool, dual_stack: bool) -> tuple[list[str], list[str]]:
    """The methods one lifecycle sends, as tests/dockerd_replay.py sends them: (setup, teardown)."""
    setup: list[str] = []
    if own_network:
        for _ in range(2 if dual_stack else 1):
            setup += ["IpamDriver.RequestPool", "IpamDriver.RequestAddress"]
        setup.append("NetworkDriver.CreateNetwork")
    setup += ["IpamDriver.RequestAddress"] * (2 if dual_stack else 1)
    setup += ["NetworkDriver.CreateEndpoint", "NetworkDriver.Join", "NetworkDriver.ProgramExternalConnectivity",
              "NetworkDriver.EndpointOperInfo", "NetworkDriver.EndpointOperInfo"]
    teardown = ["NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.Leave", "NetworkDriver.DeleteEndpoint"]
    teardown += ["IpamDriver.ReleaseAddress"] * (2 if dual_stack else 1)
    if own_network:
        for _ in range(2 if dual_stack else 1):
            teardown += ["IpamDriver.ReleaseAddress", "IpamDriver.ReleasePool"]
        teardown.append("NetworkDriver.DeleteNetwork")
    return setup, teardown


@dataclasses.dataclass(frozen=True)
class Lifecycle:
    index: int
    own_network: bool
    dual_stack: bool
    addressing: str  # auto | ip | mac
    victim: str  # a method
    ordinal: int  # which of the lifecycle's calls of that method (0: the first)
    fraction: float  # where in the kill window Courier dies

    def describe(self) -> str:
        net = ("own dual-stack network" if self.dual_stack else "own network") if self.own_network else "shared network"
        return (f"lifecycle {self.index} ({net}, addressing {self.addressing}): victim {self.victim} "
                f"#{self.ordinal}, kill at {self.fraction:.2f} of the window")


def make_plan(count: int, seed: int) -> list[Lifecycle]:
    rng = random.Random(seed)
    plan = []
    for index in range(count):
        own = rng.random() < OWN_NETWORK_SHARE
        dual = own and rng.random() < DUAL_STACK_SHARE
        addressing = rng.choices([a for a, _ in ADDRESSING], [w for _, w in ADDRESSING])[0]
        setup, teardown = sequence(own, dual)
        phase, kinds = (teardown, TEARDOWN) if rng.random() < TEARDOWN_VICTIM_SHARE else (setup, CREATING)
        position = rng.choice([i for i, method in enumerate(phase) if method in kinds])  # a random call
        victim = phase[position]
        ordinal = phase[:position].count(victim)
        if phase is teardown:
            ordinal += setup.count(victim)  # ordinals count the whole lifecycle
        plan.append(Lifecycle(index, own, dual, addressing, victim, ordinal, rng.random()))
    return plan


# --- the victim: sent, Courier killed, restarted, retried -------------------------------------------------------


@dataclasses.dataclass
class Strike:
    lifecycle: Lifecycle
    step: str
    delay: float
    window: float
    in_flight: bool  # the call had not been answered when Courier died
    reply: Reply
    restart_seconds: float


class Chaos:
    """``Dockerd.caller``: sends every call, and the planned victim of the current lifecycle with a SIGKILL in it."""

    def __init__(self, server: RelCourier, client: PluginClient):
        self.server, self.client = server, client
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.lifecycle: Lifecycle | None = None
        self.sent: list[str] = []
        self.strikes: list[Strike] = []
        self.struck = False
        self.other_retries = 0  # retries of calls that were not victims: Courier was down when it should not be

    def begin(self, lifecycle: Lifecycle | None) -> None:
        self.lifecycle, self.sent, self.struck = lifecycle, [], False

    def window(self, step: str, method: str) -> float:
        seen = self.durations.get(step)
        typical = statistics.median(seen) if seen else TYPICAL.get(method, 0.2)
        return max(KILL_FLOOR, KILL_FACTOR * typical)

    def __call__(self, call: Call) -> Reply:
        lc = self.lifecycle
        nth = self.sent.count(call.method)
        self.sent.append(call.method)
        if lc is not None and not self.struck and call.method == lc.victim and nth == lc.ordinal:
            self.struck = True
            return self._strike(lc, call)
        reply = self.client.call(call.method, call.payload)
        self.other_retries += reply.retries
        if reply.ok and not reply.retries:
            self.durations[call.step].append(reply.seconds)
        return reply

    def _strike(self, lc: Lifecycle, call: Call) -> Reply:
        window = self.window(call.step, call.method)
        delay = lc.fraction * window
        box: dict[str, Reply] = {}
        thread = threading.Thread(target=lambda: box.update(reply=self.client.call(call.method, call.payload)),
                                  name=f"victim-{lc.index}", daemon=True)
        started = time.monotonic()
        thread.start()
        time.sleep(max(0.0, started + delay - time.monotonic()))
        in_flight = thread.is_alive()
        self.server.stop("kill")
        killed = time.monotonic()
        self.server.start(wait=False)  # the retry finds it when it is ready, as dockerd's does
        thread.join(RETRY_WINDOW + 15)
        reply = box.get("reply") or Reply(call.method, 0, None, "", time.monotonic() - started, 0,
                                          "the retrying call had not returned after 45 s")
        self.server.wait_ready()
        strike = Strike(lc, call.step, delay, window, in_flight, reply, time.monotonic() - killed)
        self.strikes.append(strike)
        return reply


# --- Neutron checks -----------------------------------------------------------------------------------------------


def neutron_list(collection: str, **filters: str | list[str]) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode(filters, doseq=True)
    return stack.neutron("GET", f"/{collection}?{query}")[collection]


def docker_tags(docker_id: str) -> str:
    return f"{LOW}{docker_id[:32]},{HIGH}{docker_id[32:]}"


def neutron_networks(docker_id: str) -> list[dict[str, Any]]:
    return neutron_list("networks", tags=docker_tags(docker_id))


def check_network(net: Network, created: dict[str, set[str]]) -> tuple[str, list[str]]:
    """One Neutron network for the Docker network (by tags, and among those made meanwhile), one subnet per pool,
    at most one live subnetpool per CIDR among those made meanwhile. Returns (Neutron network id, problems)."""
    problems = []
    found = neutron_networks(net.network_id)
    if len(found) != 1:
        return "", [f"Docker network {net.network_id[:12]} has {len(found)} Neutron networks: "
                    f"{[n['id'] for n in found]}"]
    network_id = found[0]["id"]
    made = existing_ids("networks", created["networks"]) if created["networks"] else set()
    if made - {network_id}:
        problems.append(f"Docker network {net.network_id[:12]} is Neutron network {network_id}, but "
                        f"{sorted(made - {network_id})} were made for it too (a retried CreateNetwork?)")
    created_pools = created["subnetpools"]
    subnets = neutron_list("subnets", network_id=network_id)
    for pool in net.pools:
        same = [s["id"] for s in subnets if s["cidr"] == str(ipaddress.ip_network(pool.cidr))]
        if len(same) != 1:
            problems.append(f"pool {pool.cidr}: {len(same)} subnets on network {network_id}: {same}")
    if created_pools:
        live = neutron_list("subnetpools", id=sorted(created_pools))
        for pool in net.pools:
            dup = [p["id"] for p in live if str(ipaddress.ip_network(pool.cidr)) in p["prefixes"]]
            if len(dup) > 1:
                problems.append(f"pool {pool.cidr}: {len(dup)} subnetpools made for it: {dup}")
    return network_id, problems


def check_port(c: Container, network_id: str, created_ports: set[str] | None = None,
               describe_wait: float = 0.0) -> list[str]:
    """Exactly one port behind the endpoint, with the addresses and the MAC Courier answered; with
    ``created_ports`` (the ports made since the lifecycle began; not with a warm pool): no other one alive.
    ``describe_wait``: how long the endpoint's tags may take to reach Neutron (a pooled port is described late)."""
    problems = []
    deadline = time.monotonic() + describe_wait
    while time.monotonic() < deadline and not neutron_list("ports", network_id=network_id,
                                                           tags=docker_tags(c.endpoint_id)):
        time.sleep(0.1)
    if created_ports:
        alive = existing_ids("ports", created_ports)
        tagged_ids = {p["id"] for p in neutron_list("ports", network_id=network_id,
                                                    tags=docker_tags(c.endpoint_id))}
        if alive - tagged_ids:
            problems.append(f"ports made during this setup besides the endpoint's {sorted(tagged_ids)}: "
                            f"{sorted(alive - tagged_ids)} (a retried call made a second one?)")
    ports: dict[str, dict[str, Any]] = {}
    for ip in c.ips:
        holders = neutron_list("ports", network_id=network_id, fixed_ips=f"ip_address={ip}")
        if len(holders) != 1:
            problems.append(f"{len(holders)} ports hold {ip}: {[p['id'] for p in holders]}")
        ports.update({p["id"]: p for p in holders})
    tagged = neutron_list("ports", network_id=network_id, tags=docker_tags(c.endpoint_id))
    if len(tagged) != 1:
        problems.append(f"{len(tagged)} ports carry endpoint {c.endpoint_id[:12]}'s tags: {[p['id'] for p in tagged]}")
    if c.mac:
        same_mac = neutron_list("ports", network_id=network_id, mac_address=c.mac)
        if len(same_mac) != 1:
            problems.append(f"{len(same_mac)} ports have MAC {c.mac}: {[p['id'] for p in same_mac]}")
    if len(ports) == 1:
        port = next(iter(ports.values()))
        held = sorted(f["ip_address"] for f in port["fixed_ips"])
        if held != sorted(c.ips):
            problems.append(f"port {port['id']} holds {held}, Courier answered {sorted(c.ips)}")
        if c.mac and port["mac_address"].lower() != c.mac:
            problems.append(f"port {port['id']} has MAC {port['mac_address']}, the container has {c.mac}")
        if tagged and tagged[0]["id"] != port["id"]:
            problems.append(f"the endpoint's tags are on port {tagged[0]['id']}, its addresses on {port['id']}")
    elif len(ports) > 1:
        problems.append(f"the endpoint's addresses are on several ports: {sorted(ports)}")
    return problems


@dataclasses.dataclass
class Made:
    """Everything this run told Courier about, to find what is left by name, tag, MAC and CIDR."""

    started: str = dataclasses.field(default_factory=lambda: (
        datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    docker_networks: set[str] = dataclasses.field(default_factory=set)
    neutron_networks: set[str] = dataclasses.field(default_factory=set)
    endpoints: set[str] = dataclasses.field(default_factory=set)
    macs: set[str] = dataclasses.field(default_factory=set)
    cidrs: set[str] = dataclasses.field(default_factory=set)
    src_names: set[str] = dataclasses.field(default_factory=set)

    def add_network(self, net: Network) -> None:
        self.docker_networks.add(net.network_id)
        self.cidrs |= {str(ipaddress.ip_network(p.cidr)) for p in net.pools}
        self.neutron_networks |= {n["id"] for n in neutron_networks(net.network_id)}

    def add_container(self, c: Container) -> None:
        self.endpoints.add(c.endpoint_id)
        self.macs |= {m for m in (c.mac, c.sent_mac) if m}
        if c.src_name:
            self.src_names.add(c.src_name)

    def recent(self, resources: list[dict[str, Any]]) -> list[str]:
        return [r["id"] for r in resources if r.get("created_at", "9") >= self.started]

    def left(self) -> dict[str, list[str]]:
        """What Neutron, OVS and the host still have of it (independent of the proxy's record)."""
        found: dict[str, list[str]] = defaultdict(list)
        for docker_id in sorted(self.docker_networks):
            found["networks by Docker id tags"] += [n["id"] for n in neutron_networks(docker_id)]
        for chunk in _chunks(sorted(self.docker_networks)):
            found["networks by name"] += self.recent(
                neutron_list("networks", name=[f"kuryr-net-{d[:8]}" for d in chunk]))
        for chunk in _chunks(sorted(self.neutron_networks)):
            found["networks by id"] += [n["id"] for n in neutron_list("networks", id=chunk)]
            found["ports on this run's networks"] += [p["id"] for p in neutron_list("ports", network_id=chunk)]
        for endpoint_id in sorted(self.endpoints):
            found["ports by endpoint tags"] += [p["id"] for p in neutron_list("ports", tags=docker_tags(endpoint_id))]
        for chunk in _chunks(sorted(self.macs)):
            found["ports by MAC"] += self.recent(neutron_list("ports", mac_address=chunk))
        for chunk in _chunks(sorted(self.cidrs)):
            found["subnets by CIDR"] += self.recent(neutron_list("subnets", cidr=chunk))
            found["subnetpools by name"] += self.recent(
                neutron_list("subnetpools", name=[f"kuryrPool-{c}" for c in chunk]))
        macs = self.macs
        found["ovs interfaces by MAC"] = sorted(
            name for name, ids in ovs_interfaces().items() if ids.get("attached-mac", "").lower() in macs)
        found["host links by SrcName"] = sorted(stack.host_links() & self.src_names)
        return {k: sorted(set(v)) for k, v in found.items() if v}


def _chunks(items: list[str], size: int = 30) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def janitor(proxy: FaultProxy, made: Made) -> None:
    """After the assertions: remove what this run left, so the shared stack stays clean (by our ids only)."""
    ports = set(proxy.created["ports"])
    for chunk in _chunks(sorted(made.neutron_networks)):
        with contextlib.suppress(urllib.error.URLError):
            ports |= {p["id"] for p in neutron_list("ports", network_id=chunk)}
    for name, external_ids in ovs_interfaces().items():
        if external_ids.get("iface-id") in ports or external_ids.get("attached-mac", "").lower() in made.macs:
            subprocess.run(["ovs-vsctl", "--if-exists", "del-port", name], capture_output=True, check=False)
    for link in stack.host_links() & (device_names(ports) | made.src_names):
        subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
    for collection, ids in (("ports", ports), ("subnets", proxy.created["subnets"]),
                            ("networks", proxy.created["networks"] | made.neutron_networks),
                            ("subnetpools", proxy.created["subnetpools"])):
        for resource_id in sorted(ids):
            with contextlib.suppress(urllib.error.URLError):
                stack.neutron("DELETE", f"/{collection}/{resource_id}")


# --- the run ------------------------------------------------------------------------------------------------------


# Both paths by default (CI too); COURIER_CHAOS_MODES=pool-off or pool-on runs one, as bench/chaos can.
_MODES = os.environ.get("COURIER_CHAOS_MODES", "both")
CHAOS_MODES = sorted(POOL_MODES) if _MODES == "both" else [_MODES]


@pytest.fixture(params=CHAOS_MODES)
def chaos_courier(request: pytest.FixtureRequest, stack_up: None,
                  tmp_path: Path) -> Iterator[tuple[RelCourier, FaultProxy, str]]:
    mode = str(request.param)
    with FaultProxy(stack.NEUTRON_URL) as proxy:
        server = RelCourier(tmp_path, unique("relc"), endpoint=proxy.url, neutron_timeout=None,
                            extra=POOL_MODES[mode])
        server.start()
        try:
            yield server, proxy, mode
        finally:
            server.stop()


def log_tail(server: RelCourier, lines: int = LOG_TAIL) -> str:
    return "\n".join("      " + line for line in server.log_text().splitlines()[-lines:])


def snapshot(proxy: FaultProxy) -> dict[str, set[str]]:
    return {kind: set(ids) for kind, ids in proxy.created.items()}


def settle(proxy: FaultProxy, before: dict[str, set[str]], kinds: tuple[str, ...], timeout: float = 15) -> None:
    """Wait (bounded) until what this lifecycle made of ``kinds`` is gone: Courier deletes ports in the background,
    and the next kill must not fall on those deletes. Whatever stays is reported at the end."""
    made = {kind: proxy.created[kind] - before[kind] for kind in kinds}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(existing_ids(kind, ids) for kind, ids in made.items() if ids):
            return
        time.sleep(0.3)


def test_sigkill_mid_call_then_dockerd_retry(chaos_courier: tuple[RelCourier, FaultProxy, str]) -> None:
    server, proxy, mode = chaos_courier
    count = LIFECYCLES
    octet = SECOND_OCTET[mode]
    plan = make_plan(count, SEED)
    client = PluginClient(server.socket, retry=True)
    chaos = Chaos(server, client)
    dk = Dockerd(client, caller=chaos)
    made = Made()
    started = time.monotonic()
    failures: list[str] = []
    problems: list[str] = []
    created_in: dict[str, int] = {}  # Neutron id -> the lifecycle that made it (-1: the shared network)
    setup_seconds: list[float] = []
    caps = dk.handshake()
    shared_net: Network | None = None
    print(f"\nchaos {mode}: seed {SEED}, {count} lifecycles, RequiresMACAddress={caps.requires_mac}")
    try:
        before = snapshot(proxy)
        shared = ipaddress.ip_network(f"10.{octet}.0.0/22")
        shared_net = dk.network_create(str(shared))
        made.add_network(shared_net)
        shared_id, issues = check_network(shared_net, {k: v - before[k] for k, v in snapshot(proxy).items()})
        assert shared_id and not issues, f"the shared network: {issues}"
        warm = dk.setup(shared_net)  # warm-up: durations of every container step before the first kill
        made.add_container(warm)
        dk.teardown(warm)
        for kind, ids in snapshot(proxy).items():
            created_in.update({i: -1 for i in ids - before[kind]})

        for lc in plan:
            before = snapshot(proxy)
            chaos.begin(lc)
            net, own, c = shared_net, None, None
            failed = False
            where = f"{lc.describe()} [seed {SEED}, {mode}]"
            try:
                network_id = shared_id
                if lc.own_network:
                    cidr, cidr6 = f"10.{octet}.{8 + lc.index % 240}.0/24", f"fd42:{octet}:{lc.index % 65536:x}::/64"
                    made.cidrs |= {cidr, cidr6} if lc.dual_stack else {cidr}
                    own = dk.network_create(cidr, subnet6=cidr6 if lc.dual_stack else None)
                    net = own
                    made.add_network(own)
                    network_id, issues = check_network(own, {k: v - before[k] for k, v in snapshot(proxy).items()})
                    problems += [f"{where}: after network create: {i}" for i in issues]
                ip = mac = ""
                if lc.addressing == "ip":
                    base = ipaddress.ip_network(net.v4[0].cidr)
                    ip = str(base.network_address + (77 if lc.own_network else 512 + lc.index % 500))
                elif lc.addressing == "mac":
                    mac = random_mac(random.Random())
                c = dk.setup(net, ip=ip, mac=mac)
                made.add_container(c)
                setup_seconds.append(c.setup_seconds)
                if ip and c.address.split("/")[0] != ip:
                    problems.append(f"{where}: asked for --ip {ip}, got {c.address}")
                if mac and c.mac != mac:
                    problems.append(f"{where}: asked for --mac-address {mac}, got {c.mac}")
                if network_id:
                    strays = None if mode == "pool-on" else proxy.created["ports"] - before["ports"]
                    problems += [f"{where}: after setup: {i}" for i in check_port(
                        c, network_id, strays, DESCRIBE_WAIT if mode == "pool-on" else 0.0)]
                dk.teardown(c)
                c = None
                if own is not None:
                    dk.network_rm(own)
                    own = None
            except PluginCallError as exc:
                failed = True
                strike = chaos.strikes[-1] if chaos.strikes and chaos.strikes[-1].lifecycle is lc else None
                kill = (f"killed {strike.delay:.3f} s into {strike.step} (window {strike.window:.3f} s, "
                        f"{'in flight' if strike.in_flight else 'already answered'}), retried "
                        f"{strike.reply.retries}x" if strike else "before its victim was reached")
                notes = "".join(f"\n    {n}" for n in getattr(exc, "__notes__", []))
                failures.append(f"{where}: {kill}:\n    {exc}{notes}\n    Courier log:\n{log_tail(server)}")
                chaos.begin(None)  # cleanup without kills
                if c is not None:
                    dk.rollback(c, exc)
                if own is not None:
                    with contextlib.suppress(PluginCallError):
                        dk.network_rm(own)
            finally:
                sent = list(chaos.sent) if chaos.lifecycle is lc else []
                if chaos.lifecycle is lc and not chaos.struck:
                    problems.append(f"{where}: its victim was never sent (calls: {sent})")
                chaos.begin(None)
            setup_calls, teardown_calls = sequence(lc.own_network, lc.dual_stack)
            if not failed and sent != setup_calls + teardown_calls:
                problems.append(f"{where}: sent {sent}, planned {setup_calls + teardown_calls}")
            for kind, ids in snapshot(proxy).items():
                created_in.update({i: lc.index for i in ids - before[kind]})
            kinds: tuple[str, ...] = ("ports", "subnets", "networks", "subnetpools")
            if mode == "pool-on" and not lc.own_network:
                kinds = ("subnets", "networks", "subnetpools")  # the pool may keep the port, warm
            settle(proxy, before, kinds)

        chaos.begin(None)
        dk.network_rm(shared_net)
        shared_net = None
    finally:
        chaos.begin(None)
        if server.proc is None or server.proc.poll() is not None:
            server.start()
        if shared_net is not None:
            with contextlib.suppress(PluginCallError):
                dk.network_rm(shared_net)
        seconds = time.monotonic() - started

    left = no_leftovers(proxy)
    by_name = made.left()
    for collection, alive in left.items():
        if collection in proxy.created:
            left[collection] = [f"{i} (lifecycle {created_in.get(i, '?')})" for i in alive]
    in_flight = sum(s.in_flight for s in chaos.strikes)
    ok_setups = len(setup_seconds)
    summary = {"mode": mode, "seed": SEED, "lifecycles": count, "setups_ok": ok_setups, "failures": len(failures),
               "problems": len(problems), "kills": len(chaos.strikes), "in_flight": in_flight,
               "retries": client.retries, "left": sum(map(len, left.values())) + sum(map(len, by_name.values())),
               "seconds": round(seconds, 1),
               "setup_median_s": round(statistics.median(setup_seconds), 3) if setup_seconds else None}
    print(f"chaos {mode}: {ok_setups}/{count} setups ok, {len(failures)} lifecycles failed, {len(problems)} problems, "
          f"{len(chaos.strikes)} kills ({in_flight} in flight), {client.retries} retries, {seconds:.0f} s")
    for strike in chaos.strikes:
        print(f"  {strike.lifecycle.index:3d} {strike.step:45s} kill {strike.delay:.3f}/{strike.window:.3f} s "
              f"{'in flight' if strike.in_flight else 'answered '} -> {strike.reply.status} "
              f"({strike.reply.retries} retries, {strike.reply.seconds:.1f} s)")
    if SUMMARY:
        with open(SUMMARY, "a") as out:
            out.write(json.dumps(summary) + "\n")
    try:
        assert not failures, f"{len(failures)} of {count} lifecycles had a call that did not end with a 200:\n" + \
            "\n".join(failures)
        assert not problems, "Neutron does not match what Courier answered:\n  " + "\n  ".join(problems)
        assert chaos.other_retries == 0, f"{chaos.other_retries} retries of calls no kill was aimed at"
        assert not left, f"left behind (by the ids Neutron gave Courier): {left}"
        assert not by_name, f"left behind (by tags, names, MACs, CIDRs): {by_name}"
    finally:
        janitor(proxy, made)


# --- empty and malformed bodies -----------------------------------------------------------------------------------


# Every method dockerd calls with a JSON body (the handshake calls have none).
BODY_METHODS = ("NetworkDriver.GwAllocCheck", "NetworkDriver.CreateNetwork", "NetworkDriver.DeleteNetwork",
                "NetworkDriver.AllocateNetwork", "NetworkDriver.FreeNetwork", "NetworkDriver.CreateEndpoint",
                "NetworkDriver.DeleteEndpoint", "NetworkDriver.EndpointOperInfo", "NetworkDriver.Join",
                "NetworkDriver.Leave", "NetworkDriver.ProgramExternalConnectivity",
                "NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.DiscoverNew",
                "NetworkDriver.DiscoverDelete", "IpamDriver.RequestPool", "IpamDriver.ReleasePool",
                "IpamDriver.RequestAddress", "IpamDriver.ReleaseAddress")
BAD_BODIES = {"empty": (b"", "empty"), "newline only": (b"\n", "empty"),
              "not JSON": (b"{PoolID: 1\n", "json")}


def test_empty_and_malformed_bodies_are_refused(stack_up: None, tmp_path: Path) -> None:
    with FaultProxy(stack.NEUTRON_URL) as proxy:
        server = RelCourier(tmp_path, unique("relb"), endpoint=proxy.url)
        server.start()
        try:
            client = PluginClient(server.socket)
            wrong = []
            for method in BODY_METHODS:
                for label, (body, says) in BAD_BODIES.items():
                    reply = client.call(method, body=body)
                    body_ok = isinstance(reply.body, dict) and reply.body.get("Err") and \
                        reply.body.get("Err") == reply.body.get("Error")
                    if reply.status != 400 or not body_ok or says not in reply.message.lower():
                        wrong.append(f"{method} with a {label} body: HTTP {reply.status} {reply.text.strip()[:300]}")
            assert not wrong, ("every method with a request body must answer 400 with Err and Error saying the body "
                               "was empty / not JSON:\n  " + "\n  ".join(wrong))
            assert not any(proxy.created.values()), f"a refused call created something: {proxy.created}"
        finally:
            server.stop()
            left = leftovers(proxy)
            janitor(proxy, Made())
        assert not left, f"left behind: {left}"
