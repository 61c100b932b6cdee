"""Two hosts on one machine: host 1 is the shared stack, host 2 runs in network namespace courier-host2
(`scripts/stack host2`: its own OVS, ovn-controller chassis and dockerd). The module's fixture starts host 2 and
stops it again, so that the rest of the suite runs with one chassis."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import stack, testkit
from tests.e2e.conftest import REPO, Courier

STACK = str(REPO / "scripts" / "stack")


def _run_stack(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([STACK, *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"scripts/stack {' '.join(args)} failed: {result.stderr[-3000:]}")
    return result


class Host2:
    """Host 2 as `scripts/stack host2 env` describes it."""

    def __init__(self) -> None:
        env = {}
        for line in _run_stack("host2", "env").stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0]
        self.netns = env["COURIER_HOST2_NETNS"]
        self.name = env["COURIER_HOST2_NAME"]
        self.docker_host = env["COURIER_HOST2_DOCKER_HOST"]
        self.plugin_dir = env["COURIER_HOST2_PLUGIN_DIR"]
        self.ovs_db = env["COURIER_HOST2_OVS_DB"]
        self.neutron_url = env["COURIER_HOST2_NEUTRON_URL"]

    def ovs_ports(self) -> set[str]:
        out = subprocess.run(["ovs-vsctl", f"--db={self.ovs_db}", "list-ports", "br-int"], capture_output=True,
                             text=True, check=True)
        return set(out.stdout.split())

    def links(self) -> set[str]:
        out = subprocess.run(["ip", "-n", self.netns, "-o", "link", "show"], capture_output=True, text=True,
                             check=True)
        return {line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()}


class Courier2(Courier):
    """Host 2's Courier: in host 2's namespace, on host 2's plugin directory, OVS and binding host."""

    def __init__(self, workdir: Path, host: Host2, extra: str = ""):
        super().__init__(workdir, endpoint=host.neutron_url, extra=(
            f"plugin_dir = {host.plugin_dir}\novsdb_connection = {host.ovs_db}\n"
            f"docker_host = {host.docker_host}\n" + extra))
        self.config.write_text(self.config.read_text() + f"[binding]\nhost_id = {host.name}\n")
        self.host = host
        self.socket = f"{host.plugin_dir}/{self.driver_name}.sock"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.host.netns, sys.executable, "-m", "courier.cli", "serve",
                 "--config-file", str(self.config)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO))})
        self._wait_up()

    def _wait_up(self) -> None:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"courier exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            if os.path.exists(self.socket) and self.call("Plugin.Activate")[0] == 200:
                return
            time.sleep(0.1)
        raise AssertionError(f"courier did not come up:\n{self.log_text()[-3000:]}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`courier ARGS` as host 2's operator runs it (in its namespace, with its config)."""
        return subprocess.run(["ip", "netns", "exec", self.host.netns, sys.executable, "-m", "courier.cli", *args,
                               "--config-file", str(self.config)], capture_output=True, text=True, timeout=120,
                              cwd=REPO)


@pytest.fixture(scope="module")
def host2() -> Iterator[Host2]:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    _run_stack("host2", "start")
    try:
        yield Host2()
    finally:
        _run_stack("host2", "stop")


@pytest.fixture(scope="module")
def courier2(host2: Host2, courier: Courier, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Courier2]:
    server = Courier2(tmp_path_factory.mktemp("courier2"), host2)
    server.start()
    yield server
    server.stop()


class Containers:
    """One host's containers and networks of a test, removed whatever happens."""

    def __init__(self, docker_host: str, tag: str):
        self.docker_host, self.tag = docker_host, tag
        self.networks: list[str] = []
        self.containers: list[str] = []

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return testkit.docker_at(self.docker_host, *args, check=check)

    def network(self, *args: str) -> str:
        name = f"mh-{self.tag}-{len(self.networks)}"
        self.docker("network", "create", "-d", "kuryr", "--ipam-driver", "kuryr", *args, name)
        self.networks.append(name)
        return name

    def run(self, *args: str, command: tuple[str, ...] = ("sleep", "600")) -> str:
        name = f"mhc-{self.tag}-{len(self.containers)}"
        self.docker("run", "-d", "--name", name, *args, stack.IMAGE, *command)
        self.containers.append(name)
        return name

    def exec(self, container: str, *command: str) -> subprocess.CompletedProcess[str]:
        return self.docker("exec", container, *command, check=False)

    def ip(self, container: str, network: str, v6: bool = False) -> str:
        key = "GlobalIPv6Address" if v6 else "IPAddress"
        fmt = f'{{{{(index .NetworkSettings.Networks "{network}").{key}}}}}'
        return self.docker("inspect", "-f", fmt, container).stdout.strip()

    def network_id(self, network: str) -> str:
        return self.docker("network", "inspect", "-f", "{{.Id}}", network).stdout.strip()

    def remove_network(self, network: str) -> None:
        self.docker("network", "rm", network)
        self.networks.remove(network)

    def cleanup(self) -> None:
        for name in reversed(self.containers):
            self.docker("rm", "-f", name, check=False)
        for name in reversed(self.networks):
            self.docker("network", "rm", name, check=False)
        self.containers.clear()
        self.networks.clear()


class TwoHosts:
    def __init__(self, courier1: Courier, courier2: Courier2):
        tag = uuid.uuid4().hex[:6]
        self.a = Containers(stack.DOCKER_HOST, tag + "a")
        self.b = Containers(courier2.host.docker_host, tag + "b")
        self.courier1, self.courier2 = courier1, courier2

    def drain_pools(self) -> None:
        """The warm pools' idle ports go as an operator removes them: Courier stopped, `gc --drain-pools`."""
        for server, host, docker_host in ((self.courier1, None, stack.DOCKER_HOST),
                                          (self.courier2, self.courier2.host, self.courier2.host.docker_host)):
            server.stop()
            args = ["gc", "--docker-host", docker_host, "--min-age", "0", "--drain-pools"]
            if host is None:
                subprocess.run([sys.executable, "-m", "courier.cli", *args, "--config-file", str(server.config)],
                               capture_output=True, timeout=120, cwd=REPO, check=False)
            else:
                self.courier2.cli(*args)
            server.start()


@pytest.fixture
def hosts(courier: Courier, courier2: Courier2) -> Iterator[TwoHosts]:
    """Both hosts' Docker; whatever a test made must be gone from Neutron, both OVSs and both hosts after it."""
    from tests.e2e import conftest as e2e

    host2 = courier2.host
    before = (e2e._neutron_snapshot(), stack.ovs_ports(), testkit.host_links(), host2.ovs_ports(), host2.links())
    pair = TwoHosts(courier, courier2)
    try:
        yield pair
    finally:
        pair.b.cleanup()
        pair.a.cleanup()
        pair.drain_pools()
    after = (e2e._neutron_snapshot(), stack.ovs_ports(), testkit.host_links(), host2.ovs_ports(), host2.links())
    leaked = {kind: after[0][kind] - before[0][kind] for kind in after[0] if after[0][kind] - before[0][kind]}
    assert not leaked, f"Neutron resources left behind: {leaked}"
    for i, what in ((1, "host 1 OVS ports"), (2, "host 1 interfaces"), (3, "host 2 OVS ports"),
                    (4, "host 2 interfaces")):
        assert after[i] <= before[i], f"{what} left behind: {after[i] - before[i]}"
