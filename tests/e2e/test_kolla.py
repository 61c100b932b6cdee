"""The image run the way kolla-ansible runs kuryr-libnetwork's: deploy/kolla/config.json through kolla_start, the
config directory at /var/lib/kolla/config_files, the host's /run, the host network (not privileged: see the
fixture), logs in /var/log/kolla/kuryr, Kolla's healthcheck (`healthcheck_listen kuryr-server PORT`). Two
containers ping through it; stopped, it leaves nothing behind. The image is deploy/build-image's, cached
(tests/e2e/test_deploy.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import stack, testkit
from tests.e2e.conftest import PLUGIN_DIR
from tests.e2e.test_deploy import REPO, START_TIMEOUT, Session, answers, image, run

pytestmark = pytest.mark.e2e

__all__ = ["image"]  # the fixture, shared with test_deploy.py

KURYR_UID, KOLLA_GID = 42429, 42400  # deploy/Dockerfile's kuryr user and kolla group
HEALTHY_TIMEOUT = 60


@dataclass
class Kolla:
    name: str
    driver: str
    port: int
    logs: Path  # the host directory mounted at /var/log/kolla (kolla-ansible: the kolla_logs volume)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_config(directory: Path, driver: str, port: int) -> Path:
    """What kolla-ansible puts in /etc/kolla/kuryr/: config.json and kuryr.conf (Kolla's kuryr.conf.j2 keys)."""
    directory.mkdir(parents=True)
    shutil.copy(REPO / "deploy/kolla/config.json", directory / "config.json")
    (directory / "kuryr.conf").write_text(
        f"[DEFAULT]\nkuryr_uri = http://127.0.0.1:{port}\ndebug = False\nlog_dir = /var/log/kolla/kuryr\n"
        # Kolla also sets capability_scope = global, which needs a Docker cluster store (Kolla's etcd): not here
        "bindir = /var/lib/kolla/venv/libexec/kuryr\n"
        "[binding]\ndefault_driver = kuryr.lib.binding.drivers.veth\n"
        f"[neutron]\nauth_type = none\nendpoint = {stack.NEUTRON_URL}\n"
        f"[courier]\ndriver_name = {driver}\nport_ready_timeout = 20\n")
    directory.chmod(0o755)
    return directory


def health(name: str) -> str:
    return run("docker", "inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()


@pytest.fixture
def kolla(image: str, tmp_path: Path) -> Iterator[Kolla]:
    tag = uuid.uuid4().hex[:6]
    k = Kolla(name=f"kuryr-kolla-{tag}", driver=f"kolla-{tag}", port=free_port(), logs=tmp_path / "kolla-logs")
    conf_dir = node_config(tmp_path / "etc-kolla-kuryr", k.driver, k.port)
    k.logs.mkdir()
    socket_path = f"{PLUGIN_DIR}/{k.driver}.sock"
    try:
        # kolla-ansible's kuryr_default_volumes (less /lib/modules, /usr/lib/docker and the dev-mode ones: nothing
        # here needs them), with /run not `:shared`: this machine's / is a private mount. Kolla also runs it
        # privileged, which this machine cannot grant (runc: "unable to apply caps"): NET_ADMIN and the host's
        # /proc/sys/net instead, as deploy/README.md runs the image outside Kolla.
        run("docker", "run", "-d", "--name", k.name, "--network", "host", "--cap-add", "NET_ADMIN",
            "-v", f"{conf_dir}:/var/lib/kolla/config_files/:ro", "-v", "/etc/localtime:/etc/localtime:ro",
            "-v", "/run:/run", "-v", f"{k.logs}:/var/log/kolla/", "-v", "/proc/sys/net:/host/proc/sys/net",
            "--health-cmd", f"healthcheck_listen kuryr-server {k.port}", "--health-interval", "1s",
            "--health-start-period", "30s", image)
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(socket_path):
            state = run("docker", "inspect", "-f", "{{.State.Status}}", k.name).stdout.strip()
            assert state == "running" and time.monotonic() < deadline, \
                f"kolla container {state}:\n" + run("docker", "logs", k.name, check=False).stderr[-3000:]
            time.sleep(0.2)
        yield k
    finally:
        run("docker", "stop", "-t", "20", k.name, check=False)  # SIGTERM reaches Courier: kolla_start exec'd it
        stopped = run("docker", "inspect", "-f", "{{.State.ExitCode}}", k.name, check=False).stdout.strip()
        run("docker", "rm", "-f", k.name, check=False)
        leftover_socket = os.path.exists(socket_path)
        if leftover_socket:
            os.unlink(socket_path)
    assert stopped == "0", f"Courier exited {stopped} on SIGTERM"
    assert not leftover_socket, "Courier left its socket behind"
    assert not run("docker", "ps", "-aq", "--filter", f"name={k.name}").stdout.strip()


def test_kolla_container_serves_dockerd_and_leaves_nothing(kolla: Kolla) -> None:
    links_before = testkit.host_links()

    deadline = time.monotonic() + HEALTHY_TIMEOUT
    while (status := health(kolla.name)) != "healthy":
        assert status in ("starting", "healthy") and time.monotonic() < deadline, f"healthcheck {status}"
        time.sleep(0.5)
    # the image's own healthcheck command, as systemd or a non-Kolla operator would use it
    assert run("docker", "exec", kolla.name, "courier", "health").returncode == 0

    # what kolla-ansible's reconfigure asks the running container: its copies are up to date
    assert run("docker", "exec", kolla.name, "kolla_set_configs", "--check", check=False).returncode == 0
    # kolla_start copied kuryr.conf with config.json's owner and mode, and gave the log dir to kuryr:kolla
    conf_stat = run("docker", "exec", kolla.name, "stat", "-c", "%U %a", "/etc/kuryr/kuryr.conf").stdout.split()
    assert conf_stat == ["kuryr", "600"]
    log_dir = kolla.logs / "kuryr"
    assert (log_dir.stat().st_uid, log_dir.stat().st_gid) == (KURYR_UID, KOLLA_GID)

    session = Session(kolla.driver)
    try:
        session.ping_pair()
    finally:
        session.cleanup()
    session.assert_gone()
    assert testkit.host_links() <= links_before, f"host links left: {testkit.host_links() - links_before}"

    # Courier logs where Kolla expects them (oslo.log's <log_dir>/<program>.log), not to docker logs
    log = (log_dir / "kuryr-server.log").read_text()
    assert f"serving Docker driver '{kolla.driver}'" in log and "Bound port" in log, log[-2000:]
    docker_logs = run("docker", "logs", kolla.name)
    assert "kolla_start: running kuryr-server" in docker_logs.stderr
    assert "serving Docker driver" not in docker_logs.stdout + docker_logs.stderr
    inspect = json.loads(run("docker", "image", "inspect", kolla_image(kolla.name)).stdout)[0]
    assert inspect["Config"]["Labels"]["org.courier.kolla.service"] == "kuryr"


def kolla_image(container: str) -> str:
    return run("docker", "inspect", "-f", "{{.Image}}", container).stdout.strip()
