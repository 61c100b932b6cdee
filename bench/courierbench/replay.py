"""Replay of dockerd's exact plugin calls (tests/dockerd_replay.py), straight to each plugin, no dockerd.

Per plugin, on a network of its own (handshake, RequestPool + gateway RequestAddress + CreateNetwork):

* C=1: ``--replay`` container lifecycles one after the other, the plugins taking turns: setup is RequestAddress
  start to Join end, teardown RevokeExternalConnectivity start to the last ReleaseAddress end (as timed by
  dockerd_replay); ProgramExternalConnectivity and EndpointOperInfo x2 follow Join and are not in either.
* C=8: ``--replay-parallel`` lifecycles with ``--replay-concurrency`` threads; lifecycles/s is completed
  lifecycles over the wall time from the first start to the last end.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.dockerd_replay import Container, Dockerd, Network, PluginCallError, PluginClient

from .common import log, neutron_up
from .plugins import Plugin, wait_pool
from .workload import lifecycle_estimate, outage, settle

if TYPE_CHECKING:
    from .bench import Bench


class TCPPluginClient(PluginClient):
    """dockerd_replay's client over TCP (kuryr-server listens on kuryr_uri, not on a unix socket)."""

    def __init__(self, host: str, port: int, *, retry: bool = True, timeout: float = 120.0):
        super().__init__(f"tcp://{host}:{port}", retry=retry, timeout=timeout)
        self.host, self.port = host, port

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)


@dataclass
class ReplayState:
    dockerd: Dockerd
    net: Network | None = None
    live: set[str] = field(default_factory=set)            # endpoint ids set up and not torn down
    containers: dict[str, Container] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    created: float = 0.0                                    # time.monotonic() of network create


def client_for(b: Bench, p: Plugin) -> PluginClient:
    """As dockerd does, a call that fails at the transport level (e.g. EAGAIN: the plugin's listen backlog is
    full) is sent again after dockerd's backoff (1, 2, 4 ... s); the retries are counted and reported."""
    timeout = max(30.0, b.args.cmd_timeout)
    if p.is_courier:
        return PluginClient(str(p.socket), retry=True, timeout=timeout)
    return TCPPluginClient("127.0.0.1", b.args.upstream_port, timeout=timeout)


def replay_estimate(b: Bench, p: Plugin, c1: bool = True, c8: bool = True) -> float:
    """Seconds the replay phases (C=1 and/or C=8) will likely need for this plugin, from its docker-CLI
    lifecycles so far."""
    lc = lifecycle_estimate(p)
    t = 10.0
    if c1:      # a replayed lifecycle has no container to start: about half a docker one, plus the settle
        t += b.args.replay * (0.5 * lc + 0.3)
    if c8:
        t += b.args.replay_parallel * lc * 0.5 / max(1, min(b.args.replay_concurrency, 3))
    return t


def conc_reserve(b: Bench, ps: list[Plugin]) -> float:
    from .workload import conc_estimate
    return 1.2 * sum(conc_estimate(b, q) for q in ps) if b.args.concurrent else 10.0


def _one(b: Bench, p: Plugin, st: ReplayState) -> tuple[float, float, float]:
    """One lifecycle: (setup s, teardown s, whole lifecycle s). Raises PluginCallError."""
    d, net = st.dockerd, st.net
    assert net is not None
    t0 = time.monotonic()
    c = d.setup(net)
    with st.lock:
        st.live.add(c.endpoint_id)
        st.containers[c.endpoint_id] = c
    d.teardown(c)
    with st.lock:
        st.live.discard(c.endpoint_id)
        st.containers.pop(c.endpoint_id, None)
    return c.setup_seconds, c.teardown_seconds, time.monotonic() - t0


def start_network(b: Bench, p: Plugin) -> ReplayState | None:
    st = ReplayState(Dockerd(client_for(b, p)))
    b.replay[p.key] = st
    cidr = p.cidrs["replay"]
    p.proxy.set_phase("rp-net-create")
    t0 = st.created = time.monotonic()
    try:
        st.dockerd.handshake()
        st.net = st.dockerd.network_create(str(cidr), gateway=str(next(cidr.hosts())))
    except (PluginCallError, AssertionError, KeyError, ValueError) as exc:
        settle(p)
        p.fail("replay: network create", str(exc))
        return None
    p.networks.append(st.net.network_id)
    p.res["rp-net-create_time"] = time.monotonic() - t0
    if p.key == "warm":
        p.proxy.set_phase("pool-replay")
    settle(p)
    return st


def stop_network(b: Bench, p: Plugin, st: ReplayState) -> None:
    if st.net is None:
        return
    p.proxy.set_phase("replay-net-rm")
    try:
        st.dockerd.network_rm(st.net)
        p.res["replay-net-rm_rc"] = 0
        st.net = None
    except PluginCallError as exc:
        p.res["replay-net-rm_rc"] = 1
        p.fail("replay: network rm", str(exc))
    settle(p)


