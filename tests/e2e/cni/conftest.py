"""A Courier serving the CNI front end on the real stack, a Neutron network for pods, and namespaces as pods."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests import stack
from tests.e2e.conftest import Courier

CNI_SOCKET = "/run/courier/e2e-cni.sock"
EXECUTABLE = shutil.which("courier-cni", path=os.path.dirname(sys.executable)) or "courier-cni"
# 20 ADDs at once outrun a pool of 3: most take the cold path, and 2 Neutron workers take longer than the
# e2e Courier's usual 5 s per call
POOL = ("neutron_timeout = 30\n"
        "[vif_pool]\nenabled = true\nports_pool_min = 3\nports_pool_batch = 3\ndescribe_delay = 0.5\n")


@pytest.fixture(scope="module")
def cni_courier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Courier]:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    server = Courier(tmp_path_factory.mktemp("cni-courier"), driver_name="courier-cni-e2e", extra=POOL,
                     cni_socket=CNI_SOCKET)
    server.start()
    yield server
    server.stop()


class PodNetwork:
    """A user's Neutron network (as an operator makes one for pods), removed with its warm pool afterwards."""

    def __init__(self, courier: Courier, cidr: str):
        self.courier, self.tag = courier, uuid.uuid4().hex[:6]
        self.name = f"pods-{self.tag}"
        self.id = stack.neutron("POST", "/networks", {"network": {"name": self.name}})["network"]["id"]
        self.subnet = stack.neutron("POST", "/subnets", {"subnet": {
            "network_id": self.id, "cidr": cidr, "ip_version": 4, "enable_dhcp": False}})["subnet"]
        self.namespaces: list[str] = []

    def config(self, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
        return {"cniVersion": version, "name": self.name, "type": "courier-cni", "network": self.id,
                "daemonSocket": CNI_SOCKET, **extra}

    def namespace(self) -> str:
        name = f"ctcni-{self.tag}-{len(self.namespaces)}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.namespaces.append(name)
        return name

    def remove(self) -> None:
        for name in self.namespaces:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        # the warm pool's idle ports go as an operator removes them: Courier stopped, `courier gc --drain-pools`
        self.courier.stop()
        subprocess.run([sys.executable, "-m", "courier.cli", "gc", "--config-file", str(self.courier.config),
                        "--docker-host", stack.DOCKER_HOST, "--min-age", "0", "--drain-pools"],
                       check=False, capture_output=True, timeout=120)
        self.courier.start()
        for port in stack.neutron("GET", f"/ports?network_id={self.id}")["ports"]:
            if port["device_owner"] != "network:distributed":
                raise AssertionError(f"port {port['id']} ({port['device_owner']}) left on the pod network")
        stack.neutron("DELETE", f"/networks/{self.id}")


def cni(command: str, config: dict[str, Any], netns: str, container: str, ifname: str = "eth0",
        args: str = "") -> tuple[int, dict[str, Any]]:
    """courier-cni as a runtime runs it."""
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
           "CNI_PATH": os.path.dirname(EXECUTABLE), "CNI_ARGS": args, "PATH": os.environ.get("PATH", "")}
    proc = subprocess.run([EXECUTABLE], input=json.dumps(config), env=env, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}


def pod_id() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


@pytest.fixture
def pods(cni_courier: Courier, request: pytest.FixtureRequest) -> Iterator[PodNetwork]:
    from tests.e2e import conftest as e2e

    before = (e2e._neutron_snapshot(), stack.ovs_ports(), stack.host_links())
    net = PodNetwork(cni_courier, getattr(request, "param", "10.77.0.0/24"))
    try:
        yield net
    finally:
        net.remove()
    after = (e2e._neutron_snapshot(), stack.ovs_ports(), stack.host_links())
    leaked = {kind: after[0][kind] - before[0][kind] for kind in after[0] if after[0][kind] - before[0][kind]}
    assert not leaked, f"Neutron resources left behind: {leaked}"
    assert after[1] <= before[1], f"OVS ports left behind: {after[1] - before[1]}"
    assert after[2] <= before[2], f"host interfaces left behind: {after[2] - before[2]}"
