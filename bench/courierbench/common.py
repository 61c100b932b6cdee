"""Constants and small helpers shared by the benchmark's modules."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests import testkit

from . import REPO

BENCH_DIR = REPO / "bench"
NEUTRON_URL = testkit.NEUTRON_URL
COURIER_BIN = REPO / ".venv/bin/courier"
KURYR_VENV = Path("/opt/courier-bench/kuryr-venv")
KURYR_VERSION = "18.0.0"
COURIER_NAME = "courier-bench"
UPSTREAM_NAME = "kuryr-upstream"
PLUGIN_DIR = Path("/run/docker/plugins")
SPEC_DIR = Path("/etc/docker/plugins")
SPEC_FILE = SPEC_DIR / f"{UPSTREAM_NAME}.spec"
RUN_DIR = Path("/run/courier-bench")
WORK_BASE = Path("/var/lib/courier-bench")
EXEC_ROOT = "/var/run/docker"            # literally: upstream matches SandboxKey against ^/var/run/docker/netns/
DOCKER_SOCK = RUN_DIR / "docker.sock"
DOCKER_PID = RUN_DIR / "docker.pid"
IMAGE = "busybox:local"
CLEANUP_RESERVE = 40.0      # seconds of --budget kept for cleaning up
CIDR_BASE = ipaddress.IPv4Network("10.247.0.0/16")
NEUTRON_PIDFILE = Path(os.environ.get("COURIER_STACK_RUN_DIR", "/run/courier-stack")) / "neutron-api.pid"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Interrupted(BaseException):   # not an Exception: no handler on the way may swallow it
    pass


def on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def proc_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def proc_status(pid: int) -> dict[str, str]:
    out = {}
    with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def rss_mib(pid: int, key: str = "VmRSS") -> float | None:
    v = proc_status(pid).get(key)
    return int(v.split()[0]) / 1024 if v else None


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime
    except (FileNotFoundError, IndexError, ValueError):
        return None


def stop_process(proc: subprocess.Popen | None, name: str, grace: float = 15.0) -> None:
    """testkit's, logged when SIGTERM was not enough; the SIGKILL goes to the whole group (all started with
    start_new_session) and cleanup waits for it 5 s at most."""
    if proc is not None and testkit.stop_process(proc, grace, group=True, kill_wait=5):
        log(f"{name} (pid {proc.pid}) ignored SIGTERM for {grace:.0f}s: SIGKILL")


def tail(path: Path, n: int = 25) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(lines[-n:])


def neutron(method: str, path: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
    """Direct Neutron call (not through a proxy: the benchmark's own calls are not counted)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(NEUTRON_URL + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"raw": raw.decode(errors="replace")}


def neutron_up() -> bool:
    """One quick probe (the callers poll) of this run's Neutron."""
    return testkit.neutron_up(NEUTRON_URL, attempts=1, timeout=5)


def activate(conn: http.client.HTTPConnection) -> bool:
    try:
        conn.request("POST", "/Plugin.Activate", body=b"{}",
                     headers={"Content-Type": "application/vnd.docker.plugins.v1+json"})
        reply = json.loads(conn.getresponse().read())
        return "NetworkDriver" in reply.get("Implements", [])
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p95 of 10 samples is the largest)."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def courier_revision() -> str:
    """The Courier that ran: its git commit, and whether the working tree differs from it."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "courier"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown revision"
    return (f"commit {head}" if head else "no commit") + (" + uncommitted changes in courier/" if dirty else "")
