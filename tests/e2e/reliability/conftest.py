"""Shared pieces of the reliability tests (GitHub issue 5): Courier processes of their own, leak accounting.

The local stack is shared with other people's tests running at the same time, so nothing here compares
global Neutron or host snapshots. Each test's Courier talks to Neutron through a ``FaultProxy`` (passing or
injecting faults), which records every resource Neutron created for it; "nothing left behind" means every one
of those is gone from Neutron, and no OVS interface or veth of those ports remains on the host. Each Courier
has a driver name of its own, so other tests' Docker networks never reach it.
"""

from __future__ import annotations

import json
import os
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

from tests import stack
from tests.e2e.conftest import REPO, Courier
from tests.faultproxy import FaultProxy

VETH_PREFIXES = ("tap", "t_c")
IFNAMSIZ = 15


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def require_stack() -> None:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    stack.require("the test dockerd at " + stack.DOCKER_HOST, stack.docker_up())


class RelCourier(Courier):
    """``courier serve`` with its own driver name and settings; ``neutron_timeout=None`` keeps Courier's default."""

    def __init__(self, workdir: Path, driver_name: str, endpoint: str = stack.NEUTRON_URL, extra: str = "",
                 neutron_timeout: float | None = 5, debug: bool = False, wrapper: list[str] | None = None):
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


def docker_at(host: str, *args: str, check: bool = True, timeout: float = 120,
              cli: str = "docker") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": host}
    result = subprocess.run([cli, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


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

    def ping(self, container: str, address: str, count: int = 2) -> bool:
        result = self("exec", container, "ping", "-c", str(count), "-W", "3", address, check=False, timeout=60)
        return result.returncode == 0

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


def ovs_interfaces() -> dict[str, dict[str, str]]:
    out = subprocess.run(["ovs-vsctl", "--format=json", "--columns=name,external_ids", "list", "Interface"],
                         capture_output=True, text=True, check=True).stdout
    rows = json.loads(out)["data"]
    return {name: dict(ids[1]) for name, ids in rows}


def device_names(ids: set[str]) -> set[str]:
    """The host device names Courier gives the veth of a port (or, formerly, of an endpoint) id."""
    return {(prefix + i)[:IFNAMSIZ - 1] for i in ids for prefix in VETH_PREFIXES}


def leftovers(proxy: FaultProxy, keep: set[str] = frozenset()) -> dict[str, list[str]]:  # type: ignore[assignment]
    """What Neutron created for this test's Courier and still exists (apart from the ids in ``keep``: what is
    still in use), plus the OVS interfaces and host veths of those ports."""
    found: dict[str, list[str]] = {}
    for collection, ids in proxy.created.items():
        alive = sorted(i for i in ids - set(keep) if neutron_exists(collection, i))
        if alive:
            found[collection] = alive
    keep_ports = proxy.created["ports"] & set(keep)
    gone_ports = proxy.created["ports"] - keep_ports
    ifaces = sorted(n for n, ids in ovs_interfaces().items() if ids.get("iface-id") in gone_ports)
    if ifaces:
        found["ovs-interfaces"] = ifaces
    names = device_names(gone_ports | (proxy.device_ids - keep_device_ids(keep_ports)))
    links = sorted(stack.host_links() & names)
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