def sequential_replay(b: Bench, ps: list[Plugin], states: dict[str, ReplayState]) -> None:
    n = b.args.replay
    for p in ps:
        p.res["rp1"] = {"setup": [], "teardown": [], "lifecycles": [], "disturbed": []}
        if p.key in states:
            wait_pool(p, "replay", b.args.pool_min, b.args.pool_wait, since=states[p.key].created)
    active = [p for p in ps if p.key in states]
    retries0 = {k: st.dockerd.client.retries for k, st in states.items()}
    i = 0
    while active and i < n + 5:
        if i and b.time_left() < sum(replay_estimate(b, q, c1=False) for q in ps) + conc_reserve(b, ps):
            for p in active:
                p.errors.append(f"time budget: replay C=1 stopped after {len(p.res['rp1']['lifecycles'])} of {n}")
            break
        for p in list(active if i % 2 == 0 else reversed(active)):
            r = p.res["rp1"]
            phase = f"rp1-{i}"
            p.proxy.set_phase(phase)
            t0 = time.monotonic()
            try:
                s, t, _ = _one(b, p, states[p.key])
                err = ""
            except PluginCallError as exc:
                err = str(exc)
            settle(p)
            if outage(p, phase) or b.watch.disturbed(t0, time.monotonic()):
                r["disturbed"].append(i)
                log(f"{p.title}: replay lifecycle #{i + 1} overlapped a Neutron outage/restart: not counted")
                if not neutron_up() and not b.wait_neutron():
                    active.remove(p)
                continue
            if err:
                p.fail(f"replay C=1 lifecycle #{i + 1}", err)
                active.remove(p)
                continue
            r["setup"].append(s)
            r["teardown"].append(t)
            r["lifecycles"].append(i)
            if len(r["lifecycles"]) >= n:
                active.remove(p)
        i += 1
    for k, st in states.items():
        b.plugins[k].res["rp1"]["retries"] = st.dockerd.client.retries - retries0[k]


def parallel_replay(b: Bench, p: Plugin, st: ReplayState, share: float) -> None:
    n, conc = b.args.replay_parallel, b.args.replay_concurrency
    r: dict = {"n": n, "c": conc, "ok": 0, "setup": [], "teardown": [], "errors": []}
    p.res["rp8"] = r
    wait_pool(p, "replay-c8", b.args.pool_min, b.args.pool_wait, since=st.created)
    lock = threading.Lock()
    issued = [0]
    stop_at = time.monotonic() + share
    ends: list[float] = []

    def worker() -> None:
        while True:
            with lock:
                if issued[0] >= n or time.monotonic() > stop_at or len(r["errors"]) >= 3:
                    return
                issued[0] += 1
            try:
                s, t, _ = _one(b, p, st)
            except PluginCallError as exc:
                with lock:
                    r["errors"].append(str(exc))
                continue
            with lock:
                r["setup"].append(s)
                r["teardown"].append(t)
                r["ok"] += 1
                ends.append(time.monotonic())

    p.proxy.set_phase("rp8")
    retries0 = st.dockerd.client.retries
    t0 = time.monotonic()
    with ThreadPoolExecutor(conc, thread_name_prefix=f"replay-{p.key}") as ex:
        for _ in range(conc):
            ex.submit(worker)
    wall = (max(ends) if ends else time.monotonic()) - t0
    settle(p)
    r["wall"] = wall
    r["retries"] = st.dockerd.client.retries - retries0
    r["per_s"] = r["ok"] / wall if r["ok"] and wall > 0 else None
    if b.watch.disturbed(t0, time.monotonic()) or outage(p, "rp8"):
        r["disturbed"] = True
    if r["errors"]:
        p.fail(f"replay C={conc} ({len(r['errors'])} lifecycles failed)", "\n".join(r["errors"][:3]))
    if r["ok"] < n:
        p.errors.append(f"replay C={conc}: {r['ok']} of {n} lifecycles completed"
                        + (" (time allowed used up)" if time.monotonic() > stop_at else ""))


def replay_all(b: Bench, ps: list[Plugin]) -> None:
    if b.args.replay <= 0 and b.args.replay_parallel <= 0:
        return
    log(f"--- replay of dockerd's plugin calls: {b.args.replay} lifecycles at C=1 (plugins take turns), "
        f"{b.args.replay_parallel} at C={b.args.replay_concurrency} per plugin")
    states: dict[str, ReplayState] = {}
    for p in ps:
        st = start_network(b, p)
        if st is not None:
            states[p.key] = st
    if b.args.replay > 0:
        sequential_replay(b, ps, states)
    if b.args.replay_parallel > 0:
        est = {p.key: replay_estimate(b, p, c1=False) for p in ps}
        scale = max(0.0, b.time_left() - conc_reserve(b, ps)) / max(1.0, sum(est.values()))
        for p in ps:
            if p.key in states:
                share = max(20.0, min(180.0, est[p.key] * scale))
                log(f"--- {p.title}: replay C={b.args.replay_concurrency}, {b.args.replay_parallel} lifecycles "
                    f"(time allowed {share:.0f}s)")
                parallel_replay(b, p, states[p.key], share)
    for p in ps:
        if p.key in states:
            stop_network(b, p, states[p.key])


def cleanup_replay(b: Bench, p: Plugin) -> list[str]:
    """Tear down replayed containers and the replay network that a failure or interruption left in a plugin
    (while it still runs; dockerd never knew them)."""
    st = b.replay.get(p.key)
    if st is None or p.proc is None or p.proc.poll() is not None:
        return []
    notes: list[str] = []
    for eid in list(st.live):
        c = st.containers.get(eid)
        if c is None:
            continue
        with contextlib.suppress(PluginCallError):
            st.dockerd.teardown(c)
            notes.append(f"{p.key}: tore down replayed endpoint {eid[:12]}")
    if st.net is not None:
        try:
            st.dockerd.network_rm(st.net)
            notes.append(f"{p.key}: removed the replay network")
        except PluginCallError as exc:
            notes.append(f"{p.key}: replay network rm failed ({exc}); the Neutron sweep removes what is left")
        st.net = None
    return notes

