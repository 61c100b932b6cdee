"""Run state (``Bench``), preflight checks and set-up: proxies, plugins, the private dockerd."""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.testkit import UnixHTTPConnection, host_links

from .common import (
    CIDR_BASE,
    CLEANUP_RESERVE,
    COURIER_BIN,
    EXEC_ROOT,
    REPO,
    RUN_DIR,
    SPEC_FILE,
    WORK_BASE,
    activate,
    log,
    mkdir,
    neutron,
    neutron_up,
)
from .dockerd import other_dockerd_on_exec_root, start_dockerd
from .plugins import SPECS, Plugin, ensure_kuryr_venv, make_plugin, start_plugin
from .proxy import start_proxy
from .watch import NeutronWatch

NETWORKS = ("seq", "conc", "replay")     # one /24 per plugin for each


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.deadline = time.monotonic() + args.budget - CLEANUP_RESERVE   # reset after a first-run install
        self.work = Path()
        self.logs = Path()
        self.locked = False          # nothing to clean up before the lock is ours
        self.wrote_spec = False
        self.dockerd: subprocess.Popen | None = None
        self.plugins: dict[str, Plugin] = {}
        self.watch = NeutronWatch()
        self.load = os.getloadavg()
        self.lock_fd: int | None = None
        self.created_spec_dir = False
        self.exec_root_before: set[str] = set()
        self.netns_before: set[str] = set()
        self.links_before: set[str] = set()
        self.cleanup_notes: list[str] = []
        self.res: dict = {}          # figures not tied to one plugin (--net none baseline)
        self.replay: dict = {}       # plugin key -> replay.ReplayState

    def time_left(self) -> float:
        """Seconds until the workload must stop (--budget less the cleanup reserve)."""
        return self.deadline - time.monotonic()

    def step_timeout(self, cap: float) -> float:
        return max(5.0, min(cap, self.time_left()))

    def wait_neutron(self, limit: float = 90, budget: bool = True) -> bool:
        t_end = time.monotonic() + (min(limit, max(0, self.time_left() - 30)) if budget else limit)
        log("Neutron unavailable (the shared stack restarting?): waiting for it")
        while time.monotonic() < t_end:
            if neutron_up():
                return True
            time.sleep(1)
        return False


def preflight(b: Bench) -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench/run must run as root (dockerd, netns, OVS)")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    b.lock_fd = os.open(RUN_DIR / "lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(b.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(b.lock_fd)
        b.lock_fd = None
        raise SystemExit("another bench/run is in progress (lock /run/courier-bench/lock)") from None
    b.locked = True
    b.work = Path(tempfile.mkdtemp(prefix="run-", dir=mkdir(WORK_BASE)))
    b.logs = b.work / "logs"
    b.logs.mkdir()
    if not neutron_up():
        log("Neutron is not answering: scripts/stack start (idempotent)")
        subprocess.run([str(REPO / "scripts/stack"), "start"], check=True, stdout=sys.stderr)
        t_end = time.monotonic() + 180
        while not neutron_up():
            if time.monotonic() > t_end:
                raise SystemExit("Neutron still not answering after scripts/stack start")
            time.sleep(1)
    if any(SPECS[k].kind == "courier" for k in b.args.order) and not COURIER_BIN.exists():
        raise SystemExit(f"{COURIER_BIN} missing: create the project venv first")
    if "upstream" in b.args.order and ensure_kuryr_venv(b.args.no_install):
        b.deadline = time.monotonic() + b.args.budget - CLEANUP_RESERVE
    pid = other_dockerd_on_exec_root()
    if pid:
        raise SystemExit(f"a dockerd (pid {pid}) already uses exec-root {EXEC_ROOT}; not starting ours")
    if "upstream" in b.args.order:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", b.args.upstream_port))
            except OSError:
                raise SystemExit(f"127.0.0.1:{b.args.upstream_port} is in use (another kuryr-server?)") from None
        if SPEC_FILE.exists():
            raise SystemExit(f"{SPEC_FILE} exists: another bench run, or left over (remove it by hand)")
    for k in b.args.order:
        if SPECS[k].kind != "courier":
            continue
        sock = Path("/run/docker/plugins") / f"{SPECS[k].driver}.sock"
        if sock.exists():
            if activate(UnixHTTPConnection(str(sock), timeout=2)):
                raise SystemExit(f"{sock} is served by a live process: another Courier uses the name "
                                 f"{SPECS[k].driver}")
            sock.unlink()
    b.links_before = host_links(check=False)


def pick_cidrs(n: int) -> list[ipaddress.IPv4Network]:
    """n free /24s in 10.247.0.0/16: used by no Neutron subnet or subnetpool and by nothing on this host."""
    used: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    _, subnets = neutron("GET", "/v2.0/subnets?fields=cidr")
    used += [ipaddress.ip_network(s["cidr"]) for s in subnets.get("subnets", [])]
    _, pools = neutron("GET", "/v2.0/subnetpools?fields=prefixes")
    used += [ipaddress.ip_network(p) for sp in pools.get("subnetpools", []) for p in sp["prefixes"]]
    ipj = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True).stdout or "[]")
    used += [ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False)
             for i in ipj for a in i.get("addr_info", [])]
    cands: list[ipaddress.IPv4Network] = list(CIDR_BASE.subnets(new_prefix=24))
    random.shuffle(cands)
    free = [c for c in cands if not any(c.version == u.version and c.overlaps(u) for u in used)]
    if len(free) < n:
        raise SystemExit(f"fewer than {n} free /24s in {CIDR_BASE}")
    return sorted(free[:n])


def setup(b: Bench) -> None:
    b.watch.start()
    k = len(NETWORKS)
    c = pick_cidrs(k * len(b.args.order))
    for i, key in enumerate(b.args.order):
        proxy = start_proxy(b.logs, key)
        cidrs = {name: c[k * i + j] for j, name in enumerate(NETWORKS)}
        p = make_plugin(key, proxy, b.work, b.logs, cidrs)
        b.plugins[key] = p
        log(f"{p.title}: Neutron proxy {proxy.url}, CIDRs "
            + ", ".join(f"{cidrs[n]} ({n})" for n in NETWORKS))
    for p in b.plugins.values():
        start_plugin(b, p)
    start_dockerd(b)
