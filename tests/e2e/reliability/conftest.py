"""Shared pieces of the reliability tests (GitHub issue 5): Courier processes of their own, leak accounting.

The local stack is shared with other people's tests running at the same time, so nothing here compares
global Neutron or host snapshots. Each test's Courier talks to Neutron through a ``FaultProxy`` (passing or
injecting faults), which records every resource Neutron created for it; "nothing left behind" means every one
of those is gone from Neutron, and no OVS interface or veth of those ports remains on the host. Each Courier
has a driver name of its own, so other tests' Docker networks never reach it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from courier.binding import vif
from tests import stack, testkit
from tests.e2e.conftest import REPO, Courier
from tests.faultproxy import FaultProxy


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def require_stack() -> None:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    stack.require("the test dockerd at " + stack.DOCKER_HOST, stack.docker_up())


class RelCourier(Courier):
    """``courier serve`` with its own driver name and settings; ``neutron_timeout=None`` keeps Courier's default."""

    def __init__(self, workdir: Path, driver_name: str, endpoint: str = stack.NEUTRON_URL, extra: str = "",
                 neutron_timeout: float | None = None, debug: bool = False, wrapper: list[str] | None = None):
        super().__init__(workdir, driver_name=driver_name, endpoint=endpoint, extra=extra)
        text = self.config.read_text()
        timeout = "" if neutron_timeout is None else f"neutron_timeout = {neutron_timeout:g}\n"
        self.config.write_text(text.replace("neutron_timeout = 5\n", timeout))
        self.debug, self.wrapper = debug, wrapper or []
        self.starts = 0

    def start(self, wait: bool = True) -> None:
        args = [sys.executable, "-m", "courier.cli", "serve", "--config-file", str(self.config)]
        if self.debug:
            args.append("--debug")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([*self.wrapper, *args], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        self.starts += 1
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"courier exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            if os.path.exists(self.socket) and self.call("Plugin.Activate")[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"courier did not come up in {timeout:g} s:\n{self.log_text()[-3000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


# --- Docker -----------------------------------------------------------------------------------------------------


docker_at = testkit.docker_at


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


class Docker:
    """One test's networks and containers on one dockerd, removed whatever happens."""

    def __init__(self, driver: str, host: str = stack.DOCKER_HOST):
        self.driver, self.host = driver, host
        self.tag = uuid.uuid4().hex[:6]
        self.networks: list[str] = []
        self.containers: list[str] = []
        self._count = 0

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return docker_at(self.host, *args, check=check, timeout=timeout)

    def name(self, kind: str) -> str:
        self._count += 1
        return f"r{kind}-{self.tag}-{self._count}"

    def network(self, *args: str, check: bool = True, name: str | None = None) -> subprocess.CompletedProcess[str]:
        name = name or self.name("n")
        result = self("network", "create", "-d", self.driver, "--ipam-driver", self.driver, *args, name,
                      check=check)
        if result.returncode == 0:
            self.networks.append(name)
        result.name = name  # type: ignore[attr-defined]
        return result

    def run(self, network: str, *args: str, check: bool = True,
            command: tuple[str, ...] = ("sleep", "3600")) -> subprocess.CompletedProcess[str]:
        name = self.name("c")
        self.containers.append(name)  # even when it fails: Docker may have created it
        result = self("run", "-d", "--name", name, "--net", network, *args, stack.IMAGE, *command, check=check)
        result.name = name  # type: ignore[attr-defined]
        return result

    def rm(self, container: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = self("rm", "-f", container, check=check)
        if result.returncode == 0 and container in self.containers:
            self.containers.remove(container)
        return result

    def ip(self, container: str, network: str) -> str:
        fmt = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
        return self("inspect", "-f", fmt, container).stdout.strip()

    def endpoint_id(self, container: str, network: str) -> str:
        fmt = f'{{{{(index .NetworkSettings.Networks "{network}").EndpointID}}}}'
        return self("inspect", "-f", fmt, container).stdout.strip()

    def ping(self, container: str, address: str, count: int = 2, attempts: int = 3) -> bool:
        """Whether ``container`` reaches ``address``; a few tries, as OVN may still be programming flows for
        a port that was just plugged (ovn-controller is slow on a loaded machine)."""
        for attempt in range(attempts):
            if attempt:
                time.sleep(2)
            result = self("exec", container, "ping", "-c", str(count), "-W", "3", address, check=False, timeout=60)
            if result.returncode == 0:
                return True
        return False

    def cleanup(self) -> None:
        for name in reversed(self.containers):
            self("rm", "-f", name, check=False)
        self.containers.clear()
        for name in reversed(self.networks):
            self("network", "rm", name, check=False)
        self.networks.clear()


# --- Neutron and host accounting --------------------------------------------------------------------------------


def neutron_exists(collection: str, resource_id: str) -> bool:
    try:
        stack.neutron("GET", f"/{collection}/{resource_id}")
        return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def existing_ids(collection: str, ids: set[str]) -> set[str]:
    """Which of ``ids`` Neutron still has: one list call per 40 ids, not one call each."""
    found: set[str] = set()
    wanted = sorted(ids)
    for start in range(0, len(wanted), 40):
        query = "&".join(f"id={i}" for i in wanted[start:start + 40])
        found |= {r["id"] for r in stack.neutron("GET", f"/{collection}?fields=id&{query}")[collection]}
    return found


def ovs_interfaces() -> dict[str, dict[str, str]]:
    out = subprocess.run(["ovs-vsctl", "--format=json", "--columns=name,external_ids", "list", "Interface"],
                         capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)["data"]
    return {name: dict(ids[1]) for name, ids in rows}


def device_names(ids: set[str]) -> set[str]:
    """The host device names Courier gives the veth of a port (or, formerly, of an endpoint) id."""
    return {name for i in ids for name in (vif.device_names(i).tap, vif.device_names(i).container)}


def leftovers(proxy: FaultProxy, keep: set[str] = frozenset()) -> dict[str, list[str]]:  # type: ignore[assignment]
    """What Neutron created for this test's Courier and still exists (apart from the ids in ``keep``: what is
    still in use), plus the OVS interfaces and host veths of those ports."""
    found: dict[str, list[str]] = {}
    for collection, ids in proxy.created.items():
        alive = sorted(existing_ids(collection, ids - set(keep)))
        if alive:
            found[collection] = alive
    keep_ports = proxy.created["ports"] & set(keep)
    gone_ports = proxy.created["ports"] - keep_ports
    ifaces = sorted(n for n, ids in ovs_interfaces().items() if ids.get("iface-id") in gone_ports)
    if ifaces:
        found["ovs-interfaces"] = ifaces
    names = device_names(gone_ports | (proxy.device_ids - keep_device_ids(keep_ports)))
    links = sorted(testkit.host_links() & names)
    if links:
        found["host-links"] = links
    return found


def network_ids(dk: Docker, network: str) -> set[str]:
    """The Neutron network, subnets and subnetpools behind a Docker network (still in use: not leftovers)."""
    docker_id = dk("network", "inspect", "-f", "{{.Id}}", network).stdout.strip()
    query = f"tags=kuryr.net.uuid.lh:{docker_id[:32]},kuryr.net.uuid.uh:{docker_id[32:]}"
    ids = set()
    for net in stack.neutron("GET", f"/networks?{query}")["networks"]:
        ids.add(net["id"])
        for subnet in stack.neutron("GET", f"/subnets?network_id={net['id']}")["subnets"]:
            ids |= {subnet["id"], subnet["subnetpool_id"] or ""}
    return ids - {""}


def keep_device_ids(port_ids: set[str]) -> set[str]:
    ids = set()
    for port_id in port_ids:
        try:
            device = stack.neutron("GET", f"/ports/{port_id}")["port"]["device_id"]
        except urllib.error.HTTPError:
            continue
        if device:
            ids.add(device)
    return ids


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def no_leftovers(proxy: FaultProxy, keep: set[str] = frozenset(),  # type: ignore[assignment]
                 timeout: float = 45) -> dict[str, list[str]]:
    """Wait (bounded) for background deletes to finish; return what is still left."""
    last: dict[str, list[str]] = {}

    def clean() -> bool:
        nonlocal last
        last = leftovers(proxy, keep)
        return not last

    wait_until(clean, timeout, interval=1.0)
    return last


@pytest.fixture(scope="module")
def stack_up() -> None:
    require_stack()


@pytest.fixture(scope="module")
def recording_proxy(stack_up: None) -> Iterator[FaultProxy]:
    with FaultProxy(stack.NEUTRON_URL) as proxy:
        yield proxy


# --- a dockerd of a test's own ----------------------------------------------------------------------------------


class OwnDockerd:
    """A dockerd only this test uses (the shared test dockerd is never restarted): its own data root, exec root,
    socket and pid file; no bridge, no iptables; ``busybox:local`` imported from the busybox-static rootfs as
    scripts/stack does. Plugins are discovered host-wide, so it finds the test's Courier by its driver name."""

    def __init__(self, logdir: Path, live_restore: bool = True):
        tag = uuid.uuid4().hex[:6]
        self.run_dir = Path(f"/run/courier-rel-{tag}")
        self.data_root = Path(f"/var/lib/courier-rel-{tag}")
        self.exec_root = self.run_dir / "exec"
        self.socket = self.run_dir / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.pidfile = self.run_dir / "docker.pid"
        self.log = logdir / f"dockerd-{tag}.log"
        self.live_restore = live_restore
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        for path in (self.run_dir, self.exec_root, self.data_root):
            path.mkdir(parents=True, exist_ok=True)
        args = ["dockerd", "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "-H", self.host, "--pidfile", str(self.pidfile), "--bridge=none", "--iptables=false",
                "--ip-masq=false", "--config-file", str(self._config())]
        if self.live_restore:
            args.append("--live-restore")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.starts += 1
        testkit.wait_for_dockerd(self.host, self.proc, self.log, timeout)

    def _config(self) -> Path:
        path = self.run_dir / "daemon.json"
        path.write_text("{}\n")
        return path

    def import_busybox(self) -> None:
        if docker_at(self.host, "image", "inspect", stack.IMAGE, check=False).returncode == 0:
            return
        rootfs = self.run_dir / "rootfs"
        for sub in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev"):
            (rootfs / sub).mkdir(parents=True, exist_ok=True)
        (rootfs / "bin/busybox").write_bytes(Path("/bin/busybox").read_bytes())
        (rootfs / "bin/busybox").chmod(0o755)
        applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True, check=True)
        for applet in applets.stdout.split():
            if applet != "bin/busybox":
                target = rootfs / applet
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.symlink_to("/bin/busybox")
        (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (rootfs / "etc/group").write_text("root:x:0:\n")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        env = {**os.environ, "DOCKER_HOST": self.host}
        subprocess.run(["docker", "import", "-c", 'CMD ["/bin/sh"]', "-", stack.IMAGE], stdin=tar.stdout,
                       capture_output=True, env=env, check=True, timeout=120)
        tar.wait(timeout=60)
        subprocess.run(["rm", "-rf", str(rootfs)], check=False)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM, as a service manager restarting dockerd does; with --live-restore containers keep running."""
        if self.proc is None:
            return
        testkit.stop_process(self.proc, timeout)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def processes(self) -> list[int]:
        """Processes left that belong to this dockerd (its containerd and shims name its directories)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(self.exec_root) in cmdline or str(self.data_root) in cmdline:
                pids.append(int(entry.name))
        return pids

    def destroy(self) -> None:
        """Remove every container, stop the daemon (and what it started), unmount and delete its directories."""
        if self.proc is not None:
            ids = docker_at(self.host, "ps", "-aq", check=False).stdout.split()
            if ids:
                docker_at(self.host, "rm", "-f", *ids, check=False)
        self.stop()
        for pid in self.processes():  # containerd with --live-restore; only ours, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if line.split()[1].startswith((str(self.run_dir), str(self.data_root)))]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        for path in (self.data_root, self.run_dir):
            subprocess.run(["rm", "-rf", str(path)], check=False)
