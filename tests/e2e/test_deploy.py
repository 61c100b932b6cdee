"""Packaging for real: deploy/build-image builds the image with no registry, its container serves the test
dockerd, and the managed plugin made of it (deploy/build-plugin) runs containers that ping.

Slow the first time (debootstrap of the base, about 3 min here); the base tarball and image are cached under
/var/lib/courier-stack/deploy and the image is rebuilt only when the sources change.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from courier.neutron import tags
from tests import stack
from tests.e2e.conftest import PLUGIN_DIR, Courier
from tests.testkit import UnixHTTPConnection

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
IMAGE = "courier:e2e"
BUILD_TIMEOUT = 1500  # a first build runs debootstrap
START_TIMEOUT = 60


def run(*argv: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "DOCKER_HOST": stack.DOCKER_HOST})
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def image() -> str:
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    stack.require("the test dockerd at " + stack.DOCKER_HOST, stack.docker_up())
    started = time.monotonic()
    result = run(str(REPO / "deploy/build-image"), "--tag", IMAGE, timeout=BUILD_TIMEOUT)
    print(f"\ndeploy/build-image: {time.monotonic() - started:.0f} s\n{result.stderr.strip()}")
    return IMAGE


def kuryr_conf(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kuryr.conf").write_text(body)
    return directory


def answers(socket_path: str) -> bool:
    try:
        conn = UnixHTTPConnection(socket_path)
        conn.request("POST", "/Plugin.Activate", body="{}")
        return conn.getresponse().status == 200
    except OSError:
        return False


class Session:
    """A network and two containers through ``driver``; removed, and checked gone from Neutron and OVS."""

    def __init__(self, driver: str):
        self.driver, self.tag = driver, uuid.uuid4().hex[:6]
        self.network = f"dp-{self.tag}"
        self.containers = [f"dp-{self.tag}-{i}" for i in range(2)]
        self.docker_id = ""
        self.endpoints: list[str] = []

    def ping_pair(self) -> None:
        subnet = f"10.236.{int(self.tag, 16) % 250}.0/24"
        stack.docker("network", "create", "-d", self.driver, "--ipam-driver", self.driver, "--subnet", subnet,
                     self.network)
        self.docker_id = stack.docker("network", "inspect", "-f", "{{.Id}}", self.network).stdout.strip()
        for name in self.containers:
            stack.docker("run", "-d", "--name", name, "--net", self.network, stack.IMAGE, "sleep", "600")
        fmt = f'{{{{(index .NetworkSettings.Networks "{self.network}").IPAddress}}}} ' \
              f'{{{{(index .NetworkSettings.Networks "{self.network}").EndpointID}}}}'
        info = [stack.docker("inspect", "-f", fmt, c).stdout.split() for c in self.containers]
        self.endpoints = [endpoint for _, endpoint in info]
        for (name, (peer_ip, _)) in zip(self.containers, reversed(info), strict=True):
            result = stack.docker("exec", name, "ping", "-c", "2", "-W", "3", peer_ip, check=False)
            assert result.returncode == 0, f"{name} cannot ping {peer_ip}: {result.stdout}{result.stderr}"
        (port,) = stack.neutron("GET", f"/ports?device_id={self.endpoints[0]}")["ports"]
        assert port["status"] == "ACTIVE" and port["binding:vif_type"] == "ovs"

    def cleanup(self) -> None:
        for name in self.containers:
            stack.docker("rm", "-f", name, check=False)
        stack.docker("network", "rm", self.network, check=False)

    def leftovers(self) -> list[str]:
        """What Neutron and OVS still hold of this session."""
        left = []
        if self.docker_id:
            found = stack.neutron("GET", "/networks?tags=" + ",".join(tags.docker_id_tags(self.docker_id)))
            left += [f"network {n['id']}" for n in found["networks"]]
        for endpoint in self.endpoints:
            left += [f"port {p['id']}" for p in stack.neutron("GET", f"/ports?device_id={endpoint}")["ports"]]
            ovs = subprocess.run(["ovs-vsctl", "--bare", "--columns=name", "find", "Interface",
                                  f"external_ids:vm-uuid={endpoint}"], capture_output=True, text=True, check=True)
            left += [f"OVS interface {name}" for name in ovs.stdout.split()]
        return left

    def assert_gone(self, timeout: float = 90) -> None:
        """Call while Courier still runs: a delete Neutron was too slow for finishes in the background."""
        deadline = time.monotonic() + timeout
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(1)
        assert not left, f"left behind: {left}"


@pytest.fixture
def container(image: str, tmp_path: Path) -> Iterator[str]:
    """Courier in a container of the image, as deploy/README.md runs it; yields its driver name."""
    tag = uuid.uuid4().hex[:6]
    driver, name = f"cimg-{tag}", f"courier-img-{tag}"
    conf = kuryr_conf(tmp_path / "kuryr", f"[neutron]\nauth_type = none\nendpoint = {stack.NEUTRON_URL}\n"
                                          f"[courier]\ndriver_name = {driver}\nport_ready_timeout = 20\n")
    run("docker", "run", "-d", "--name", name, "--network", "host", "--cap-add", "NET_ADMIN",
        "-v", "/run/openvswitch:/run/openvswitch", "-v", f"{PLUGIN_DIR}:{PLUGIN_DIR}",
        "-v", "/proc/sys/net:/host/proc/sys/net", "-v", f"{conf}:/etc/kuryr:ro", image)
    socket_path = f"{PLUGIN_DIR}/{driver}.sock"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(socket_path):
            state = run("docker", "inspect", "-f", "{{.State.Status}}", name).stdout.strip()
            assert state == "running" and time.monotonic() < deadline, \
                f"courier container {state}:\n" + run("docker", "logs", name, check=False).stdout[-3000:]
            time.sleep(0.2)
        yield driver
        logs = run("docker", "logs", name)
        assert f"serving Docker driver '{driver}'" in logs.stdout, "Courier logs to stdout"
    finally:
        run("docker", "stop", "-t", "20", name, check=False)  # SIGTERM: Courier removes its socket
        run("docker", "rm", "-f", name, check=False)
        if os.path.exists(socket_path):
            os.unlink(socket_path)


def _two_containers_ping_and_leave_nothing(driver: str) -> None:
    session = Session(driver)
    try:
        session.ping_pair()
    finally:
        session.cleanup()
    session.assert_gone()


def test_image_container_serves_dockerd(container: str) -> None:
    _two_containers_ping_and_leave_nothing(container)


@pytest.fixture
def plugin(image: str, tmp_path: Path) -> Iterator[str]:
    """The managed plugin, configured through its settable mounts and env, enabled; yields ``name:latest``."""
    name = f"courier-test-{uuid.uuid4().hex[:6]}:latest"
    conf = kuryr_conf(tmp_path / "plugin-etc", "[courier]\nport_ready_timeout = 20\n")
    started = time.monotonic()
    run(str(REPO / "deploy/build-plugin"), "--image", image, "--name", name, timeout=600)
    print(f"\ndeploy/build-plugin: {time.monotonic() - started:.0f} s")
    try:
        run("docker", "plugin", "set", name, f"kuryr-conf.source={conf}", "OS_NEUTRON__AUTH_TYPE=none",
            f"OS_NEUTRON__ENDPOINT={stack.NEUTRON_URL}")
        run("docker", "plugin", "enable", "--timeout", str(START_TIMEOUT), name, timeout=START_TIMEOUT + 30)
        plugin_id = run("docker", "plugin", "inspect", "-f", "{{.Id}}", name).stdout.strip()
        # a managed plugin's socket is in a directory of its own, named after the plugin id
        assert os.path.exists(f"{PLUGIN_DIR}/{plugin_id}/courier.sock")
        yield name
    finally:
        run("docker", "plugin", "disable", "-f", name, check=False, timeout=60)
        run("docker", "plugin", "rm", "-f", name, check=False, timeout=60)


def test_managed_plugin_runs_containers_that_ping(plugin: str) -> None:
    _two_containers_ping_and_leave_nothing(plugin)


def test_spec_and_json_files_point_docker_at_a_tcp_courier(tmp_path: Path) -> None:
    """deploy/docker-plugins/kuryr.spec and kuryr.json, as installed for [DEFAULT] kuryr_uri (TCP) setups."""
    stack.require("Neutron at " + stack.NEUTRON_URL, stack.neutron_up())
    stack.require("the test dockerd at " + stack.DOCKER_HOST, stack.docker_up())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tag = uuid.uuid4().hex[:6]
    addr = f"http://127.0.0.1:{port}"
    server = Courier(tmp_path, driver_name=f"tcp-{tag}", extra=f"[DEFAULT]\nkuryr_uri = {addr}\n")
    spec_text = (REPO / "deploy/docker-plugins/kuryr.spec").read_text().replace("http://127.0.0.1:23750", addr)
    spec_json = json.loads((REPO / "deploy/docker-plugins/kuryr.json").read_text())
    files = {f"spec-{tag}": ("spec", spec_text),
             f"json-{tag}": ("json", json.dumps({**spec_json, "Name": f"json-{tag}", "Addr": addr}))}
    server.start()
    sessions = []
    try:
        for driver, (ext, text) in files.items():
            Path(f"/etc/docker/plugins/{driver}.{ext}").write_text(text)
        for driver in files:
            session = Session(driver)
            sessions.append(session)
            session.ping_pair()
    finally:
        for session in sessions:
            session.cleanup()
        for driver, (ext, _) in files.items():
            Path(f"/etc/docker/plugins/{driver}.{ext}").unlink(missing_ok=True)
        try:
            for session in sessions:
                session.assert_gone()
        finally:
            server.stop()
