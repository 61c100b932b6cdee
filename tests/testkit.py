"""Helpers the unit, integration, e2e tests and the benchmark share, written once.

- ``UnixHTTPConnection`` / ``post_unix``: HTTP to a plugin socket, as dockerd talks to Courier;
- ``docker_at`` / ``wait_for_dockerd`` / ``stop_process``: drive and stop a dockerd (or any child process);
- ``NEUTRON_URL`` / ``neutron_up``: where the local stack's Neutron answers, and a patient probe of it;
- ``host_links``: this namespace's network device names.

Standard library only, so that any test (and ``bench/run``) can import it without the stack.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

NEUTRON_URL = os.environ.get("COURIER_NEUTRON_URL", "http://127.0.0.1:9696")  # scripts/stack's Neutron


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a unix socket (the host part of the URL is ignored)."""

    def __init__(self, path: str, timeout: float = 10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except BaseException:
            sock.close()  # refused while the plugin restarts: callers retry, leak no descriptor per try
            raise
        self.sock = sock


def post_unix(path: str, method: str, body: str | bytes = "{}", timeout: float = 10.0) -> tuple[int, str]:
    """POST /<method> on the plugin socket ``path``: (status, body); (0, "") when nothing answers."""
    conn = UnixHTTPConnection(path, timeout=timeout)
    try:
        conn.request("POST", f"/{method}", body=body)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    except OSError:
        return 0, ""
    finally:
        conn.close()


def docker_at(host: str, *args: str, check: bool = True, timeout: float = 120,
              cli: str = "docker") -> subprocess.CompletedProcess[str]:
    """The docker CLI against the daemon at ``host``; a failure raises AssertionError when ``check``."""
    env = {**os.environ, "DOCKER_HOST": host}
    result = subprocess.run([cli, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def dockerd_answers(host: str) -> bool:
    try:
        return docker_at(host, "version", "--format", "{{.Server.Version}}", check=False,
                         timeout=15).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def wait_for_dockerd(host: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Until the dockerd ``proc`` answers at ``host``; AssertionError (with its log's tail) if it exits or
    does not answer in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dockerd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if dockerd_answers(host):
            return
        time.sleep(0.2)
    raise AssertionError(f"dockerd did not answer within {timeout:g} s: {log.read_text()[-2000:]}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float, kill: bool = False, *, group: bool = False,
                 kill_wait: float | None = None) -> bool:
    """SIGTERM (or SIGKILL), then SIGKILL if it outlives ``timeout``: True when that SIGKILL was needed.

    ``group``: that SIGKILL goes to its whole process group (a child started with ``start_new_session``);
    ``kill_wait``: then wait at most that many seconds for it (default: until it is gone)."""
    if kill:
        proc.kill()
    else:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        pass
    if group:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(kill_wait)
    return True


def neutron_up(url: str, attempts: int = 3, timeout: float = 15) -> bool:
    """Neutron at ``url`` answers (a busy API may be slow: a few patient tries before calling it down)."""
    for attempt in range(attempts):
        try:
            urllib.request.urlopen(f"{url}/v2.0/networks?limit=1", timeout=timeout).read()
            return True
        except (urllib.error.URLError, OSError):
            if attempt + 1 < attempts:
                time.sleep(2)
    return False


def host_links(check: bool = True) -> set[str]:
    """Names of the network devices in this namespace (veth peers without their @peer suffix); ``check=False``:
    an ``ip`` that fails gives the names it printed (none), not CalledProcessError."""
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=check)
    return {line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines() if line.count(":") >= 2}


def metric(url: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus /metrics page: ``name``'s value summed over the label sets containing
    ``labels`` (e.g. ``'result="hit"'``; "" sums them all)."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if match and labels in (match.group(1) or ""):
            total += float(match.group(2))
    return total
