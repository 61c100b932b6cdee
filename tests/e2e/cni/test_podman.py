"""Real `podman run --network` containers (podman 4.3, CNI backend) on Courier's CNI front end and the real stack:
containers ping and talk TCP over OVN, reach a Docker container on the same Neutron network, and `podman rm`
leaves nothing in Neutron, OVS or on the host (the ``pods`` fixture checks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import podman as podman_mod
from tests import stack
from tests.e2e.cni.conftest import CNI_SOCKET, EXECUTABLE, PodNetwork
from tests.e2e.conftest import DockerSession
from tests.podman import Podman

IMAGE = "localhost/busybox:local"


@pytest.fixture(scope="module")
def pm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    podman_mod.require()
    work = tmp_path_factory.mktemp("podman-courier")
    plugins = work / "plugins"
    plugins.mkdir()
    (plugins / "courier-cni").symlink_to(Path(EXECUTABLE).resolve())
    pm = Podman(work / "podman", [plugins])
    try:
        pm.import_image(IMAGE)
        yield pm
    finally:
        pm.cleanup()
    assert pm.leftovers() == []


@pytest.fixture
def net(pm: Podman, pods: PodNetwork) -> Iterator[str]:
    pm.write_network(pods.name, {"type": "courier-cni", "network": pods.id, "daemonSocket": CNI_SOCKET})
    try:
        yield pods.name
    finally:
        pm.run("rm", "--all", "--force", "--time", "0", check=False)
        pm.remove_network(pods.name)


def start(pm: Podman, net: str, *args: str) -> tuple[str, str]:
    cid = pm.run("run", "-d", "--network", net, *args, IMAGE, "sleep", "600").stdout.strip()
    address = pm.inspect(cid)["NetworkSettings"]["Networks"][net]["IPAddress"]
    return cid, address


def test_podman_containers_ping_and_talk_over_ovn(pm: Podman, net: str, pods: PodNetwork) -> None:
    a, a_ip = start(pm, net)
    b, b_ip = start(pm, net, "--ip", "10.77.0.123")

    assert b_ip == "10.77.0.123"
    port = stack.neutron("GET", f"/ports?network_id={pods.id}&fixed_ips=ip_address%3D{a_ip}")["ports"][0]
    settings = pm.inspect(a)["NetworkSettings"]["Networks"][net]
    assert settings["MacAddress"] == port["mac_address"] and settings["Gateway"] == "10.77.0.1"
    assert pm.run("exec", a, "ping", "-c1", "-W2", b_ip, check=False).returncode == 0  # at once, no retry
    assert pm.run("exec", b, "ping", "-c1", "-W2", a_ip, check=False).returncode == 0
    server = pm.run("exec", "-d", b, "sh", "-c", "echo over-ovn | nc -l -p 7777")
    assert server.returncode == 0
    reply = ""
    for _ in range(20):  # the listener starts in the background
        reply = pm.run("exec", a, "nc", "-w", "2", b_ip, "7777", check=False).stdout.strip()
        if reply:
            break
    assert reply == "over-ovn"

    pm.run("rm", "--force", "--time", "0", a, b)
    assert [p for p in stack.neutron("GET", f"/ports?network_id={pods.id}")["ports"]
            if p["fixed_ips"] and p["fixed_ips"][0]["ip_address"] in (a_ip, b_ip) and p["device_id"]] == []


def test_run_rm_true(pm: Podman, net: str) -> None:
    assert pm.run("run", "--rm", "--network", net, IMAGE, "true").returncode == 0


def test_a_podman_container_reaches_a_docker_container_on_the_same_neutron_network(
        dk: DockerSession, pm: Podman, pods: PodNetwork, net: str) -> None:
    docker_net = dk.network("-o", f"neutron.net.uuid={pods.id}", "--subnet", "10.77.0.0/24",
                            "--gateway", "10.77.0.1")
    container = dk.run("--net", docker_net)
    docker_ip = dk.ip(container, docker_net)
    pod, pod_ip = start(pm, net)
    assert pm.run("exec", pod, "ping", "-c1", "-W2", docker_ip, check=False).returncode == 0
    assert dk.exec(container, "ping", "-c1", "-W2", pod_ip, check=False).returncode == 0
    pm.run("rm", "--force", "--time", "0", pod)
    stack.docker("rm", "-f", container)
    dk.containers.remove(container)
    stack.docker("network", "rm", docker_net)
    dk.networks.remove(docker_net)
