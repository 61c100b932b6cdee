"""Real dockerd + real Neutron/OVN + Courier as a real process on the real plugin socket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import stack, testkit

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = "/run/docker/plugins"


class Courier:
    """``courier serve`` in a subprocess, with its own kuryr.conf and log file."""

    def __init__(self, workdir: Path, driver_name: str = "kuryr", endpoint: str = stack.NEUTRON_URL,
                 extra: str = "", cni_socket: str | None = None):
        self.driver_name = driver_name
        self.socket = f"{PLUGIN_DIR}/{driver_name}.sock"
        self.config = workdir / f"{driver_name}.conf"
        self.log = workdir / f"{driver_name}.log"
        self.cni_socket = cni_socket  # the CNI front end only where a test uses it: Couriers never share one
        cni = f"enabled = true\nsocket_path = {cni_socket}\n" if cni_socket else "enabled = false\n"
        self.config.write_text(
            f"[cni]\n{cni}"
            "[neutron]\nauth_type = none\n"
            f"endpoint = {endpoint}\n"
            "[courier]\n"
            f"driver_name = {driver_name}\nport_ready_timeout = 20\nneutron_timeout = 5\n" + extra)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "courier.cli", "serve", "--config-file",
                                          str(self.config)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"courier exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if os.path.exists(self.socket) and self.call("Plugin.Activate")[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"courier did not come up:\n{self.log.read_text()[-3000:]}")

    def call(self, method: str, body: str = "{}") -> tuple[int, str]:
        return testkit.post_unix(self.socket, method, body)

    def stop(self, sig: str = "term") -> None:
        if self.proc is None:
            return
        testkit.stop_process(self.proc, 15, kill=sig == "kill")
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture(scope="session")
def courier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Courier]:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    stack.require("the test dockerd at " + stack.DOCKER_HOST, stack.docker_up())
    server = Courier(tmp_path_factory.mktemp("courier"))
    server.start()
    yield server
    server.stop()


def _neutron_snapshot() -> dict[str, set[str]]:
    return {kind: {r["id"] for r in stack.neutron("GET", f"/{kind}")[kind]}
            for kind in ("networks", "subnets", "subnetpools", "ports")}


@pytest.fixture
def no_leaks(courier: Courier) -> Iterator[None]:
    """Whatever a test creates through Docker must be gone from Neutron, OVS and the host after it."""
    before = (_neutron_snapshot(), stack.ovs_ports(), testkit.host_links())
    yield
    after = (_neutron_snapshot(), stack.ovs_ports(), testkit.host_links())
    leaked = {kind: after[0][kind] - before[0][kind] for kind in after[0]}
    leaked = {k: v for k, v in leaked.items() if v}
    assert not leaked, f"Neutron resources left behind: {leaked}"
    assert after[1] <= before[1], f"OVS ports left behind: {after[1] - before[1]}"
    assert after[2] <= before[2], f"host interfaces left behind: {after[2] - before[2]}"


class DockerSession:
    """Names for this test's networks and containers, and their removal whatever happens."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.networks: list[str] = []
        self.containers: list[str] = []

    def network(self, *args: str, driver: str = "kuryr", ipam: str | None = "kuryr") -> str:
        name = f"ct-{self.tag}-{len(self.networks)}"
        ipam_args = ["--ipam-driver", ipam] if ipam else []
        stack.docker("network", "create", "-d", driver, *ipam_args, *args, name)
        self.networks.append(name)
        return name

    def run(self, *args: str, command: tuple[str, ...] = ("sleep", "600"), cli: str = "docker") -> str:
        name = f"cc-{self.tag}-{len(self.containers)}"
        stack.docker("run", "-d", "--name", name, *args, stack.IMAGE, *command, cli=cli)
        self.containers.append(name)
        return name

    def exec(self, container: str, *command: str, check: bool = True) -> stack.subprocess.CompletedProcess[str]:
        return stack.docker("exec", container, *command, check=check)

    def ip(self, container: str, network: str, v6: bool = False) -> str:
        key = "GlobalIPv6Address" if v6 else "IPAddress"
        fmt = f'{{{{(index .NetworkSettings.Networks "{network}").{key}}}}}'
        return stack.docker("inspect", "-f", fmt, container).stdout.strip()

    def cleanup(self) -> None:
        for name in reversed(self.containers):
            stack.docker("rm", "-f", name, check=False)
        for name in reversed(self.networks):
            stack.docker("network", "rm", name, check=False)


@pytest.fixture
def dk(no_leaks: None) -> Iterator[DockerSession]:
    session = DockerSession()
    try:
        yield session
    finally:
        session.cleanup()
