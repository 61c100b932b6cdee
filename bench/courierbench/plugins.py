"""The plugins under test: Courier cold (no port pool), Courier warm (port pool) and kuryr-libnetwork 18.

Each gets its own counting Neutron proxy, its own kuryr.conf and Docker driver name, and its own CIDRs.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.testkit import UnixHTTPConnection

from .common import (
    COURIER_BIN,
    COURIER_NAME,
    KURYR_VENV,
    KURYR_VERSION,
    PLUGIN_DIR,
    REPO,
    SPEC_DIR,
    SPEC_FILE,
    UPSTREAM_NAME,
    activate,
    log,
    neutron,
    rss_mib,
    tail,
)
from .proxy import CountingProxy

if TYPE_CHECKING:
    from .bench import Bench

POOL_TAG = "courier.pool"        # the warm pool's idle ports carry a tag starting with this


@dataclass(frozen=True)
class Spec:
    key: str          # "cold" | "warm" | "upstream"
    kind: str         # "courier" | "upstream"
    title: str
    driver: str       # Docker driver name (network and IPAM)
    conf_name: str
    log_name: str


SPECS = {
    "cold": Spec("cold", "courier", "Courier cold", f"{COURIER_NAME}-cold", "courier-cold.conf", "courier-cold.log"),
    "warm": Spec("warm", "courier", "Courier warm", f"{COURIER_NAME}-warm", "courier-warm.conf", "courier-warm.log"),
    "upstream": Spec("upstream", "upstream", f"kuryr-libnetwork {KURYR_VERSION}", UPSTREAM_NAME, "kuryr.conf",
                     "kuryr-server.log"),
}
ALIASES = {"courier": ["cold", "warm"], "kuryr": ["upstream"]}


def parse_order(text: str) -> list[str]:
    """``cold,warm,upstream`` (``courier`` = cold,warm; ``kuryr`` = upstream). ValueError when invalid."""
    keys: list[str] = []
    for k in (k.strip() for k in text.split(",")):
        if k:
            keys += ALIASES.get(k, [k])
    if not keys or set(keys) - set(SPECS) or len(set(keys)) != len(keys):
        raise ValueError("--order takes cold, warm, upstream (courier = cold,warm), each once")
    return keys


@dataclass
class Plugin:
    spec: Spec
    proxy: CountingProxy
    log_path: Path
    conf_path: Path
    cidrs: dict[str, ipaddress.IPv4Network]
    proc: subprocess.Popen | None = None
    networks: list[str] = field(default_factory=list)        # Docker network ids created (also by the replay)
    res: dict = field(default_factory=dict)                  # results
    errors: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def driver(self) -> str:
        return self.spec.driver

    @property
    def is_courier(self) -> bool:
        return self.spec.kind == "courier"

    @property
    def socket(self) -> Path:
        return PLUGIN_DIR / f"{self.driver}.sock"

    def fail(self, what: str, stderr: str) -> None:
        msg = f"{what} failed: {stderr or '(no stderr)'}\n" \
              f"--- last lines of {self.title} log ({self.log_path.name}):\n" \
              + textwrap.indent(tail(self.log_path), "    ")
        self.errors.append(msg)
        first = next((ln for ln in stderr.splitlines() if ln.strip()), "?")
        log(f"{self.title}: {what} failed: {first}")


def make_plugin(key: str, proxy: CountingProxy, work: Path, logs: Path,
                cidrs: dict[str, ipaddress.IPv4Network]) -> Plugin:
    s = SPECS[key]
    return Plugin(s, proxy, logs / s.log_name, work / s.conf_name, cidrs)


def ensure_kuryr_venv(no_install: bool) -> bool:
    """True if it had to install."""
    exe = KURYR_VENV / "bin/kuryr-server"
    py = KURYR_VENV / "bin/python"
    if exe.exists() and subprocess.run(
            [str(py), "-c", f"import importlib.metadata as m, sys; "
                            f"sys.exit(m.version('kuryr-libnetwork') != '{KURYR_VERSION}')"]).returncode == 0:
        return False
    if no_install:
        raise SystemExit(f"{exe} missing (and --no-install given)")
    log(f"installing kuryr-libnetwork=={KURYR_VERSION} into {KURYR_VENV} (one-off, ~1 min)")
    KURYR_VENV.parent.mkdir(parents=True, exist_ok=True)
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(KURYR_VENV)], check=True)
    p = subprocess.run([str(KURYR_VENV / "bin/pip"), "install", "-q", f"kuryr-libnetwork=={KURYR_VERSION}"],
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"pip install kuryr-libnetwork failed:\n{p.stderr[-3000:]}")
    return True


def config_text(p: Plugin, upstream_port: int, pool_min: int, pool_batch: int) -> str:
    if p.key == "upstream":
        return textwrap.dedent(f"""\
            [DEFAULT]
            kuryr_uri = http://127.0.0.1:{upstream_port}
            bindir = {KURYR_VENV}/libexec/kuryr
            [neutron]
            auth_type = none
            endpoint = {p.proxy.url}
            """)
    pool = (f"[vif_pool]\nenabled = true\nports_pool_min = {pool_min}\nports_pool_batch = {pool_batch}\n"
            if p.key == "warm" else "[vif_pool]\nenabled = false\n")
    return textwrap.dedent(f"""\
        [neutron]
        auth_type = none
        endpoint = {p.proxy.url}
        [courier]
        driver_name = {p.driver}
        [cni]
        enabled = false
        """) + pool


def start_plugin(b: Bench, p: Plugin) -> None:
    a = b.args
    p.conf_path.write_text(config_text(p, a.upstream_port, a.pool_min, a.pool_batch))
    if p.is_courier:
        argv = [str(COURIER_BIN), "serve", "--config-file", str(p.conf_path)]
    else:
        argv = [str(KURYR_VENV / "bin/kuryr-server"), "--config-file", str(p.conf_path)]
    logf = open(p.log_path, "ab")  # noqa: SIM115 (the child keeps it)
    env = dict(os.environ, PATH=f"{KURYR_VENV / 'bin'}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
               if not p.is_courier else os.environ.get("PATH", ""))
    p.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                              cwd=b.work, env=env, start_new_session=True)
    logf.close()
    if not p.is_courier:
        if not SPEC_DIR.exists():
            SPEC_DIR.mkdir(parents=True)
            b.created_spec_dir = True
        SPEC_FILE.write_text(f"http://127.0.0.1:{a.upstream_port}\n")
        b.wrote_spec = True
    t_end = time.monotonic() + 60
    while True:
        if p.proc.poll() is not None:
            raise RuntimeError(f"{p.title} exited with {p.proc.returncode} at start:\n{tail(p.log_path, 40)}")
        conn: http.client.HTTPConnection = (
            UnixHTTPConnection(str(p.socket), timeout=5) if p.is_courier
            else http.client.HTTPConnection("127.0.0.1", a.upstream_port, timeout=5))
        if (not p.is_courier or p.socket.exists()) and activate(conn):
            break
        if time.monotonic() > t_end:
            raise RuntimeError(f"{p.title} not answering Plugin.Activate after 60s:\n{tail(p.log_path, 40)}")
        time.sleep(0.2)
    p.proxy.wait_quiet(0.3, 10)
    p.res["startup_calls"] = len(p.proxy.calls_in("startup"))
    p.res["rss_idle"] = rss_mib(p.proc.pid)
    p.proxy.set_phase("idle")
    log(f"{p.title} up (pid {p.proc.pid}, {p.res['startup_calls']} Neutron calls at start-up)")


# --------------------------------------------------------------------------- the warm pool

def pool_supported() -> bool:
    """Does this Courier know [vif_pool] at all? (oslo.config ignores unknown options: without it, warm = cold.)"""
    for path in (REPO / "courier").rglob("*.py"):
        try:
            if "vif_pool" in path.read_text(errors="replace"):
                return True
        except OSError:
            continue
    return False


def pool_count(cidr: ipaddress.IPv4Network) -> int | None:
    """Ready pool ports on the Neutron network whose subnet is ``cidr``: a tag starting with courier.pool, no
    device, and ACTIVE (Courier marks a made port ready once it is plugged, ``ovn-installed`` and ACTIVE; a port
    only tagged so far would be counted before the pool can hand it out)."""
    st, body = neutron("GET", f"/v2.0/subnets?cidr={cidr}&fields=network_id", timeout=10)
    nets = {s["network_id"] for s in body.get("subnets", [])} if st == 200 else set()
    if not nets:
        return None
    n = 0
    for nid in nets:
        st, body = neutron("GET", f"/v2.0/ports?network_id={nid}&fields=id&fields=tags&fields=status"
                                  "&fields=device_id", timeout=10)
        n += sum(1 for q in body.get("ports", []) if st == 200 and q.get("status") == "ACTIVE"
                 and not q.get("device_id") and any(str(t).startswith(POOL_TAG) for t in q.get("tags") or []))
    return n


def wait_pool(p: Plugin, which: str, want: int, limit: float = 60.0, since: float | None = None,
              quiet_limit: float = 15.0) -> None:
    """Before measuring the warm plugin on network ``which``: wait until its pool holds ``want`` idle ports, or
    ``limit`` s; give up after ``quiet_limit`` s if the plugin has not asked Neutron for a single port since
    ``since`` (a pool that fills at all starts at once). The outcome is recorded in ``p.res['pool'][which]``
    (reported as "pool not filled", never fatal)."""
    if p.key != "warm":
        return
    rec: dict = {"want": want}
    p.res.setdefault("pool", {})[which] = rec
    if not pool_supported():
        rec.update(filled=False, count=0, waited=0.0, note="this Courier has no [vif_pool]: warm = cold")
        return
    t0 = time.monotonic()
    since = t0 if since is None else since
    p.proxy.set_phase(f"pool-{which}")
    count: int | None = None
    while True:
        try:
            count = pool_count(p.cidrs[which.split("-")[0]])
        except OSError:
            count = None
        if count is not None and count >= want:
            time.sleep(0.5)  # ACTIVE in Neutron, then Courier's own check of it (its poll interval)
            break
        waited = time.monotonic() - t0
        if waited > limit:
            break
        if waited > quiet_limit and not any(c.method == "POST" and c.path.startswith("/v2.0/ports")
                                            and c.start >= since for c in list(p.proxy.calls)):
            break
        time.sleep(0.5)
    rec.update(filled=bool(count is not None and count >= want), count=count or 0, waited=time.monotonic() - t0)
    if not rec["filled"]:
        rec["note"] = f"pool not filled ({count or 0} of {want} after {rec['waited']:.0f}s)"
        log(f"{p.title}: {rec['note']} ({which} network)")
    else:
        log(f"{p.title}: pool filled ({count} ports, {rec['waited']:.1f}s) on the {which} network")
    p.proxy.wait_quiet(0.3, 5)
    p.proxy.set_phase("idle")
