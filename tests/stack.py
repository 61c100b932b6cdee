"""Access to the local all-in-one stack (scripts/stack) for integration and e2e tests.

In CI (COURIER_REQUIRE_STACK=1, set by .ci/run) a missing service fails the test: only a missing kernel
feature may skip. Elsewhere a missing stack skips, with the command that brings it up.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from typing import Any

import pytest

from tests import testkit

NEUTRON_URL = testkit.NEUTRON_URL
DOCKER_HOST = os.environ.get("COURIER_DOCKER_HOST", "unix:///run/courier-stack/docker.sock")
IMAGE = "busybox:local"


def require(what: str, ok: bool) -> None:
    if ok:
        return
    message = f"{what} is not running (start it with: scripts/stack start)"
    if os.environ.get("COURIER_REQUIRE_STACK") == "1":
        pytest.fail(message)
    pytest.skip(message)


def neutron_up(attempts: int = 3) -> bool:
    return testkit.neutron_up(NEUTRON_URL, attempts)


def neutron(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Raw Neutron REST for test set-up and checks (independent of the code under test)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{NEUTRON_URL}/v2.0{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else {}


# Debian's own CLI matches its dockerd (API 1.41); a newer CLI refuses some flags (e.g. --mac-address) against it.
DEBIAN_CLI = "/usr/bin/docker"


docker_at = testkit.docker_at


def docker(*args: str, check: bool = True, timeout: float = 120,
           cli: str = "docker") -> subprocess.CompletedProcess[str]:
    """The docker CLI against the stack's test dockerd."""
    return docker_at(DOCKER_HOST, *args, check=check, timeout=timeout, cli=cli)


stop_process = testkit.stop_process
host_links = testkit.host_links


def docker_up() -> bool:
    return testkit.dockerd_answers(DOCKER_HOST)


def ovs_ports(bridge: str = "br-int") -> set[str]:
    out = subprocess.run(["ovs-vsctl", "list-ports", bridge], capture_output=True, text=True, check=False)
    return set(out.stdout.split())
